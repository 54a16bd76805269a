package certcache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/certcache/certcache/driver"

	"golang.org/x/crypto/acme/autocert"
)

// storeMode is how a stubStore behaves.
type storeMode int

const (
	storeUp          storeMode = iota // answers: hits and misses
	storeRefusing                     // connection refused at once
	storeHanging                      // never answers: waits for ctx; what it was sent stays unanswered after it comes back
	storeDenying                      // answers every call with a permission error
	storeMarked                       // a driver error wrapping ErrUnavailable
	storeSlow                         // answers after latency
	storeGatedRefuse                  // waits for gate, then refused
)

// stubStore is a driver.Driver whose behaviour a test switches at run time. It
// counts real calls and probes apart, and the calls in flight.
type stubStore struct {
	mu      sync.Mutex
	mode    storeMode
	latency time.Duration
	gate    chan struct{}
	data    map[string][]byte
	leases  map[string]string // name → token

	calls, probes, inflight atomic.Int64
	probing, maxProbing     atomic.Int64 // probes in flight now, and at most
}

func newStubStore() *stubStore {
	return &stubStore{data: map[string][]byte{"present.example": []byte("cert")}}
}

func (s *stubStore) set(m storeMode) {
	s.mu.Lock()
	s.mode = m
	s.mu.Unlock()
}

var errDenied = errors.New("NOPERM this user has no permissions to access the key")

func (s *stubStore) do(ctx context.Context, key string, f func()) error {
	s.inflight.Add(1)
	defer s.inflight.Add(-1)
	if key == probeKey {
		s.probes.Add(1)
		n := s.probing.Add(1)
		defer s.probing.Add(-1)
		for m := s.maxProbing.Load(); n > m && !s.maxProbing.CompareAndSwap(m, n); m = s.maxProbing.Load() {
		}
	} else {
		s.calls.Add(1)
	}
	s.mu.Lock()
	mode, latency, gate := s.mode, s.latency, s.gate
	s.mu.Unlock()
	switch mode {
	case storeRefusing:
		return &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	case storeHanging:
		<-ctx.Done()
		return ctx.Err()
	case storeDenying:
		return errDenied
	case storeMarked:
		return fmt.Errorf("%w: pool timeout", ErrUnavailable)
	case storeSlow:
		select {
		case <-time.After(latency):
		case <-ctx.Done():
			return ctx.Err()
		}
	case storeGatedRefuse:
		<-gate
		return &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	f()
	return nil
}

func (s *stubStore) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	var ok bool
	if err := s.do(ctx, key, func() { v, ok = s.data[key] }); err != nil {
		return nil, err
	}
	if !ok {
		return nil, autocert.ErrCacheMiss
	}
	return append([]byte(nil), v...), nil
}

func (s *stubStore) Put(ctx context.Context, key string, data []byte) error {
	return s.do(ctx, key, func() { s.data[key] = append([]byte(nil), data...) })
}

func (s *stubStore) Delete(ctx context.Context, key string) error {
	return s.do(ctx, key, func() { delete(s.data, key) })
}

func (s *stubStore) Close() error { return nil }

// Leases: "held.example" is always held by someone else; any other name is
// held by the token that acquired it until it is released (no expiry).
// Enough to see which failures open the breaker, and to pass the exclusion
// probe.
func (s *stubStore) AcquireLease(ctx context.Context, name, token string, _ time.Duration) error {
	held := false
	err := s.leaseCall(ctx, name, func() {
		if h, ok := s.leases[name]; ok && h != token {
			held = true
			return
		}
		if s.leases == nil {
			s.leases = map[string]string{}
		}
		s.leases[name] = token
	})
	if err == nil && held {
		return ErrLeaseHeld
	}
	return err
}

func (s *stubStore) RefreshLease(ctx context.Context, name, _ string, _ time.Duration) error {
	return s.leaseCall(ctx, name, func() {})
}

func (s *stubStore) ReleaseLease(ctx context.Context, name, token string) error {
	return s.leaseCall(ctx, name, func() {
		if s.leases[name] == token {
			delete(s.leases, name)
		}
	})
}

