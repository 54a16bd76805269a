// Package certmagicstore makes any certcache store a certmagic.Storage, so
// that CertMagic (and Caddy, through github.com/certcache/certcache/caddy)
// keeps its certificates, keys, ACME accounts, challenge tokens and locks
// in Redis, PostgreSQL, MySQL, SQLite, S3, Azure Blob or a directory, behind
// the same URL and with the same guarantees as autocert's cache:
//
//	import (
//		"github.com/caddyserver/certmagic"
//		"github.com/certcache/certcache/certmagicstore"
//		_ "github.com/certcache/certcache/redis" // registers redis://
//	)
//
//	storage, err := certmagicstore.Open(ctx, "redis://cache:6379/0", nil)
//	if err != nil { ... }
//	defer storage.Close()
//	certmagic.Default.Storage = storage
//
// # What CertMagic gets
//
//   - A failure is never "not found". Load, Stat and List return an error
//     matching fs.ErrNotExist when, and only when, nothing is stored at the
//     key; an unreachable store, a timeout or a denied request is an error
//     that does not match fs.ErrNotExist (even where the store's own error
//     would), so CertMagic never takes an outage for a missing certificate
//     and orders a new one. errors.Is still finds certcache.ErrUnavailable
//     and the other certcache sentinels in it.
//   - Paths as CertMagic means them: keys are slash-separated paths
//     ("certificates/<issuer>/<name>/<name>.crt"); a "directory" exists
//     while keys lie under it; Stat of a directory has IsTerminal false and
//     the newest modification time beneath it (CertMagic picks the most
//     recent ACME account by it); Delete of a directory deletes everything
//     under it. List(path, false) gives the files and directories directly
//     under path, List(path, true) every file under it, as full keys.
//   - Locks that expire. Lock and TryLock take a certcache lease
//     (certcache.AcquireLease) judged by the store's clock; the holder
//     refreshes it every third of its time to live (Options.LockTTL) for as
//     long as it holds the lock — CertMagic holds its issuance lock for the
//     whole order — and Unlock releases it. A holder that dies stops
//     refreshing: its lock frees itself after the TTL and another node takes
//     over. Lock waits for a held lock by polling, backing off to one poll a
//     second, and gives up when its context ends.
//
// # Namespace: beside autocert on the same store
//
// Every key CertMagic stores is kept under the certcache key
// "certmagic/<path>", and every lock is the lease "certmagic/<name>".
// autocert's keys (domain names, "acme_account+key", "…+token") never
// contain a slash and its order leases are named "order:<key>", so one URL
// (one Redis prefix, one table, one bucket prefix) serves an autocert fleet
// and a CertMagic or Caddy fleet side by side without either seeing the
// other's data or locks.
//
// # URLs and wrappers
//
// Open takes every certcache URL and parameter. Encryption at rest
// (encryption_key=…) seals what CertMagic stores as it does autocert's
// values. Issuance coordination (certcache.ErrIssuing) is autocert's and is
// left out: CertMagic coordinates its own issuance with the locks above. A
// memory front (memory=true) is looked through: CertMagic keeps the
// certificates it manages in its own memory (certmagic.Cache), and the
// check it makes after taking its issuance lock — is the certificate in
// storage yet? — must see what another node stored a moment ago, which a
// front's copy could hide for its TTL.
//
// # Sizes and times
//
// Stat reports the size and modification time the store lists (by its own
// clock; zero where the store keeps none). Under encryption at rest the
// size is of the sealed value.
package certmagicstore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// Namespace is the prefix of every certcache key and lease name that a
// Storage uses: CertMagic's key "certificates/x/y.crt" is stored under
// "certmagic/certificates/x/y.crt", its lock "issue_cert_example.com" is the
// lease "certmagic/issue_cert_example.com".
const Namespace = "certmagic/"

// DefaultLockTTL is the time to live of a lock's lease when
// Options.LockTTL is zero. A node that dies holding a lock delays the
// others by at most this; the holder refreshes every third of it, so a
// store that fails to answer for twenty seconds does not cost it the lock.
const DefaultLockTTL = 30 * time.Second

// Poll intervals of Lock while another holder has the lock: from the
// first, doubling, up to the last, with jitter so that waiters on many
// nodes spread out.
const (
	firstPoll = 50 * time.Millisecond
	maxPoll   = time.Second
)

// DeleteBatch is how many keys under a directory Delete lists before it
// deletes them and lists again. CertMagic's directories (a certificate's
// three files, an account's two) fit in one batch.
const DeleteBatch = 100

