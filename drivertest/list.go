package drivertest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"runtime"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/hook"
)

// listed returns what certcache.List yields for prefix, failing on an error
// or a key yielded twice, or if the listing of keys alone (keyListings)
// yields other keys.
func listed(t testing.TB, c certcache.Cache, prefix string) map[string]certcache.Entry {
	t.Helper()
	got := map[string]certcache.Entry{}
	for e, err := range certcache.List(ctx(t), c, prefix) {
		if err != nil {
			t.Fatalf("List(%q): %v", prefix, err)
		}
		if _, dup := got[e.Key]; dup {
			t.Errorf("List(%q) yielded %q twice", prefix, e.Key)
		}
		got[e.Key] = e
	}
	keys := map[string]certcache.Entry{}
	for k, err := range hook.ListKeys(ctx(t), c, prefix) {
		if err != nil {
			t.Fatalf("ListKeys(%q): %v", prefix, err)
		}
		if _, dup := keys[k]; dup {
			t.Errorf("ListKeys(%q) yielded %q twice", prefix, k)
		}
		keys[k] = certcache.Entry{Key: k}
	}
	sameKeys(t, fmt.Sprintf("ListKeys(%q)", prefix), keys, slices.Collect(maps.Keys(got)))
	return got
}

// keyListings are the two listings of keys: certcache.List's, and the
// listing of keys alone that a memory front's preload uses
// (driver.KeyListDriver where the driver has it, List's keys otherwise).
func keyListings(ctx context.Context, c certcache.Cache, prefix string) map[string]iter.Seq2[string, error] {
	return map[string]iter.Seq2[string, error]{
		"List": func(yield func(string, error) bool) {
			for e, err := range certcache.List(ctx, c, prefix) {
				if !yield(e.Key, err) {
					return
				}
			}
		},
		"ListKeys": hook.ListKeys(ctx, c, prefix),
	}
}

func sameKeys(t testing.TB, what string, got map[string]certcache.Entry, want []string) {
	t.Helper()
	g := slices.Sorted(maps.Keys(got))
	w := slices.Sorted(slices.Values(slices.Clone(want)))
	if !slices.Equal(g, w) {
		t.Errorf("%s lists %d keys %.300q, want %d keys %.300q", what, len(g), g, len(w), w)
	}
}

func (s *suite) testListPutDelete(t *testing.T) {
	c := s.open(t, s.ns())
	sameKeys(t, "an empty cache", listed(t, c, ""), nil)
	before := time.Now()
	keys := []string{"example.com", "example.com+rsa", "acme_account+key", "tok+http-01", "example.org+token"}
	for i, k := range keys {
		mustPut(t, c, k, PEMLike(100*(i+1)))
	}
	after := time.Now()
	got := listed(t, c, "")
	sameKeys(t, "after Put", got, keys)
	for i, k := range keys {
		e := got[k]
		if e.Size != int64(100*(i+1)) && !s.h.SealedSizes {
			t.Errorf("List: %q has Size %d, want %d", k, e.Size, 100*(i+1))
		}
		// The store's clock may differ from ours a little.
		if !e.ModTime.IsZero() && (e.ModTime.Before(before.Add(-5*time.Minute)) || e.ModTime.After(after.Add(5*time.Minute))) {
			t.Errorf("List: %q has ModTime %v, written between %v and %v", k, e.ModTime, before, after)
		}
	}
	for _, k := range keys[:2] {
		if err := c.Delete(ctx(t), k); err != nil {
			t.Fatal(err)
		}
	}
	sameKeys(t, "after Delete", listed(t, c, ""), keys[2:])
}

