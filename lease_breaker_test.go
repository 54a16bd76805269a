package certcache

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache/driver"

	"golang.org/x/crypto/acme/autocert"
)

// leaseStore is a driver.Driver whose reads always answer and whose lease calls
// hang (wait for their context) while hang is set: a lease table under a
// held lock. Otherwise its leases exclude, unless careless is set (a store
// that ignores conditional writes: every acquisition succeeds). It counts
// lease calls, the lease breaker's probes apart.
type leaseStore struct {
	hang, careless atomic.Bool
	unanswered     atomic.Int64 // lease calls that are left unanswered (time out), then the store answers
	mu             sync.Mutex
	data           map[string][]byte
	leases         map[string]string

	acquires, probes, gets atomic.Int64
}

func newLeaseStore() *leaseStore {
	return &leaseStore{data: map[string][]byte{"present.example": []byte("cert")}, leases: map[string]string{}}
}

func (s *leaseStore) Get(_ context.Context, key string) ([]byte, error) {
	s.gets.Add(1)
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.data[key]
	if !ok {
		return nil, autocert.ErrCacheMiss
	}
	return v, nil
}

func (s *leaseStore) Put(_ context.Context, key string, data []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data[key] = data
	return nil
}

func (s *leaseStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.data, key)
	return nil
}

func (s *leaseStore) Close() error { return nil }

