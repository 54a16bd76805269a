// Package drivertest is the test suite every certcache backend passes,
// shaped like Go CDK's blob/drivertest: a backend's test hands Run a Harness
// that opens caches on a real server, and Run checks the certcache contract
// (see the root package documentation) case by case, with each optional
// capability (leases, listing, lease administration) proved where the
// backend has it. A third-party backend runs it with a harness of its own;
// the project's own harness, which starts servers in containers, lives in
// a separate module so that this package depends on no test tooling.
package drivertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// Harness tells the suite how to reach the backend under test.
type Harness struct {
	// Open opens a cache on namespace ns of the server under test: a key
	// prefix, a table, a directory. Caches opened on the same ns share
	// storage, also after Close; caches on different namespaces never see
	// each other's keys. The suite makes every ns unique per run from
	// [a-z0-9-], at most 40 bytes.
	Open func(t testing.TB, ns string) (certcache.Cache, error)

	// OpenBroken opens a cache whose every call must fail: a server that is
	// not listening (network backends), a directory that cannot be used
	// (file). Nil only for a backend with nothing to fail (mem).
	OpenBroken func(t testing.TB) (certcache.Cache, error)

	// BrokenIsUnavailable says OpenBroken's errors must match
	// certcache.ErrUnavailable, as they must for a network backend.
	BrokenIsUnavailable bool

	// Outage, if set, opens a cache on a server of its own and returns it
	// with funcs that stop and restart that server (a container). The suite
	// stops the server under a live Cache, expects non-miss errors, restarts
	// it and expects the same Cache to work again without reopening. Every
	// backend with a server sets it.
	Outage func(t testing.TB) (c certcache.Cache, stop, start func())

	// Timeout is the per-call timeout the harness's caches use (zero:
	// certcache.DefaultTimeout). Calls to a failing backend must end within
	// it, plus slack for a loaded machine.
	Timeout time.Duration

	// SealedSizes says that listed sizes are of sealed values (encryption
	// at rest) and so larger than what was Put.
	SealedSizes bool

	// WatchedLeaseExpiry says that the backend judges lease expiry as the
	// AWS DynamoDB Lock Client does, with no clock but each contender's
	// own: another holder's lease expires for a contender once it has seen
	// the lease unrefreshed for its TTL, counted from its first look. The
	// lease cases then take that first look before the TTL runs (as a
	// polling contender does), and check that a contender whose first look
	// comes after the TTL still finds the lease held.
	WatchedLeaseExpiry bool

	// URL, if set, returns the URL of namespace ns, as Open would open it.
	// LeaseExclusion then also races contenders in other processes (the
	// test binary run again): a backend shared by processes on one machine
	// (file, SQLite) must exclude across processes, not only goroutines.
	// The contender opens the URL once the test binary has parsed its
	// flags, after every package's init, so any scheme the test binary
	// links is registered.
	URL func(ns string) string

	// Pushes says the backend's driver is a driver.WatchDriver: a waiter
	// must then be woken by the store's push of a change.
	Pushes bool

	// Secrets are strings that must never appear in an error message: the
	// passwords and keys in the harness's URLs.
	Secrets []string
}