func (s *suite) testListPrefix(t *testing.T) {
	c := s.open(t, s.ns())
	keys := []string{"a", "ab", "abc", "b", "a%", "a%b", "a_b", "a*", "a?", "a[x]", `a\b`, "a/b", "é", "éa"}
	for _, k := range keys {
		mustPut(t, c, k, []byte(k))
	}
	for _, tc := range []struct {
		prefix string
		want   []string
	}{
		{"", keys},
		{"a", []string{"a", "ab", "abc", "a%", "a%b", "a_b", "a*", "a?", "a[x]", `a\b`, "a/b"}},
		{"ab", []string{"ab", "abc"}},
		{"a%", []string{"a%", "a%b"}}, // LIKE and glob characters are literal
		{"a_", []string{"a_b"}},
		{"a*", []string{"a*"}},
		{"a?", []string{"a?"}},
		{"a[", []string{"a[x]"}},
		{`a\`, []string{`a\b`}},
		{"a/", []string{"a/b"}},
		{"é", []string{"é", "éa"}},
		{"zz", nil},
	} {
		sameKeys(t, fmt.Sprintf("List(%q)", tc.prefix), listed(t, c, tc.prefix), tc.want)
	}
}

func (s *suite) testListNamespaces(t *testing.T) {
	ns := s.ns()
	a, b, ab := s.open(t, ns), s.open(t, ns+"-b"), s.open(t, ns+"b")
	mustPut(t, a, "in-a", []byte("a"))
	mustPut(t, b, "in-b", []byte("b"))
	mustPut(t, ab, "in-ab", []byte("ab"))
	sameKeys(t, "namespace a", listed(t, a, ""), []string{"in-a"})
	sameKeys(t, "namespace a-b", listed(t, b, ""), []string{"in-b"})
	sameKeys(t, "namespace ab", listed(t, ab, ""), []string{"in-ab"})
}

func (s *suite) testListHostile(t *testing.T) {
	c := s.open(t, s.ns())
	var stored []string
	for _, k := range HostileKeys {
		err := c.Put(ctx(t), k, []byte("v"))
		if err == nil {
			stored = append(stored, k)
		} else if !errors.Is(err, certcache.ErrInvalidKey) {
			t.Fatalf("Put(%q): %v", k, err)
		}
	}
	sameKeys(t, "hostile keys", listed(t, c, ""), stored)
}

func (s *suite) testListStop(t *testing.T) {
	c := s.open(t, s.ns())
	for i := range 20 {
		mustPut(t, c, fmt.Sprintf("k%02d", i), []byte("v"))
	}
	for name, keys := range keyListings(ctx(t), c, "") {
		n := 0
		for _, err := range keys {
			if err != nil {
				t.Fatalf("%s: %v", name, err)
			}
			if n++; n == 3 {
				break
			}
		}
		if n != 3 {
			t.Errorf("%s stopped after %d entries, want 3", name, n)
		}
	}
	cctx, cancel := context.WithCancel(ctx(t))
	cancel()
	for name, keys := range keyListings(cctx, c, "") {
		for _, err := range keys {
			if !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context yields %v, want context.Canceled", name, err)
			}
			break
		}
	}
}

// listMany is how many keys ListManyKeysBoundedMemory stores.
const listMany = 10000

func (s *suite) testListMany(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: stores 10,000 keys")
	}
	c := s.open(t, s.ns())
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < listMany; i += 16 {
				if err := putPatiently(t, c, fmt.Sprintf("host-%05d.example.com", i)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Put: %v", err)
	}
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base, peak := ms.HeapAlloc, ms.HeapAlloc
	start := time.Now()
	n := 0
	seen := make(map[string]bool, listMany) // the test's own memory, measured apart
	runtime.ReadMemStats(&ms)
	base = ms.HeapAlloc
	for e, err := range certcache.List(ctx(t), c, "") {
		if err != nil {
			t.Fatalf("List after %d entries: %v", n, err)
		}
		if seen[e.Key] {
			t.Fatalf("List yielded %q twice", e.Key)
		}
		seen[e.Key] = true
		if n++; n%500 == 0 {
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapAlloc)
		}
	}
	elapsed := time.Since(start)
	if n != listMany {
		t.Fatalf("List yielded %d keys, want %d", n, listMany)
	}
	// seen holds ~10,000 short strings (under 1 MiB); a listing that held
	// every entry or page at once would add several MiB more.
	grew := int64(peak) - int64(base)
	t.Logf("listed %d keys in %v; heap grew by at most %.1f MiB while listing", n, elapsed.Round(time.Millisecond), float64(grew)/(1<<20))
	if grew > 48<<20 {
		t.Errorf("heap grew by %d MiB while listing %d keys; a listing must stream", grew>>20, n)
	}
}

// putPatiently stores a small value under key, trying again for a minute
// while the store is unavailable: filling a store with 10,000 keys on a
// loaded machine may see a call time out (and the breaker open), which is
// not what the listing case is about.
func putPatiently(t testing.TB, c certcache.Cache, key string) error {
	deadline := time.Now().Add(time.Minute)
	for {
		err := c.Put(ctx(t), key, []byte("v"))
		if err == nil || !errors.Is(err, certcache.ErrUnavailable) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func (s *suite) testListBroken(t *testing.T) {
	c, want, ok := s.openBroken(t)
	if !ok {
		return
	}
	for name, keys := range keyListings(context.Background(), c, "") {
		n := 0
		for _, err := range keys {
			n++
			s.checkFailure(t, name, err, want)
		}
		if n != 1 {
			t.Errorf("%s on a broken backend yielded %d times, want one error", name, n)
		}
	}
}
