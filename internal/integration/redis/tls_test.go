package redis_test

import (
	"context"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestTLS runs the suite over rediss:// against a server whose certificate
// comes from a CA made for this run, trusted through tls_ca_file; a client
// trusting another CA fails with a clear, non-miss certificate error.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t, "certcache redis test CA")
	_, u := testenv.RedisTLS(t, ca)
	caFile := ca.WriteFile(t)
	t.Run("Conformance", func(t *testing.T) {
		drivertest.Run(t, harness(func(ns string) string { return u + "/0?tls_ca_file=" + caFile + "&prefix=" + ns },
			drivertest.Harness{}))
	})
	t.Run("WrongCA", func(t *testing.T) {
		other := testenv.NewCA(t, "some other CA").WriteFile(t)
		drivertest.GetFailsWith(t, u+"/0?timeout=5s&tls_ca_file="+other, "certificate")
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
