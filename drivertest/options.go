package drivertest

import (
	"testing"

	"github.com/certcache/certcache"
)

// RunNewOptions checks that a backend's New hands its Options.Cache to the
// portable layer, as the URL opener hands the URL's parameters: newCache
// builds a cache with the given certcache.Options on a client that New
// need not reach (New contacts no server). The breaker and issuance
// coordination are the settings visible from outside.
func RunNewOptions(t *testing.T, newCache func(o certcache.Options) (certcache.Cache, error)) {
	t.Helper()
	for _, tc := range []struct {
		name                 string
		o                    certcache.Options
		breaker, coordinated bool
	}{
		{"defaults", certcache.Options{}, true, true},
		{"DisableBreaker", certcache.Options{DisableBreaker: true}, false, true},
		{"DisableCoordination", certcache.Options{DisableCoordination: true}, true, false},
	} {
		c, err := newCache(tc.o)
		if err != nil {
			t.Fatalf("%s: New: %v", tc.name, err)
		}
		if _, on := certcache.BreakerStatsOf(c); on != tc.breaker {
			t.Errorf("%s: circuit breaker on: %v, want %v", tc.name, on, tc.breaker)
		}
		if coordinated := certcache.Uncoordinated(c) != c; coordinated != tc.coordinated {
			t.Errorf("%s: issuance coordinated: %v, want %v", tc.name, coordinated, tc.coordinated)
		}
		if err := c.Close(); err != nil {
			t.Errorf("%s: Close: %v", tc.name, err)
		}
	}
}
