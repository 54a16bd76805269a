package sqlcache_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestPostgresTLS runs the suite with sslmode=verify-full against a server
// whose certificate comes from a CA made for this run, trusted through
// sslrootcert; a wrong CA, and a plain connection to a server that accepts
// only TLS, fail with clear errors that are not misses.
func TestPostgresTLS(t *testing.T) {
	ca := testenv.NewCA(t, "certcache postgres test CA")
	_, base := testenv.PostgresTLS(t, ca)
	caFile := url.QueryEscape(ca.WriteFile(t))
	nsURL := func(ns string) string {
		table := "t_" + strings.ReplaceAll(ns, "-", "_")
		// timeout: see TestPostgresConformance; TLS makes sessions dearer.
		return base + "?sslmode=verify-full&sslrootcert=" + caFile + "&table=" + table + "&timeout=20s"
	}
	t.Run("Conformance", func(t *testing.T) {
		drivertest.Run(t, drivertest.Harness{
			Open: func(t testing.TB, ns string) (certcache.Cache, error) {
				return certcache.Open(context.Background(), nsURL(ns))
			},
			URL:     nsURL,
			Timeout: 20 * time.Second,
			Secrets: []string{testenv.PostgresPassword},
		})
	})
	for _, tc := range []struct{ name, query, want string }{
		{"WrongCA", "sslmode=verify-full&sslrootcert=" + url.QueryEscape(testenv.NewCA(t, "other CA").WriteFile(t)), "certificate"},
		{"PlainRefused", "sslmode=disable", "no pg_hba.conf entry"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			drivertest.GetFailsWith(t, base+"?timeout=5s&"+tc.query, tc.want, testenv.PostgresPassword)
		})
	}
}
