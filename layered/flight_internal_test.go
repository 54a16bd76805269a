package layered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// heldAuthority is an authority whose Get, once it has entered, waits for
// release, then answers with value, a miss, an error or a panic.
type heldAuthority struct {
	answer  string // "hit", "miss", "error" or "panic"
	entered chan context.Context
	release chan struct{}
	gets    atomic.Int64
}

var errAuthority = fmt.Errorf("%w: the authority is down", certcache.ErrUnavailable)

func (a *heldAuthority) Get(ctx context.Context, key string) ([]byte, error) {
	a.gets.Add(1)
	a.entered <- ctx
	<-a.release
	switch a.answer {
	case "hit":
		return []byte("cert"), nil
	case "miss":
		return nil, autocert.ErrCacheMiss
	case "error":
		return nil, errAuthority
	}
	panic("the authority panicked")
}

func (a *heldAuthority) Put(context.Context, string, []byte) error { return nil }
func (a *heldAuthority) Delete(context.Context, string) error      { return nil }
func (a *heldAuthority) Close() error                              { return nil }

type flightKey struct{}

// joined waits until n callers have joined the first's flight for key.
func joined(t *testing.T, s *Stack, key string, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(time.Millisecond) {
		s.flights.mu.Lock()
		f := s.flights.m[key]
		ok := f != nil && f.joined >= n
		s.flights.mu.Unlock()
		if ok {
			return
		}
	}
	t.Fatalf("%d callers did not join the read of %q", n, key)
}

type getResult struct {
	v   []byte
	err error
}

