package s3_test

import (
	"context"
	"errors"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// carelessProxy serves, on 127.0.0.1, a reverse proxy to endpoint that
// drops If-None-Match and If-Match from every request: a store that
// accepts conditional writes and ignores the condition. SigV4 signs those
// headers, so a request that loses them is signed again, for the same
// scope, with the test's credentials. It returns the proxy's URL and the
// count of requests it made unconditional.
func carelessProxy(t *testing.T, endpoint string) (string, *atomic.Int64) {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	var stripped atomic.Int64
	signer := v4.NewSigner()
	creds := aws.Credentials{AccessKeyID: testenv.MinIOUser, SecretAccessKey: testenv.MinIOPassword}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) {
		pr.SetURL(target)
		pr.Out.Host = pr.In.Host // as signed by the client
		h := pr.Out.Header
		if h.Get("If-None-Match") == "" && h.Get("If-Match") == "" {
			return
		}
		h.Del("If-None-Match")
		h.Del("If-Match")
		// Credential=ID/DATE/REGION/SERVICE/aws4_request
		_, cred, _ := strings.Cut(h.Get("Authorization"), "Credential=")
		cred, _, _ = strings.Cut(cred, ",")
		scope := strings.Split(cred, "/")
		when, err := time.Parse("20060102T150405Z", h.Get("X-Amz-Date"))
		if len(scope) != 5 || err != nil {
			t.Errorf("careless proxy: cannot read the signature of %s %s", pr.In.Method, pr.In.URL)
			return
		}
		h.Del("Authorization")
		if err := signer.SignHTTP(pr.In.Context(), creds, pr.Out, h.Get("X-Amz-Content-Sha256"), scope[3], scope[2], when,
			func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }); err != nil {
			t.Errorf("careless proxy: signing: %v", err)
			return
		}
		stripped.Add(1)
	}}
	srv := httptest.NewServer(rp) // on 127.0.0.1
	t.Cleanup(srv.Close)
	return srv.URL, &stripped
}

// TestCarelessStoreRefused: through a store that ignores conditional
// writes, every lease acquisition fails with ErrUnsupported naming the
// fix, and a coordinated Get of a missing certificate fails the same way,
// never as a miss; straight to MinIO, which honours them, leases exclude.
func TestCarelessStoreRefused(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	px, stripped := carelessProxy(t, endpoint)
	ctx := context.Background()

	checkRefusal := func(t *testing.T, err error, coordinated bool) {
		t.Helper()
		t.Logf("%v", err)
		if !errors.Is(err, certcache.ErrUnsupported) || errors.Is(err, certcache.ErrUnavailable) {
			t.Errorf("error %v does not match ErrUnsupported alone", err)
		}
		if !strings.Contains(err.Error(), "does not honour conditional writes") {
			t.Errorf("error %q does not say what is wrong", err)
		}
		if strings.Contains(err.Error(), "coordinate=false") != coordinated {
			t.Errorf("error %q: naming coordinate=false should be %v", err, coordinated)
		}
		if strings.Contains(err.Error(), testenv.MinIOPassword) {
			t.Errorf("error reveals the password: %v", err)
		}
	}

	t.Run("ProxyServesPlainCalls", func(t *testing.T) {
		c := open(t, cacheURL(px, "careless-plain", "&timeout=5s&coordinate=false"))
		if err := c.Put(ctx, "k.example", []byte("v")); err != nil {
			t.Fatalf("Put through the proxy: %v", err)
		}
		if v, err := c.Get(ctx, "k.example"); err != nil || string(v) != "v" {
			t.Fatalf("Get through the proxy = %q, %v", v, err)
		}
	})
	t.Run("AcquireLease", func(t *testing.T) {
		c := open(t, cacheURL(px, "careless-lease", "&timeout=5s"))
		for range 2 {
			l, err := certcache.AcquireLease(ctx, c, "order:example.com", time.Minute)
			if l != nil {
				t.Fatalf("AcquireLease through a careless store returned a lease")
			}
			checkRefusal(t, err, true)
			if !strings.HasPrefix(err.Error(), `certcache/s3: lease "order:example.com": `) {
				t.Errorf("error %q does not name the backend, operation and lease", err)
			}
		}
		if stripped.Load() == 0 {
			t.Fatal("the proxy stripped no condition")
		}
	})
	t.Run("CoordinatedGet", func(t *testing.T) {
		c, err := certcache.Open(ctx, cacheURL(px, "careless-get", "&timeout=5s")) // coordinated, unlike open's
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_, err = c.Get(ctx, "example.com")
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("coordinated Get of a missing certificate through a careless store = %v, want a refusal", err)
		}
		checkRefusal(t, err, true)
	})
	t.Run("Uncoordinated", func(t *testing.T) {
		c := open(t, cacheURL(px, "careless-off", "&timeout=5s&coordinate=false"))
		if _, err := c.Get(ctx, "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint // the bare sentinel
			t.Errorf("uncoordinated Get of a missing certificate = %v, want a miss", err)
		}
		_, err := certcache.AcquireLease(ctx, c, "lock", time.Minute)
		checkRefusal(t, err, false)
	})
	t.Run("Direct", func(t *testing.T) {
		c, err := certcache.Open(ctx, cacheURL(endpoint, "honest", "&timeout=5s")) // coordinated, unlike open's
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		l, err := certcache.AcquireLease(ctx, c, "order:example.com", time.Minute)
		if err != nil {
			t.Fatalf("AcquireLease straight to MinIO: %v", err)
		}
		defer l.Release(ctx)
		if _, err := certcache.AcquireLease(ctx, c, "order:example.com", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Errorf("second AcquireLease straight to MinIO = %v, want ErrLeaseHeld", err)
		}
		if _, err := c.Get(ctx, "other.example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint // the bare sentinel
			t.Errorf("coordinated Get of a missing certificate straight to MinIO = %v, want the miss that orders it", err)
		}
	})
}
