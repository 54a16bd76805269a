package s3_test

import (
	"bytes"
	"context"
	"errors"
	"github.com/certcache/certcache/driver"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	smithyhttp "github.com/aws/smithy-go/transport/http"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// leaseDriver returns the LeaseDriver under c (beneath issuance
// coordination), so that tests choose the tokens that certcache.AcquireLease
// would make at random.
func leaseDriver(t testing.TB, c certcache.Cache) driver.LeaseDriver {
	t.Helper()
	for range 4 {
		switch w := c.(type) {
		case interface{ Unwrap() driver.Driver }:
			ld, ok := w.Unwrap().(driver.LeaseDriver)
			if !ok {
				t.Fatalf("the s3 driver %T has no leases", w.Unwrap())
			}
			return ld
		case interface{ Unwrap() certcache.Cache }:
			c = w.Unwrap()
		}
	}
	t.Fatalf("%T does not expose its driver", c)
	return nil
}

// TestConditionalWrites checks that the server honours what the leases
// stand on: PutObject with If-None-Match: * and with If-Match, and
// DeleteObject with If-Match, each answering 412 when the condition fails
// and changing nothing.
func TestConditionalWrites(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	client := rawClient(t, endpoint)
	ctx := context.Background()
	key := aws.String("cond/object")
	put := func(body string, ifNoneMatch, ifMatch *string) (*awss3.PutObjectOutput, error) {
		return client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(bucket), Key: key,
			Body: strings.NewReader(body), IfNoneMatch: ifNoneMatch, IfMatch: ifMatch})
	}
	read := func() string {
		out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(bucket), Key: key})
		if err != nil {
			t.Fatalf("GetObject: %v", err)
		}
		defer out.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(out.Body)
		return b.String()
	}
	mustFail412 := func(what string, err error) {
		t.Helper()
		var re *smithyhttp.ResponseError
		if !errors.As(err, &re) || re.HTTPStatusCode() != http.StatusPreconditionFailed {
			t.Fatalf("%s = %v; want 412 Precondition Failed", what, err)
		}
	}

	first, err := put("one", aws.String("*"), nil)
	if err != nil {
		t.Fatalf("create with If-None-Match: * on a free name: %v", err)
	}
	_, err = put("two", aws.String("*"), nil)
	mustFail412("create with If-None-Match: * over an object", err)
	second, err := put("three", nil, first.ETag)
	if err != nil {
		t.Fatalf("replace with If-Match of the current ETag: %v", err)
	}
	_, err = put("four", nil, first.ETag)
	mustFail412("replace with If-Match of a stale ETag", err)
	if got := read(); got != "three" {
		t.Fatalf("after the failed writes the object holds %q, want %q", got, "three")
	}
	// Leases do not rely on If-Match with DeleteObject: S3 honours it, but
	// MinIO ignores it and deletes.
	_, err = client.DeleteObject(ctx, &awss3.DeleteObjectInput{Bucket: aws.String(bucket), Key: key, IfMatch: first.ETag})
	_, herr := client.HeadObject(ctx, &awss3.HeadObjectInput{Bucket: aws.String(bucket), Key: key})
	t.Logf("DeleteObject with a stale If-Match: %v; the object then: %v", err, herr)
	_ = second
}

