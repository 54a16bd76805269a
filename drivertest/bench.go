package drivertest

import (
	"context"
	"testing"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// RunBenchmarks measures Get of a stored key, Get of a missing key and Put,
// each with a realistic certificate value (CertValue), on c. Backends call
// it from a Benchmark function beside a raw SDK benchmark on the same server.
func RunBenchmarks(b *testing.B, c certcache.Cache) {
	ctx := context.Background()
	v := CertValue()
	if err := c.Put(ctx, "bench.example.com", v); err != nil {
		b.Fatal(err)
	}
	b.Run("GetHit", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if _, err := c.Get(ctx, "bench.example.com"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("GetMiss", func(b *testing.B) {
		// The store's miss: with coordination, only the first miss of a
		// certificate is a miss (BenchmarkCoordination in the root package
		// measures what that adds).
		c := certcache.Uncoordinated(c)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.Get(ctx, "missing.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
				b.Fatal(err)
			}
		}
	})
	b.Run("Put", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			if err := c.Put(ctx, "bench-put.example.com", v); err != nil {
				b.Fatal(err)
			}
		}
	})
}
