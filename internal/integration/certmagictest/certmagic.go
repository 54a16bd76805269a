package certmagictest

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/certmagicstore"
	"github.com/certcache/certcache/drivertest"
)

// The certmagic cases check certmagicstore.Storage on a backend against
// CertMagic's Storage contract (certmagic's storage.go): what CertMagic
// relies on to share certificates and to order each one once per fleet.

// certmagicLockTTL is the lock TTL of the cases that wait for a lease to
// run out: short, so that a dead holder's lock frees within the test, and
// as long as the lease cases' shortest, which stores with second-precision
// clocks keep. The other cases take locks with certmagicSafeTTL, so that a
// refresh delayed on a loaded machine cannot lose a lock they hold.
const (
	certmagicLockTTL = 3 * time.Second
	certmagicSafeTTL = 20 * time.Second
)

// RunCertmagic runs the certmagic cases against h. Only Open, OpenBroken,
// BrokenIsUnavailable, Timeout, SealedSizes and Secrets are used.
func RunCertmagic(t *testing.T, h drivertest.Harness) {
	s := &suite{drivertest.NewSuite(t, h)}
	for _, tc := range []struct {
		name string
		fn   func(*testing.T)
	}{
		{"StoreLoadDeleteExists", s.testCMStoreLoad},
		{"MissingIsNotExist", s.testCMMissing},
		{"ListRecursiveAndNot", s.testCMList},
		{"StatFileAndDirectory", s.testCMStat},
		{"DeleteDirectory", s.testCMDeleteDir},
		{"BesideAutocert", s.testCMBesideAutocert},
		{"BrokenBackendIsNotNotExist", s.testCMBroken},
		{"TryLockAndUnlock", s.testCMTryLock},
		{"LockExclusion", s.testCMLockExclusion},
		{"LockKeptWhileHeld", s.testCMLockKept},
		{"LockTakeoverAfterHolderDies", s.testCMTakeover},
	} {
		t.Run(tc.name, tc.fn)
	}
}

// suite adds the CertMagic cases' helpers to drivertest's machinery.
type suite struct{ *drivertest.Suite }

// storage opens a certmagic Storage on a new cache on ns, with locks of
// certmagicSafeTTL.
func (s *suite) storage(t testing.TB, ns string) *certmagicstore.Storage {
	t.Helper()
	return s.storageOn(t, s.OpenCoordinated(t, ns), certmagicSafeTTL)
}

// storageOn returns a Storage on c with locks of ttl.
func (s *suite) storageOn(t testing.TB, c certcache.Cache, ttl time.Duration) *certmagicstore.Storage {
	t.Helper()
	st := certmagicstore.New(c, &certmagicstore.Options{LockTTL: ttl, Logger: testLogger(t)})
	t.Cleanup(func() { st.Close() })
	return st
}

func cmStore(t testing.TB, st certmagic.Storage, key string, v []byte) {
	t.Helper()
	if err := st.Store(drivertest.Context(t), key, v); err != nil {
		t.Fatalf("Store(%q): %v", key, err)
	}
}

func cmLoad(t testing.TB, st certmagic.Storage, key string, want []byte) {
	t.Helper()
	got, err := st.Load(drivertest.Context(t), key)
	if err != nil {
		t.Fatalf("Load(%q): %v", key, err)
	}
	if string(got) != string(want) {
		t.Fatalf("Load(%q) = %d bytes %.40q…, want %d bytes %.40q…", key, len(got), got, len(want), want)
	}
}

// cmNotExist fails unless err matches fs.ErrNotExist.
func cmNotExist(t testing.TB, op string, err error) {
	t.Helper()
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("%s = %v, want an error matching fs.ErrNotExist", op, err)
	}
}

func cmExists(t testing.TB, st certmagic.Storage, key string, want bool) {
	t.Helper()
	if got := st.Exists(drivertest.Context(t), key); got != want {
		t.Errorf("Exists(%q) = %v, want %v", key, got, want)
	}
}

