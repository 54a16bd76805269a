package drivertest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/leakcheck"
	"golang.org/x/crypto/acme/autocert"
)

// The Coordinated cases check issuance coordination (certcache.ErrIssuing)
// on each backend's leases, with caches opened as the harness opens them.

func (s *suite) testCoordinatedMiss(t *testing.T) {
	ns := s.ns()
	a, b := s.openCoordinated(t, ns), s.openCoordinated(t, ns)
	for _, key := range []string{"new.example.com", "new.example.com+rsa"} {
		actx, cancel := context.WithCancel(ctx(t))                    // autocert's order context
		if _, err := a.Get(actx, key); err != autocert.ErrCacheMiss { //nolint:errorlint // autocert compares with ==
			t.Fatalf("first Get(%q) = %v, want the bare autocert.ErrCacheMiss: this caller orders", key, err)
		}
		for name, c := range map[string]certcache.Cache{"another cache": b, "the same cache": a} {
			start := time.Now()
			_, err := c.Get(ctx(t), key)
			if !errors.Is(err, certcache.ErrIssuing) || errors.Is(err, autocert.ErrCacheMiss) {
				t.Errorf("Get(%q) from %s while an order runs = %v, want certcache.ErrIssuing and no miss", key, name, err)
			}
			// Get never waits for another order: autocert holds its lock.
			if d := time.Since(start); d > 2*s.timeout() {
				t.Errorf("Get(%q) from %s took %v while another order runs", key, name, d)
			}
		}
		mustPut(t, a, key, CertValueFor(key)) // the order's Put lets the lease go
		cancel()
		mustGet(t, b, key, CertValueFor(key))
	}
	// Keys that are not certificates are never coordinated.
	for _, key := range []string{"tok+http-01", "new.example.com+token"} {
		mustMiss(t, a, key)
		mustMiss(t, b, key)
	}
}

func (s *suite) testCoordinatedAccount(t *testing.T) {
	ns := s.ns()
	a, b := s.openCoordinated(t, ns), s.openCoordinated(t, ns)
	const key = "acme_account+key"
	if _, err := a.Get(ctx(t), key); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("first Get(%q) = %v, want the bare autocert.ErrCacheMiss: this node makes the key", key, err)
	}
	got := make(chan error, 1)
	go func() {
		// A second node waits for the first node's key (autocert reads it
		// outside its handshake lock), so the fleet has one ACME account.
		v, err := b.Get(ctx(t), key)
		if err == nil && string(v) != "the account key" {
			err = errors.New("wrong value " + string(v))
		}
		got <- err
	}()
	time.Sleep(300 * time.Millisecond)
	mustPut(t, a, key, []byte("the account key"))
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("second node's Get(%q): %v", key, err)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("second node's Get(%q) still waits 30 s after the key landed", key)
	}
}

// testCloseLeaks: Close ends every goroutine the cache started, an order
// lease's keep-alive and the breakers' probes included. Goroutines that
// were there before (other caches of the process, the test harness) are
// not counted; those of a connection pool the cache closed may take a
// moment to go, which VerifyNone waits for.
func (s *suite) testCloseLeaks(t *testing.T) {
	before := leakcheck.Take()
	c := s.openCoordinated(t, s.ns())
	mustPut(t, c, "leak+token", []byte("v"))
	mustGet(t, c, "leak+token", []byte("v"))
	order, cancel := context.WithTimeout(ctx(t), 5*time.Minute) // autocert's handshake
	defer cancel()
	if _, err := c.Get(order, "leak.example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get of a new certificate = %v, want the miss", err)
	}
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	leakcheck.VerifyNone(t, before, 5*time.Second)
}