// TestLeases walks one lease through its states with chosen tokens.
func TestLeases(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	ld := leaseDriver(t, open(t, cacheURL(endpoint, "leases", "")))
	const name, ttl = "example.com", time.Minute

	steps := []struct {
		what string
		call func() error
		want error // nil for success
	}{
		{"A acquires a free lease", func() error { return ld.AcquireLease(ctx, name, "A", ttl) }, nil},
		{"B cannot acquire it", func() error { return ld.AcquireLease(ctx, name, "B", ttl) }, certcache.ErrLeaseHeld},
		{"A acquires it again (extends)", func() error { return ld.AcquireLease(ctx, name, "A", ttl) }, nil},
		{"A refreshes", func() error { return ld.RefreshLease(ctx, name, "A", ttl) }, nil},
		{"B cannot refresh", func() error { return ld.RefreshLease(ctx, name, "B", ttl) }, certcache.ErrLeaseLost},
		{"B's release does nothing", func() error { return ld.ReleaseLease(ctx, name, "B") }, nil},
		{"so B still cannot acquire", func() error { return ld.AcquireLease(ctx, name, "B", ttl) }, certcache.ErrLeaseHeld},
		{"A releases", func() error { return ld.ReleaseLease(ctx, name, "A") }, nil},
		{"A cannot refresh a released lease", func() error { return ld.RefreshLease(ctx, name, "A", ttl) }, certcache.ErrLeaseLost},
		{"A releases again: nothing to do", func() error { return ld.ReleaseLease(ctx, name, "A") }, nil},
		{"B acquires it", func() error { return ld.AcquireLease(ctx, name, "B", ttl) }, nil},
		{"A cannot acquire it", func() error { return ld.AcquireLease(ctx, name, "A", ttl) }, certcache.ErrLeaseHeld},
	}
	for _, s := range steps {
		err := s.call()
		switch {
		case s.want == nil && err != nil:
			t.Fatalf("%s: %v", s.what, err)
		case s.want != nil && !errors.Is(err, s.want):
			t.Fatalf("%s: got %v, want an error matching %v", s.what, err, s.want)
		}
		if err != nil {
			t.Logf("%s: %v", s.what, err)
		}
	}
}

// TestLeaseExpiry: a lease another holder let lapse is taken over once the
// store's clock says it expired, and its old holder then can neither
// refresh it nor release it from under the new one.
func TestLeaseExpiry(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	ld := leaseDriver(t, open(t, cacheURL(endpoint, "expiry", "")))
	const name, ttl = "expiring.example", 2 * time.Second
	start := time.Now() // before the lease is written: it expires after start+ttl
	if err := ld.AcquireLease(ctx, name, "old", ttl); err != nil {
		t.Fatal(err)
	}
	err := ld.AcquireLease(ctx, name, "new", time.Minute)
	switch {
	case time.Since(start) >= ttl:
		// A loaded machine took the whole TTL: the lease may be over.
		t.Logf("the first two calls took %v, the lease's TTL", time.Since(start))
	case !errors.Is(err, certcache.ErrLeaseHeld):
		t.Fatalf("acquiring a running lease = %v, want ErrLeaseHeld", err)
	}
	// A lease of ttl lasts at least ttl by the store's clock: exactly ttl
	// on MinIO, whose listings give milliseconds, and at most ttl+2s on a
	// store that gives whole seconds.
	for err != nil && time.Since(start) < ttl+30*time.Second { // slack for a loaded machine
		if err = ld.AcquireLease(ctx, name, "new", time.Minute); err == nil {
			break
		}
		if !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Fatalf("acquiring: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("a lease of %v was still held after %v: %v", ttl, time.Since(start), err)
	}
	took := time.Since(start)
	t.Logf("a lease of %v was taken over after %v", ttl, took.Round(10*time.Millisecond))
	if took < ttl {
		t.Errorf("a lease of %v was taken over after %v, before it expired", ttl, took)
	}
	if err := ld.RefreshLease(ctx, name, "old", ttl); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("old holder's refresh = %v, want ErrLeaseLost", err)
	}
	if err := ld.ReleaseLease(ctx, name, "old"); err != nil {
		t.Errorf("old holder's release = %v, want nil", err)
	}
	if err := ld.AcquireLease(ctx, name, "third", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("after the old holder's release, a third acquire = %v; want ErrLeaseHeld (the new holder's lease must survive)", err)
	}
	if err := ld.RefreshLease(ctx, name, "new", time.Minute); err != nil {
		t.Errorf("new holder's refresh: %v", err)
	}
}

