package certmagicstore_test

import (
	"context"
	"errors"
	"fmt"
	_ "github.com/certcache/certcache/layered" // the memory= parameters
	_ "github.com/certcache/certcache/redis"   // redis:// for the String cases
	"io/fs"
	"iter"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/certmagicstore"
)

// enoentDriver fails every call with an error that matches fs.ErrNotExist
// although nothing is missing: a directory a store's files live in went
// away, say. No such failure may reach CertMagic as "not found".
type enoentDriver struct{}

var errENOENT = &fs.PathError{Op: "open", Path: "/var/lib/certs", Err: syscall.ENOENT}

func (enoentDriver) Get(context.Context, string) ([]byte, error) { return nil, errENOENT }
func (enoentDriver) Put(context.Context, string, []byte) error   { return errENOENT }
func (enoentDriver) Delete(context.Context, string) error        { return errENOENT }
func (enoentDriver) Close() error                                { return nil }
func (enoentDriver) List(context.Context, string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) { yield(certcache.Entry{}, errENOENT) }
}
func (enoentDriver) AcquireLease(context.Context, string, string, time.Duration) error {
	return errENOENT
}
func (enoentDriver) RefreshLease(context.Context, string, string, time.Duration) error {
	return errENOENT
}
func (enoentDriver) ReleaseLease(context.Context, string, string) error { return errENOENT }

// TestFailureIsNeverNotExist: an error whose cause matches fs.ErrNotExist
// does not match it once it leaves the Storage, and still shows its cause
// to errors.As.
func TestFailureIsNeverNotExist(t *testing.T) {
	c := certcache.NewCache("enoent", enoentDriver{}, &certcache.Options{DisableBreaker: true})
	defer c.Close()
	if _, err := c.Get(context.Background(), "x"); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the fake's error %v does not match fs.ErrNotExist: the test proves nothing", err)
	}
	st := certmagicstore.New(c, nil)
	defer st.Close()
	ctx := context.Background()
	const k = "certificates/ca/example.com/example.com.crt"
	for _, tc := range []struct {
		op string
		fn func() error
	}{
		{"Load", func() error { _, err := st.Load(ctx, k); return err }},
		{"Stat", func() error { _, err := st.Stat(ctx, k); return err }},
		{"List", func() error { _, err := st.List(ctx, "certificates", false); return err }},
		{"List(recursive)", func() error { _, err := st.List(ctx, "certificates", true); return err }},
		{"Store", func() error { return st.Store(ctx, k, []byte("x")) }},
		{"Delete", func() error { return st.Delete(ctx, k) }},
		{"TryLock", func() error { _, err := st.TryLock(ctx, "issue_cert_example.com"); return err }},
		{"Lock", func() error { return st.Lock(ctx, "issue_cert_example.com") }},
	} {
		t.Run(tc.op, func(t *testing.T) {
			err := tc.fn()
			if err == nil {
				t.Fatal("succeeded; want an error")
			}
			if errors.Is(err, fs.ErrNotExist) {
				t.Errorf("%v matches fs.ErrNotExist: CertMagic would take a failure for a missing key", err)
			}
			var pe *fs.PathError
			if !errors.As(err, &pe) {
				t.Errorf("%v: errors.As does not find the cause", err)
			}
			var ce *certcache.Error
			if !errors.As(err, &ce) || ce.Backend != "enoent" {
				t.Errorf("%v: errors.As does not find the *certcache.Error", err)
			}
			if !strings.Contains(err.Error(), "enoent") {
				t.Errorf("%q does not name the backend", err)
			}
		})
	}
	if st.Exists(ctx, k) {
		t.Error("Exists on a failing store = true")
	}
}