// Options configure a Storage. A nil *Options means the defaults.
type Options struct {
	// LockTTL is the time to live of the lease behind each lock; the holder
	// refreshes it every third of the TTL. If zero, DefaultLockTTL. The
	// portable layer raises anything under a second to a second.
	LockTTL time.Duration

	// Logger receives what a Storage cannot return to anyone: a lock's
	// refresh that failed, or a lock lost to another holder after its lease
	// ran out. If nil, slog.Default().
	Logger *slog.Logger
}

// Storage is a certmagic.Storage, TryLocker and LockLeaseRenewer on a
// certcache Cache. Its methods are safe for concurrent use.
type Storage struct {
	c      certcache.Cache // beneath coordination and memory fronts
	owned  certcache.Cache // closed by Close; nil for New
	ttl    time.Duration
	log    *slog.Logger
	origin string // for String: the URL without credentials or query

	mu     sync.Mutex
	locks  map[string]*held // lock name → the lock this Storage holds
	closed bool
}

// held is a lock a Storage holds, with the goroutine that keeps its lease.
type held struct {
	lease *certcache.Lease
	stop  chan struct{} // closed (once) to end the refresher
	once  sync.Once
	done  chan struct{} // closed by the refresher when it ends
}

var (
	_ certmagic.Storage          = (*Storage)(nil)
	_ certmagic.TryLocker        = (*Storage)(nil)
	_ certmagic.LockLeaseRenewer = (*Storage)(nil)
)

// New returns a Storage on c. c stays the caller's: Close does not close
// it. See the package documentation for what New looks through (issuance
// coordination, a memory front).
func New(c certcache.Cache, o *Options) *Storage {
	s := &Storage{c: beneath(c), ttl: DefaultLockTTL, log: slog.Default(), locks: map[string]*held{}, origin: "certcache"}
	if o != nil {
		if o.LockTTL > 0 {
			s.ttl = o.LockTTL
		}
		if o.Logger != nil {
			s.log = o.Logger
		}
	}
	return s
}

// Open opens the certcache URL rawURL (see certcache.Open; the backend's
// package must be imported) and returns a Storage on it that owns the
// cache: Close closes it. Like certcache.Open, it does not contact the
// store.
func Open(ctx context.Context, rawURL string, o *Options) (*Storage, error) {
	c, err := certcache.Open(ctx, rawURL)
	if err != nil {
		return nil, err
	}
	s := New(c, o)
	s.owned = c
	if u, err := url.Parse(rawURL); err == nil {
		s.origin = "certcache:" + u.Scheme + "://" + u.Host + u.Path
	}
	return s, nil
}

// beneath returns the cache under c's issuance coordination and memory
// fronts (see the package documentation); encryption stays.
func beneath(c certcache.Cache) certcache.Cache {
	c = certcache.Uncoordinated(c)
	for range 16 {
		st, ok := c.(interface{ Unwrap() []certcache.Cache })
		if !ok {
			break
		}
		tiers := st.Unwrap()
		if len(tiers) == 0 {
			break
		}
		c = tiers[len(tiers)-1] // the authority
	}
	return c
}

// String names the store without credentials, for CertMagic's and Caddy's
// logs (zap logs a Storage through it).
func (s *Storage) String() string { return s.origin }

// Close releases the locks this Storage holds, so that other nodes need not
// wait for their leases to run out, and closes the cache if Open opened it.
// Calls after Close fail.
func (s *Storage) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	locks := s.locks
	s.locks = map[string]*held{}
	s.mu.Unlock()
	for _, h := range locks {
		h.end()
		ctx, cancel := context.WithTimeout(context.Background(), certcache.DefaultTimeout)
		h.lease.Release(ctx) // best effort: otherwise the lease runs out
		cancel()
	}
	if s.owned != nil {
		return s.owned.Close()
	}
	return nil
}

// key maps a CertMagic key to its certcache key.
func key(k string) string { return Namespace + k }

// dirPrefix is the certcache prefix of everything under the CertMagic
// directory dir ("" is the root).
func dirPrefix(dir string) string {
	if dir == "" {
		return Namespace
	}
	return Namespace + dir + "/"
}

// notExist is the error for a key that does not exist.
func notExist(op, k string) error {
	return fmt.Errorf("certcache/certmagic: %s %q: %w", op, k, fs.ErrNotExist)
}

// failure is any error but a missing key. It matches what its cause
// matches (certcache.ErrUnavailable, context.Canceled, …) except
// fs.ErrNotExist, which some causes would match — a driver's
// *fs.PathError for ENOENT, say — and which CertMagic takes for a missing
// key. For that it has no Unwrap: it answers errors.Is and errors.As itself.
type failure struct{ err error }

func (f *failure) Error() string { return f.err.Error() }

// Is reports whether the cause matches target, and never fs.ErrNotExist.
func (f *failure) Is(target error) bool {
	return target != fs.ErrNotExist && errors.Is(f.err, target)
}

