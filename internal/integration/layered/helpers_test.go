package layered_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/layered"
)

// tier wraps a real cache (mem://, file://, redis://), counts the calls that
// reach it, logs their order, and can be told to fail or to hold a Get.
type tier struct {
	certcache.Cache
	name string
	log  *callLog

	gets, puts, deletes atomic.Int64

	mu       sync.Mutex
	fail     map[string]bool // op → fail with ErrUnavailable
	getGate  chan struct{}   // if set, Get waits for it to close after reading
	getEnter chan struct{}   // if set, Get signals here after reading
}

var errInjected = fmt.Errorf("%w: injected failure", certcache.ErrUnavailable)

func newTier(t testing.TB, name string, log *callLog) *tier {
	t.Helper()
	c, err := certcache.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	// Beneath coordination, as the tiers of a Stack from Open are.
	return &tier{Cache: certcache.Uncoordinated(c), name: name, log: log, fail: map[string]bool{}}
}

// Unwrap returns the wrapped cache, so that certcache.List (a preload) and
// AcquireLease find the store through the wrapper.
func (c *tier) Unwrap() certcache.Cache { return c.Cache }

func (c *tier) setFail(op string, fail bool) {
	c.mu.Lock()
	c.fail[op] = fail
	c.mu.Unlock()
}

func (c *tier) failing(op string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.fail[op]
}

func (c *tier) Get(ctx context.Context, key string) ([]byte, error) {
	c.gets.Add(1)
	c.log.add(c.name + " get")
	if c.failing("get") {
		return nil, &certcache.Error{Backend: c.name, Op: "get", Key: key, Err: errInjected}
	}
	v, err := c.Cache.Get(ctx, key)
	c.mu.Lock()
	gate, enter := c.getGate, c.getEnter
	c.mu.Unlock()
	if enter != nil {
		enter <- struct{}{}
	}
	if gate != nil {
		<-gate
	}
	return v, err
}

func (c *tier) Put(ctx context.Context, key string, data []byte) error {
	c.puts.Add(1)
	c.log.add(c.name + " put")
	if c.failing("put") {
		return &certcache.Error{Backend: c.name, Op: "put", Key: key, Err: errInjected}
	}
	return c.Cache.Put(ctx, key, data)
}

func (c *tier) Delete(ctx context.Context, key string) error {
	c.deletes.Add(1)
	c.log.add(c.name + " delete")
	if c.failing("delete") {
		return &certcache.Error{Backend: c.name, Op: "delete", Key: key, Err: errInjected}
	}
	return c.Cache.Delete(ctx, key)
}

// callLog records the order in which tiers are called.
type callLog struct {
	mu    sync.Mutex
	calls []string
}

func (l *callLog) add(s string) {
	if l == nil {
		return
	}
	l.mu.Lock()
	l.calls = append(l.calls, s)
	l.mu.Unlock()
}

func (l *callLog) take() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	c := l.calls
	l.calls = nil
	return c
}

// clock is a settable clock for MemoryOptions.Now.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *clock { return &clock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func mustNew(t testing.TB, tiers ...certcache.Cache) *layered.Stack {
	t.Helper()
	c, err := layered.New(tiers...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return certcache.Uncoordinated(c).(*layered.Stack)
}

func bg() context.Context { return context.Background() }

func mustGet(t testing.TB, c certcache.Cache, key, want string) {
	t.Helper()
	got, err := c.Get(bg(), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if string(got) != want {
		t.Fatalf("Get(%q) = %q, want %q", key, got, want)
	}
}

func mustPut(t testing.TB, c certcache.Cache, key, v string) {
	t.Helper()
	if err := c.Put(bg(), key, []byte(v)); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}

func isMiss(err error) bool {
	return err != nil && err == autocertMiss //nolint:errorlint
}

func notMiss(t testing.TB, op string, err error) {
	t.Helper()
	if err == nil || errors.Is(err, autocertMiss) {
		t.Fatalf("%s = %v, want a non-miss error", op, err)
	}
}
