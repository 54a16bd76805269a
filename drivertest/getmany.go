package drivertest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
)

// getMany returns certcache.GetMany's values for keys, failing on an
// error or on values that do not line up with keys.
func getMany(t testing.TB, c certcache.Cache, keys []string) [][]byte {
	t.Helper()
	values, err := certcache.GetMany(ctx(t), c, keys)
	if err != nil {
		t.Fatalf("GetMany(%d keys): %v", len(keys), err)
	}
	if len(values) != len(keys) {
		t.Fatalf("GetMany(%d keys) returned %d values", len(keys), len(values))
	}
	return values
}

// checkValues fails unless values[i] is want[keys[i]], nil for a key
// missing from want.
func checkValues(t testing.TB, keys []string, values [][]byte, want map[string][]byte) {
	t.Helper()
	bad := 0
	for i, k := range keys {
		w, ok := want[k]
		switch got := values[i]; {
		case !ok && got != nil:
			t.Errorf("GetMany: %.60q is missing, got %d bytes", k, len(got))
		case ok && got == nil:
			t.Errorf("GetMany: %.60q holds %d bytes, reported missing", k, len(w))
		case ok && !bytes.Equal(got, w):
			t.Errorf("GetMany: %.60q = %d bytes %.40q…, want %d bytes %.40q…", k, len(got), got, len(w), w)
		default:
			continue
		}
		if bad++; bad == 10 {
			t.Fatal("GetMany: too many wrong values")
		}
	}
}

// putAll puts want into c, 16 at a time.
func putAll(t testing.TB, c certcache.Cache, want map[string][]byte) {
	t.Helper()
	keys := make(chan string)
	var (
		wg     sync.WaitGroup
		failed atomic.Value
	)
	for range 16 {
		wg.Go(func() {
			for k := range keys {
				if err := c.Put(ctx(t), k, want[k]); err != nil {
					failed.Store(fmt.Errorf("Put(%.60q): %w", k, err))
				}
			}
		})
	}
	for k := range want {
		keys <- k
	}
	close(keys)
	wg.Wait()
	if err, _ := failed.Load().(error); err != nil {
		t.Fatal(err)
	}
}

// testGetManyMixed: present, missing, repeated and empty values in one
// call, through issuance coordination too (which takes no lease for it).
func (s *suite) testGetManyMixed(t *testing.T) {
	ns := s.ns()
	c := s.open(t, ns)
	want := map[string][]byte{"example.com": CertValue(), "example.com+rsa": PEMLike(2000), "acme_account+key": []byte("k"), "empty.example": {}}
	putAll(t, c, want)
	keys := []string{"missing.example", "example.com", "acme_account+key", "example.com", "empty.example", "other.example+token", "example.com+rsa"}
	values := getMany(t, c, keys)
	checkValues(t, keys, values, want)
	if values[4] == nil || len(values[4]) != 0 {
		t.Errorf("GetMany of a stored empty value = %v, want an empty, non-nil slice", values[4])
	}
	values[1][0] ^= 0xff // each slice is the caller's own, a repeated key's too
	checkValues(t, keys[3:4], values[3:4], want)
	if v := getMany(t, c, nil); len(v) != 0 {
		t.Errorf("GetMany of no keys = %d values", len(v))
	}
	co := s.openCoordinated(t, ns)
	checkValues(t, keys, getMany(t, co, keys), want)
	mustMiss(t, co, "missing.example") // no lease was left behind by GetMany
}