func (s *suite) testCMStoreLoad(t *testing.T) {
	ns := s.Namespace()
	st, other := s.storage(t, ns), s.storage(t, ns)
	const crt = "certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt"
	v := drivertest.CertValue()
	cmStore(t, st, crt, v)
	cmLoad(t, other, crt, v) // another Storage on the same store sees it
	for _, dir := range []string{"certificates", "certificates/acme-v02.api.letsencrypt.org-directory",
		"certificates/acme-v02.api.letsencrypt.org-directory/example.com"} {
		cmExists(t, other, dir, true)
	}
	cmExists(t, other, crt, true)
	// Directories are whole components: "certificates/acme" is no prefix
	// of "certificates/acme-v02…".
	for _, k := range []string{"certificates/acme", "certificates/acme-v02.api.letsencrypt.org-directory/example.co",
		"certificates/acme-v02.api.letsencrypt.org-directory/example.com/example.com.crt/x", "example.com"} {
		cmExists(t, other, k, false)
	}
	short := []byte("short")
	cmStore(t, other, crt, short) // overwrite: no tail of the longer value
	cmLoad(t, st, crt, short)
	if err := st.Delete(drivertest.Context(t), crt); err != nil {
		t.Fatalf("Delete(%q): %v", crt, err)
	}
	_, err := other.Load(drivertest.Context(t), crt)
	cmNotExist(t, "Load after Delete", err)
	cmExists(t, other, crt, false)
	cmExists(t, other, "certificates", false) // nothing lies under it any more
	if err := st.Delete(drivertest.Context(t), crt); err != nil {
		t.Errorf("Delete of a missing key = %v, want nil", err)
	}
	// CertMagic's storage check: a 10 KiB value stored, loaded and deleted.
	big := drivertest.PEMLike(10 << 10)
	cmStore(t, st, "rw_test_12345", big)
	cmLoad(t, other, "rw_test_12345", big)
}

func (s *suite) testCMMissing(t *testing.T) {
	st := s.storage(t, s.Namespace())
	cmStore(t, st, "certificates/ca/a.example/a.example.crt", []byte("x"))
	for _, k := range []string{"certificates/ca/b.example/b.example.crt", "certificates/ca/a.example/a.example.key",
		"certificates/c", "acme/ca/users/x/x.json", "ocsp"} {
		_, err := st.Load(drivertest.Context(t), k)
		cmNotExist(t, fmt.Sprintf("Load(%q)", k), err)
		_, err = st.Stat(drivertest.Context(t), k)
		cmNotExist(t, fmt.Sprintf("Stat(%q)", k), err)
		for _, rec := range []bool{false, true} {
			keys, err := st.List(drivertest.Context(t), k, rec)
			cmNotExist(t, fmt.Sprintf("List(%q, %v) = %q, err", k, rec, keys), err)
		}
	}
}

// cmTree is a storage tree as CertMagic lays it out, with a decoy whose
// name begins like a directory but is no component of it.
var cmTree = []string{
	"certificates/ca1/a.example/a.example.crt",
	"certificates/ca1/a.example/a.example.key",
	"certificates/ca1/a.example/a.example.json",
	"certificates/ca1/b.example/b.example.crt",
	"certificates/ca2/wildcard_.c.example/wildcard_.c.example.crt",
	"certificatesX/decoy",
	"acme/ca1/users/me@example.com/me.json",
	"acme/ca1/users/me@example.com/me.key",
	"ocsp/a.example-1a2b3c",
	"last_clean.json",
}

func sameSet(t testing.TB, what string, got, want []string) {
	t.Helper()
	g, w := slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(g, w) {
		t.Errorf("%s = %q, want %q", what, g, w)
	}
}

func (s *suite) testCMList(t *testing.T) {
	ns := s.Namespace()
	st := s.storage(t, ns)
	for _, k := range cmTree {
		cmStore(t, st, k, []byte(k))
	}
	other := s.storage(t, ns)
	for _, tc := range []struct {
		dir       string
		recursive bool
		want      []string
	}{
		{"certificates", false, []string{"certificates/ca1", "certificates/ca2"}},
		{"certificates", true, cmTree[:5]},
		{"certificates/ca1", false, []string{"certificates/ca1/a.example", "certificates/ca1/b.example"}},
		{"certificates/ca1/a.example", false, cmTree[:3]},
		{"certificates/ca1/a.example", true, cmTree[:3]},
		{"acme/ca1/users", false, []string{"acme/ca1/users/me@example.com"}},
		{"", false, []string{"certificates", "certificatesX", "acme", "ocsp", "last_clean.json"}},
		{"", true, cmTree},
		{"ocsp/a.example-1a2b3c", false, nil}, // a file: nothing under it
		{"ocsp/a.example-1a2b3c", true, nil},
	} {
		got, err := other.List(drivertest.Context(t), tc.dir, tc.recursive)
		what := fmt.Sprintf("List(%q, %v)", tc.dir, tc.recursive)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			continue
		}
		sameSet(t, what, got, tc.want)
	}
}

