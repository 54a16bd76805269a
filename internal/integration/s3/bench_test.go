package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"runtime"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
)

func BenchmarkS3(b *testing.B) {
	_, endpoint := minio(b, testenv.MinIO)
	c, err := certcache.Open(context.Background(), cacheURL(endpoint, "bench", ""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })

	// The raw SDK calls doing the same work on the same server, with the
	// same client settings.
	client := rawClient(b, endpoint)
	ctx := context.Background()
	v := drivertest.CertValue()
	put := func(key string) error {
		_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key),
			Body: bytes.NewReader(v), ContentLength: aws.Int64(int64(len(v)))})
		return err
	}
	if err := put("raw/bench.example"); err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		b.Run("GetHit", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("raw/bench.example")})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := io.ReadAll(out.Body); err != nil {
					b.Fatal(err)
				}
				out.Body.Close()
			}
		})
		b.Run("GetMiss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String("raw/missing.example")})
				var nsk *types.NoSuchKey
				if !errors.As(err, &nsk) {
					b.Fatal(err)
				}
			}
		})
		b.Run("Put", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if err := put("raw/bench-put.example"); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// BenchmarkList lists a namespace of 10,000 keys. Beside the time and
// allocations of a listing, it reports the peak live heap during one more
// listing above the heap before it (collected and sampled every 500
// entries): a streamed listing holds a page, not the namespace.
func BenchmarkList(b *testing.B) {
	_, endpoint := minio(b, testenv.MinIO)
	c, err := certcache.Open(context.Background(), cacheURL(endpoint, "list", ""))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	const n = 10_000
	putMany(b, c, n)
	list := func(sample func()) {
		count := 0
		for _, err := range certcache.List(context.Background(), c, "") {
			if err != nil {
				b.Fatal(err)
			}
			if count++; sample != nil && count%500 == 0 {
				sample()
			}
		}
		if count != n {
			b.Fatalf("listed %d keys, want %d", count, n)
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		list(nil)
	}
	b.StopTimer()
	heap := func() uint64 {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		return ms.HeapAlloc
	}
	base, peak := heap(), uint64(0)
	list(func() { peak = max(peak, heap()) })
	b.ReportMetric(float64(peak-min(peak, base))/(1<<10), "peak-live-KiB")
}
