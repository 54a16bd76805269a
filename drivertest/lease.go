package drivertest

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
)

// The lease cases check driver.LeaseDriver through certcache.AcquireLease.
// Every backend has leases; a backend without them fails these cases rather
// than skipping them.

// contenders is how many caches race for one lease in LeaseExclusion.
const contenders = 32

// Environment of a contender process (see contendFlag): the suite re-runs the test
// binary, which acquires one lease on the URL and prints the outcome.
const (
	envContendURL   = "CERTCACHE_CONFORMANCE_CONTEND_URL"
	envContendName  = "CERTCACHE_CONFORMANCE_CONTEND_NAME"
	envContendStart = "CERTCACHE_CONFORMANCE_CONTEND_AT" // Unix nanoseconds: all contenders start together
)

// contendFlag is the flag that turns a test binary started by
// contendInProcesses into a contender. A flag, not init: the testing package
// parses flags after every package's init has run, so the backend's scheme
// is registered by then whatever the order of initialization, and before any
// test runs, so that any package that runs the suite gets cross-process
// contention without code of its own.
const contendFlag = "drivertest.contend"

func init() {
	flag.Func(contendFlag, "run as a lease contender of the LeaseExclusion case (set by the suite)", func(string) error {
		contend()
		os.Exit(0)
		return nil
	})
}

// contend acquires one lease on the URL in the environment and prints the
// outcome.
func contend() {
	u := os.Getenv(envContendURL)
	name := os.Getenv(envContendName)
	at, _ := strconv.ParseInt(os.Getenv(envContendStart), 10, 64)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := certcache.Open(ctx, u)
	if err != nil {
		fmt.Println("error:", err)
		return
	}
	defer c.Close()
	time.Sleep(time.Until(time.Unix(0, at)))
	_, err = certcache.AcquireLease(ctx, c, name, time.Minute)
	switch {
	case err == nil:
		fmt.Println("acquired")
	case errors.Is(err, certcache.ErrLeaseHeld):
		fmt.Println("held")
	default:
		fmt.Println("error:", err)
	}
}

func (s *suite) acquire(t testing.TB, c certcache.Cache, name string, ttl time.Duration) *certcache.Lease {
	t.Helper()
	l, err := certcache.AcquireLease(ctx(t), c, name, ttl)
	if err != nil {
		t.Fatalf("AcquireLease(%q): %v", name, err)
	}
	return l
}

func mustBeHeld(t testing.TB, c certcache.Cache, name string) {
	t.Helper()
	l, err := certcache.AcquireLease(ctx(t), c, name, time.Minute)
	if !errors.Is(err, certcache.ErrLeaseHeld) {
		if l != nil {
			l.Release(ctx(t))
		}
		t.Fatalf("AcquireLease(%q) of a held lease = %v, want certcache.ErrLeaseHeld", name, err)
	}
}

func (s *suite) testLeaseExclusion(t *testing.T) {
	ns := s.ns()
	const name = "issue/example.com"
	procs := 0
	if s.h.URL != nil {
		procs = contenders / 4
	}
	caches := make([]certcache.Cache, contenders-procs)
	for i := range caches {
		caches[i] = s.open(t, ns)
	}
	start := time.Now().Add(2 * time.Second) // time for the processes to start
	var (
		mu       sync.Mutex
		acquired int
		held     int
		wg       sync.WaitGroup
	)
	outcome := func(who string, err error) {
		mu.Lock()
		defer mu.Unlock()
		switch {
		case err == nil:
			acquired++
		case errors.Is(err, certcache.ErrLeaseHeld):
			held++
		default:
			t.Errorf("%s: AcquireLease = %v, want success or certcache.ErrLeaseHeld", who, err)
		}
	}
	for i, c := range caches {
		wg.Go(func() {
			time.Sleep(time.Until(start))
			_, err := certcache.AcquireLease(ctx(t), c, name, time.Minute)
			outcome(fmt.Sprintf("cache %d", i), err)
		})
	}
	for i := range procs {
		wg.Go(func() {
			cmd := exec.Command(os.Args[0], "-test.run=^$", "-"+contendFlag+"=1")
			cmd.Env = append(os.Environ(), envContendURL+"="+s.h.URL(ns), envContendName+"="+name,
				envContendStart+"="+strconv.FormatInt(start.UnixNano(), 10))
			out, err := cmd.Output()
			res := strings.TrimSpace(string(out))
			switch {
			case err != nil:
				outcome(fmt.Sprintf("process %d", i), fmt.Errorf("contender process: %v: %s", err, res))
			case strings.HasSuffix(res, "acquired"):
				outcome("", nil)
			case strings.HasSuffix(res, "held"):
				outcome("", certcache.ErrLeaseHeld)
			default:
				outcome(fmt.Sprintf("process %d", i), errors.New(res))
			}
		})
	}
	wg.Wait()
	if acquired != 1 || acquired+held != contenders {
		t.Fatalf("%d contenders (%d in other processes): %d acquired, %d held; want exactly 1 acquired", contenders, procs, acquired, held)
	}
	t.Logf("%d contenders (%d in other processes): 1 acquired, %d held", contenders, procs, held)
	mustBeHeld(t, s.open(t, ns), name)
}

