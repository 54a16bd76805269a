package azblob_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// leaseNames are names that a careless mapping would confuse with each
// other, with keys, or with paths.
var leaseNames = []string{
	"example.com", "a/b", "a%2Fb", "../x", ".", "..", "x.", "~lease", ":*?", "bücher",
	strings.Repeat("n", certcache.MaxKeyLen),
	strings.Repeat("n", certcache.MaxKeyLen-1) + "m",
}

// TestLeases walks a lease through its life between two caches on the
// same namespace, as two nodes of a fleet would share it.
func TestLeases(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	u := "azblob://leases/p?create_container=true&endpoint=" + ep
	a, b := open(t, u), open(t, u)
	ctx := context.Background()

	var la, lb *certcache.Lease
	acquire := func(c certcache.Cache, l **certcache.Lease) func() error {
		return func() (err error) {
			*l, err = certcache.AcquireLease(ctx, c, "example.com", time.Minute)
			return err
		}
	}
	var other *certcache.Lease
	for _, s := range []struct {
		what string
		fn   func() error
		want error
	}{
		{"a acquires a free lease", acquire(a, &la), nil},
		{"b acquires a's lease", acquire(b, &other), certcache.ErrLeaseHeld},
		{"a refreshes", func() error { return la.Refresh(ctx) }, nil},
		{"a releases", func() error { return la.Release(ctx) }, nil},
		{"b acquires the released lease", acquire(b, &lb), nil},
		{"a refreshes after b took it", func() error { return la.Refresh(ctx) }, certcache.ErrLeaseLost},
		{"a releases b's lease: nothing happens", func() error { return la.Release(ctx) }, nil},
		{"a acquires while b still holds", acquire(a, &other), certcache.ErrLeaseHeld},
		{"b refreshes", func() error { return lb.Refresh(ctx) }, nil},
		{"b releases", func() error { return lb.Release(ctx) }, nil},
		{"b refreshes after release", func() error { return lb.Refresh(ctx) }, certcache.ErrLeaseLost},
		{"b releases twice", func() error { return lb.Release(ctx) }, nil},
		{"a acquires again", acquire(a, &la), nil},
	} {
		err := s.fn()
		if (s.want == nil && err != nil) || (s.want != nil && !errors.Is(err, s.want)) {
			t.Fatalf("%s: %v; want %v", s.what, err, s.want)
		}
	}
}

// TestLeaseExpiry: a lease is taken over once it expires by the store's
// clock, never before its TTL, and its holder then cannot refresh it.
func TestLeaseExpiry(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	u := "azblob://leases/exp?create_container=true&endpoint=" + ep
	a, b := open(t, u), open(t, u)
	ctx := context.Background()
	const ttl = time.Second
	la, err := certcache.AcquireLease(ctx, a, "renew", ttl)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	var lb *certcache.Lease
	for lb == nil {
		lb, err = certcache.AcquireLease(ctx, b, "renew", ttl)
		if err != nil && !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Fatal(err)
		}
		if time.Since(start) > ttl+5*time.Second {
			t.Fatalf("lease of %v still held after %v: %v", ttl, time.Since(start), err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	took := time.Since(start)
	t.Logf("a lease of %v was taken over after %v", ttl, took)
	if took < ttl {
		t.Errorf("lease of %v taken over after %v: before it expired", ttl, took)
	}
	if err := la.Refresh(ctx); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("refresh of the expired, taken lease = %v; want ErrLeaseLost", err)
	}
	// Refreshing keeps a lease past its TTL.
	for range 3 {
		time.Sleep(ttl / 2)
		if err := lb.Refresh(ctx); err != nil {
			t.Fatalf("refresh every half TTL: %v", err)
		}
	}
	if _, err := certcache.AcquireLease(ctx, a, "renew", ttl); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("acquire of a refreshed lease = %v; want ErrLeaseHeld", err)
	}
	// Expired but not taken over: its holder cannot refresh it either.
	time.Sleep(ttl + 2*time.Second)
	if err := lb.Refresh(ctx); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("refresh of an expired lease = %v; want ErrLeaseLost", err)
	}
}