// Run runs the conformance suite against h.
func Run(t *testing.T, h Harness) {
	s := newSuite(t, h)
	s.run(t, []testCase{
		{"MissIsBareSentinel", s.testMiss},
		{"RoundTrip", s.testRoundTrip},
		{"Overwrite", s.testOverwrite},
		{"DeleteIsIdempotent", s.testDelete},
		{"PutCopiesValue", s.testPutCopies},
		{"GetReturnsOwnedSlice", s.testGetOwned},
		{"AutocertKeys", s.testAutocertKeys},
		{"HostileKeys", s.testHostileKeys},
		{"NamespacesAreIsolated", s.testNamespaces},
		{"SurvivesReopen", s.testReopen},
		{"CancelledContext", s.testCancelled},
		{"TooLarge", s.testTooLarge},
		{"Closed", s.testClosed},
		{"ConcurrentNoTornValues", s.testConcurrent},
		{"BrokenBackendIsNotAMiss", s.testBroken},
		{"OutageAndRecovery", s.testOutage},
		{"LeaseExclusion", s.testLeaseExclusion},
		{"LeaseExpiryAndTakeover", s.testLeaseExpiry},
		{"LeaseNonHolder", s.testLeaseNonHolder},
		{"LeaseRefreshExtends", s.testLeaseRefresh},
		{"LeaseNamesAndNamespaces", s.testLeaseNames},
		{"LeaseBrokenBackend", s.testLeaseBroken},
		{"LeaseOutageAndRecovery", s.testLeaseOutage},
		{"LeaseAdminListAndBreak", s.testLeaseAdmin},
		{"LeaseAdminBreakExpired", s.testLeaseAdminExpired},
		{"ListAfterPutAndDelete", s.testListPutDelete},
		{"ListPrefix", s.testListPrefix},
		{"ListNamespacesAreIsolated", s.testListNamespaces},
		{"ListHostileKeys", s.testListHostile},
		{"ListStopsEarly", s.testListStop},
		{"ListManyKeysBoundedMemory", s.testListMany},
		{"ListBrokenBackend", s.testListBroken},
		{"GetManyMixed", s.testGetManyMixed},
		{"GetManyHostileKeys", s.testGetManyHostile},
		{"GetManyLargeValues", s.testGetManyLarge},
		{"GetManyMoreThanOneChunk", s.testGetManyChunks},
		{"GetManyNamespacesAreIsolated", s.testGetManyNamespaces},
		{"GetManyCancelledContext", s.testGetManyCancelled},
		{"GetManyBrokenBackend", s.testGetManyBroken},
		{"WatchWakesOnChange", s.testWatchChange},
		{"WatchFallbackAfterOutage", s.testWatchFallback},
		{"CoordinatedMiss", s.testCoordinatedMiss},
		{"CoordinatedAccountKey", s.testCoordinatedAccount},
		{"CloseLeavesNoGoroutine", s.testCloseLeaks},
	})
}

// testCase is one named case of a suite.
type testCase struct {
	name string
	fn   func(*testing.T)
}

// newSuite checks h and returns the suite that runs its cases.
func newSuite(t *testing.T, h Harness) *suite {
	if h.Open == nil {
		t.Fatal("conformance: Harness.Open is nil")
	}
	return &suite{h: h}
}

// run runs each case as a subtest.
func (s *suite) run(t *testing.T, cases []testCase) {
	for _, tc := range cases {
		t.Run(tc.name, tc.fn)
	}
}

type suite struct {
	h   Harness
	seq atomic.Int64
}

var runID = func() string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%x", b)
}()

// ns returns a namespace no other test in any run has used, so that
// leftovers on a shared external server never leak into a test.
func (s *suite) ns() string {
	return fmt.Sprintf("cc%s-%d", runID, s.seq.Add(1))
}

// open opens a cache on ns for the storage cases: beneath issuance
// coordination, which the Coordinated* cases check on their own.
func (s *suite) open(t testing.TB, ns string) certcache.Cache {
	t.Helper()
	return certcache.Uncoordinated(s.openCoordinated(t, ns))
}