// TestLeaseRace: of many caches (as on many nodes) acquiring the same free
// or expired lease at once, exactly one wins.
func TestLeaseRace(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	const nodes, rounds = 8, 4
	caches := make([]certcache.Cache, nodes)
	for i := range caches {
		caches[i] = open(t, cacheURL(endpoint, "race", ""))
	}
	ctx := context.Background()
	for round := range rounds {
		// Rounds alternate between a free lease (the race is on creating
		// it) and an expired one (the race is on replacing it).
		if round%2 == 1 {
			if _, err := certcache.AcquireLease(ctx, caches[0], "race.example", time.Second); err != nil {
				t.Fatal(err)
			}
			time.Sleep(3100 * time.Millisecond) // ttl + 2 s: expired by any reading of the HTTP dates
		}
		var wins atomic.Int32
		var held []*certcache.Lease
		var mu sync.Mutex
		var wg sync.WaitGroup
		for _, c := range caches {
			wg.Go(func() {
				l, err := certcache.AcquireLease(ctx, c, "race.example", time.Minute)
				switch {
				case err == nil:
					wins.Add(1)
					mu.Lock()
					held = append(held, l)
					mu.Unlock()
				case !errors.Is(err, certcache.ErrLeaseHeld):
					t.Errorf("round %d: %v", round, err)
				}
			})
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("round %d: %d of %d nodes acquired the lease; want exactly 1", round, n, nodes)
		}
		if err := held[0].Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

// TestLeaseNames: hostile lease names map to distinct objects that are
// never keys: a key spelled like a lease stays independent of it, and
// List never shows a lease.
func TestLeaseNames(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	c := open(t, cacheURL(endpoint, "names", ""))
	ld := leaseDriver(t, c)
	var names []string
	for _, n := range drivertest.HostileKeys {
		if certcache.ValidateKey(n) == nil {
			names = append(names, n)
		}
	}
	names = append(names, ".lease-x", "lease-x", ".lease-")
	for _, n := range names {
		if err := ld.AcquireLease(ctx, n, "A", time.Minute); err != nil {
			t.Fatalf("AcquireLease(%.40q): %v", n, err)
		}
	}
	for _, n := range names {
		// Every name is held, by A: no two names shared an object that a
		// later acquisition overwrote.
		if err := ld.RefreshLease(ctx, n, "A", time.Minute); err != nil {
			t.Errorf("RefreshLease(%.40q): %v", n, err)
		}
		if err := ld.AcquireLease(ctx, n, "B", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Errorf("AcquireLease(%.40q) by B = %v; want ErrLeaseHeld", n, err)
		}
		if _, err := c.Get(ctx, n); err != autocert.ErrCacheMiss { //nolint:errorlint
			t.Errorf("Get(%.40q) while a lease of that name is held = %v; want a miss", n, err)
		}
	}
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		t.Errorf("List shows %.40q, but only leases are stored", e.Key)
	}
	// A key of each name is stored and read beside the lease.
	for _, n := range names {
		if err := c.Put(ctx, n, []byte("value of "+n)); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Get(ctx, n); err != nil || string(got) != "value of "+n {
			t.Errorf("Get(%.40q) = %.40q, %v", n, got, err)
		}
		if err := ld.RefreshLease(ctx, n, "A", time.Minute); err != nil {
			t.Errorf("RefreshLease(%.40q) after a Put of that key: %v", n, err)
		}
	}
	listed := 0
	for _, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		listed++
	}
	if listed != len(names) {
		t.Errorf("List shows %d entries; want the %d keys and no lease", listed, len(names))
	}
}

// TestLeaseNotALease: an object under a lease's name that is not a lease
// (written by something else) is an error, neither a free nor a held lease.
func TestLeaseNotALease(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	putRaw(t, rawClient(t, endpoint), "corrupt/.lease-example.com", nil)
	ld := leaseDriver(t, open(t, cacheURL(endpoint, "corrupt", "")))
	for op, err := range map[string]error{
		"AcquireLease": ld.AcquireLease(ctx, "example.com", "A", time.Minute),
		"RefreshLease": ld.RefreshLease(ctx, "example.com", "A", time.Minute),
		"ReleaseLease": ld.ReleaseLease(ctx, "example.com", "A"),
	} {
		if err == nil || errors.Is(err, certcache.ErrLeaseHeld) || errors.Is(err, certcache.ErrLeaseLost) || !strings.Contains(err.Error(), "not a lease") {
			t.Errorf("%s over a foreign object = %v; want an error saying it is not a lease", op, err)
		}
	}
}