// TestMemoryFrontLookedThrough: a Storage opened on a URL with a memory
// front reads the store, so that what another node stored is seen at once.
func TestMemoryFrontLookedThrough(t *testing.T) {
	ctx := context.Background()
	st, err := certmagicstore.Open(ctx, "mem://front-test?memory=true&memory_ttl=1h", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	other, err := certcache.Open(ctx, "mem://front-test")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if err := st.Store(ctx, "certificates/a/a.crt", []byte("old")); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Load(ctx, "certificates/a/a.crt"); err != nil {
		t.Fatal(err)
	}
	// Another node renews the certificate.
	if err := other.Put(ctx, certmagicstore.Namespace+"certificates/a/a.crt", []byte("new")); err != nil {
		t.Fatal(err)
	}
	got, err := st.Load(ctx, "certificates/a/a.crt")
	if err != nil || string(got) != "new" {
		t.Errorf("Load after another node's Store = %q, %v; want %q (a front's copy hid it)", got, err, "new")
	}
}

// TestLocksInOneStorage: CertMagic shares one Storage among all its
// goroutines; a lock excludes them as it excludes other nodes.
func TestLocksInOneStorage(t *testing.T) {
	st, err := certmagicstore.Open(context.Background(), "mem://", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var inside, most atomic.Int32
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			ctx := context.Background()
			for range 3 {
				if err := st.Lock(ctx, "issue_cert_example.com"); err != nil {
					t.Errorf("goroutine %d: Lock: %v", i, err)
					return
				}
				n := inside.Add(1)
				if n > most.Load() {
					most.Store(n)
				}
				time.Sleep(5 * time.Millisecond)
				inside.Add(-1)
				if err := st.Unlock(ctx, "issue_cert_example.com"); err != nil {
					t.Errorf("goroutine %d: Unlock: %v", i, err)
				}
			}
		})
	}
	wg.Wait()
	if m := most.Load(); m != 1 {
		t.Errorf("%d goroutines held the lock at once", m)
	}
}

// TestCloseReleasesLocks: a Storage that closes lets its locks go at once,
// and refuses calls after.
func TestCloseReleasesLocks(t *testing.T) {
	ctx := context.Background()
	a, err := certmagicstore.Open(ctx, "mem://close-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := certmagicstore.Open(ctx, "mem://close-test", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if err := a.Lock(ctx, "l"); err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if ok, err := b.TryLock(ctx, "l"); !ok || err != nil {
		t.Errorf("TryLock after the holder closed = %v, %v; want true at once", ok, err)
	}
	if ok, err := a.TryLock(ctx, "m"); ok || !errors.Is(err, certcache.ErrClosed) {
		t.Errorf("TryLock after Close = %v, %v; want certcache.ErrClosed", ok, err)
	}
	if _, err := a.Load(ctx, "x"); !errors.Is(err, certcache.ErrClosed) || errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Load after Close = %v; want certcache.ErrClosed", err)
	}
	if err := a.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

// TestString: the name CertMagic and Caddy log shows no credentials.
func TestString(t *testing.T) {
	for _, tc := range []struct{ url, want string }{
		{"redis://:s3cr3t@cache.internal:6379/0?prefix=web", "certcache:redis://cache.internal:6379/0"},
		{"mem://named", "certcache:mem://named"},
	} {
		st, err := certmagicstore.Open(context.Background(), tc.url, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := st.String(); got != tc.want {
			t.Errorf("String() = %q, want %q", got, tc.want)
		}
		st.Close()
	}
	c, _ := certcache.Open(context.Background(), "mem://")
	defer c.Close()
	if got := certmagicstore.New(c, nil).String(); got != "certcache" {
		t.Errorf("String() of New = %q", got)
	}
}

// TestOpenErrors: a URL certcache refuses is refused, without contacting
// anything, with certcache's error.
func TestOpenErrors(t *testing.T) {
	_, err := certmagicstore.Open(context.Background(), "redis://:s3cr3t@host:6379/0?nosuch=1", nil)
	if !errors.Is(err, certcache.ErrInvalidURL) || strings.Contains(fmt.Sprint(err), "s3cr3t") {
		t.Errorf("Open with an unknown parameter = %v; want certcache.ErrInvalidURL without the password", err)
	}
}

// TestOptionsNotMutated: the caller's Options stay as they were.
func TestOptionsNotMutated(t *testing.T) {
	o := &certmagicstore.Options{}
	st, err := certmagicstore.Open(context.Background(), "mem://", o)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if *o != (certmagicstore.Options{}) {
		t.Errorf("Open changed the caller's Options to %+v", *o)
	}
}

// A Storage is what CertMagic takes, and what Caddy's storage modules
// return.
var (
	_ certmagic.Storage          = (*certmagicstore.Storage)(nil)
	_ certmagic.TryLocker        = (*certmagicstore.Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*certmagicstore.Storage)(nil)
)