// openCoordinated opens a cache on ns as the harness does, coordination
// included.
func (s *suite) openCoordinated(t testing.TB, ns string) certcache.Cache {
	t.Helper()
	c, err := s.h.Open(t, ns)
	if err != nil {
		t.Fatalf("Open(%q): %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	s.checkSecrets(t, "Open", err)
	return c
}

func (s *suite) timeout() time.Duration {
	if s.h.Timeout > 0 {
		return s.h.Timeout
	}
	return certcache.DefaultTimeout
}

func ctx(t testing.TB) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return c
}

// mustGet fails unless key holds want.
func mustGet(t testing.TB, c certcache.Cache, key string, want []byte) {
	t.Helper()
	got, err := c.Get(ctx(t), key)
	if err != nil {
		t.Fatalf("Get(%q): %v", key, err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("Get(%q) = %d bytes %.40q…, want %d bytes %.40q…", key, len(got), got, len(want), want)
	}
}

// mustMiss fails unless Get(key) returns the bare autocert.ErrCacheMiss.
func mustMiss(t testing.TB, c certcache.Cache, key string) {
	t.Helper()
	got, err := c.Get(ctx(t), key)
	if err != autocert.ErrCacheMiss { //nolint:errorlint // autocert compares with ==; so must we.
		t.Fatalf("Get(%q) = %d bytes, %v; want the bare autocert.ErrCacheMiss", key, len(got), err)
	}
	if got != nil {
		t.Errorf("Get(%q) returned %d bytes with the miss", key, len(got))
	}
}

func mustPut(t testing.TB, c certcache.Cache, key string, v []byte) {
	t.Helper()
	if err := c.Put(ctx(t), key, v); err != nil {
		t.Fatalf("Put(%q, %d bytes): %v", key, len(v), err)
	}
}

func (s *suite) testMiss(t *testing.T) {
	c := s.open(t, s.ns())
	for _, key := range []string{"example.com", "never-written.example+rsa", "acme_account+key"} {
		mustMiss(t, c, key)
	}
	mustPut(t, c, "example.com", []byte("x"))
	if err := c.Delete(ctx(t), "example.com"); err != nil {
		t.Fatal(err)
	}
	mustMiss(t, c, "example.com")
}

func (s *suite) testRoundTrip(t *testing.T) {
	c := s.open(t, s.ns())
	big := make([]byte, 1<<20)
	rand.Read(big)
	allBytes := make([]byte, 256)
	for i := range allBytes {
		allBytes[i] = byte(i)
	}
	for _, tc := range []struct {
		name string
		v    []byte
	}{
		{"0B", []byte{}},
		{"1B", []byte{0}},
		{"AllByteValues", allBytes},
		{"4KiBPEM", PEMLike(4096)},
		{"Certificate", CertValue()},
		{"1MiBRandom", big},
	} {
		t.Run(tc.name, func(t *testing.T) {
			key := "rt-" + strings.ToLower(tc.name) + ".example"
			mustPut(t, c, key, tc.v)
			mustGet(t, c, key, tc.v)
		})
	}
	// A stored empty value is a hit: a nil from Get would read as "no data".
	got, err := c.Get(ctx(t), "rt-0b.example")
	if err != nil || got == nil {
		t.Errorf("Get of a stored empty value = %v, %v; want a non-nil empty slice", got, err)
	}
}

func (s *suite) testOverwrite(t *testing.T) {
	c := s.open(t, s.ns())
	long := PEMLike(8192)
	short := []byte("short value")
	mustPut(t, c, "example.com", long)
	mustPut(t, c, "example.com", short) // no tail of the longer value may remain
	mustGet(t, c, "example.com", short)
	mustPut(t, c, "example.com", long)
	mustGet(t, c, "example.com", long)
}

func (s *suite) testDelete(t *testing.T) {
	c := s.open(t, s.ns())
	if err := c.Delete(ctx(t), "never-written.example"); err != nil {
		t.Fatalf("Delete of a missing key = %v, want nil", err)
	}
	mustPut(t, c, "example.com", []byte("v"))
	mustPut(t, c, "example.org", []byte("w"))
	for i := 0; i < 2; i++ {
		if err := c.Delete(ctx(t), "example.com"); err != nil {
			t.Fatalf("Delete #%d = %v, want nil", i+1, err)
		}
	}
	mustMiss(t, c, "example.com")
	mustGet(t, c, "example.org", []byte("w")) // Delete touches its key only
}

func (s *suite) testPutCopies(t *testing.T) {
	c := s.open(t, s.ns())
	v := []byte("original value")
	mustPut(t, c, "example.com", v)
	copy(v, "XXXXXXXX")
	mustGet(t, c, "example.com", []byte("original value"))
}

func (s *suite) testGetOwned(t *testing.T) {
	c := s.open(t, s.ns())
	mustPut(t, c, "example.com", []byte("original value"))
	got, err := c.Get(ctx(t), "example.com")
	if err != nil {
		t.Fatal(err)
	}
	copy(got, "XXXXXXXX")
	mustGet(t, c, "example.com", []byte("original value"))
}

// AutocertKeys are the keys autocert.Manager writes: certificates (ECDSA and
// RSA), order tokens, HTTP-01 tokens and the account key, for ASCII and
// punycode names.
var AutocertKeys = []string{
	"example.com",
	"example.com+rsa",
	"example.com+token",
	"www.example.com",
	"xn--bcher-kva.example", // bücher.example
	"xn--bcher-kva.example+rsa",
	"xn--80ak6aa92e.com", // an IDN in Cyrillic
	"LbVtFxbR2aVvNaq2JSUGcc6xcvcW7YSiUGsm0ZInLP8+http-01",
	"acme_account+key",
	"a.b.c.d.e.f.g.h.example.com",
	strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 63) + ".com+token",
}

func (s *suite) testAutocertKeys(t *testing.T) {
	c := s.open(t, s.ns())
	s.putAllDistinct(t, c, AutocertKeys, true)
}

// HostileKeys are keys built to break a naive mapping: path traversal,
// separators, escapes that collide after decoding, case, Unicode, lengths.
var HostileKeys = []string{
	"../../etc/passwd", "../x", "..", ".", "./x", "/abs", "a/b", "a%2Fb", "a%252Fb", "a%2fb",
	`a\b`, `C:\x`, "a b", "a+b", "a%20b", "a b ", " a", "A", "a", "Example.com", "example.COM",
	"日本語.example", "bücher.example", "ü", "🎉", `*?"<>|:`, "x.tmp-1", ".tmp-x", "~x", "x~",
	"%", "%%", "%zz", "a.", "a..b", "-rf", "{x}", "a:b", "a:b:c", "'; DROP TABLE x; --", "$(id)",
	strings.Repeat("k", 1000), strings.Repeat("k", 999) + "j", strings.Repeat("é", 300),
	strings.Repeat("/", 300), strings.Repeat("%", 341),
	strings.Repeat("x", certcache.MaxKeyLen),
}

// RefusedKeys must be refused with certcache.ErrInvalidKey by every backend.
var RefusedKeys = []string{
	"", "a\x00b", "line\nbreak", "tab\t", "\x7f", "bad\xffutf8", strings.Repeat("x", certcache.MaxKeyLen+1),
}

func (s *suite) testHostileKeys(t *testing.T) {
	ns := s.ns()
	c := s.open(t, ns)
	stored := s.putAllDistinct(t, c, HostileKeys, false)
	if len(stored) < len(HostileKeys)/2 {
		t.Errorf("stored only %d of %d hostile keys; refusing most keys is not a mapping", len(stored), len(HostileKeys))
	}
	for _, key := range RefusedKeys {
		for op, err := range map[string]error{
			"Put":    c.Put(ctx(t), key, []byte("v")),
			"Delete": c.Delete(ctx(t), key),
			"Get":    func() error { _, err := c.Get(ctx(t), key); return err }(),
		} {
			if !errors.Is(err, certcache.ErrInvalidKey) {
				t.Errorf("%s(%q) = %v, want certcache.ErrInvalidKey", op, key, err)
			}
		}
	}
	// No key escaped: a neighbouring namespace (one whose name extends this
	// one) and a parent-level look-up see none of them.
	other := s.open(t, ns+"-x")
	for _, key := range append(append([]string{}, HostileKeys...), "etc/passwd", "passwd", "x", "b", "abs") {
		if certcache.ValidateKey(key) == nil {
			mustMiss(t, other, key)
		}
	}
}

// putAllDistinct stores a distinct value under every key, then reads every
// key back, so that two keys mapping to one name show up as a wrong value.
// With mustStore, every key must be stored; otherwise a key may be refused
// with certcache.ErrInvalidKey. It returns the keys stored.
func (s *suite) putAllDistinct(t *testing.T, c certcache.Cache, keys []string, mustStore bool) []string {
	t.Helper()
	value := func(i int) []byte { return []byte(fmt.Sprintf("value #%d for %q", i, keys[i])) }
	var stored []string
	var idx []int
	for i, key := range keys {
		err := c.Put(ctx(t), key, value(i))
		switch {
		case err == nil:
			stored, idx = append(stored, key), append(idx, i)
		case mustStore:
			t.Errorf("Put(%q): %v", key, err)
		case errors.Is(err, certcache.ErrInvalidKey):
			if !strings.Contains(err.Error(), "invalid key") {
				t.Errorf("Put(%q) refused without saying why: %v", key, err)
			}
		default:
			t.Errorf("Put(%q) = %v; want success or certcache.ErrInvalidKey", key, err)
		}
	}
	for j, key := range stored {
		mustGet(t, c, key, value(idx[j]))
	}
	for _, key := range stored {
		if err := c.Delete(ctx(t), key); err != nil {
			t.Errorf("Delete(%q): %v", key, err)
		}
		mustMiss(t, c, key)
	}
	return stored
}

func (s *suite) testNamespaces(t *testing.T) {
	ns := s.ns()
	a, b := s.open(t, ns), s.open(t, ns+"-b")
	mustPut(t, a, "example.com", []byte("in a"))
	mustMiss(t, b, "example.com")
	mustPut(t, b, "example.com", []byte("in b"))
	mustGet(t, a, "example.com", []byte("in a"))
	if err := b.Delete(ctx(t), "example.com"); err != nil {
		t.Fatal(err)
	}
	mustGet(t, a, "example.com", []byte("in a"))
	// A second cache on the same namespace shares storage.
	a2 := s.open(t, ns)
	mustGet(t, a2, "example.com", []byte("in a"))
}

func (s *suite) testReopen(t *testing.T) {
	ns := s.ns()
	c, err := s.h.Open(t, ns)
	if err != nil {
		t.Fatal(err)
	}
	v := CertValue()
	mustPut(t, c, "example.com", v)
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	mustGet(t, s.open(t, ns), "example.com", v)
}

// endedContext is a context that has ended, and the error it ends with.
type endedContext struct {
	ctx  context.Context
	want error
}

// endedContexts returns a cancelled context and an expired one.
func endedContexts() []endedContext {
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	expired, cancel2 := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
	cancel2() // it has expired already; cancelling changes nothing
	return []endedContext{{cancelled, context.Canceled}, {expired, context.DeadlineExceeded}}
}

func (s *suite) testCancelled(t *testing.T) {
	c := s.open(t, s.ns())
	mustPut(t, c, "example.com", []byte("v"))
	for _, tc := range endedContexts() {
		for _, key := range []string{"example.com", "missing.example"} {
			_, err := c.Get(tc.ctx, key)
			s.checkFailure(t, "Get", err, tc.want)
			s.checkFailure(t, "Put", c.Put(tc.ctx, key, []byte("w")), tc.want)
			s.checkFailure(t, "Delete", c.Delete(tc.ctx, key), tc.want)
		}
	}
	mustGet(t, c, "example.com", []byte("v"))
}

func (s *suite) testTooLarge(t *testing.T) {
	c := s.open(t, s.ns())
	err := c.Put(ctx(t), "example.com", make([]byte, certcache.MaxValueSize+1))
	if !errors.Is(err, certcache.ErrTooLarge) {
		t.Fatalf("Put of MaxValueSize+1 bytes = %v, want certcache.ErrTooLarge", err)
	}
	mustMiss(t, c, "example.com")
}

func (s *suite) testClosed(t *testing.T) {
	c, err := s.h.Open(t, s.ns())
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, c, "example.com", []byte("v"))
	if err := c.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := c.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
	_, err = c.Get(ctx(t), "example.com")
	s.checkFailure(t, "Get after Close", err, certcache.ErrClosed)
	s.checkFailure(t, "Put after Close", c.Put(ctx(t), "example.com", []byte("w")), certcache.ErrClosed)
	s.checkFailure(t, "Delete after Close", c.Delete(ctx(t), "example.com"), certcache.ErrClosed)
}

