package certcache_test

import (
	"context"
	"errors"
	"testing"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// plainDriver stores nothing and has no optional capability.
type plainDriver struct{}

func (plainDriver) Get(context.Context, string) ([]byte, error) { return nil, autocert.ErrCacheMiss }
func (plainDriver) Put(context.Context, string, []byte) error   { return nil }
func (plainDriver) Delete(context.Context, string) error        { return nil }
func (plainDriver) Close() error                                { return nil }

// foreignCache is a Cache that certcache did not make.
type foreignCache struct{ plainDriver }

// TestLeaseAdminUnsupported checks that a backend without
// driver.LeaseAdminDriver, or a cache with no portable layer, says so.
func TestLeaseAdminUnsupported(t *testing.T) {
	for _, tc := range []struct {
		name string
		c    certcache.Cache
	}{
		{"plain driver", certcache.NewCache("plain", plainDriver{}, nil)},
		{"foreign cache", foreignCache{}},
	} {
		c := tc.c
		t.Run(tc.name, func(t *testing.T) {
			for _, err := range certcache.ListLeases(context.Background(), c, "") {
				if !errors.Is(err, certcache.ErrUnsupported) {
					t.Errorf("ListLeases = %v, want certcache.ErrUnsupported", err)
				}
			}
			if err := certcache.BreakLease(context.Background(), c, "x", true); !errors.Is(err, certcache.ErrUnsupported) {
				t.Errorf("BreakLease = %v, want certcache.ErrUnsupported", err)
			}
		})
	}
}