func (s *stubStore) leaseCall(ctx context.Context, name string, f func()) error {
	if err := s.do(ctx, name, f); err != nil {
		return err
	}
	if name == "held.example" {
		return ErrLeaseHeld
	}
	return nil
}

var _ driver.LeaseDriver = (*stubStore)(nil)

func stubCache(t testing.TB, s *stubStore, o *Options) *portable {
	t.Helper()
	c := newPortable("stub", s, o, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

func stats(t testing.TB, c Cache) BreakerStats {
	t.Helper()
	st, ok := BreakerStatsOf(c)
	if !ok {
		t.Fatal("BreakerStatsOf: no breaker")
	}
	return st
}

// TestBreakerOpensOnlyOnUnavailability: the failures that show the store
// cannot answer open the breaker; a miss, a refusal, a bad key or value and
// a caller who gave up never do.
func TestBreakerOpensOnlyOnUnavailability(t *testing.T) {
	type call func(ctx context.Context, c *portable) error
	get := func(key string) call {
		return func(ctx context.Context, c *portable) error { _, err := c.Get(ctx, key); return err }
	}
	put := func(ctx context.Context, c *portable) error { return c.Put(ctx, "k.example", []byte("v")) }
	del := func(ctx context.Context, c *portable) error { return c.Delete(ctx, "k.example") }
	cancelSoon := func() (context.Context, context.CancelFunc) {
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(30*time.Millisecond, cancel)
		return ctx, cancel
	}
	shortDeadline := func() (context.Context, context.CancelFunc) {
		return context.WithTimeout(context.Background(), 30*time.Millisecond)
	}
	// Cases whose caller gives up use a long per-call timeout, so that
	// the caller's end comes first even on a stalled machine.
	for _, tc := range []struct {
		name     string
		mode     storeMode
		ctx      func() (context.Context, context.CancelFunc)
		call     call
		wantErr  bool
		wantOpen bool
	}{
		{"GetRefused", storeRefusing, nil, get("k.example"), true, true},
		{"GetDriverMarkedUnavailable", storeMarked, nil, get("k.example"), true, true},
		{"GetNoAnswerWithinTimeout", storeHanging, nil, get("k.example"), true, true},
		{"PutNoAnswerWithinTimeout", storeHanging, nil, put, true, true},
		{"DeleteRefused", storeRefusing, nil, del, true, true},
		{"Hit", storeUp, nil, get("present.example"), false, false},
		{"Miss", storeUp, nil, get("absent.example"), true, false},
		{"Denied", storeDenying, nil, get("k.example"), true, false},
		{"DeniedPut", storeDenying, nil, put, true, false},
		{"InvalidKey", storeRefusing, nil, get(""), true, false},
		{"TooLarge", storeRefusing, nil, func(ctx context.Context, c *portable) error {
			return c.Put(ctx, "k.example", make([]byte, MaxValueSize+1))
		}, true, false},
		{"CallerCancelled", storeHanging, cancelSoon, get("k.example"), true, false},
		{"CallerDeadlineShorterThanTimeout", storeHanging, shortDeadline, get("k.example"), true, false},
		{"CallerCancelledWhileRefused", storeRefusing, func() (context.Context, context.CancelFunc) {
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			return ctx, cancel
		}, get("k.example"), true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStubStore()
			s.set(tc.mode)
			timeout := 150 * time.Millisecond
			if tc.ctx != nil {
				timeout = time.Minute
			}
			c := stubCache(t, s, &Options{Timeout: timeout, BreakerProbeInterval: time.Hour})
			ctx, cancel := context.Background(), context.CancelFunc(func() {})
			if tc.ctx != nil {
				ctx, cancel = tc.ctx()
			}
			defer cancel()
			err := tc.call(ctx, c)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if errors.Is(err, ErrCircuitOpen) {
				t.Errorf("the first call failed with %v: it was never sent", err)
			}
			// Opened, not Open: an answering probe may close it at once.
			st := stats(t, c)
			if got := st.Opened == 1; got != tc.wantOpen {
				t.Errorf("after %v: breaker opened %d times, want open: %v", err, st.Opened, tc.wantOpen)
			}
			if tc.wantOpen && st.Open && !strings.Contains(st.Cause, `"k.example": `) {
				t.Errorf("Cause = %q, want the first error", st.Cause)
			}
		})
	}
}

var openMessage = regexp.MustCompile(`^certcache/stub: (get|put|delete) "[a-z.]+": backend unavailable: circuit open since \d\d:\d\d:\d\d\.\d\d\d after: get "first\.example": backend unavailable: no answer within 1s: context deadline exceeded$`)

// TestBreakerFailsFast: once open, Get, Put and Delete fail at once, never
// reach the store, never report a miss, and say since when and why.
func TestBreakerFailsFast(t *testing.T) {
	s := newStubStore()
	s.set(storeHanging)
	c := stubCache(t, s, &Options{Timeout: 2 * time.Second, GetTimeout: time.Second})
	start := time.Now()
	if _, err := c.Get(context.Background(), "first.example"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("first Get = %v, want ErrUnavailable", err)
	}
	if d := time.Since(start); d < time.Second {
		t.Fatalf("first Get returned after %v, before its timeout", d)
	}
	callsBefore := s.calls.Load()
	for _, call := range []struct {
		op string
		fn func() error
	}{
		{"Get(present)", func() error { _, err := c.Get(context.Background(), "present.example"); return err }},
		{"Get(absent)", func() error { _, err := c.Get(context.Background(), "absent.example"); return err }},
		{"Put", func() error { return c.Put(context.Background(), "new.example", []byte("v")) }},
		{"Delete", func() error { return c.Delete(context.Background(), "present.example") }},
	} {
		start := time.Now()
		err := call.fn()
		d := time.Since(start)
		switch {
		case err == nil:
			t.Errorf("%s succeeded with the breaker open", call.op)
			continue
		case err == autocert.ErrCacheMiss || errors.Is(err, autocert.ErrCacheMiss): //nolint:errorlint
			t.Errorf("%s = %v: a miss", call.op, err)
		case !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrUnavailable):
			t.Errorf("%s = %v, want ErrCircuitOpen and ErrUnavailable", call.op, err)
		case !openMessage.MatchString(err.Error()):
			t.Errorf("%s error %q does not match %s", call.op, err, openMessage)
		}
		if d > 500*time.Millisecond { // the timeout it skips is 1s (Get) or 2s
			t.Errorf("%s took %v with the breaker open", call.op, d)
		}
		var e *Error
		if !errors.As(err, &e) || e.Backend != "stub" {
			t.Errorf("%s = %#v, want a *certcache.Error of backend stub", call.op, err)
		}
	}
	if n := s.calls.Load() - callsBefore; n != 0 {
		t.Errorf("%d calls reached the store while the breaker was open", n)
	}
	st := stats(t, c)
	if !st.Open || st.Opened != 1 || st.FastFailed != 4 || st.OpenSince.IsZero() {
		t.Errorf("stats = %+v, want open once, 4 fast failures", st)
	}
	// Validation and the caller's context still come first.
	if _, err := c.Get(context.Background(), ""); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("Get(\"\") with the breaker open = %v, want ErrInvalidKey", err)
	}
}