// testConcurrent has 32 goroutines mix Put, Get and Delete on a few keys.
// Every value describes itself (a seed byte, its length, then the seed
// repeated), so a value torn between two writers, or truncated, is caught.
func (s *suite) testConcurrent(t *testing.T) {
	c := s.open(t, s.ns())
	const workers, ops = 32, 60
	keys := []string{"example.com", "example.com+rsa", "example.org", "acme_account+key"}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for w := 0; w < workers; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; i < ops && failures.Load() < 5; i++ {
				key := keys[(w+i)%len(keys)]
				var err error
				switch (w*7 + i) % 5 {
				case 0, 1:
					err = c.Put(ctx(t), key, selfDescribing(byte(w*ops+i), 512+(w*131+i*17)%16384))
				case 2, 3:
					var v []byte
					v, err = c.Get(ctx(t), key)
					if err == autocert.ErrCacheMiss { //nolint:errorlint
						err = nil
					} else if err == nil {
						err = checkSelfDescribing(v)
					}
				case 4:
					err = c.Delete(ctx(t), key)
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("worker %d op %d on %q: %v", w, i, key, err)
				}
			}
		}(w)
	}
	wg.Wait()
}

func selfDescribing(seed byte, n int) []byte {
	v := make([]byte, n)
	v[0] = seed
	binary.BigEndian.PutUint32(v[1:5], uint32(n))
	for i := 5; i < n; i++ {
		v[i] = seed
	}
	return v
}