// testGetManyHostile: every hostile key the backend stores reads back as
// itself; a key no backend stores fails the whole call.
func (s *suite) testGetManyHostile(t *testing.T) {
	c := s.open(t, s.ns())
	want := map[string][]byte{}
	var keys []string
	for i, k := range HostileKeys {
		v := fmt.Appendf(nil, "value %d", i)
		if err := c.Put(ctx(t), k, v); err != nil {
			if !errors.Is(err, certcache.ErrInvalidKey) {
				t.Fatalf("Put(%.60q): %v", k, err)
			}
			continue
		}
		want[k] = v
		keys = append(keys, k)
		if missing := k + "-never-written"; certcache.ValidateKey(missing) == nil {
			keys = append(keys, missing)
		}
	}
	checkValues(t, keys, getMany(t, c, keys), want)
	for _, bad := range RefusedKeys {
		values, err := certcache.GetMany(ctx(t), c, []string{"a", bad})
		if values != nil || !errors.Is(err, certcache.ErrInvalidKey) {
			t.Errorf("GetMany with the key %.40q = %d values, %v; want no values and ErrInvalidKey", bad, len(values), err)
		}
		s.checkSecrets(t, "GetMany", err)
	}
}

// testGetManyLarge: values up to MaxValueSize come back whole.
func (s *suite) testGetManyLarge(t *testing.T) {
	c := s.open(t, s.ns())
	want := map[string][]byte{"big": bytes.Repeat([]byte{0, 0xff}, 1<<19), "max": PEMLike(certcache.MaxValueSize), "small": []byte("s")}
	if s.h.SealedSizes {
		want["max"] = want["max"][:certcache.MaxValueSize-1024] // room for the sealing
	}
	putAll(t, c, want)
	keys := []string{"big", "max", "small", "none"}
	checkValues(t, keys, getMany(t, c, keys), want)
}

// testGetManyChunks: more keys than a backend reads in one round trip
// (certcache reads 1,000 per call of a GetManyDriver), missing ones among
// them.
func (s *suite) testGetManyChunks(t *testing.T) {
	c := s.open(t, s.ns())
	const n = 1200
	want := map[string][]byte{}
	keys := make([]string, 0, n)
	for i := range n {
		k := fmt.Sprintf("host-%04d.example", i)
		keys = append(keys, k)
		if i%3 != 1 {
			want[k] = fmt.Appendf(nil, "value of %s", k)
		}
	}
	putAll(t, c, want)
	checkValues(t, keys, getMany(t, c, keys), want)
	t.Logf("reads in batches: %v", hook.ReadsInBatches(c))
}

// testGetManyNamespaces: a cache reads only its own namespace's keys.
func (s *suite) testGetManyNamespaces(t *testing.T) {
	ns := s.ns()
	a, b, ab := s.open(t, ns), s.open(t, ns+"-b"), s.open(t, ns+"b")
	mustPut(t, a, "k", []byte("a"))
	mustPut(t, b, "k", []byte("b"))
	mustPut(t, b, "only-b", []byte("b"))
	mustPut(t, ab, "only-ab", []byte("ab"))
	keys := []string{"k", "only-b", "only-ab"}
	checkValues(t, keys, getMany(t, a, keys), map[string][]byte{"k": []byte("a")})
	checkValues(t, keys, getMany(t, b, keys), map[string][]byte{"k": []byte("b"), "only-b": []byte("b")})
}

// testGetManyCancelled: an ended context is an error, never keys reported
// missing.
func (s *suite) testGetManyCancelled(t *testing.T) {
	c := s.open(t, s.ns())
	mustPut(t, c, "example.com", []byte("v"))
	for _, tc := range endedContexts() {
		values, err := certcache.GetMany(tc.ctx, c, []string{"example.com", "missing.example"})
		if values != nil {
			t.Errorf("GetMany with an ended context returned %d values", len(values))
		}
		s.checkFailure(t, "GetMany", err, tc.want)
	}
}

// testGetManyBroken: a store that fails is an error, never keys reported
// missing.
func (s *suite) testGetManyBroken(t *testing.T) {
	c, want, ok := s.openBroken(t)
	if !ok {
		return
	}
	limit := 2*s.timeout() + 10*time.Second
	start := time.Now()
	values, err := certcache.GetMany(context.Background(), c, []string{"example.com", "example.org"})
	if d := time.Since(start); d > limit {
		t.Errorf("GetMany took %v on a failing backend; timeout is %v", d, s.timeout())
	}
	if values != nil {
		t.Errorf("GetMany on a failing backend returned %d values", len(values))
	}
	s.checkFailure(t, "GetMany", err, want)
}
