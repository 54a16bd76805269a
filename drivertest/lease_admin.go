package drivertest

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
)

// The lease administration cases check driver.LeaseAdminDriver through
// certcache.ListLeases and certcache.BreakLease. Every backend has it; one
// without it fails these cases rather than skipping them.

// leaseSlack is how far a listed expiry may lie from the one expected: the
// object stores' times are whole seconds, and a loaded machine is slow.
const leaseSlack = 3 * time.Second

// listedLeases returns the leases of c whose names begin with prefix, by
// name, failing on an error or a name listed twice.
func listedLeases(t testing.TB, c certcache.Cache, prefix string) map[string]certcache.LeaseInfo {
	t.Helper()
	got := map[string]certcache.LeaseInfo{}
	for l, err := range certcache.ListLeases(ctx(t), c, prefix) {
		if err != nil {
			t.Fatalf("ListLeases(%q): %v", prefix, err)
		}
		if _, dup := got[l.Name]; dup {
			t.Errorf("ListLeases(%q) lists %q twice", prefix, l.Name)
		}
		got[l.Name] = l
	}
	return got
}

func leaseNames(m map[string]certcache.LeaseInfo) []string {
	var names []string
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// testLeaseAdmin lists a live lease beside a key of the same name, refuses
// to break it without force, breaks it with force, and lets another holder
// take it then.
func (s *suite) testLeaseAdmin(t *testing.T) {
	ns := s.ns()
	a, b := s.open(t, ns), s.open(t, ns)
	const name, ttl = "admin/issue_cert_example.com", time.Minute
	before := time.Now()
	la := s.acquire(t, a, name, ttl)
	after := time.Now()
	mustPut(t, a, name, PEMLike(100)) // a key of the same name: never a lease
	mustPut(t, a, "admin/other", PEMLike(100))
	other := s.open(t, s.ns()) // another namespace's lease: never listed here
	s.acquire(t, other, name, ttl)

	for _, prefix := range []string{"", "admin/", name} {
		got := listedLeases(t, b, prefix)
		if !slices.Equal(leaseNames(got), []string{name}) {
			t.Fatalf("ListLeases(%q) = %q, want [%q]", prefix, leaseNames(got), name)
		}
		l := got[name]
		if l.Holder != la.Token() {
			t.Errorf("ListLeases: holder %q, want the token %q", l.Holder, la.Token())
		}
		if lo, hi := before.Add(ttl-leaseSlack), after.Add(ttl+leaseSlack); l.Expires.Before(lo) || l.Expires.After(hi) {
			t.Errorf("ListLeases: expires %v, want about %v from now (between %v and %v)", l.Expires, ttl, lo, hi)
		}
	}
	if got := listedLeases(t, b, "admin/x"); len(got) != 0 {
		t.Errorf("ListLeases(%q) = %q, want none", "admin/x", leaseNames(got))
	}
	sameKeys(t, "List beside a lease", listed(t, b, ""), []string{name, "admin/other"})

	err := certcache.BreakLease(ctx(t), b, name, false)
	if !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("BreakLease of a live lease without force = %v, want certcache.ErrLeaseHeld", err)
	}
	if !strings.Contains(err.Error(), name) {
		t.Errorf("BreakLease error %q does not name the lease", err)
	}
	mustBeHeld(t, b, name)
	if err := certcache.BreakLease(ctx(t), b, name, true); err != nil {
		t.Fatalf("BreakLease with force: %v", err)
	}
	if got := listedLeases(t, b, ""); len(got) != 0 {
		t.Errorf("ListLeases after BreakLease = %q, want none", leaseNames(got))
	}
	lb := s.acquire(t, b, name, ttl) // another token takes it
	if err := la.Refresh(ctx(t)); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("Refresh by the holder of a broken lease = %v, want certcache.ErrLeaseLost", err)
	}
	if got := listedLeases(t, a, ""); got[name].Holder != lb.Token() {
		t.Errorf("ListLeases after a new acquisition: %+v, want holder %q", got, lb.Token())
	}
	mustGet(t, a, name, PEMLike(100)) // breaking a lease leaves the key alone
	if got := listedLeases(t, other, ""); len(got) != 1 {
		t.Errorf("the other namespace's leases = %q, want its own one", leaseNames(got))
	}
	for _, force := range []bool{false, true} {
		if err := certcache.BreakLease(ctx(t), b, "admin/never-taken", force); err != nil {
			t.Errorf("BreakLease of a missing lease (force %v) = %v, want nil", force, err)
		}
	}
	if err := certcache.BreakLease(ctx(t), b, "", true); !errors.Is(err, certcache.ErrInvalidKey) {
		t.Errorf("BreakLease of an empty name = %v, want certcache.ErrInvalidKey", err)
	}
}

// testLeaseAdminExpired breaks an expired lease without force, and a
// released lease is not listed.
func (s *suite) testLeaseAdminExpired(t *testing.T) {
	ns := s.ns()
	a, b := s.open(t, ns), s.open(t, ns)
	const ttl = 2 * time.Second
	s.acquire(t, a, "expired", ttl)
	released := s.acquire(t, a, "released", time.Minute)
	if err := released.Release(ctx(t)); err != nil {
		t.Fatal(err)
	}
	if s.h.WatchedLeaseExpiry {
		// b's first look at the live lease starts its watch, and is no
		// licence to break it.
		if err := certcache.BreakLease(ctx(t), b, "expired", false); !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Fatalf("BreakLease of a live lease at first look, without force = %v, want certcache.ErrLeaseHeld", err)
		}
	}
	time.Sleep(ttl + 1500*time.Millisecond)
	got := listedLeases(t, b, "")
	if _, ok := got["released"]; ok {
		t.Errorf("ListLeases lists a released lease: %+v", got["released"])
	}
	// A store that deletes expired leases (Redis) does not list them.
	if l, ok := got["expired"]; ok && !l.Expires.Before(time.Now()) {
		t.Errorf("ListLeases: the expired lease expires at %v, after now", l.Expires)
	}
	if err := certcache.BreakLease(ctx(t), b, "expired", false); err != nil {
		t.Fatalf("BreakLease of an expired lease without force: %v", err)
	}
	if got := listedLeases(t, b, ""); len(got) != 0 {
		t.Errorf("ListLeases after breaking the expired lease = %q, want none", leaseNames(got))
	}
	s.acquire(t, b, "expired", time.Minute)
}
