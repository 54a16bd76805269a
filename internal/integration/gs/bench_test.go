package gs_test

import (
	"context"
	"errors"
	"hash/crc32"
	"io"
	"testing"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
)

func BenchmarkGS(b *testing.B) {
	_, endpoint := fakeGCS(b)
	c, err := certcache.Open(context.Background(), cacheURL(endpoint, "bench", ""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })

	// The raw storage calls doing the same work on the same server.
	client := rawClient(b, endpoint)
	ctx := context.Background()
	v := drivertest.CertValue()
	obj := func(name string) *storage.ObjectHandle { return client.Bucket(bucket).Object("raw/" + name) }
	put := func(name string, crc bool) error {
		w := obj(name).NewWriter(ctx)
		w.ChunkSize = 0
		if crc {
			w.CRC32C, w.SendCRC32C = crc32.Checksum(v, crc32.MakeTable(crc32.Castagnoli)), true
		}
		if _, err := w.Write(v); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	}
	if err := put("bench.example", false); err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		b.Run("GetHit", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				r, err := obj("bench.example").NewReader(ctx)
				if err != nil {
					b.Fatal(err)
				}
				buf := make([]byte, r.Attrs.Size)
				if _, err := io.ReadFull(r, buf); err != nil {
					b.Fatal(err)
				}
				r.Close()
			}
		})
		b.Run("GetMiss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := obj("missing").NewReader(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
					b.Fatal(err)
				}
			}
		})
		b.Run("Put", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := put("put.example", false); err != nil {
					b.Fatal(err)
				}
			}
		})
		// What the backend's Put adds: the value's CRC32C, which the store
		// checks.
		b.Run("PutCRC32C", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := put("put.example", true); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}
