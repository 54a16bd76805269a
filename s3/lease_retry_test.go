package s3_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/certcache/certcache/internal/testenv"
)

// TestLeaseETags: every write of a lease object gives it a new ETag, a
// refresh that stores the same token and TTL included, so that If-Match
// tells each version from the next.
func TestLeaseETags(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	client := rawClient(t, endpoint)
	ld := leaseDriver(t, open(t, cacheURL(endpoint, "etags", "")))
	const name, ttl = "example.com", time.Minute
	etag := func() string {
		t.Helper()
		out, err := client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String("etags/.lease-" + name)})
		if err != nil {
			t.Fatalf("HeadObject of the lease object: %v", err)
		}
		return aws.ToString(out.ETag)
	}
	seen := map[string]string{}
	for _, s := range []struct {
		what string
		call func() error
	}{
		{"acquire", func() error { return ld.AcquireLease(ctx, name, "A", ttl) }},
		{"refresh", func() error { return ld.RefreshLease(ctx, name, "A", ttl) }},
		{"refresh again", func() error { return ld.RefreshLease(ctx, name, "A", ttl) }},
		{"acquire again", func() error { return ld.AcquireLease(ctx, name, "A", ttl) }},
		{"release", func() error { return ld.ReleaseLease(ctx, name, "A") }},
		{"acquire after release", func() error { return ld.AcquireLease(ctx, name, "A", ttl) }},
		{"release again", func() error { return ld.ReleaseLease(ctx, name, "A") }},
	} {
		if err := s.call(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		e := etag()
		if prev, ok := seen[e]; ok {
			t.Errorf("after %s the lease object has ETag %s, as after %s", s.what, e, prev)
		}
		seen[e] = s.what
	}
}