// TestLeaseNames: hostile names are distinct leases, and leases never
// show to Get or List, nor collide with keys of the same spelling.
func TestLeaseNames(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	u := "azblob://leases/names?create_container=true&endpoint=" + ep
	a, b := open(t, u), open(t, u)
	ctx := context.Background()
	for _, name := range leaseNames {
		if _, err := certcache.AcquireLease(ctx, a, name, time.Minute); err != nil {
			t.Errorf("acquire %.40q: %v", name, err)
		}
	}
	for _, name := range leaseNames {
		if _, err := certcache.AcquireLease(ctx, b, name, time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Errorf("second acquire of %.40q = %v; want ErrLeaseHeld", name, err)
		}
		if _, err := a.Get(ctx, name); err != autocert.ErrCacheMiss { //nolint:errorlint
			t.Errorf("Get(%.40q) with only a lease of that name = %v; want a miss", name, err)
		}
	}
	for e, err := range certcache.List(ctx, a, "") {
		t.Errorf("List with only leases yields %q, %v", e.Key, err)
	}
	// A key spelled like a lease's blob stays a key.
	if err := a.Put(ctx, "~lease/example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if got, err := a.Get(ctx, "~lease/example.com"); err != nil || string(got) != "v" {
		t.Errorf("Get(~lease/example.com) = %q, %v", got, err)
	}
	if keys := listKeys(t, a, ""); !slices.Equal(keys, []string{"~lease/example.com"}) {
		t.Errorf("List = %q; want the one key", keys)
	}
}

// TestLeaseUnreachable: a store that cannot be reached fails every lease
// call with ErrUnavailable, never success.
func TestLeaseUnreachable(t *testing.T) {
	useKey(t, dev)
	c := open(t, "azblob://certs?timeout=2s&endpoint=http://"+testenv.ClosedAddr(t)+"/"+dev.Name)
	ctx := context.Background()
	if _, err := certcache.AcquireLease(ctx, c, "x", time.Minute); !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("acquire = %v; want ErrUnavailable", err)
	}
	for _, err := range certcache.List(ctx, c, "") {
		if !errors.Is(err, certcache.ErrUnavailable) {
			t.Errorf("List = %v; want ErrUnavailable", err)
		}
	}
}

func listKeys(t *testing.T, c certcache.Cache, prefix string) []string {
	t.Helper()
	var keys []string
	for e, err := range certcache.List(context.Background(), c, prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = append(keys, e.Key)
	}
	sort.Strings(keys)
	return keys
}

// TestList lists hostile keys under every kind of prefix, next to a cache
// whose prefix extends this one's and next to leases, neither of which may
// show.
func TestList(t *testing.T) {
	_, ep := testenv.Azurite(t)
	useKey(t, dev)
	c := open(t, "azblob://list/p?create_container=true&endpoint="+ep)
	nested := open(t, "azblob://list/p/q?create_container=true&endpoint="+ep)
	ctx := context.Background()
	keys := []string{
		"example.com", "example.com+rsa", "example.org", "a", "a.", "a.b", ".", "..", ".a", "a/b", "a%2Fb",
		"%", "~", "~lease/x", "bücher.example", "b", strings.Repeat("x", certcache.MaxKeyLen),
		strings.Repeat("x", certcache.MaxKeyLen-1) + "y", strings.Repeat("x", certcache.MaxKeyLen-1) + ".",
		strings.Repeat("/", 400), strings.Repeat("/", 399) + "a",
	}
	before := time.Now().Add(-time.Minute)
	for i, key := range keys {
		if err := c.Put(ctx, key, []byte(strings.Repeat("v", i))); err != nil {
			t.Fatalf("Put(%.40q): %v", key, err)
		}
	}
	if err := nested.Put(ctx, "example.com", []byte("nested")); err != nil {
		t.Fatal(err)
	}
	if _, err := certcache.AcquireLease(ctx, c, "example.com", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, prefix := range []string{
		"", "e", "example.", "example.com", "a", "a.", ".", "..", "a/", "%", "~", "~lease/", "nope",
		strings.Repeat("x", 900), strings.Repeat("x", certcache.MaxKeyLen-1), strings.Repeat("/", 350),
	} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		sort.Strings(want)
		if got := listKeys(t, c, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%.40q) = %.300q; want %.300q", prefix, got, want)
		}
	}
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		i := slices.Index(keys, e.Key)
		if e.Size != int64(i) || e.ModTime.Before(before) || e.ModTime.After(time.Now().Add(time.Minute)) {
			t.Errorf("entry %.40q: size %d, modtime %v; want %d and about now", e.Key, e.Size, e.ModTime, i)
		}
	}
	if got := listKeys(t, nested, ""); !slices.Equal(got, []string{"example.com"}) {
		t.Errorf("nested namespace lists %q", got)
	}
	// A missing container is an error unless the cache creates it.
	missing := open(t, "azblob://nosuchcontainer?endpoint="+ep)
	for _, err := range certcache.List(ctx, missing, "") {
		if err == nil || !strings.Contains(err.Error(), "create_container=true") {
			t.Errorf("List of a missing container = %v", err)
		}
	}
	for e, err := range certcache.List(ctx, open(t, "azblob://nosuchcontainer?create_container=true&endpoint="+ep), "") {
		t.Errorf("List of a missing container with create_container = %q, %v; want nothing", e.Key, err)
	}
}

