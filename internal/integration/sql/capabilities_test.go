package sqlcache_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"github.com/certcache/certcache/driver"
	"net/url"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// The tests of leases and listing that the conformance suite does not make:
// where the SQL backend keeps leases, prefixes that are LIKE patterns, a
// listing of 10,000 keys, and MySQL's rows-affected quirks. Each runs on
// one server per dialect.

func TestPostgresCapabilities(t *testing.T) {
	capabilities(t, testenv.PostgresURL(t))
}

func TestMariaDBCapabilities(t *testing.T) {
	base := testenv.MariaDBURL(t)
	capabilities(t, base)
	// clientFoundRows makes an upsert that changes nothing count 1, like
	// an insert; SIMULTANEOUS_ASSIGNMENT makes the upsert's IFs see the
	// old row. Neither may change what a lease means.
	for _, param := range []string{"clientFoundRows=true", "sql_mode=SIMULTANEOUS_ASSIGNMENT", "interpolateParams=true"} {
		t.Run("Leases/"+param, func(t *testing.T) {
			leaseLifecycle(t, withParam(base, param+"&table=l_"+strings.ReplaceAll(strings.ToLower(param[:6]), "=", "")))
		})
	}
}

func TestSQLiteCapabilities(t *testing.T) {
	capabilities(t, "sqlite://"+filepath.Join(t.TempDir(), "caps.db"))
}

func capabilities(t *testing.T, base string) {
	t.Run("Leases", func(t *testing.T) { leaseLifecycle(t, withParam(base, "table=lifecycle")) })
	t.Run("LeaseTableApart", func(t *testing.T) { leaseTableApart(t, base) })
	t.Run("PatternPrefixes", func(t *testing.T) { patternPrefixes(t, withParam(base, "table=patterns")) })
	t.Run("List10000", func(t *testing.T) { list10000(t, withParam(base, "table=many")) })
}

// leaseLifecycle walks two holders, on two handles of one store, through
// a lease's life: held, refreshed, re-acquired, expired by the server's
// clock, taken over, lost, released.
func leaseLifecycle(t *testing.T, u string) {
	ctx := context.Background()
	a, b := open(t, u), open(t, u)
	name := fmt.Sprintf("lifecycle-%d", time.Now().UnixNano())
	la, err := certcache.AcquireLease(ctx, a, name, time.Second)
	if err != nil {
		t.Fatalf("A acquires: %v", err)
	}
	if _, err := certcache.AcquireLease(ctx, b, name, time.Second); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("B acquires A's lease: %v, want ErrLeaseHeld", err)
	}
	for i := 0; i < 3; i++ { // back to back: MySQL may see no change
		if err := la.Refresh(ctx); err != nil {
			t.Fatalf("A refreshes (%d): %v", i, err)
		}
	}
	if err := leaseDriver(t, a).AcquireLease(ctx, name, la.Token(), time.Second); err != nil {
		t.Fatalf("A re-acquires its own lease: %v", err)
	}
	time.Sleep(1200 * time.Millisecond)
	lb, err := certcache.AcquireLease(ctx, b, name, 2*time.Second)
	if err != nil {
		t.Fatalf("B acquires the expired lease: %v", err)
	}
	if err := la.Refresh(ctx); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Fatalf("A refreshes a lease B took: %v, want ErrLeaseLost", err)
	}
	if err := la.Release(ctx); err != nil {
		t.Fatalf("A releases a lease B holds: %v, want nil", err)
	}
	if _, err := certcache.AcquireLease(ctx, a, name, time.Second); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("A's release freed B's lease: acquire = %v", err)
	}
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := lb.Refresh(ctx); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Fatalf("B refreshes a released lease: %v, want ErrLeaseLost", err)
	}
	if _, err := certcache.AcquireLease(ctx, a, name, time.Second); err != nil {
		t.Fatalf("A acquires the released lease: %v", err)
	}
}

