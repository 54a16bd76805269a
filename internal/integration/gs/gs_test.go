package gs_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	ccgs "github.com/certcache/certcache/gs"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
	"google.golang.org/api/option"
)

const bucket = "certcache-test"

// fakeGCS starts fake-gcs-server with the test bucket and returns it with
// its endpoint.
func fakeGCS(t testing.TB) (*testenv.Server, string) {
	t.Helper()
	return testenv.FakeGCS(t, bucket)
}

// cacheURL is the URL of prefix in the test bucket on endpoint.
func cacheURL(endpoint, prefix, extra string) string {
	return fmt.Sprintf("gs://%s/%s?endpoint=%s%s", bucket, prefix, endpoint, extra)
}

// rawClient is a storage client on the emulator at endpoint, for checking
// what the cache stored, for New, and for the raw benchmarks.
func rawClient(t testing.TB, endpoint string) *storage.Client {
	t.Helper()
	c, err := storage.NewClient(context.Background(), option.WithEndpoint(endpoint+"/storage/v1/"), option.WithoutAuthentication(), storage.WithJSONReads())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func open(t testing.TB, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The store's own behaviour, beneath issuance coordination: the values
	// here are no certificates.
	return certcache.Uncoordinated(c)
}

func TestConformance(t *testing.T) {
	_, endpoint := fakeGCS(t)
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), cacheURL(endpoint, ns, "&timeout=5s"))
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(), cacheURL("http://"+testenv.ClosedAddr(t), "broken", "&timeout=2s"))
		},
		BrokenIsUnavailable: true,
		Outage: testenv.OutageOn(fakeGCS,
			func(endpoint string) string { return cacheURL(endpoint, "outage", "&timeout=2s") }),
		Timeout: 5 * time.Second,
		// No URL: a contender process would start before this package
		// registers gs:// (conformance's init runs first), and the server
		// arbitrates between the separate clients of one process as it does
		// between processes.
	})
}