func checkSelfDescribing(v []byte) error {
	if len(v) < 5 {
		return fmt.Errorf("torn value: %d bytes", len(v))
	}
	if n := binary.BigEndian.Uint32(v[1:5]); int(n) != len(v) {
		return fmt.Errorf("torn value: header says %d bytes, got %d", n, len(v))
	}
	for i := 5; i < len(v); i++ {
		if v[i] != v[0] {
			return fmt.Errorf("torn value: byte %d is %#x, seed %#x", i, v[i], v[0])
		}
	}
	return nil
}

func (s *suite) testBroken(t *testing.T) {
	c, want, ok := s.openBroken(t)
	if ok {
		s.failsInTime(t, c, want)
	}
}

// openBroken opens the harness's broken cache, closed when t ends, and the
// sentinel its errors must match (nil: any non-miss error). ok is false for
// a backend with nothing to fail.
func (s *suite) openBroken(t *testing.T) (c certcache.Cache, want error, ok bool) {
	t.Helper()
	if s.h.OpenBroken == nil {
		t.Log("this backend has no way to fail (Harness.OpenBroken is nil)")
		return nil, nil, false
	}
	c, err := s.h.OpenBroken(t)
	if err != nil {
		s.checkSecrets(t, "OpenBroken", err)
		t.Fatalf("OpenBroken: %v (Open must not contact the server)", err)
	}
	t.Cleanup(func() { c.Close() })
	if s.h.BrokenIsUnavailable {
		want = certcache.ErrUnavailable
	}
	return c, want, true
}