// leaseDriver returns c's driver, to re-acquire a lease with the token
// that holds it, which the public API never does. Wrappers that Open adds
// are looked through.
func leaseDriver(t *testing.T, c certcache.Cache) driver.LeaseDriver {
	t.Helper()
	for range 16 {
		switch w := c.(type) {
		case interface{ Unwrap() driver.Driver }:
			ld, ok := w.Unwrap().(driver.LeaseDriver)
			if !ok {
				t.Fatalf("%T is no LeaseDriver", w.Unwrap())
			}
			return ld
		case interface{ Unwrap() certcache.Cache }:
			c = w.Unwrap()
		default:
			t.Fatalf("%T has no driver to unwrap", c)
		}
	}
	t.Fatal("no driver under 16 wrappers")
	return nil
}

// leaseTableApart: leases live in no cache table. A lease and a key of one
// name in one namespace do not meet; the cache table x_leases (the name a
// lease table of x might have had) is an ordinary namespace; two 63-byte
// table names that share 56 bytes keep separate leases.
func leaseTableApart(t *testing.T, base string) {
	ctx := context.Background()
	x, xl := open(t, withParam(base, "table=apart")), open(t, withParam(base, "table=apart_leases"))
	if _, err := certcache.AcquireLease(ctx, x, "example.com", time.Minute); err != nil {
		t.Fatal(err)
	}
	if _, err := x.Get(ctx, "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint // the bare sentinel
		t.Errorf("Get of a lease's name = %v, want a miss", err)
	}
	for _, c := range []certcache.Cache{x, xl} {
		if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
			t.Fatal(err)
		}
		if _, err := certcache.AcquireLease(ctx, c, "other.example", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []certcache.Cache{x, xl} {
		if got := listKeys(t, c, ""); !slices.Equal(got, []string{"example.com"}) {
			t.Errorf("List = %q, want only the key", got)
		}
	}
	if _, err := certcache.AcquireLease(ctx, x, "example.com", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("Put released the lease: acquire = %v", err)
	}
	long := strings.Repeat("l", 56)
	l1, l2 := open(t, withParam(base, "table="+long+"_first")), open(t, withParam(base, "table="+long+"_other"))
	for _, c := range []certcache.Cache{l1, l2} {
		if _, err := certcache.AcquireLease(ctx, c, "example.com", time.Minute); err != nil {
			t.Errorf("63-byte table: acquire = %v (a lease table shared with the other?)", err)
		}
	}
}

// patternPrefixes: '%', '_' and '\' in a prefix match only themselves, as
// do case and multi-byte characters.
func patternPrefixes(t *testing.T, u string) {
	c := open(t, u)
	keys := []string{"a%b", "axb", "a_b", "a\\b", "a\\\\b", "A%b", "ab", "a%", "é1", "ê1", "e1", "\U0010FFFF1", "\U0010FFFF\U0010FFFF"}
	for _, k := range keys {
		if err := c.Put(context.Background(), k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"a%", []string{"a%", "a%b"}},
		{"a_", []string{"a_b"}},
		{"a\\", []string{"a\\\\b", "a\\b"}},
		{"a\\\\", []string{"a\\\\b"}},
		{"%", nil},
		{"_", nil},
		{"A", []string{"A%b"}},
		{"é", []string{"é1"}},
		{"\xc3", []string{"é1", "ê1"}}, // a character cut short
		{"\U0010FFFF", []string{"\U0010FFFF1", "\U0010FFFF\U0010FFFF"}},
		{"\xff", nil},
		{"a\x00", nil},
	} {
		got := listKeys(t, c, tc.prefix)
		slices.Sort(got)
		if !slices.Equal(got, tc.want) {
			t.Errorf("List(%q) = %q, want %q", tc.prefix, got, tc.want)
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
	return keys
}

// list10000 lists 10,000 keys (and a prefix of 1,000 of them), each once,
// with sizes and times, and logs the time and the heap it took. The heap
// growth is bounded well below what 10,000 values would take, so a listing
// that fetched the values fails.
func list10000(t *testing.T, u string) {
	const n = 10_000
	ctx := context.Background()
	c := open(t, u)
	v := make([]byte, 2048)
	key := func(i int) string { return fmt.Sprintf("k%d/%05d.example", i%10, i) }
	start := time.Now()
	if strings.HasPrefix(u, "sqlite:") {
		// Under the race detector, modernc.org/sqlite takes ~3ms a Put
		// (its C, translated to Go, is instrumented): fill the table with
		// one statement beside the cache.
		if err := c.Put(ctx, key(0), v[:0]); err != nil {
			t.Fatal(err)
		}
		sqliteFill(t, u, n, len(v))
	} else {
		sem := make(chan struct{}, 8)
		errs := make(chan error, n)
		for i := range n {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				errs <- c.Put(ctx, key(i), v[:i%len(v)])
			}()
		}
		for range n {
			if err := <-errs; err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("put %d keys in %v", n, time.Since(start).Round(time.Millisecond))
	wrote := time.Now()

	for _, tc := range []struct {
		prefix string
		want   int
	}{{"", n}, {"k3/", n / 10}} {
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		base, total0, peak := ms.HeapAlloc, ms.TotalAlloc, ms.HeapAlloc
		seen := make(map[string]bool, tc.want)
		start := time.Now()
		for e, err := range certcache.List(ctx, c, tc.prefix) {
			if err != nil {
				t.Fatal(err)
			}
			if seen[e.Key] {
				t.Fatalf("%q listed twice", e.Key)
			}
			seen[e.Key] = true
			var i int
			if _, err := fmt.Sscanf(e.Key[3:], "%05d", &i); err != nil || !strings.HasPrefix(e.Key, tc.prefix) {
				t.Fatalf("unexpected key %q", e.Key)
			}
			if e.Size != int64(i%len(v)) {
				t.Fatalf("%q: Size %d, want %d", e.Key, e.Size, i%len(v))
			}
			if e.ModTime.Before(start.Add(-time.Hour)) || e.ModTime.After(wrote.Add(2*time.Second)) {
				t.Fatalf("%q: ModTime %v, written between %v and %v", e.Key, e.ModTime, start, wrote)
			}
			if len(seen)%500 == 0 {
				runtime.ReadMemStats(&ms)
				peak = max(peak, ms.HeapAlloc)
			}
		}
		elapsed := time.Since(start)
		runtime.ReadMemStats(&ms)
		if len(seen) != tc.want {
			t.Fatalf("List(%q) yielded %d keys, want %d", tc.prefix, len(seen), tc.want)
		}
		// The values would be 10 MB; the keys, entries and the seen map
		// take a fraction of that.
		growth := peak - base
		t.Logf("List(%q): %d keys in %v; peak heap growth %.1f MiB (sampled every 500 keys), %.1f MiB allocated",
			tc.prefix, len(seen), elapsed.Round(time.Millisecond), float64(growth)/(1<<20), float64(ms.TotalAlloc-total0)/(1<<20))
		if growth > 8<<20 {
			t.Errorf("List(%q) grew the heap by %d bytes", tc.prefix, growth)
		}
	}
}

// sqliteFill writes n keys, named and sized as list10000 names and sizes
// them, into the table of the sqlite:// URL u, in one statement.
func sqliteFill(t *testing.T, u string, n, size int) {
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", pu.Path+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`WITH RECURSIVE c(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM c WHERE i + 1 < ?1) `+
		`INSERT OR REPLACE INTO "`+pu.Query().Get("table")+`" ("key", "value", updated_at) `+
		`SELECT printf('k%d/%05d.example', i % 10, i), zeroblob(i % ?2), strftime('%Y-%m-%d %H:%M:%f', 'now') FROM c`,
		n, size); err != nil {
		t.Fatal(err)
	}
}
