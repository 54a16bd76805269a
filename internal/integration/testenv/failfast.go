package testenv

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// StoppedServerFailsFast checks a cache whose server srv has been stopped
// (its port refuses connections) after key was stored: Gets fail with an
// error matching certcache.ErrUnavailable, never a miss, their median
// under within, and so do a lease and a listing where the backend has
// them (lister: it lists and leases). Open c with breaker=false, or the
// breaker answers the later calls from memory.
func StoppedServerFailsFast(t *testing.T, c certcache.Cache, srv *Server, key string, within time.Duration, lister bool) {
	t.Helper()
	ctx := context.Background()
	srv.Stop(t)
	var took []time.Duration
	for range 5 {
		start := time.Now()
		_, err := c.Get(ctx, key)
		took = append(took, time.Since(start))
		switch {
		case err == nil:
			t.Fatal("Get from a stopped server succeeded")
		case errors.Is(err, autocert.ErrCacheMiss):
			t.Fatalf("Get from a stopped server = %v: a failure reported as a miss", err)
		case !errors.Is(err, certcache.ErrUnavailable):
			t.Fatalf("Get from a stopped server = %v; want an error matching certcache.ErrUnavailable", err)
		}
	}
	slices.Sort(took)
	median := took[len(took)/2]
	t.Logf("Get from a stopped server: median %v of %v", median, took)
	if median >= within {
		t.Errorf("Get from a stopped server takes %v (median of 5); want under %v", median, within)
	}
	if !lister {
		return
	}
	if _, err := certcache.AcquireLease(ctx, c, key, time.Minute); !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("AcquireLease on a stopped server = %v; want certcache.ErrUnavailable", err)
	}
	var err error
	for _, err = range certcache.List(ctx, c, "") {
		break
	}
	if !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("List on a stopped server = %v; want certcache.ErrUnavailable", err)
	}
}