func (s *suite) testCMStat(t *testing.T) {
	st := s.storage(t, s.Namespace())
	const (
		old   = "acme/ca/users/old@example.com/old.json"
		young = "acme/ca/users/young@example.com/young.json"
	)
	v := drivertest.CertValue()
	before := time.Now()
	cmStore(t, st, old, v)
	// Stores with second-precision times must still order the two.
	time.Sleep(1100 * time.Millisecond)
	cmStore(t, st, young, []byte("{}"))
	after := time.Now()

	fi, err := st.Stat(drivertest.Context(t), old)
	if err != nil {
		t.Fatalf("Stat(%q): %v", old, err)
	}
	if fi.Key != old || !fi.IsTerminal {
		t.Errorf("Stat(%q) = %+v, want Key %q and IsTerminal", old, fi, old)
	}
	switch {
	case s.Harness().SealedSizes && fi.Size <= int64(len(v)):
		t.Errorf("Stat(%q).Size = %d; a sealed value is larger than the %d bytes stored", old, fi.Size, len(v))
	case !s.Harness().SealedSizes && fi.Size != int64(len(v)):
		t.Errorf("Stat(%q).Size = %d, want %d", old, fi.Size, len(v))
	}
	// The store's clock may differ from ours a little; zero means the
	// store keeps no times.
	if !fi.Modified.IsZero() && (fi.Modified.Before(before.Add(-time.Minute)) || fi.Modified.After(after.Add(time.Minute))) {
		t.Errorf("Stat(%q).Modified = %v, want about %v", old, fi.Modified, before)
	}
	fy, err := st.Stat(drivertest.Context(t), young)
	if err != nil {
		t.Fatalf("Stat(%q): %v", young, err)
	}

	for _, dir := range []string{"acme", "acme/ca/users", "acme/ca/users/young@example.com"} {
		di, err := st.Stat(drivertest.Context(t), dir)
		if err != nil {
			t.Errorf("Stat(%q): %v", dir, err)
			continue
		}
		if di.Key != dir || di.IsTerminal {
			t.Errorf("Stat(%q) = %+v, want Key %q and IsTerminal false", dir, di, dir)
		}
		// CertMagic picks the newest account directory by Modified.
		if !di.Modified.Equal(fy.Modified) {
			t.Errorf("Stat(%q).Modified = %v, want the newest time under it, %v", dir, di.Modified, fy.Modified)
		}
	}
	do, err := st.Stat(drivertest.Context(t), "acme/ca/users/old@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if !fy.Modified.IsZero() && !do.Modified.Before(fy.Modified) {
		t.Errorf("the older account directory's Modified %v is not before the younger's %v", do.Modified, fy.Modified)
	}
	for _, k := range []string{"acme/ca/users/old", "acme/c", "acme/ca/users/old@example.com/old.json/x"} {
		_, err := st.Stat(drivertest.Context(t), k)
		cmNotExist(t, fmt.Sprintf("Stat(%q)", k), err)
	}
}

func (s *suite) testCMDeleteDir(t *testing.T) {
	ns := s.Namespace()
	st := s.storage(t, ns)
	for _, k := range cmTree {
		cmStore(t, st, k, []byte(k))
	}
	// More keys under one directory than Delete takes in one batch.
	for i := range certmagicstore.DeleteBatch + certmagicstore.DeleteBatch/3 {
		cmStore(t, st, "certificates/ca3/n"+strconv.Itoa(i)+".example/n.crt", []byte("x"))
	}
	for _, dir := range []string{"certificates/ca1/a.example", "certificates/ca3", "certificates/ca1"} {
		if err := st.Delete(drivertest.Context(t), dir); err != nil {
			t.Fatalf("Delete(%q): %v", dir, err)
		}
		cmExists(t, st, dir, false)
		_, err := st.List(drivertest.Context(t), dir, true)
		cmNotExist(t, fmt.Sprintf("List(%q) after its Delete", dir), err)
	}
	got, err := s.storage(t, ns).List(drivertest.Context(t), "", true)
	if err != nil {
		t.Fatal(err)
	}
	sameSet(t, "what is left", got, cmTree[4:])
}

