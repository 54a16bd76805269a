package s3_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/httpfault"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	ccs3 "github.com/certcache/certcache/s3"
)

// TestLeaseLostAnswer: a conditional lease write that lands but whose
// answer is lost is sent again by the SDK's retryer, and the retry fails
// its condition (412) because of the first attempt's own write. The lease
// must still count as acquired, refreshed or released, as it is.
func TestLeaseLostAnswer(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	var cond string // the conditional header of the writes whose answer is lost
	lost := &httpfault.LostAnswer{Match: func(r *http.Request) bool {
		return r.Method == http.MethodPut && strings.Contains(r.URL.Path, ".lease-") && r.Header.Get(cond) != ""
	}}
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
		o.HTTPClient = &http.Client{Transport: lost}
		o.Retryer = retry.AddWithMaxBackoffDelay(retry.NewStandard(), 20*time.Millisecond)
	})
	c, err := ccs3.New(client, bucket, &ccs3.Options{Prefix: "lost"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	ld := leaseDriver(t, c)
	const ttl = time.Minute

	for _, tc := range []struct {
		name    string
		setup   func(name string) error // nil: none
		cond    string                  // the write that loses its answer
		call    func(name string) error
		release bool // the call released the lease
	}{
		{"acquire creates", nil, "If-None-Match",
			func(n string) error { return ld.AcquireLease(ctx, n, "A", ttl) }, false},
		{"acquire replaces", func(n string) error { return ld.AcquireLease(ctx, n, "A", ttl) }, "If-Match",
			func(n string) error { return ld.AcquireLease(ctx, n, "A", 2*ttl) }, false},
		{"refresh", func(n string) error { return ld.AcquireLease(ctx, n, "A", ttl) }, "If-Match",
			func(n string) error { return ld.RefreshLease(ctx, n, "A", ttl) }, false},
		{"refresh with a new TTL", func(n string) error { return ld.AcquireLease(ctx, n, "A", ttl) }, "If-Match",
			func(n string) error { return ld.RefreshLease(ctx, n, "A", 2*ttl) }, false},
		{"release", func(n string) error { return ld.AcquireLease(ctx, n, "A", ttl) }, "If-Match",
			func(n string) error { return ld.ReleaseLease(ctx, n, "A") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.name + ".example"
			if tc.setup != nil {
				if err := tc.setup(name); err != nil {
					t.Fatal(err)
				}
			}
			cond = tc.cond
			lost.Arm()
			err := tc.call(name)
			cond = ""
			got := lost.Statuses()
			t.Logf("statuses of the %s writes: %v; result: %v", tc.cond, got, err)
			if len(got) < 2 || got[0] != http.StatusOK || got[1] != http.StatusPreconditionFailed {
				t.Errorf("the %s writes answered %v; want 200 (lost), then 412 for the SDK's retry", tc.cond, got)
			}
			if err != nil {
				t.Fatalf("with the first answer lost: %v; want success", err)
			}
			err = ld.AcquireLease(ctx, name, "B", ttl)
			switch {
			case tc.release && err != nil:
				t.Errorf("B acquiring the released lease: %v", err)
			case !tc.release && !errors.Is(err, certcache.ErrLeaseHeld):
				t.Errorf("B acquiring = %v; want ErrLeaseHeld, A holding the lease", err)
			case !tc.release:
				if err := ld.RefreshLease(ctx, name, "A", ttl); err != nil {
					t.Errorf("A refreshing afterwards: %v", err)
				}
			}
		})
	}
}

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