// wait hangs while the store's lease calls hang.
func (s *leaseStore) wait(ctx context.Context) error {
	if s.hang.Load() || s.unanswered.Add(-1) >= 0 {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

func (s *leaseStore) AcquireLease(ctx context.Context, name, token string, _ time.Duration) error {
	if name == leaseProbeName {
		s.probes.Add(1)
	} else {
		s.acquires.Add(1)
	}
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := s.leases[name]; ok && h != token && !s.careless.Load() {
		return ErrLeaseHeld
	}
	s.leases[name] = token
	return nil
}

func (s *leaseStore) RefreshLease(ctx context.Context, name, token string, _ time.Duration) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[name] != token {
		return ErrLeaseLost
	}
	return nil
}

func (s *leaseStore) ReleaseLease(ctx context.Context, name, token string) error {
	if err := s.wait(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leases[name] == token {
		delete(s.leases, name)
	}
	return nil
}

var _ driver.LeaseDriver = (*leaseStore)(nil)

func leaseCache(t testing.TB, s *leaseStore, o *Options) *portable {
	t.Helper()
	c := newPortable("stub", s, o, nil)
	t.Cleanup(func() { c.Close() })
	return c
}

// TestLeaseBreakerHangingLeases: lease calls that hang while reads answer
// open the lease breaker alone, after one timeout; further lease calls fail
// at once, Get, Put and Delete are not affected, and the lease breaker
// closes once leases answer again.
func TestLeaseBreakerHangingLeases(t *testing.T) {
	const timeout = 300 * time.Millisecond
	ctx := context.Background()
	s := newLeaseStore()
	c := leaseCache(t, s, &Options{Timeout: timeout, BreakerProbeInterval: 20 * time.Millisecond})
	l, err := AcquireLease(ctx, c, "mine", time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	s.hang.Store(true)
	start := time.Now()
	_, err = AcquireLease(ctx, c, "first", time.Minute)
	took := time.Since(start)
	if !errors.Is(err, ErrUnavailable) || errors.Is(err, ErrCircuitOpen) {
		t.Fatalf("AcquireLease on hanging leases = %v, want the timeout's ErrUnavailable", err)
	}
	t.Logf("first acquisition on hanging leases failed after %v: %v", took.Round(time.Millisecond), err)
	st := stats(t, c)
	if !st.Lease.Open || st.Lease.Opened != 1 || st.Open || st.Opened != 0 {
		t.Fatalf("after a lease timeout: %+v, lease %+v; want the lease breaker open, the main one closed", st, st.Lease)
	}

	acquires := s.acquires.Load()
	for _, call := range []struct {
		op string
		fn func() error
	}{
		{"AcquireLease", func() error { _, err := AcquireLease(ctx, c, "second", time.Minute); return err }},
		{"Refresh", func() error { return l.Refresh(ctx) }},
		{"Release", func() error { return l.Release(ctx) }},
	} {
		start := time.Now()
		err := call.fn()
		took := time.Since(start)
		if !errors.Is(err, ErrCircuitOpen) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("%s with the lease breaker open = %v, want ErrCircuitOpen (ErrUnavailable)", call.op, err)
		}
		if took > timeout/2 {
			t.Errorf("%s with the lease breaker open took %v, want at once", call.op, took)
		}
	}
	if n := s.acquires.Load() - acquires; n != 0 {
		t.Errorf("%d acquisitions reached the store with the lease breaker open", n)
	}

	// Reads and writes of values go on; the Get probe that would have
	// closed a shared breaker is not asked.
	for _, key := range []string{"present.example", "absent.example"} {
		start := time.Now()
		_, err := c.Get(ctx, key)
		if err != nil && err != autocert.ErrCacheMiss { //nolint:errorlint // the bare sentinel
			t.Errorf("Get(%q) with leases hanging = %v", key, err)
		}
		if took := time.Since(start); took > timeout/2 {
			t.Errorf("Get(%q) with leases hanging took %v", key, took)
		}
	}
	if err := c.Put(ctx, "k.example", []byte("v")); err != nil {
		t.Errorf("Put with leases hanging = %v", err)
	}
	if err := c.Delete(ctx, "k.example"); err != nil {
		t.Errorf("Delete with leases hanging = %v", err)
	}
	if st := stats(t, c); !st.Lease.Open || st.Open || st.Probes != 0 {
		t.Errorf("after Gets: %+v, lease %+v; want the lease breaker still open, the main one closed and unprobed", st, st.Lease)
	}

	s.hang.Store(false)
	thaw := time.Now()
	for stats(t, c).Lease.Open {
		if time.Since(thaw) > 5*time.Second {
			t.Fatalf("the lease breaker still open %v after leases answer again", time.Since(thaw))
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("lease breaker closed %v after leases answered again", time.Since(thaw).Round(time.Millisecond))
	if _, err := AcquireLease(ctx, c, "after", time.Minute); err != nil {
		t.Errorf("AcquireLease after the lease breaker closed = %v", err)
	}
	if st := stats(t, c); st.Lease.Closed != 1 || st.Lease.Probes == 0 || s.probes.Load() == 0 {
		t.Errorf("lease breaker %+v, %d probes reached the store; want closed once by a probe", st.Lease, s.probes.Load())
	}
}

// TestLeaseBreakerCoordinatedGet: with order leases hanging, the first Get
// of a new certificate name costs one timeout; later ones fail at once,
// never as a miss, and cached names are read as always.
func TestLeaseBreakerCoordinatedGet(t *testing.T) {
	const getTimeout = 300 * time.Millisecond
	ctx := context.Background()
	s := newLeaseStore()
	// A certificate autocert would use: anything else is a miss to order.
	s.data["present.example"] = certValue(t, "present.example", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	c := NewCache("stub", s, &Options{GetTimeout: getTimeout, BreakerProbeInterval: 20 * time.Millisecond})
	defer c.Close()
	s.hang.Store(true)
	for i, name := range []string{"new-1.example", "new-2.example", "new-3.example"} {
		start := time.Now()
		_, err := c.Get(ctx, name)
		took := time.Since(start)
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !errors.Is(err, ErrUnavailable) {
			t.Errorf("Get(%q) with order leases hanging = %v, want ErrUnavailable, never a miss", name, err)
		}
		if i > 0 && (took > getTimeout/2 || !errors.Is(err, ErrCircuitOpen)) {
			t.Errorf("Get(%q) after the first lease timeout: %v after %v, want ErrCircuitOpen at once", name, err, took)
		}
		t.Logf("Get(%q): %v in %v", name, err, took.Round(time.Microsecond))
	}
	start := time.Now()
	if _, err := c.Get(ctx, "present.example"); err != nil {
		t.Errorf("Get of a stored certificate with order leases hanging = %v", err)
	}
	if took := time.Since(start); took > getTimeout/2 {
		t.Errorf("Get of a stored certificate with order leases hanging took %v", took)
	}
	if st := stats(t, c); st.Open || !st.Lease.Open {
		t.Errorf("stats %+v, lease %+v: want only the lease breaker open", st, st.Lease)
	}
}

// TestLeaseProbeAnswers: what the lease breaker's probe takes for an
// answer.
func TestLeaseProbeAnswers(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want bool
	}{
		{"Acquired", nil, true},
		{"HeldByAnotherProbe", ErrLeaseHeld, true},
		{"Denied", errDenied, true},
		{"Unavailable", ErrUnavailable, false},
		{"Timeout", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newBreaker("stub", func(context.Context) error { return tc.err }, time.Hour, time.Second)
			defer b.shutdown()
			if got := b.answers(context.Background(), time.Second); got != tc.want {
				t.Errorf("answers with the probe returning %v = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// TestReservedLeaseNames: callers cannot take the leases the probes use.
func TestReservedLeaseNames(t *testing.T) {
	c := stubCache(t, newStubStore(), nil)
	for _, name := range []string{leaseProbeName, exclusionProbeName, reservedLeasePrefix + "x"} {
		if _, err := AcquireLease(context.Background(), c, name, time.Minute); !errors.Is(err, ErrInvalidKey) {
			t.Errorf("AcquireLease(%q) = %v, want ErrInvalidKey", name, err)
		}
	}
}

// TestExclusionProbe: a store that lets a second holder acquire a held
// lease fails every acquisition with ErrUnsupported, naming the fix; the
// probe runs once per cache once it passed, again after one that got no
// answer, and its leases are released.
func TestExclusionProbe(t *testing.T) {
	ctx := context.Background()
	t.Run("Careless", func(t *testing.T) {
		for _, uncoordinated := range []bool{false, true} {
			s := newLeaseStore()
			s.careless.Store(true)
			c := leaseCache(t, s, &Options{DisableCoordination: uncoordinated})
			for range 2 {
				_, err := AcquireLease(ctx, c, "order:example.com", time.Minute)
				if !errors.Is(err, ErrUnsupported) || errors.Is(err, ErrUnavailable) {
					t.Fatalf("AcquireLease on a careless store = %v, want ErrUnsupported", err)
				}
				msg := err.Error()
				for _, want := range []string{`certcache/stub: lease "order:example.com": `, "does not honour conditional writes", "use a store that does"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q does not say %q", msg, want)
					}
				}
				if strings.Contains(msg, "coordinate=false") == uncoordinated {
					t.Errorf("uncoordinated=%v: error %q", uncoordinated, msg)
				}
			}
			if n := s.acquires.Load(); n != 2 {
				t.Errorf("%d acquisitions reached the store, want the probe's 2 once", n)
			}
			if st := stats(t, c); st.Lease.Opened != 0 {
				t.Errorf("a careless store opened the lease breaker: %+v", st.Lease)
			}
		}
	})
	t.Run("CarelessCoordinatedGet", func(t *testing.T) {
		s := newLeaseStore()
		s.careless.Store(true)
		c := NewCache("stub", s, nil)
		defer c.Close()
		_, err := c.Get(ctx, "example.com")
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !errors.Is(err, ErrUnsupported) || !strings.Contains(err.Error(), "coordinate=false") {
			t.Errorf("coordinated Get of a missing certificate on a careless store = %v, want ErrUnsupported naming coordinate=false", err)
		}
	})
	t.Run("OnceAndReleased", func(t *testing.T) {
		s := newLeaseStore()
		c := leaseCache(t, s, nil)
		for _, name := range []string{"a", "b", "c"} {
			l, err := AcquireLease(ctx, c, name, time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			l.Release(ctx)
		}
		if n := s.acquires.Load(); n != 2+3 {
			t.Errorf("%d acquisitions reached the store, want the probe's 2 and 3", n)
		}
		c.bg.Wait()
		s.mu.Lock()
		defer s.mu.Unlock()
		if len(s.leases) != 0 {
			t.Errorf("leases left after the probe: %v", s.leases)
		}
	})
	t.Run("HeldByAnotherProbe", func(t *testing.T) {
		s := newLeaseStore()
		s.leases[exclusionProbeName] = "another node's token"
		c := leaseCache(t, s, nil)
		for _, name := range []string{"a", "b"} {
			if _, err := AcquireLease(ctx, c, name, time.Minute); err != nil {
				t.Fatalf("AcquireLease(%q) with the probe's lease held elsewhere: %v", name, err)
			}
		}
		if n := s.acquires.Load(); n != 1+2 {
			t.Errorf("%d acquisitions reached the store, want the probe's 1 and 2", n)
		}
	})
	t.Run("NoAnswerThenAgain", func(t *testing.T) {
		s := newLeaseStore()
		c := leaseCache(t, s, &Options{Timeout: 100 * time.Millisecond, DisableBreaker: true})
		s.unanswered.Store(1) // the probe's first acquisition
		if _, err := AcquireLease(ctx, c, "a", time.Minute); !errors.Is(err, ErrUnavailable) {
			t.Fatalf("AcquireLease with the probe unanswered = %v, want ErrUnavailable", err)
		}
		c.bg.Wait()
		before := s.acquires.Load()
		if _, err := AcquireLease(ctx, c, "a", time.Minute); err != nil {
			t.Fatalf("AcquireLease after an unanswered probe: %v", err)
		}
		if n := s.acquires.Load() - before; n != 3 {
			t.Errorf("%d acquisitions reached the store, want the probe's 2 again and 1", n)
		}
	})
}