func (s *suite) testCMBesideAutocert(t *testing.T) {
	ns := s.Namespace()
	c := s.Open(t, ns)
	st := s.storage(t, ns)
	// Keys: neither side sees the other's.
	drivertest.MustPut(t, c, "example.com", []byte("autocert's"))
	drivertest.MustPut(t, c, "acme_account+key", []byte("autocert's account"))
	_, err := st.Load(drivertest.Context(t), "example.com")
	cmNotExist(t, `Load("example.com") of autocert's key`, err)
	cmStore(t, st, "example.com", []byte("certmagic's"))
	cmStore(t, st, "certificates/ca/example.com/example.com.crt", []byte("certmagic's"))
	drivertest.MustGet(t, c, "example.com", []byte("autocert's"))
	cmLoad(t, st, "example.com", []byte("certmagic's"))
	got, err := st.List(drivertest.Context(t), "", true)
	if err != nil {
		t.Fatal(err)
	}
	sameSet(t, `List("", true)`, got, []string{"example.com", "certificates/ca/example.com/example.com.crt"})
	if err := st.Delete(drivertest.Context(t), ""); err != nil { // the whole of certmagic's namespace
		t.Fatal(err)
	}
	drivertest.MustGet(t, c, "example.com", []byte("autocert's"))
	drivertest.MustGet(t, c, "acme_account+key", []byte("autocert's account"))
	_, err = st.Load(drivertest.Context(t), "example.com")
	cmNotExist(t, "Load after Delete of the root", err)

	// Locks: autocert's order lease and a certmagic lock of the same name
	// are different leases.
	l, err := certcache.AcquireLease(drivertest.Context(t), c, "order:example.com", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Release(drivertest.Context(t))
	if ok, err := st.TryLock(drivertest.Context(t), "order:example.com"); !ok || err != nil {
		t.Errorf(`TryLock("order:example.com") while autocert holds its order lease = %v, %v; want true`, ok, err)
	} else if err := st.Unlock(drivertest.Context(t), "order:example.com"); err != nil {
		t.Error(err)
	}
}

func (s *suite) testCMBroken(t *testing.T) {
	if s.Harness().OpenBroken == nil {
		t.Log("this backend has no way to fail (Harness.OpenBroken is nil)")
		return
	}
	c, err := s.Harness().OpenBroken(t)
	if err != nil {
		t.Fatalf("OpenBroken: %v", err)
	}
	defer c.Close()
	st := s.storageOn(t, c, certmagicSafeTTL)
	var want error
	if s.Harness().BrokenIsUnavailable {
		want = certcache.ErrUnavailable
	}
	limit := 2*s.Timeout() + 10*time.Second // catches hangs, not speed
	const k = "certificates/ca/example.com/example.com.crt"
	check := func(op string, err error) {
		t.Helper()
		if errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s = %v: a failure that matches fs.ErrNotExist makes CertMagic order a certificate", op, err)
		}
		s.CheckFailure(t, op, err, want)
	}
	for _, tc := range []struct {
		op string
		fn func(context.Context) error
	}{
		{"Load", func(ctx context.Context) error { _, err := st.Load(ctx, k); return err }},
		{"Stat", func(ctx context.Context) error { _, err := st.Stat(ctx, k); return err }},
		{"Stat(dir)", func(ctx context.Context) error { _, err := st.Stat(ctx, "certificates"); return err }},
		{"List", func(ctx context.Context) error { _, err := st.List(ctx, "certificates", false); return err }},
		{"List(recursive)", func(ctx context.Context) error { _, err := st.List(ctx, "", true); return err }},
		{"Store", func(ctx context.Context) error { return st.Store(ctx, k, []byte("x")) }},
		{"Delete", func(ctx context.Context) error { return st.Delete(ctx, k) }},
		{"TryLock", func(ctx context.Context) error {
			ok, err := st.TryLock(ctx, "issue_cert_example.com")
			if ok {
				return errors.New("TryLock on a broken backend took the lock")
			}
			return err
		}},
		{"Lock", func(ctx context.Context) error { return st.Lock(ctx, "issue_cert_example.com") }},
	} {
		start := time.Now()
		err := tc.fn(context.Background())
		if d := time.Since(start); d > limit {
			t.Errorf("%s on a broken backend took %v, limit %v", tc.op, d, limit)
		}
		check(tc.op, err)
	}
	if st.Exists(context.Background(), k) || st.Exists(context.Background(), "certificates") {
		t.Errorf("Exists on a broken backend = true")
	}
}