// TestRefusedIsQuick (issue 18): with the store stopped, a call fails at
// once with ErrUnavailable instead of retrying until the timeout. The
// circuit breaker is off: it would answer every call after the first
// without reaching the driver.
func TestRefusedIsQuick(t *testing.T) {
	srv, ep := testenv.Azurite(t)
	useKey(t, dev)
	c := open(t, "azblob://stopped/p?create_container=true&breaker=false&endpoint="+ep)
	ctx := context.Background()
	if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	srv.Stop(t)
	calls := []struct {
		op string
		fn func() error
	}{
		{"Get", func() error { _, err := c.Get(ctx, "example.com"); return err }},
		{"Put", func() error { return c.Put(ctx, "example.com", []byte("w")) }},
		{"AcquireLease", func() error { _, err := certcache.AcquireLease(ctx, c, "example.com", time.Minute); return err }},
		{"List", func() error {
			for _, err := range certcache.List(ctx, c, "") {
				return err
			}
			return nil
		}},
	}
	for _, call := range calls {
		var times []time.Duration
		for range 5 {
			start := time.Now()
			err := call.fn()
			times = append(times, time.Since(start))
			if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !errors.Is(err, certcache.ErrUnavailable) {
				t.Errorf("%s with the store stopped = %v; want a non-miss error matching ErrUnavailable", call.op, err)
			}
		}
		slices.Sort(times)
		median := times[len(times)/2]
		t.Logf("%s with the store stopped: median %v of %v", call.op, median, times)
		if median > time.Second {
			t.Errorf("%s with the store stopped: median %v; want well under a second", call.op, median)
		}
	}
}

// BenchmarkList10k lists a namespace of 10,000 keys, through certcache.List
// and through the SDK's own pager, and reports the peak growth of the live
// heap while listing, which stays at about a page's worth.
func BenchmarkList10k(b *testing.B) {
	_, ep := testenv.Azurite(b)
	useKey(b, dev)
	c := open(b, "azblob://bench/list10k?create_container=true&endpoint="+ep)
	ctx := context.Background()
	const n = 10000
	v := []byte("v")
	var wg sync.WaitGroup
	errs := make(chan error, 1)
	keys := make(chan string)
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				if err := c.Put(ctx, k, v); err != nil {
					select {
					case errs <- err:
					default:
					}
				}
			}
		})
	}
	start := time.Now()
	for i := range n {
		keys <- fmt.Sprintf("host-%05d.example.com+rsa", i)
	}
	close(keys)
	wg.Wait()
	select {
	case err := <-errs:
		b.Fatal(err)
	default:
	}
	b.Logf("put %d keys in %v", n, time.Since(start))

	// list lists through f, reporting the peak growth of the live heap.
	list := func(b *testing.B, f func(yield func() bool) (int, error)) {
		var base, ms runtime.MemStats
		var peak uint64
		b.ReportAllocs()
		for b.Loop() {
			runtime.GC()
			runtime.ReadMemStats(&base)
			count, err := f(func() bool {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc-min(ms.HeapAlloc, base.HeapAlloc))
				return true
			})
			if err != nil {
				b.Fatal(err)
			}
			if count != n {
				b.Fatalf("listed %d keys, want %d", count, n)
			}
		}
		b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
	}
	b.Run("certcache", func(b *testing.B) {
		list(b, func(sample func() bool) (int, error) {
			count := 0
			for _, err := range certcache.List(ctx, c, "") {
				if err != nil {
					return count, err
				}
				if count++; count%250 == 0 {
					sample()
				}
			}
			return count, nil
		})
	})
	// The SDK's own listing of the same blobs, pages of 1,000 as List asks.
	client := rawClient(b, ep, dev)
	b.Run("raw", func(b *testing.B) {
		list(b, func(sample func() bool) (int, error) {
			count := 0
			pager := client.NewListBlobsFlatPager("bench", &azblob.ListBlobsFlatOptions{Prefix: ptr("list10k/"), MaxResults: ptr(int32(1000))})
			for pager.More() {
				page, err := pager.NextPage(ctx)
				if err != nil {
					return count, err
				}
				for range page.Segment.BlobItems {
					if count++; count%250 == 0 {
						sample()
					}
				}
			}
			return count, nil
		})
	})
}

func ptr[T any](v T) *T { return &v }
