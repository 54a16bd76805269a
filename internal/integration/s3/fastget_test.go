package s3_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/crypto/acme/autocert"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	ccs3 "github.com/certcache/certcache/s3"
)

// recorder is an s3.HTTPClient that records each request and can corrupt
// the body of answers to the fast path's requests, or to every request.
type recorder struct {
	next http.Client

	mu       sync.Mutex
	requests []recorded
	corrupt  func(r *http.Request) bool
}

type recorded struct {
	sdk      bool   // made by the SDK's stack (it sends an invocation ID)
	checksum string // the X-Amz-Checksum-Mode header sent
	path     string // the escaped path sent
	status   int
	sums     bool // the answer carried a checksum header
}

func (rc *recorder) Do(r *http.Request) (*http.Response, error) {
	resp, err := rc.next.Do(r)
	rec := recorded{sdk: r.Header.Get("Amz-Sdk-Invocation-Id") != "", checksum: r.Header.Get("X-Amz-Checksum-Mode"),
		path: r.URL.EscapedPath()}
	if err == nil {
		rec.status = resp.StatusCode
		for k := range resp.Header {
			if strings.HasPrefix(strings.ToLower(k), "x-amz-checksum-") && k != "X-Amz-Checksum-Type" {
				rec.sums = true
			}
		}
		rc.mu.Lock()
		corrupt := rc.corrupt != nil && rc.corrupt(r) && resp.StatusCode == http.StatusOK
		rc.mu.Unlock()
		if corrupt {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(b) > 0 {
				b[len(b)/2] ^= 0xff
			}
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	rc.mu.Lock()
	rc.requests = append(rc.requests, rec)
	rc.mu.Unlock()
	return resp, err
}

// take returns the requests recorded since the last call.
func (rc *recorder) take() []recorded {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	r := rc.requests
	rc.requests = nil
	return r
}

func (rc *recorder) setCorrupt(f func(r *http.Request) bool) {
	rc.mu.Lock()
	rc.corrupt = f
	rc.mu.Unlock()
}

func fastOnly(r *http.Request) bool { return r.Header.Get("Amz-Sdk-Invocation-Id") == "" }

// recordedClient is an SDK client on endpoint whose requests rec sees.
func recordedClient(t *testing.T, endpoint string, rec *recorder, opts ...func(*awss3.Options)) *awss3.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"), config.WithHTTPClient(rec))
	if err != nil {
		t.Fatal(err)
	}
	return awss3.NewFromConfig(cfg, append([]func(*awss3.Options){func(o *awss3.Options) {
		o.BaseEndpoint = aws.String(endpoint)
		o.UsePathStyle = true
	}}, opts...)...)
}

// TestFastGet: a Get is one signed request made around the SDK's stack,
// and answers exactly what the SDK call answers: the value (its checksum
// checked), a miss only for NoSuchKey, and for anything else whatever the
// SDK call says.
func TestFastGet(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	rec := &recorder{}
	c, err := ccs3.New(recordedClient(t, endpoint, rec), bucket, &ccs3.Options{Prefix: "fast"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	value := drivertest.CertValue()
	keys := []string{"example.com", "xn--bcher-kva.example+rsa", "acme_account+key",
		"key with spaces, ünïcode & symbols: ?#%/=;*'()!@$[]", strings.Repeat("long-", 80) + "key"}
	for _, key := range keys {
		if err := c.Put(ctx, key, value); err != nil {
			t.Fatalf("Put(%q): %v", key, err)
		}
		rec.take()
		got, err := certcache.Uncoordinated(c).Get(ctx, key) // one value for every key: beneath coordination
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Get(%q) = %d bytes, %v; want the value", key, len(got), err)
		}
		reqs := rec.take()
		if len(reqs) != 1 || reqs[0].sdk || reqs[0].status != http.StatusOK {
			t.Errorf("Get(%q) made requests %+v; want one 200 from the fast path", key, reqs)
			continue
		}
		if reqs[0].checksum != "ENABLED" || !reqs[0].sums {
			t.Errorf("Get(%q): checksum mode %q, answer with a checksum: %v; want both (the SDK's default)", key, reqs[0].checksum, reqs[0].sums)
		}
	}

	t.Run("miss", func(t *testing.T) {
		// Uncoordinated: a coordinated miss of a certificate also takes
		// an order lease (more requests, none of them a Get).
		_, err := certcache.Uncoordinated(c).Get(ctx, "absent.example")
		if err != autocert.ErrCacheMiss { //nolint:errorlint // autocert compares with ==
			t.Fatalf("Get of an absent key = %v, want autocert.ErrCacheMiss itself", err)
		}
		if reqs := rec.take(); len(reqs) != 1 || reqs[0].sdk || reqs[0].status != http.StatusNotFound {
			t.Errorf("a miss made requests %+v; want one 404 from the fast path", reqs)
		}
	})

	t.Run("corrupt answer to the fast path", func(t *testing.T) {
		rec.setCorrupt(fastOnly)
		defer rec.setCorrupt(nil)
		got, err := c.Get(ctx, "example.com")
		if err != nil || !bytes.Equal(got, value) {
			t.Fatalf("Get = %d bytes, %v; want the value, read again by the SDK", len(got), err)
		}
		if reqs := rec.take(); len(reqs) != 2 || reqs[0].sdk || !reqs[1].sdk {
			t.Errorf("requests %+v; want the fast path's, then the SDK's after the checksum mismatch", reqs)
		}
	})

	t.Run("corrupt answers", func(t *testing.T) {
		rec.setCorrupt(func(*http.Request) bool { return true })
		defer rec.setCorrupt(nil)
		got, err := c.Get(ctx, "example.com")
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("Get of a corrupted object = %d bytes, %v; want an error that is not a miss", len(got), err)
		}
		rec.take()
	})

	t.Run("missing bucket", func(t *testing.T) {
		nb, err := ccs3.New(recordedClient(t, endpoint, rec), "no-such-bucket", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer nb.Close()
		_, err = nb.Get(ctx, "example.com")
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !strings.Contains(err.Error(), "NoSuchBucket") {
			t.Fatalf("Get from a missing bucket = %v; want the SDK's NoSuchBucket error, not a miss", err)
		}
		if reqs := rec.take(); len(reqs) < 2 || reqs[0].sdk || !reqs[1].sdk {
			t.Errorf("requests %+v; want the fast path's 404, then the SDK's", reqs)
		}
	})

	t.Run("checksum validation off", func(t *testing.T) {
		nc, err := ccs3.New(recordedClient(t, endpoint, rec, func(o *awss3.Options) {
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}), bucket, &ccs3.Options{Prefix: "fast"})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := nc.Get(ctx, "example.com"); err != nil {
			t.Fatal(err)
		}
		if reqs := rec.take(); len(reqs) != 1 || reqs[0].sdk || reqs[0].checksum != "" {
			t.Errorf("requests %+v; want one from the fast path, without checksum mode", reqs)
		}
	})

	t.Run("client with middleware of its own", func(t *testing.T) {
		var seen sync.Map
		mw := func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("mine", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				seen.Store("called", true)
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		}
		nc, err := ccs3.New(recordedClient(t, endpoint, rec, func(o *awss3.Options) { o.APIOptions = append(o.APIOptions, mw) }),
			bucket, &ccs3.Options{Prefix: "fast"})
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		if _, err := nc.Get(ctx, "example.com"); err != nil {
			t.Fatal(err)
		}
		if reqs := rec.take(); len(reqs) != 1 || !reqs[0].sdk {
			t.Errorf("requests %+v; want one through the SDK, whose stack has the user's middleware", reqs)
		}
		if _, ok := seen.Load("called"); !ok {
			t.Error("the user's middleware did not run")
		}
	})

	t.Run("caller's deadline", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(ctx, time.Nanosecond)
		defer cancel()
		time.Sleep(time.Millisecond)
		_, err := c.Get(ctx, "example.com")
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, autocert.ErrCacheMiss) {
			t.Errorf("Get with an expired context = %v; want context.DeadlineExceeded", err)
		}
	})
}
