package redis_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/hook"
	"github.com/certcache/certcache/internal/integration/testenv"
	goredis "github.com/redis/go-redis/v9"
)

// listKeys lists c under prefix and returns the keys, sorted. The listing
// of keys alone (driver.KeyListDriver, which a memory front's preload
// uses) must yield the same.
func listKeys(t testing.TB, c certcache.Cache, prefix string) []string {
	t.Helper()
	var keys, alone []string
	for e, err := range certcache.List(context.Background(), c, prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		keys = append(keys, e.Key)
	}
	for k, err := range hook.ListKeys(context.Background(), c, prefix) {
		if err != nil {
			t.Fatalf("ListKeys(%q): %v", prefix, err)
		}
		alone = append(alone, k)
	}
	slices.Sort(keys)
	slices.Sort(alone)
	if !slices.Equal(keys, alone) {
		t.Errorf("ListKeys(%q) = %d keys %.200q, List %d keys %.200q", prefix, len(alone), alone, len(keys), keys)
	}
	return keys
}

// testListGlobPrefixes: glob characters in a namespace or a listing prefix
// are literal. Unescaped, the namespace "g*" would list "gx"'s keys, and
// the prefix "[ab]" would list "a" and "b".
func testListGlobPrefixes(t *testing.T, u string, _ goredis.UniversalClient) {
	_, base := openNS(t, u, "lg")
	namespaces := []string{base + "x", base + "*", base + "?", base + "[x]", base + `\`, base + `\*`, base}
	caches := make([]certcache.Cache, len(namespaces))
	for i, ns := range namespaces {
		caches[i] = openPrefix(t, u, ns)
		mustPutRaw(t, caches[i], "only-in-"+ns, []byte("v"))
	}
	for i, ns := range namespaces {
		if got := listKeys(t, caches[i], ""); !slices.Equal(got, []string{"only-in-" + ns}) {
			t.Errorf("namespace %q lists %q, want only its own key", ns, got)
		}
	}

	c := caches[len(caches)-1]
	mustPutRaw(t, c, "a", []byte("v"))
	mustPutRaw(t, c, "b", []byte("v"))
	for _, k := range []string{"a*1", "ab", "a?", "[ab]", `\x`, `a\*`, "a[b]c"} {
		mustPutRaw(t, c, k, []byte("v"))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a*", []string{"a*1"}},
		{"a?", []string{"a?"}},
		{"[ab", []string{"[ab]"}},
		{"[", []string{"[ab]"}},
		{`\`, []string{`\x`}},
		{`a\`, []string{`a\*`}},
		{"a[b]", []string{"a[b]c"}},
		{"ab", []string{"ab"}},
		{"a", []string{"a", "a*1", "a?", "a[b]c", `a\*`, "ab"}},
		{"zzz", nil},
	} {
		if got := listKeys(t, c, tc.prefix); !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
		}
	}
}

// testListSkipsForeign: a listing shows the cache keys of its namespace
// with their sizes, and nothing else that lives in or near it.
func testListSkipsForeign(t *testing.T, u string, raw goredis.UniversalClient) {
	ctx := context.Background()
	c, ns := openNS(t, u, "lf")
	want := map[string]int64{
		"example.com":      3500,
		"acme_account+key": 227,
		"empty":            0,
		"sub:nested":       5, // a key of the nested namespace ns+":sub"
	}
	for k, n := range want {
		if err := raw.Set(ctx, ns+":"+k, make([]byte, n), 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	// Neighbours that must not be listed.
	for _, err := range []error{
		raw.HSet(ctx, ns+":a-hash", "f", "v").Err(),          // not a string: Get could not read it
		raw.Set(ctx, ns+":bad\x01key", "v", 0).Err(),         // not a valid key
		raw.Set(ctx, ns+":sub\x00lease:x", "token", 0).Err(), // a lease of the nested namespace
		raw.Set(ctx, leaseKey(ns, "y"), "token", 0).Err(),    // a lease of this namespace
		raw.Set(ctx, ns+"x:other", "v", 0).Err(),             // the namespace ns+"x"
		raw.Set(ctx, ns, "v", 0).Err(),                       // the bare prefix
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	got := map[string]int64{}
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatalf("List: %v", err)
		}
		if _, dup := got[e.Key]; dup {
			t.Errorf("List yielded %q twice", e.Key)
		}
		if !e.ModTime.IsZero() {
			t.Errorf("%q: ModTime %v, want zero (Redis keeps none)", e.Key, e.ModTime)
		}
		got[e.Key] = e.Size
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("List = %v, want %v", got, want)
	}
}

// testListStops: a listing of several pages lists every key once with its
// size; a consumer that stops early stops the listing, and a cancelled
// context ends it with the context's error.
func testListStops(t *testing.T, u string, raw goredis.UniversalClient) {
	ctx := context.Background()
	c, ns := openNS(t, u, "lt")
	const keys = 40_000 // three pages at least (scanCount)
	fill(t, raw, ns, keys, 10)
	sizes := 0
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		if e.Size != 10 {
			t.Fatalf("listed %+v, want size 10", e)
		}
		sizes++
	}
	if got := listKeys(t, c, ""); len(got) != keys || sizes != keys {
		t.Fatalf("listed %d keys with sizes and %d distinct, want %d", sizes, len(got), keys)
	}
	n := 0
	for _, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 3 {
			break
		}
	}
	if n != 3 {
		t.Fatalf("listed %d before stopping, want 3", n)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	n = 0
	var last error
	for _, err := range certcache.List(cctx, c, "") {
		if err != nil {
			last = err
			continue
		}
		if n++; n == 10 {
			cancel()
		}
	}
	if !errors.Is(last, context.Canceled) {
		t.Errorf("List after cancel ended with %v, want context.Canceled", last)
	}
	if n >= keys {
		t.Errorf("List listed all %d keys after its context was cancelled", n)
	}
	// The cache still works.
	if got := listKeys(t, c, "k000001"); !slices.Equal(got, []string{"k000001"}) {
		t.Errorf("List(\"k000001\") = %q after an abandoned listing", got)
	}
}

// fill stores n keys k000000… of size bytes in the namespace ns, pipelined
// (the cluster client splits the pipeline by node).
func fill(t testing.TB, raw goredis.UniversalClient, ns string, n, size int) {
	t.Helper()
	ctx := context.Background()
	v := make([]byte, size)
	for start := 0; start < n; start += 1000 {
		if _, err := raw.Pipelined(ctx, func(p goredis.Pipeliner) error {
			for i := start; i < min(start+1000, n); i++ {
				p.Set(ctx, fmt.Sprintf("%s:k%06d", ns, i), v, 0)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
}

const tenThousand = 10_000

// testListTenThousand lists 10,000 keys twice: once for the time, checking
// that each key appears once with its size, and once for the memory,
// sampling the live heap (after a GC) every 500 entries while the listing
// runs.
func testListTenThousand(t *testing.T, u string, raw goredis.UniversalClient) {
	c, ns := openNS(t, u, "l10k")
	fill(t, raw, ns, tenThousand, 100)
	ctx := context.Background()

	seen := make([]bool, tenThousand)
	start := time.Now()
	n := 0
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		var i int
		if _, err := fmt.Sscanf(e.Key, "k%06d", &i); err != nil || i < 0 || i >= tenThousand || e.Size != 100 {
			t.Fatalf("unexpected entry %+v", e)
		}
		if seen[i] {
			t.Fatalf("%q listed twice", e.Key)
		}
		seen[i] = true
		n++
	}
	elapsed := time.Since(start)
	if n != tenThousand {
		t.Fatalf("listed %d keys, want %d", n, tenThousand)
	}

	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	n = 0
	for _, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n%500 == 0 {
			runtime.GC()
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	growth := int64(peak) - int64(base)
	t.Logf("listed %d keys in %v; peak live heap growth %.0f KiB", tenThousand, elapsed.Round(time.Millisecond), float64(growth)/1024)
	// The listing holds one page, its keys and their commands: here all
	// 10,000 may be one page (a page examines 16,384 keys of the
	// keyspace), some 0.6 MiB; a listing that held every page it read
	// would grow without bound on a larger store.
	if growth > 2<<20 {
		t.Errorf("live heap grew by %d bytes while listing; the listing should hold one page", growth)
	}
}

// BenchmarkList10000 lists 10,000 keys of a single server, each op a whole
// listing: through certcache, and as the raw go-redis calls doing the same
// work (SCAN MATCH TYPE string pages of 1,000, a pipelined STRLEN per page).
func BenchmarkList10000(b *testing.B) {
	_, u := testenv.Redis(b)
	raw := rawClient(b, u)
	c, ns := openNS(b, u, "bl")
	fill(b, raw, ns, tenThousand, 100)
	ctx := context.Background()
	b.Run("certcache", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			for _, err := range certcache.List(ctx, c, "") {
				if err != nil {
					b.Fatal(err)
				}
				n++
			}
			if n != tenThousand {
				b.Fatalf("listed %d keys", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/tenThousand, "ns/key")
	})
	b.Run("raw", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n := 0
			var cursor uint64
			for {
				keys, next, err := raw.ScanType(ctx, cursor, ns+":*", 1000, "string").Result()
				if err != nil {
					b.Fatal(err)
				}
				if _, err := raw.Pipelined(ctx, func(p goredis.Pipeliner) error {
					for _, k := range keys {
						p.StrLen(ctx, k)
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
				n += len(keys)
				if cursor = next; cursor == 0 {
					break
				}
			}
			if n != tenThousand {
				b.Fatalf("listed %d keys", n)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/tenThousand, "ns/key")
	})
}