// As finds target in the cause's chain.
func (f *failure) As(target any) bool { return errors.As(f.err, target) }

func fail(err error) error {
	if err == nil {
		return nil
	}
	return &failure{err: err}
}

// Store implements certmagic.Storage.
func (s *Storage) Store(ctx context.Context, k string, value []byte) error {
	return fail(s.c.Put(ctx, key(k), value))
}

// Load implements certmagic.Storage: an error matching fs.ErrNotExist if
// and only if nothing is stored at k.
func (s *Storage) Load(ctx context.Context, k string) ([]byte, error) {
	data, err := s.c.Get(ctx, key(k))
	if err == autocert.ErrCacheMiss { //nolint:errorlint // certcache returns the bare sentinel for a miss, and only for a miss.
		return nil, notExist("load", k)
	}
	if err != nil {
		return nil, fail(err)
	}
	return data, nil
}

// Delete implements certmagic.Storage: it deletes the file k and, if k is
// a directory, everything under it. Deleting what does not exist is not an
// error.
func (s *Storage) Delete(ctx context.Context, k string) error {
	if err := s.c.Delete(ctx, key(k)); err != nil {
		return fail(err)
	}
	// What lies under k, a batch at a time: listing and deleting at once
	// would ask some stores to page through what is changing under them.
	const batch = DeleteBatch
	prefix := dirPrefix(k)
	for {
		keys := make([]string, 0, 16)
		for e, err := range certcache.List(ctx, s.c, prefix) {
			if err != nil {
				return fail(err)
			}
			keys = append(keys, e.Key)
			if len(keys) == batch {
				break
			}
		}
		for _, ck := range keys {
			if err := s.c.Delete(ctx, ck); err != nil {
				return fail(err)
			}
		}
		if len(keys) < batch {
			return nil
		}
	}
}

// Exists implements certmagic.Storage: whether k is a file or a directory.
// It is false when the store cannot tell.
func (s *Storage) Exists(ctx context.Context, k string) bool {
	_, err := s.c.Get(ctx, key(k))
	switch {
	case err == nil:
		return true
	case err != autocert.ErrCacheMiss: //nolint:errorlint // the bare sentinel, see Load
		return false
	}
	for _, err := range certcache.List(ctx, s.c, dirPrefix(k)) {
		return err == nil // one key under k makes it a directory
	}
	return false
}

// List implements certmagic.Storage. It returns full keys: with recursive,
// every file under dir; without, the files and directories directly under
// dir, each once. It fails with an error matching fs.ErrNotExist if dir is
// neither a directory nor a file (a file lists as empty, as in CertMagic's
// FileStorage).
//
// Stores list by prefix, so a listing reads every key under dir, also
// without recursive.
func (s *Storage) List(ctx context.Context, dir string, recursive bool) ([]string, error) {
	prefix := dirPrefix(dir)
	var (
		keys  []string
		seen  = map[string]bool{}
		found bool
	)
	for e, err := range certcache.List(ctx, s.c, prefix) {
		if err != nil {
			return nil, fail(err)
		}
		found = true
		if recursive {
			keys = append(keys, strings.TrimPrefix(e.Key, Namespace))
			continue
		}
		child, _, _ := strings.Cut(e.Key[len(prefix):], "/")
		if child == "" || seen[child] {
			continue // "dir/" or "dir//x": no name of CertMagic's
		}
		seen[child] = true
		if dir == "" {
			keys = append(keys, child)
		} else {
			keys = append(keys, dir+"/"+child)
		}
	}
	if found {
		return keys, nil
	}
	if dir != "" {
		_, err := s.c.Get(ctx, key(dir))
		switch {
		case err == nil:
			return []string{}, nil // a file: nothing under it
		case err != autocert.ErrCacheMiss: //nolint:errorlint // the bare sentinel, see Load
			return nil, fail(err)
		}
	}
	return nil, notExist("list", dir)
}

// Stat implements certmagic.Storage. A file has IsTerminal true and the
// size and time the store lists; a directory has IsTerminal false and the
// newest time of what lies under it. Nothing at k is an error matching
// fs.ErrNotExist.
func (s *Storage) Stat(ctx context.Context, k string) (certmagic.KeyInfo, error) {
	file := key(k)
	under := dirPrefix(k)
	var (
		dir    bool
		newest time.Time
	)
	// Listing by the file's own key finds the file and, after a slash,
	// what lies under it (and keys that merely begin like it, skipped).
	for e, err := range certcache.List(ctx, s.c, strings.TrimSuffix(under, "/")) {
		if err != nil {
			return certmagic.KeyInfo{}, fail(err)
		}
		switch {
		case e.Key == file && k != "":
			return certmagic.KeyInfo{Key: k, Modified: e.ModTime, Size: e.Size, IsTerminal: true}, nil
		case strings.HasPrefix(e.Key, under):
			dir = true
			if e.ModTime.After(newest) {
				newest = e.ModTime
			}
		}
	}
	if !dir {
		return certmagic.KeyInfo{}, notExist("stat", k)
	}
	return certmagic.KeyInfo{Key: k, Modified: newest, IsTerminal: false}, nil
}