// TestMissingBucket: a bucket that does not exist is an error on every
// call, never an empty cache, though GCS answers 404 for it as for a
// missing object.
func TestMissingBucket(t *testing.T) {
	_, endpoint := fakeGCS(t)
	c := open(t, "gs://no-such-bucket/certs?endpoint="+endpoint)
	ctx := context.Background()
	check := func(op string, err error) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s on a missing bucket succeeded", op)
		case errors.Is(err, autocert.ErrCacheMiss):
			t.Errorf("%s on a missing bucket = %v: a failure reported as a miss", op, err)
		case !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`):
			t.Errorf("%s on a missing bucket = %v; want it to name the bucket", op, err)
		}
	}
	_, err := c.Get(ctx, "example.com")
	check("Get", err)
	_, err = c.Get(ctx, "example.org") // no call has proved the bucket: asked again
	check("second Get", err)
	check("Put", c.Put(ctx, "example.com", []byte("v")))
	check("Delete", c.Delete(ctx, "example.com"))
	for _, err = range certcache.List(ctx, c, "") {
		break
	}
	check("List", err)
	_, err = certcache.AcquireLease(ctx, c, "example.com", time.Minute)
	check("AcquireLease", err)
}

// TestMissListsUntilBucketProven: GCS answers 404 for a missing bucket as
// for a missing object, so a Get miss lists the object's name to tell them
// apart, until a call proves the bucket exists; for a minute after, a
// miss is one request.
func TestMissListsUntilBucketProven(t *testing.T) {
	_, endpoint := fakeGCS(t)
	var lists atomic.Int32
	hc := &http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.URL.Query().Has("prefix") {
			lists.Add(1)
		}
		return http.DefaultTransport.RoundTrip(r)
	})}
	client, err := storage.NewClient(context.Background(), option.WithEndpoint(endpoint+"/storage/v1/"),
		option.WithoutAuthentication(), storage.WithJSONReads(), option.WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	for _, tc := range []struct {
		name   string
		prove  func(c certcache.Cache) error // nil: the first miss's listing proves it
		listed int32                         // by the two misses after prove
	}{
		{"FirstMissLists", nil, 1},
		{"PutProves", func(c certcache.Cache) error { return c.Put(context.Background(), "x.example", []byte("v")) }, 0},
		{"HitProves", func(c certcache.Cache) error {
			_, err := c.Get(context.Background(), "hit.example")
			return err
		}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			w := client.Bucket(bucket).Object("trust/hit.example").NewWriter(ctx)
			if _, err := w.Write([]byte("v")); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			c, err := ccgs.New(client, bucket, &ccgs.Options{Prefix: "trust/"}) // nothing proved yet
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			u := certcache.Uncoordinated(c)
			if tc.prove != nil {
				if err := tc.prove(u); err != nil {
					t.Fatal(err)
				}
			}
			before := lists.Load()
			for _, key := range []string{"missing-1.example", "missing-2.example"} {
				if _, err := u.Get(ctx, key); err != autocert.ErrCacheMiss { //nolint:errorlint // the contract: the bare sentinel
					t.Fatalf("Get(%s) = %v, want a miss", key, err)
				}
			}
			if got := lists.Load() - before; got != tc.listed {
				t.Errorf("two misses listed %d times, want %d", got, tc.listed)
			}
		})
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestNew: a cache made from the caller's client shares storage with one
// opened by URL, and Close leaves the client usable.
func TestNew(t *testing.T) {
	_, endpoint := fakeGCS(t)
	client := rawClient(t, endpoint)
	c, err := ccgs.New(client, bucket, &ccgs.Options{Prefix: "new/"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := certcache.Uncoordinated(c).Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	c.Close()
	got, err := open(t, cacheURL(endpoint, "new", "")).Get(ctx, "example.com")
	if err != nil || string(got) != "v" {
		t.Fatalf("Get through the URL = %q, %v; want v", got, err)
	}
	if _, err := client.Bucket(bucket).Object("new/example.com").Attrs(ctx); err != nil {
		t.Errorf("the caller's client after Close: %v", err)
	}
	for _, tc := range []struct {
		client *storage.Client
		bucket string
		want   string
	}{
		{nil, bucket, "nil client"},
		{client, "", "no bucket"},
		{client, "Bad_Bucket", "lowercase"},
	} {
		if _, err := ccgs.New(tc.client, tc.bucket, nil); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("New(%v, %q) = %v; want an error mentioning %q", tc.client != nil, tc.bucket, err, tc.want)
		}
	}
}

// TestStoppedServerFailsFast: when the emulator is stopped (its port
// refuses connections), calls fail at once with an error matching
// certcache.ErrUnavailable, never a miss, instead of waiting out the
// library's retries of the refused dial.
func TestStoppedServerFailsFast(t *testing.T) {
	srv, endpoint := fakeGCS(t)
	ctx := context.Background()
	// Without the circuit breaker, which would answer from memory after
	// the first failure: every call here reaches for the server.
	c := open(t, cacheURL(endpoint, "stopped", "&breaker=false"))
	if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	testenv.StoppedServerFailsFast(t, c, srv, "example.com", 100*time.Millisecond, true)
}

// TestLeaseObjectsStayHidden: the lease object and its clock objects are
// named where no key is, and a released lease leaves nothing behind.
func TestLeaseObjectsStayHidden(t *testing.T) {
	_, endpoint := fakeGCS(t)
	ctx := context.Background()
	a, b := open(t, cacheURL(endpoint, "hidden", "")), open(t, cacheURL(endpoint, "hidden", ""))
	la, err := certcache.AcquireLease(ctx, a, "example.com", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	// b judges a's lease: a clock object is written and deleted.
	if _, err := certcache.AcquireLease(ctx, b, "example.com", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("second AcquireLease = %v; want ErrLeaseHeld", err)
	}
	if _, err := a.Get(ctx, "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Errorf("Get of the lease's name = %v; want a miss", err)
	}
	names := leaseObjects(t, endpoint, "hidden/")
	if want := []string{"hidden/.lease-example.com"}; !slices.Equal(names, want) {
		t.Errorf("objects while the lease is held: %q; want %q", names, want)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if names := leaseObjects(t, endpoint, "hidden/"); len(names) != 0 {
		t.Errorf("objects after release: %q; want none", names)
	}
}

// leaseObjects lists the objects under prefix but the lease of the
// portable layer's exclusion probe, which it takes, and releases, on its
// own schedule when a cache first takes a lease.
func leaseObjects(t *testing.T, endpoint, prefix string) []string {
	t.Helper()
	var names []string
	for _, n := range objectNames(t, rawClient(t, endpoint), prefix) {
		if !strings.HasPrefix(n, prefix+".lease-certcache+exclusion-probe") {
			names = append(names, n)
		}
	}
	return names
}

func objectNames(t *testing.T, c *storage.Client, prefix string) []string {
	t.Helper()
	var names []string
	it := c.Bucket(bucket).Objects(context.Background(), &storage.Query{Prefix: prefix})
	for {
		attrs, err := it.Next()
		if err != nil {
			if err.Error() != "no more items in iterator" {
				t.Fatal(err)
			}
			return names
		}
		names = append(names, attrs.Name)
	}
}

// TestServerErrorsRetried: a refused connection is not retried, but
// throttling and server errors still are, as the library does.
func TestServerErrorsRetried(t *testing.T) {
	for _, status := range []int{http.StatusServiceUnavailable, http.StatusInternalServerError, http.StatusTooManyRequests} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var requests int
			srv := newTestServer(t, func(w http.ResponseWriter, r *http.Request) {
				if requests++; requests == 1 {
					w.WriteHeader(status)
					return
				}
				w.Header().Set("Content-Length", "5")
				w.Write([]byte("value"))
			})
			c := open(t, cacheURL(srv, "retried", ""))
			got, err := c.Get(context.Background(), "example.com")
			if err != nil || string(got) != "value" {
				t.Fatalf("Get = %q, %v; want the value after one retry", got, err)
			}
			if requests != 2 {
				t.Errorf("%d requests; want 2 (a %d, then the retry)", requests, status)
			}
		})
	}
}

// TestRefreshAfterExpiry: a refresh that finds, from the time of its own
// write, that the lease had expired gives it back and reports it lost, so
// that another holder takes it at once.
func TestRefreshAfterExpiry(t *testing.T) {
	_, endpoint := fakeGCS(t)
	ctx := context.Background()
	a, b := open(t, cacheURL(endpoint, "late", "")), open(t, cacheURL(endpoint, "late", ""))
	la, err := certcache.AcquireLease(ctx, a, "example.com", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond)
	if err := la.Refresh(ctx); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Fatalf("Refresh after expiry = %v; want ErrLeaseLost", err)
	}
	if _, err := certcache.AcquireLease(ctx, b, "example.com", time.Minute); err != nil {
		t.Errorf("AcquireLease after the late refresh: %v", err)
	}
	if names := leaseObjects(t, endpoint, "late/"); !slices.Equal(names, []string{"late/.lease-example.com"}) {
		t.Errorf("objects: %q; want the one lease", names)
	}
}
