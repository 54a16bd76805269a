package encrypt_test

import (
	"bytes"
	"context"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/encrypt"
)

// BenchmarkOverhead measures what sealing and opening cost on a 4 KiB PEM
// value (a certificate chain with its key): Get and Put through the wrapper
// over mem://, beside mem:// alone. The difference is the wrapper's cost.
func BenchmarkOverhead(b *testing.B) {
	ctx := context.Background()
	v := drivertest.PEMLike(4096)
	plain, err := certcache.Open(ctx, "mem://")
	if err != nil {
		b.Fatal(err)
	}
	defer plain.Close()
	inner, err := certcache.Open(ctx, "mem://")
	if err != nil {
		b.Fatal(err)
	}
	kr, err := encrypt.NewKeyring(newKey(b))
	if err != nil {
		b.Fatal(err)
	}
	sealed, err := encrypt.New(inner, kr, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer sealed.Close()
	for _, c := range []struct {
		name  string
		cache certcache.Cache
	}{{"mem", plain}, {"encrypted", sealed}} {
		if err := c.cache.Put(ctx, "bench.example", v); err != nil {
			b.Fatal(err)
		}
		b.Run(c.name+"/Get4KiB", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				got, err := c.cache.Get(ctx, "bench.example")
				if err != nil || len(got) != len(v) {
					b.Fatal(err)
				}
			}
		})
		b.Run(c.name+"/Put4KiB", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if err := c.cache.Put(ctx, "bench-put.example", v); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	if got, _ := sealed.Get(ctx, "bench-put.example"); !bytes.Equal(got, v) {
		b.Fatal("the benchmarked value does not round-trip")
	}
}