func (s *suite) testCMTryLock(t *testing.T) {
	ns := s.Namespace()
	a, b := s.storage(t, ns), s.storage(t, ns)
	const name = "issue_cert_example.com"
	if ok, err := a.TryLock(drivertest.Context(t), name); !ok || err != nil {
		t.Fatalf("TryLock of a free lock = %v, %v", ok, err)
	}
	for _, st := range []*certmagicstore.Storage{b, a} { // a second lock by the holder excludes too
		if ok, err := st.TryLock(drivertest.Context(t), name); ok || err != nil {
			t.Fatalf("TryLock of a held lock = %v, %v; want false, nil", ok, err)
		}
	}
	if err := b.Unlock(drivertest.Context(t), name); err == nil {
		t.Errorf("Unlock by a Storage that does not hold the lock = nil, want an error")
	}
	if err := a.Unlock(drivertest.Context(t), name); err != nil {
		t.Fatalf("Unlock: %v", err)
	}
	// Released at once: no wait for the TTL.
	start := time.Now()
	if ok, err := b.TryLock(drivertest.Context(t), name); !ok || err != nil {
		t.Fatalf("TryLock after Unlock = %v, %v", ok, err)
	}
	if err := b.RenewLockLease(drivertest.Context(t), name, time.Hour); err != nil {
		t.Errorf("RenewLockLease by the holder: %v", err)
	}
	if err := a.RenewLockLease(drivertest.Context(t), name, time.Hour); err == nil {
		t.Errorf("RenewLockLease by a non-holder = nil, want an error")
	}
	if err := b.Unlock(drivertest.Context(t), name); err != nil {
		t.Fatal(err)
	}
	if err := a.Lock(drivertest.Context(t), name); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > certmagicSafeTTL/2 {
		t.Errorf("taking a released lock took %v: Unlock did not release it", d)
	}

	// Lock waits while another holds the lock, until its context ends.
	// Last: an acquisition cut short by the context may still land on the
	// store after the caller gave up (the store got the statement, the
	// answer never came back), and hold the lock for its TTL.
	wctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start = time.Now()
	err := b.Lock(wctx, name)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Lock of a held lock until the context ends = %v, want context.DeadlineExceeded", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Lock returned %v after its context ended", d)
	}
	a.Unlock(drivertest.Context(t), name)
}

func (s *suite) testCMLockExclusion(t *testing.T) {
	ns := s.Namespace()
	const (
		name      = "issue_cert_example.com"
		counter   = "counter"
		nodes     = 3
		workers   = 2 // goroutines per Storage
		rounds    = 3 // critical sections per goroutine
		wantTotal = nodes * workers * rounds
	)
	var (
		inside, most atomic.Int32
		wg           sync.WaitGroup
	)
	stores := make([]*certmagicstore.Storage, nodes)
	for i := range stores {
		stores[i] = s.storage(t, ns)
	}
	cmStore(t, stores[0], counter, []byte("0"))
	for i, st := range stores {
		for w := range workers {
			wg.Go(func() {
				for r := range rounds {
					if err := st.Lock(drivertest.Context(t), name); err != nil {
						t.Errorf("node %d worker %d round %d: Lock: %v", i, w, r, err)
						return
					}
					n := inside.Add(1)
					if n > most.Load() {
						most.Store(n)
					}
					// A read-modify-write that loses updates unless the
					// lock excludes.
					v, err := st.Load(drivertest.Context(t), counter)
					if err == nil {
						var x int
						x, err = strconv.Atoi(string(v))
						time.Sleep(20 * time.Millisecond)
						if err == nil {
							err = st.Store(drivertest.Context(t), counter, []byte(strconv.Itoa(x+1)))
						}
					}
					if err != nil {
						t.Errorf("node %d: counter: %v", i, err)
					}
					inside.Add(-1)
					if err := st.Unlock(drivertest.Context(t), name); err != nil {
						t.Errorf("node %d: Unlock: %v", i, err)
					}
				}
			})
		}
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d holders were inside the lock at once", m)
	}
	v, err := stores[1].Load(drivertest.Context(t), counter)
	if err != nil {
		t.Fatal(err)
	}
	if string(v) != strconv.Itoa(wantTotal) {
		t.Errorf("counter = %s after %d locked increments: updates were lost", v, wantTotal)
	}
}

