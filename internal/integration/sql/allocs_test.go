package sqlcache_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// maxExtraAllocs is how many allocations a Get may make beyond the raw
// driver call that does its work (issue 22's target).
const maxExtraAllocs = 3

// TestGetAllocs: a Get hit and a Get miss through the whole stack that
// Open builds, under a context that cannot end, allocate at most
// maxExtraAllocs more than the raw driver call with the same SQL on the
// same server. Under such a context a Get bounds its query by the
// connection (a socket deadline, SQLite's busy_timeout) rather than by a
// watched context, which would cost database/sql a goroutine and a derived
// context per query: this test fails if a Get watches its context again.
func TestGetAllocs(t *testing.T) {
	for _, tc := range []struct {
		name string
		open func(t *testing.T) (u string, raw rawOps)
	}{
		{"postgres", func(t *testing.T) (string, rawOps) {
			u := testenv.PostgresURL(t)
			return withParam(u, "table=allocs"), postgresRaw(t, u, "allocs")
		}},
		{"mariadb", func(t *testing.T) (string, rawOps) {
			u := testenv.MariaDBURL(t)
			return withParam(u, "table=allocs"), mariadbRaw(t, u, "allocs")
		}},
		{"sqlite", func(t *testing.T) (string, rawOps) {
			path := filepath.Join(t.TempDir(), "allocs.db")
			return "sqlite://" + path + "?table=allocs", sqliteRaw(t, path, "allocs")
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u, raw := tc.open(t)
			c, err := certcache.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			value := drivertest.CertValue() // coordination takes anything else for a miss
			if err := c.Put(ctx, "hit.example.com", value); err != nil {
				t.Fatal(err)
			}
			// The store's miss, as make bench measures it: with
			// coordination, only a certificate's first miss is a miss.
			miss := certcache.Uncoordinated(c)
			for _, op := range []struct {
				name, key string
				hit       bool
				c         certcache.Cache
			}{{"hit", "hit.example.com", true, c}, {"miss", "miss.example.com", false, miss}} {
				ours := testing.AllocsPerRun(200, func() {
					v, err := op.c.Get(ctx, op.key)
					if op.hit && (err != nil || !bytes.Equal(v, value)) || !op.hit && err != autocert.ErrCacheMiss { //nolint:errorlint // autocert compares with ==
						t.Fatalf("Get(%s) = %q, %v", op.key, v, err)
					}
				})
				rawAllocs := testing.AllocsPerRun(200, func() {
					v, err := raw.get(ctx, op.key)
					if err != nil || (v != nil) != op.hit {
						t.Fatalf("raw get(%s) = %q, %v", op.key, v, err)
					}
				})
				t.Logf("Get %s: %.1f allocations, raw %.1f", op.name, ours, rawAllocs)
				if ours > rawAllocs+maxExtraAllocs {
					t.Errorf("Get %s: %.1f allocations, raw call %.1f; want at most %d more", op.name, ours, rawAllocs, maxExtraAllocs)
				}
			}
		})
	}
}