// TestBreakerRecovers: background probes, not real calls, find the store
// answering again with the default probe interval, within about a second,
// also for a store that never answers what was sent while it was down (the
// probes in flight time out) and with the default timeouts, where a long
// probe may be in flight; and never more than two probes wait on it.
func TestBreakerRecovers(t *testing.T) {
	for _, tc := range []struct {
		name       string
		down       storeMode
		answer     storeMode     // how the store answers once back
		getTimeout time.Duration // zero: DefaultGetTimeout
		downFor    time.Duration
		limit      time.Duration
	}{
		{"HangingThenMiss", storeHanging, storeUp, 300 * time.Millisecond, 3 * DefaultBreakerProbeInterval, time.Second},
		{"RefusedThenMiss", storeRefusing, storeUp, 300 * time.Millisecond, 3 * DefaultBreakerProbeInterval, time.Second},
		{"HangingThenDenying", storeHanging, storeDenying, 300 * time.Millisecond, 3 * DefaultBreakerProbeInterval, time.Second}, // a refusal is an answer
		{"HangingDefaultTimeouts", storeHanging, storeUp, 0, 5 * time.Second, breakerProbeTimeout + time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStubStore()
			s.set(tc.down)
			c := stubCache(t, s, &Options{GetTimeout: tc.getTimeout})
			if _, err := c.Get(context.Background(), "k.example"); !errors.Is(err, ErrUnavailable) {
				t.Fatalf("Get = %v, want ErrUnavailable", err)
			}
			time.Sleep(tc.downFor) // probes fail meanwhile
			calls := s.calls.Load()
			if st := stats(t, c); !st.Open || st.Probes < 2 {
				t.Fatalf("stats = %+v while the store is down, want open and probing", st)
			}
			s.set(tc.answer)
			back := time.Now()
			var closedAfter time.Duration
			for {
				if st := stats(t, c); !st.Open {
					closedAfter = time.Since(back)
					break
				}
				if time.Since(back) > 10*time.Second {
					t.Fatalf("breaker still open 10s after the store came back: %+v", stats(t, c))
				}
				time.Sleep(5 * time.Millisecond)
			}
			t.Logf("closed %v after the store came back (probe interval %v)", closedAfter.Round(time.Millisecond), DefaultBreakerProbeInterval)
			if closedAfter > tc.limit {
				t.Errorf("closed %v after the store came back, want within %v", closedAfter, tc.limit)
			}
			if n := s.calls.Load() - calls; n != 0 {
				t.Errorf("%d real calls reached the store before it closed: probes must find recovery", n)
			}
			st := stats(t, c)
			if st.Opened != 1 || st.Closed != 1 || st.Cause != "" || !st.OpenSince.IsZero() {
				t.Errorf("stats = %+v, want opened and closed once", st)
			}
			if n := s.maxProbing.Load(); n > 2 {
				t.Errorf("%d probes in flight at once, want at most 2", n)
			}
			if tc.answer == storeUp {
				if v, err := c.Get(context.Background(), "present.example"); err != nil || string(v) != "cert" {
					t.Errorf("Get after recovery = %q, %v", v, err)
				}
			}
		})
	}
}

