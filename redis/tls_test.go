package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/conformance"
	"github.com/certcache/certcache/internal/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// TestTLS runs the suite over rediss:// against a server whose certificate
// comes from a CA made for this run, trusted through tls_ca_file; a client
// trusting another CA fails with a clear, non-miss certificate error.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t, "certcache redis test CA")
	_, u := testenv.RedisTLS(t, ca)
	caFile := ca.WriteFile(t)
	t.Run("Conformance", func(t *testing.T) {
		conformance.Run(t, conformance.Harness{
			Open: func(t testing.TB, ns string) (certcache.Cache, error) {
				return certcache.Open(context.Background(), u+"/0?tls_ca_file="+caFile+"&prefix="+ns)
			},
		})
	})
	t.Run("WrongCA", func(t *testing.T) {
		other := testenv.NewCA(t, "some other CA").WriteFile(t)
		c, err := certcache.Open(context.Background(), u+"/0?timeout=5s&tls_ca_file="+other)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Get(context.Background(), "example.com")
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("Get through an untrusted certificate = %v, want a non-miss error", err)
		}
		if !strings.Contains(err.Error(), "certificate") {
			t.Errorf("error %q does not say the certificate is the problem", err)
		}
	})
	t.Run("SystemRoots", func(t *testing.T) {
		// Without tls_ca_file the system roots do not know the test CA.
		c, err := certcache.Open(context.Background(), u+"/0?timeout=5s")
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Put(context.Background(), "example.com", []byte("v")); err == nil {
			t.Fatal("Put through a certificate the system roots do not trust succeeded")
		}
	})
}