// Lock implements certmagic.Locker: it waits until it holds the lock name
// or ctx ends. A store that fails is an error at once: CertMagic gives up
// this round of work and tries again later.
func (s *Storage) Lock(ctx context.Context, name string) error {
	wait := firstPoll
	for {
		ok, err := s.TryLock(ctx, name)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		// Jitter of ±25%, so that waiters on many nodes spread out.
		d := wait - wait/4 + rand.N(wait/2+1)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return fail(fmt.Errorf("certcache/certmagic: lock %q: waiting for another holder: %w", name, ctx.Err()))
		case <-t.C:
		}
		wait = min(wait*2, maxPoll)
	}
}

// TryLock implements certmagic.TryLocker: it takes the lock name if no one
// holds it, and reports false without waiting if someone does.
func (s *Storage) TryLock(ctx context.Context, name string) (bool, error) {
	s.mu.Lock()
	closed := s.closed
	s.mu.Unlock()
	if closed {
		return false, fail(fmt.Errorf("certcache/certmagic: lock %q: %w", name, certcache.ErrClosed))
	}
	l, err := certcache.AcquireLease(ctx, s.c, key(name), s.ttl)
	if errors.Is(err, certcache.ErrLeaseHeld) {
		return false, nil
	}
	if err != nil {
		return false, fail(err)
	}
	h := &held{lease: l, stop: make(chan struct{}), done: make(chan struct{})}
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		l.Release(context.WithoutCancel(ctx))
		return false, fail(fmt.Errorf("certcache/certmagic: lock %q: %w", name, certcache.ErrClosed))
	}
	// An earlier lock of ours by this name can only have lost its lease
	// (it ran out, or we could not have acquired it): stop its refresher.
	old := s.locks[name]
	s.locks[name] = h
	s.mu.Unlock()
	if old != nil {
		old.end()
	}
	go s.keep(name, h)
	return true, nil
}

// Unlock implements certmagic.Locker: it releases the lock name. A lock
// this Storage does not hold is an error; a lock whose lease was lost to
// another holder is released as far as it can be: the other holder keeps
// it.
func (s *Storage) Unlock(ctx context.Context, name string) error {
	s.mu.Lock()
	h := s.locks[name]
	delete(s.locks, name)
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("certcache/certmagic: unlock %q: this Storage does not hold the lock", name)
	}
	h.end()
	return fail(h.lease.Release(ctx))
}

// RenewLockLease implements certmagic.LockLeaseRenewer. CertMagic calls it
// before each attempt of an order; it refreshes the lease now and fails if
// the lock was lost, so that an order whose lock ran out stops instead of
// racing the new holder. The lease keeps its TTL rather than taking
// leaseDuration (hours, for CertMagic's later retries): the holder's
// refresher keeps it alive for as long as the holder lives, and a holder
// that dies must free the lock within the TTL.
func (s *Storage) RenewLockLease(ctx context.Context, name string, leaseDuration time.Duration) error {
	s.mu.Lock()
	h := s.locks[name]
	s.mu.Unlock()
	if h == nil {
		return fmt.Errorf("certcache/certmagic: renew lock %q: this Storage does not hold the lock", name)
	}
	return fail(h.lease.Refresh(ctx))
}

// end stops h's refresher and waits for it.
func (h *held) end() {
	h.once.Do(func() { close(h.stop) })
	<-h.done
}

// keep refreshes h's lease every third of the TTL until h ends or the
// lease is lost.
func (s *Storage) keep(name string, h *held) {
	defer close(h.done)
	ttl := h.lease.TTL()
	tick := time.NewTicker(ttl / 3)
	defer tick.Stop()
	for {
		select {
		case <-h.stop:
			return
		case <-tick.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), ttl/3)
		err := h.lease.Refresh(ctx)
		cancel()
		switch {
		case err == nil:
		case errors.Is(err, certcache.ErrLeaseLost):
			s.log.Warn("certcache/certmagic: lock lost: its lease ran out and another holder may have it",
				"storage", s.origin, "lock", name, "error", err)
			return
		default:
			// The store did not answer: try again at the next tick, while
			// the lease may still run.
			s.log.Warn("certcache/certmagic: refreshing a lock failed; retrying",
				"storage", s.origin, "lock", name, "error", err)
		}
	}
}