// TestBreakerSlowStoreRecovers: a store slower than the short probe timeout
// but within the Get timeout is found by the one probe that gets the whole
// Get timeout; it is not locked out.
func TestBreakerSlowStoreRecovers(t *testing.T) {
	s := newStubStore()
	s.set(storeRefusing)
	s.latency = breakerProbeTimeout + 300*time.Millisecond
	c := stubCache(t, s, &Options{GetTimeout: breakerProbeTimeout + time.Second, BreakerProbeInterval: 100 * time.Millisecond})
	if _, err := c.Get(context.Background(), "k.example"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get = %v, want ErrUnavailable", err)
	}
	s.set(storeSlow)
	deadline := time.Now().Add(10 * time.Second)
	for stats(t, c).Open {
		if time.Now().After(deadline) {
			t.Fatalf("a store answering in %v, within the Get timeout, still locked out after 10s: %+v", s.latency, stats(t, c))
		}
		time.Sleep(10 * time.Millisecond)
	}
	if v, err := c.Get(context.Background(), "present.example"); err != nil || string(v) != "cert" {
		t.Errorf("Get after recovery = %q, %v", v, err)
	}
	if st := stats(t, c); st.Probes > 40 {
		t.Errorf("stats = %+v: more probes than one every interval", st)
	}
}

// TestBreakerLateFailureDoesNotReopen: a call that began before the breaker
// opened and closed again, and fails after, says nothing about the store
// now: it does not reopen the breaker.
func TestBreakerLateFailureDoesNotReopen(t *testing.T) {
	s := newStubStore()
	s.gate = make(chan struct{})
	s.set(storeGatedRefuse)
	c := stubCache(t, s, &Options{BreakerProbeInterval: 10 * time.Millisecond})
	late := make(chan error)
	go func() { _, err := c.Get(context.Background(), "late.example"); late <- err }()
	for s.calls.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	s.set(storeRefusing)
	if _, err := c.Get(context.Background(), "k.example"); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("Get = %v, want ErrUnavailable", err)
	}
	s.set(storeUp)
	for stats(t, c).Open {
		time.Sleep(5 * time.Millisecond)
	}
	close(s.gate) // the late call now fails
	if err := <-late; !errors.Is(err, ErrUnavailable) {
		t.Fatalf("late Get = %v, want ErrUnavailable", err)
	}
	if st := stats(t, c); st.Open || st.Opened != 1 {
		t.Errorf("stats = %+v: the late failure reopened the breaker", st)
	}
}