func (s *suite) testLeaseExpiry(t *testing.T) {
	ns := s.ns()
	a, b := s.open(t, ns), s.open(t, ns)
	const name, ttl = "expiry", 2 * time.Second
	la := s.acquire(t, a, name, ttl)
	mustBeHeld(t, b, name)
	// A store whose times count whole seconds (S3's and Azure's dates)
	// may judge a lease up to a second late, never early.
	time.Sleep(ttl + 1500*time.Millisecond)
	if s.h.WatchedLeaseExpiry {
		// A contender's first look starts its watch: a lease it has not
		// seen for a TTL is held, however long ago it was written.
		mustBeHeld(t, s.open(t, ns), name)
	}
	lb := s.acquire(t, b, name, time.Minute) // taken over after expiry
	if err := la.Refresh(ctx(t)); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("Refresh by the holder whose lease was taken over = %v, want certcache.ErrLeaseLost", err)
	}
	if err := la.Release(ctx(t)); err != nil {
		t.Errorf("Release by a former holder = %v, want nil (and no effect)", err)
	}
	mustBeHeld(t, a, name) // b still holds it
	if err := lb.Release(ctx(t)); err != nil {
		t.Fatalf("Release by the holder: %v", err)
	}
	s.acquire(t, a, name, time.Minute) // free again
}

func (s *suite) testLeaseNonHolder(t *testing.T) {
	ns := s.ns()
	a, b := s.open(t, ns), s.open(t, ns)
	const name = "non-holder"
	la := s.acquire(t, a, name, time.Minute)
	if err := la.Release(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if err := la.Refresh(ctx(t)); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("Refresh of a released lease = %v, want certcache.ErrLeaseLost", err)
	}
	lb := s.acquire(t, b, name, time.Minute)
	if err := la.Refresh(ctx(t)); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("Refresh by a non-holder = %v, want certcache.ErrLeaseLost", err)
	}
	if err := la.Release(ctx(t)); err != nil {
		t.Errorf("Release by a non-holder = %v, want nil", err)
	}
	mustBeHeld(t, a, name)
	if err := lb.Refresh(ctx(t)); err != nil {
		t.Errorf("Refresh by the holder after a non-holder's release: %v", err)
	}
}

func (s *suite) testLeaseRefresh(t *testing.T) {
	ns := s.ns()
	a, b := s.open(t, ns), s.open(t, ns)
	const name, ttl = "refresh", 4 * time.Second
	la := s.acquire(t, a, name, ttl)
	time.Sleep(ttl / 2)
	if err := la.Refresh(ctx(t)); err != nil {
		t.Fatalf("Refresh: %v", err)
	}
	time.Sleep(ttl/2 + ttl/4) // past the first expiry, within the refreshed one
	mustBeHeld(t, b, name)
	time.Sleep(ttl) // past the refreshed expiry
	s.acquire(t, b, name, time.Minute)
}

func (s *suite) testLeaseNames(t *testing.T) {
	ns := s.ns()
	a, other := s.open(t, ns), s.open(t, ns+"-x")
	// Leases are apart from keys: a lease and a key of one name coexist,
	// and neither Get nor List shows the lease.
	var names []string
	for _, n := range HostileKeys {
		if certcache.ValidateKey(n) == nil {
			names = append(names, n)
		}
	}
	for _, n := range names {
		s.acquire(t, a, n, time.Minute)
	}
	for _, n := range names {
		mustMiss(t, a, n)
		mustBeHeld(t, a, n)
		// Namespaces isolate leases as they isolate keys.
		s.acquire(t, other, n, time.Minute)
	}
	for e, err := range certcache.List(ctx(t), a, "") {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		t.Errorf("List shows %q, but the namespace holds only leases", e.Key)
	}
	for _, n := range RefusedKeys {
		if _, err := certcache.AcquireLease(ctx(t), a, n, time.Minute); !errors.Is(err, certcache.ErrInvalidKey) {
			t.Errorf("AcquireLease(%q) = %v, want certcache.ErrInvalidKey", n, err)
		}
	}
}

func (s *suite) testLeaseBroken(t *testing.T) {
	c, want, ok := s.openBroken(t)
	if !ok {
		return
	}
	l, err := certcache.AcquireLease(context.Background(), c, "broken", time.Minute)
	if errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("AcquireLease on a broken backend = %v: an outage is not a held lease", err)
	}
	s.checkFailure(t, "AcquireLease", err, want)
	if l != nil {
		t.Errorf("AcquireLease on a broken backend returned a lease")
	}
}

func (s *suite) testLeaseOutage(t *testing.T) {
	if s.h.Outage == nil {
		return // testOutage reports a missing Outage
	}
	c, stop, start := s.h.Outage(t)
	defer c.Close()
	l := s.acquire(t, c, "held-through-outage", time.Minute)
	stop()
	if _, err := certcache.AcquireLease(context.Background(), c, "during-outage", time.Minute); err == nil || errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("AcquireLease during an outage = %v, want an error that is not certcache.ErrLeaseHeld", err)
	} else {
		s.checkFailure(t, "AcquireLease", err, certcache.ErrUnavailable)
	}
	if err := l.Refresh(context.Background()); err == nil {
		t.Errorf("Refresh during an outage succeeded")
	}
	start()
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		var l2 *certcache.Lease
		if l2, err = certcache.AcquireLease(ctx(t), c, "after-outage", time.Minute); err == nil {
			l2.Release(ctx(t))
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("AcquireLease after restart: %v", err)
	}
	// Whether the lease taken before the outage survived depends on the
	// store's persistence; either answer is fine, but no error but a lost
	// lease.
	if err := l.Refresh(ctx(t)); err != nil && !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("Refresh after restart = %v, want nil or certcache.ErrLeaseLost", err)
	}
}