func (s *suite) testCMLockKept(t *testing.T) {
	ns := s.Namespace()
	// The holder's lease is short; it lives only by its refreshes.
	a, b := s.storageOn(t, s.OpenCoordinated(t, ns), certmagicLockTTL), s.storage(t, ns)
	const name = "issue_cert_kept.example"
	if err := a.Lock(drivertest.Context(t), name); err != nil {
		t.Fatal(err)
	}
	// Well past the TTL: the holder's refreshes keep the lock.
	for deadline := time.Now().Add(2*certmagicLockTTL + certmagicLockTTL/2); time.Now().Before(deadline); {
		if ok, err := b.TryLock(drivertest.Context(t), name); ok || err != nil {
			t.Fatalf("TryLock while another Storage holds the lock = %v, %v; the holder's lease ran out", ok, err)
		}
		time.Sleep(certmagicLockTTL / 4)
	}
	if err := a.RenewLockLease(drivertest.Context(t), name, time.Hour); err != nil {
		t.Errorf("RenewLockLease: %v", err)
	}
	if err := a.Unlock(drivertest.Context(t), name); err != nil {
		t.Fatal(err)
	}
}

func (s *suite) testCMTakeover(t *testing.T) {
	ns := s.Namespace()
	dying := s.Open(t, ns)
	holder := s.storageOn(t, dying, certmagicLockTTL)
	waiter := s.storage(t, ns)
	const name = "issue_cert_takeover.example"
	if err := holder.Lock(drivertest.Context(t), name); err != nil {
		t.Fatal(err)
	}
	// The holder dies: its cache goes away without Unlock, so its lease is
	// neither refreshed nor released.
	dying.Close()
	died := time.Now()
	if ok, err := waiter.TryLock(drivertest.Context(t), name); ok || err != nil {
		t.Fatalf("TryLock right after the holder died = %v, %v; want false: its lease still runs", ok, err)
	}
	if err := waiter.Lock(drivertest.Context(t), name); err != nil {
		t.Fatalf("Lock after the holder died: %v", err)
	}
	d := time.Since(died)
	t.Logf("took over %v after the holder died (lock TTL %v)", d.Round(time.Millisecond), certmagicLockTTL)
	if limit := certmagicLockTTL + 5*time.Second; d > limit {
		t.Errorf("took over after %v, want within the TTL %v and a poll", d, certmagicLockTTL)
	}
	// The new holder really holds it: a lease written while it waited
	// must run from when it was taken, not from when the wait began.
	if ok, err := s.storage(t, ns).TryLock(drivertest.Context(t), name); ok || err != nil {
		t.Errorf("TryLock by a third Storage after the takeover = %v, %v; want false, nil", ok, err)
	}
	if err := waiter.RenewLockLease(drivertest.Context(t), name, time.Hour); err != nil {
		t.Errorf("RenewLockLease by the new holder: %v", err)
	}
	if err := waiter.Unlock(drivertest.Context(t), name); err != nil {
		t.Error(err)
	}
}

// testLogger logs to t, so that a refresher's complaints show with the test
// that caused them.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tbWriter struct{ t testing.TB }

func (w tbWriter) Write(b []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(b), "\n"))
	return len(b), nil
}