// TestBreakerCloseStopsProbes: Close cancels the probe in flight and waits
// for it; nothing touches the driver after Close returns.
func TestBreakerCloseStopsProbes(t *testing.T) {
	s := newStubStore()
	s.set(storeHanging)
	c := newPortable("stub", s, &Options{GetTimeout: 50 * time.Millisecond, BreakerProbeInterval: 10 * time.Millisecond}, nil)
	c.Get(context.Background(), "k.example")
	for s.probes.Load() < 3 {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if n := s.inflight.Load(); n != 0 {
		t.Errorf("%d driver calls still in flight after Close", n)
	}
	probes := s.probes.Load()
	time.Sleep(100 * time.Millisecond)
	if n := s.probes.Load() - probes; n != 0 {
		t.Errorf("%d probes after Close", n)
	}
	if _, err := c.Get(context.Background(), "k.example"); !errors.Is(err, ErrClosed) {
		t.Errorf("Get after Close = %v, want ErrClosed", err)
	}
}

// TestBreakerOff: with the breaker off every call goes to the store, and
// mem:// has none.
func TestBreakerOff(t *testing.T) {
	s := newStubStore()
	s.set(storeRefusing)
	c := stubCache(t, s, &Options{DisableBreaker: true})
	for i := 0; i < 3; i++ {
		if _, err := c.Get(context.Background(), "k.example"); errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrUnavailable) {
			t.Fatalf("Get = %v, want the store's own failure", err)
		}
	}
	if n := s.calls.Load(); n != 3 {
		t.Errorf("%d calls reached the store, want 3", n)
	}
	if _, ok := BreakerStatsOf(c); ok {
		t.Error("BreakerStatsOf reports a breaker that is off")
	}
	m, err := Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	if _, ok := BreakerStatsOf(m); ok {
		t.Error("mem:// has a breaker; it never blocks")
	}
}

// TestBreakerConcurrent flips the store between answering, refusing and
// hanging under concurrent calls: a present key is never a miss, every
// failure is unavailability, and the counters agree.
func TestBreakerConcurrent(t *testing.T) {
	s := newStubStore()
	c := stubCache(t, s, &Options{Timeout: 30 * time.Millisecond, BreakerProbeInterval: 5 * time.Millisecond})
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var hits, fails atomic.Int64
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := c.Get(context.Background(), "present.example")
				switch {
				case err == nil && string(v) == "cert":
					hits.Add(1)
				case err == nil:
					t.Errorf("Get = %q", v)
				case err == autocert.ErrCacheMiss || errors.Is(err, autocert.ErrCacheMiss): //nolint:errorlint
					t.Errorf("a present key reported as a miss: %v", err)
				case !errors.Is(err, ErrUnavailable):
					t.Errorf("Get = %v, want ErrUnavailable", err)
				default:
					fails.Add(1)
				}
				c.Put(context.Background(), "present.example", []byte("cert"))
			}
		}()
	}
	for _, m := range []storeMode{storeRefusing, storeUp, storeHanging, storeUp, storeRefusing, storeUp, storeHanging, storeUp} {
		s.set(m)
		time.Sleep(80 * time.Millisecond)
	}
	deadline := time.Now().Add(5 * time.Second)
	for stats(t, c).Open && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	close(stop)
	wg.Wait()
	st := stats(t, c)
	t.Logf("%d hits, %d failures; breaker %+v", hits.Load(), fails.Load(), st)
	if st.Open || st.Opened == 0 || st.Opened != st.Closed {
		t.Errorf("stats = %+v: want closed at the end, opened as often as closed, at least once", st)
	}
	if hits.Load() == 0 || fails.Load() == 0 {
		t.Errorf("%d hits and %d failures: the test did not exercise both", hits.Load(), fails.Load())
	}
}