// failsInTime checks that Get, Put and Delete on c fail with a descriptive,
// secret-free non-miss error (matching want, if set) within the timeout.
func (s *suite) failsInTime(t *testing.T, c certcache.Cache, want error) {
	t.Helper()
	limit := 2*s.timeout() + 10*time.Second // slack for a loaded machine; this catches hangs, not speed
	calls := []struct {
		op string
		fn func() error
	}{
		{"Get", func() error { _, err := c.Get(context.Background(), "example.com"); return err }},
		{"Put", func() error { return c.Put(context.Background(), "example.com", CertValue()) }},
		{"Delete", func() error { return c.Delete(context.Background(), "example.com") }},
	}
	for _, call := range calls {
		start := time.Now()
		err := call.fn()
		if d := time.Since(start); d > limit {
			t.Errorf("%s took %v on a failing backend; timeout is %v", call.op, d, s.timeout())
		}
		s.checkFailure(t, call.op, err, want)
		if err != nil && !strings.HasPrefix(err.Error(), "certcache/") {
			t.Errorf("%s error %q does not name the backend (want \"certcache/<backend>: …\")", call.op, err)
		}
	}
}

func (s *suite) testOutage(t *testing.T) {
	if s.h.Outage == nil {
		if s.h.BrokenIsUnavailable {
			t.Errorf("Harness.Outage is nil but the backend has a server (BrokenIsUnavailable): set it")
		}
		return
	}
	c, stop, start := s.h.Outage(t)
	defer c.Close()
	mustPut(t, c, "before.example+token", []byte("v"))
	stop()
	s.failsInTime(t, c, certcache.ErrUnavailable)
	start()
	// The same Cache recovers by itself; the backend may need a moment to
	// accept connections again and the client to redial.
	deadline := time.Now().Add(30 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = c.Put(ctx(t), "after.example+token", []byte("w")); err == nil {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("Put after restart: %v", err)
	}
	mustGet(t, c, "after.example+token", []byte("w"))
}

// checkFailure fails unless err is a non-nil, non-miss error matching want
// (when set) and free of secrets.
func (s *suite) checkFailure(t testing.TB, op string, err, want error) {
	t.Helper()
	switch {
	case err == nil:
		t.Errorf("%s succeeded; want an error", op)
		return
	case err == autocert.ErrCacheMiss || errors.Is(err, autocert.ErrCacheMiss): //nolint:errorlint
		t.Errorf("%s = %v: a failure reported as a miss makes autocert order a certificate", op, err)
	case want != nil && !errors.Is(err, want):
		t.Errorf("%s = %v; want an error matching %v", op, err, want)
	}
	s.checkSecrets(t, op, err)
}

func (s *suite) checkSecrets(t testing.TB, op string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, secret := range s.h.Secrets {
		if secret != "" && strings.Contains(err.Error(), secret) {
			t.Errorf("%s error reveals a secret: %v", op, err)
		}
	}
}