// TestFlight: concurrent misses for one key share one read of the
// authority, whether the first caller's context can end (the read runs in
// a goroutine of its own) or not (it runs in the first caller's): each
// caller gets its own slice, or the shared miss or error; a caller whose
// context ends returns at once, the first one too, while the read goes on
// for the others, with the first caller's values and without its
// cancellation; a read that panics fails the callers that joined it and
// leaves no flight behind.
func TestFlight(t *testing.T) {
	const followers = 8
	for _, tc := range []struct {
		name            string
		answer          string
		firstGivesUp    bool // the first caller's context ends during the read
		followerGivesUp bool // one follower's context ends during the read
		check           func(t *testing.T, r getResult)
	}{
		{name: "Hit", answer: "hit", check: wantValue},
		{name: "Miss", answer: "miss", check: wantMiss},
		{name: "Error", answer: "error", check: wantErr(errAuthority)},
		{name: "Panic", answer: "panic", check: wantErr(errReadPanicked)},
		{name: "FirstGivesUp", answer: "hit", firstGivesUp: true, check: wantValue},
		{name: "FollowerGivesUp", answer: "hit", followerGivesUp: true, check: wantValue},
	} {
		for _, canEnd := range []bool{false, true} {
			if tc.firstGivesUp && !canEnd || tc.answer == "panic" && canEnd {
				// A context that cannot end does not give up; a read in a
				// goroutine of its own that panics crashes the process,
				// as singleflight's DoChan does.
				continue
			}
			name := tc.name + map[bool]string{false: "/FirstCannotEnd", true: "/FirstCanEnd"}[canEnd]
			t.Run(name, func(t *testing.T) {
				auth := &heldAuthority{answer: tc.answer, entered: make(chan context.Context, 1), release: make(chan struct{})}
				c, err := New(NewMemory(nil), auth)
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				s := certcache.Uncoordinated(c).(*Stack)
				const key = "example.com"

				firstCtx, cancelFirst := context.WithValue(context.Background(), flightKey{}, "first"), context.CancelFunc(func() {})
				if canEnd {
					firstCtx, cancelFirst = context.WithCancel(firstCtx)
				}
				defer cancelFirst()
				first := make(chan getResult, 1)
				go func() {
					if tc.answer == "panic" {
						// The read ran in this goroutine: the panic is its.
						defer func() {
							if p := recover(); p != nil {
								first <- getResult{err: fmt.Errorf("%v", p)}
							}
						}()
					}
					v, err := s.Get(firstCtx, key)
					first <- getResult{v, err}
				}()
				readCtx := <-auth.entered

				results := make([]getResult, followers)
				giverCtx, cancelGiver := context.WithCancel(context.Background())
				defer cancelGiver()
				var wg sync.WaitGroup
				gaveUp := make(chan getResult, 1)
				for i := range results {
					wg.Add(1)
					go func() {
						defer wg.Done()
						v, err := s.Get(context.Background(), key)
						results[i] = getResult{v, err}
					}()
				}
				n := followers
				if tc.followerGivesUp {
					go func() {
						v, err := s.Get(giverCtx, key)
						gaveUp <- getResult{v, err}
					}()
					n++
				}
				joined(t, s, key, n)

				// A caller whose context ends returns while the read is
				// still held.
				if tc.firstGivesUp {
					cancelFirst()
					if r := wait(t, first); !errors.Is(r.err, context.Canceled) {
						t.Errorf("first caller, given up: %q, %v; want context.Canceled", r.v, r.err)
					}
				}
				if tc.followerGivesUp {
					cancelGiver()
					if r := wait(t, gaveUp); !errors.Is(r.err, context.Canceled) {
						t.Errorf("follower, given up: %q, %v; want context.Canceled", r.v, r.err)
					}
				}
				if readCtx.Err() != nil || readCtx.Value(flightKey{}) != "first" {
					t.Errorf("the read's context: Err %v, value %v; want none, the first caller's", readCtx.Err(), readCtx.Value(flightKey{}))
				}
				close(auth.release)
				wg.Wait()
				var r getResult
				if !tc.firstGivesUp {
					r = wait(t, first)
				}

				if got := auth.gets.Load(); got != 1 {
					t.Errorf("%d reads of the authority, want 1", got)
				}
				if tc.answer == "panic" && !canEnd {
					if r.err == nil || r.err.Error() != "the authority panicked" {
						t.Errorf("first caller: %v; want the authority's panic", r.err)
					}
				} else if !tc.firstGivesUp {
					tc.check(t, r)
				}
				for _, r := range results {
					tc.check(t, r)
				}
				if tc.answer == "hit" {
					// Every caller owns its slice.
					results[0].v[0] = 'X'
					for i, r := range results[1:] {
						if !bytes.Equal(r.v, []byte("cert")) {
							t.Errorf("follower %d sees %q after another's write", i+1, r.v)
						}
					}
				}
				s.flights.mu.Lock()
				left := len(s.flights.m)
				s.flights.mu.Unlock()
				if left != 0 {
					t.Errorf("%d flights left in the air", left)
				}
			})
		}
	}
}

// wait returns what a caller got, or fails if it did not return.
func wait(t *testing.T, got <-chan getResult) getResult {
	t.Helper()
	select {
	case r := <-got:
		return r
	case <-time.After(10 * time.Second):
		t.Fatal("the caller did not return")
		return getResult{}
	}
}

func wantValue(t *testing.T, r getResult) {
	t.Helper()
	if r.err != nil || string(r.v) != "cert" {
		t.Errorf("got %q, %v; want %q", r.v, r.err, "cert")
	}
}

func wantMiss(t *testing.T, r getResult) {
	t.Helper()
	if r.err != autocert.ErrCacheMiss || r.v != nil { //nolint:errorlint // the bare sentinel
		t.Errorf("got %q, %v; want autocert.ErrCacheMiss", r.v, r.err)
	}
}

func wantErr(want error) func(t *testing.T, r getResult) {
	return func(t *testing.T, r getResult) {
		t.Helper()
		if !errors.Is(r.err, want) || r.v != nil {
			t.Errorf("got %q, %v; want %v", r.v, r.err, want)
		}
	}
}