// TestTimeoutsPerOp: Get has its own, shorter default; an explicit Timeout
// still bounds every call unless GetTimeout says otherwise.
func TestTimeoutsPerOp(t *testing.T) {
	for _, tc := range []struct {
		name          string
		o             *Options
		wantGet, want time.Duration
	}{
		{"Nil", nil, DefaultGetTimeout, DefaultTimeout},
		{"Zero", &Options{}, DefaultGetTimeout, DefaultTimeout},
		{"Timeout", &Options{Timeout: 30 * time.Second}, 30 * time.Second, 30 * time.Second},
		{"GetTimeout", &Options{GetTimeout: time.Second}, time.Second, DefaultTimeout},
		{"Both", &Options{Timeout: 30 * time.Second, GetTimeout: time.Second}, time.Second, 30 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newPortable("stub", newStubStore(), tc.o, nil)
			defer c.Close()
			if c.getTimeout != tc.wantGet || c.timeout != tc.want {
				t.Errorf("Get timeout %v, others %v; want %v, %v", c.getTimeout, c.timeout, tc.wantGet, tc.want)
			}
			if c.brk == nil || c.brk.long != tc.wantGet || c.brk.short != min(breakerProbeTimeout, tc.wantGet) {
				t.Errorf("breaker %+v: probes not sized by the Get timeout", c.brk)
			}
		})
	}
	if DefaultGetTimeout > DefaultTimeout {
		t.Error("DefaultGetTimeout exceeds DefaultTimeout")
	}
}

// TestCommonParams: the breaker and timeout parameters of every URL.
func TestCommonParams(t *testing.T) {
	for _, tc := range []struct {
		query   string
		want    Options
		wantErr string
	}{
		{"", Options{}, ""},
		{"timeout=5s", Options{Timeout: 5 * time.Second}, ""},
		{"get_timeout=1500ms", Options{GetTimeout: 1500 * time.Millisecond}, ""},
		{"timeout=20s&get_timeout=2s", Options{Timeout: 20 * time.Second, GetTimeout: 2 * time.Second}, ""},
		{"breaker=false", Options{DisableBreaker: true}, ""},
		{"breaker=true", Options{}, ""},
		{"breaker=1&breaker_probe=500ms", Options{BreakerProbeInterval: 500 * time.Millisecond}, ""},
		{"breaker_probe=1s", Options{BreakerProbeInterval: time.Second}, ""},
		{"breaker=maybe", Options{}, `breaker="maybe": want true or false`},
		{"breaker=false&breaker_probe=1s", Options{}, "breaker_probe with breaker=false"},
		{"breaker_probe=0s", Options{}, `breaker_probe="0s": want a positive duration`},
		{"breaker_probe=fast", Options{}, `breaker_probe="fast": want a positive duration`},
		{"get_timeout=-1s", Options{}, `get_timeout="-1s": want a positive duration`},
		{"get_timeout=1s&get_timeout=2s", Options{}, "get_timeout given 2 times"},
		{"breaker=true&breaker=false", Options{}, "breaker given 2 times"},
		{"timeout=1s&timeout=2s", Options{}, "timeout given 2 times"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			q, err := url.ParseQuery(tc.query + "&other=x")
			if err != nil {
				t.Fatal(err)
			}
			o, err := takeCommonParams(q)
			if tc.wantErr != "" {
				if err == nil || !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want ErrInvalidURL saying %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if *o != tc.want {
				t.Errorf("Options = %+v, want %+v", *o, tc.want)
			}
			if len(q) != 1 || q.Get("other") != "x" {
				t.Errorf("left in the query: %v, want only other=x", q)
			}
		})
	}
}

// TestOpenBreakerParams: Open applies the parameters to the cache it builds.
func TestOpenBreakerParams(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		query   string
		breaker bool
		probe   time.Duration
		get     time.Duration
	}{
		{"", true, DefaultBreakerProbeInterval, DefaultGetTimeout},
		{"?breaker=false", false, 0, DefaultGetTimeout},
		{"?breaker_probe=1s&get_timeout=2s", true, time.Second, 2 * time.Second},
	} {
		c, err := Open(context.Background(), "file://"+dir+tc.query)
		if err != nil {
			t.Fatal(err)
		}
		p := findPortable(c)
		if (p.brk != nil) != tc.breaker || (p.brk != nil && p.brk.interval != tc.probe) || p.getTimeout != tc.get {
			t.Errorf("%q: breaker %v, get timeout %v; want breaker %v probing every %v, get timeout %v",
				tc.query, p.brk, p.getTimeout, tc.breaker, tc.probe, tc.get)
		}
		c.Close()
	}
}

// hitDriver answers every Get with a copy of one value, as fast as it can:
// what the breaker adds to a healthy call stands out against it.
type hitDriver struct{ v []byte }

func (d hitDriver) Get(context.Context, string) ([]byte, error) {
	return append([]byte(nil), d.v...), nil
}
func (hitDriver) Put(context.Context, string, []byte) error { return nil }
func (hitDriver) Delete(context.Context, string) error      { return nil }
func (hitDriver) Close() error                              { return nil }

// BenchmarkBreakerGetHit measures a Get hit on a healthy store with the
// breaker on and off, serially and from every CPU: the breaker's cost is one
// atomic pointer load.
func BenchmarkBreakerGetHit(b *testing.B) {
	ctx := context.Background()
	for _, on := range []bool{true, false} {
		c := newPortable("bench", hitDriver{v: make([]byte, 3072)}, &Options{DisableBreaker: !on}, nil)
		b.Run(fmt.Sprintf("breaker=%v", on), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, "bench.example"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("breaker=%v/parallel", on), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := c.Get(ctx, "bench.example"); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
		c.Close()
	}
}

// TestBreakerLeases: lease calls go through a breaker like Get's: a store
// that cannot answer opens it, and then every lease call fails at once; a
// lease held by another is an answer, not an outage.
func TestBreakerLeases(t *testing.T) {
	ctx := context.Background()
	s := newStubStore()
	c := stubCache(t, s, &Options{BreakerProbeInterval: time.Hour})
	l, err := AcquireLease(ctx, c, "mine.example", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireLease(ctx, c, "held.example", time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("AcquireLease(held) = %v, want ErrLeaseHeld", err)
	}
	if st := stats(t, c); st.Opened != 0 || st.Lease.Opened != 0 {
		t.Fatalf("a held lease opened a breaker: %+v, lease %+v", st, st.Lease)
	}
	s.set(storeRefusing)
	if _, err := AcquireLease(ctx, c, "other.example", time.Minute); !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("AcquireLease on a refusing store = %v, want the store's ErrUnavailable", err)
	}
	c.bg.Wait() // the failed acquisition's background release reaches the store: count after it
	calls := s.calls.Load()
	for _, call := range []struct {
		op string
		fn func() error
	}{
		{"AcquireLease", func() error { _, err := AcquireLease(ctx, c, "other.example", time.Minute); return err }},
		{"Refresh", func() error { return l.Refresh(ctx) }},
		{"Release", func() error { return l.Release(ctx) }},
	} {
		if err := call.fn(); !errors.Is(err, ErrCircuitOpen) {
			t.Errorf("%s with the breaker open = %v, want ErrCircuitOpen", call.op, err)
		}
	}
	if n := s.calls.Load() - calls; n != 0 {
		t.Errorf("%d lease calls reached the store with the breaker open", n)
	}
	if st := stats(t, c); st.Lease.Opened != 1 || st.Lease.FastFailed != 3 || st.Opened != 0 {
		t.Errorf("stats = %+v, lease %+v; want the lease breaker opened once, 3 fast failures, the main one never", st, st.Lease)
	}
}

// BenchmarkBreakerAdmit measures what the breaker adds to every call on a
// healthy store, alone: admit's atomic load and test.
func BenchmarkBreakerAdmit(b *testing.B) {
	c := newPortable("bench", hitDriver{}, nil, nil)
	defer c.Close()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := c.brk.admit("get", "bench.example"); err != nil {
				b.Error(err)
				return
			}
		}
	})
}
