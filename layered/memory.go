package layered

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/backendopts"
	"golang.org/x/crypto/acme/autocert"
)

// Defaults of MemoryOptions.
const (
	// DefaultTTL is how long a copy in memory is served without asking the
	// tiers below. It is short on purpose: another node may renew a
	// certificate at any time, and a copy older than the renewal makes
	// autocert renew again.
	DefaultTTL = time.Minute

	// DefaultMaxEntries bounds the number of keys held: about three keys per
	// domain (certificate, RSA certificate, order token), so some 3,000
	// domains.
	DefaultMaxEntries = 10000

	// DefaultMaxBytes bounds the bytes of keys and values held.
	DefaultMaxBytes = 64 << 20
)

// MemoryOptions configure a Memory tier. The zero value (or nil) gives the
// defaults.
type MemoryOptions struct {
	// TTL is how long a stored or loaded copy counts as fresh. A fresh copy
	// answers Get without the tiers below; an expired one is kept (until
	// the bounds evict it) only to be served when the tiers below fail. If
	// zero, DefaultTTL.
	TTL time.Duration

	// MaxEntries bounds the number of keys held; the least recently used
	// key goes first. If zero, DefaultMaxEntries.
	MaxEntries int

	// MaxBytes bounds the bytes of the keys and values held; the least
	// recently used keys go first until the rest fits. A value larger than
	// MaxBytes is not held at all. The bookkeeping of each entry (about 120
	// bytes) comes on top and is bounded by MaxEntries. If zero,
	// DefaultMaxBytes.
	MaxBytes int64

	// Preload makes a Stack with this tier in front of its authority load
	// every certificate the authority lists into the tier when the Stack
	// is made (by New, or by certcache.Open with memory_preload=true): in
	// the background, never delaying New or a Get. See the package
	// documentation (# Preloading). A Memory used alone, or as the last
	// tier of a Stack, has nothing to preload from and ignores it.
	Preload bool

	// PreloadConcurrency bounds the reads a preload has in flight at once:
	// Gets over a backend that reads one key per request (file, S3,
	// Azure), batches over one that reads in batches (Redis, SQL), where
	// at most four are read at once whatever it says. Keep it below the
	// backend's connection pool, so that handshakes still find a
	// connection while a preload runs. If zero, DefaultPreloadConcurrency().
	PreloadConcurrency int

	// Logger receives the outcome of a preload: one Info line when it
	// ends, one Warn line when it fails or some certificates could not be
	// read. If nil, slog.Default() at the time of logging.
	Logger *slog.Logger

	// Now is the clock, for tests. If nil, time.Now.
	Now func() time.Time
}

// DefaultPreloadConcurrency is the PreloadConcurrency used when
// MemoryOptions does not set one: 16, but at most the connections a
// backend's default pool (ten per CPU) has left
// after four for the node's own calls. autocert makes one Get at a time
// under its lock, so four leave room for handshakes, Puts and leases.
func DefaultPreloadConcurrency() int {
	return max(1, min(16, backendopts.MaxConns()-4))
}

// Memory is a bounded, least-recently-used cache in process memory whose
// copies are fresh for a TTL; NewMemory makes one. Its place is the front of
// a Stack (see New): alone, it is a cache that forgets after the TTL.
//
// The map (lru.go) is under one mutex, which also keeps the byte count
// exact; a hit costs one lock. An expired copy is kept until the bounds
// evict it: stale-if-error serves it.
type Memory struct {
	ttl        time.Duration
	maxEntries int
	maxBytes   int64
	now        func() time.Time
	epoch      time.Time // expiry times are durations since it; see clock
	preload    preloadOptions

	mu    sync.Mutex
	lru   *lru
	bytes int64
	gen   uint64 // bumped by every Put and Delete; see store

	closed    atomic.Bool
	hits      atomic.Uint64
	misses    atomic.Uint64
	evictions atomic.Uint64
}

var _ certcache.Cache = (*Memory)(nil)

func size(key string, val []byte) int64 { return int64(len(key) + len(val)) }

// NewMemory returns a Memory tier; its dynamic type is *Memory. A nil o means
// the defaults. Negative bounds or TTL count as zero.
func NewMemory(o *MemoryOptions) certcache.Cache { return newMemory(o) }

func newMemory(o *MemoryOptions) *Memory {
	var opts MemoryOptions
	if o != nil {
		opts = *o
	}
	if opts.TTL <= 0 {
		opts.TTL = DefaultTTL
	}
	if opts.MaxEntries <= 0 {
		opts.MaxEntries = DefaultMaxEntries
	}
	if opts.MaxBytes <= 0 {
		opts.MaxBytes = DefaultMaxBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PreloadConcurrency <= 0 {
		opts.PreloadConcurrency = DefaultPreloadConcurrency()
	}
	m := &Memory{ttl: opts.TTL, maxEntries: opts.MaxEntries, maxBytes: opts.MaxBytes, now: opts.Now, epoch: opts.Now(),
		preload: preloadOptions{on: opts.Preload, concurrency: opts.PreloadConcurrency, logger: opts.Logger},
		lru:     newLRU()}
	return m
}

// clock returns the time since m.epoch, which expiry times count in: eight
// bytes an entry rather than a time.Time's 24, and still on the monotonic
// clock when the clock is time.Now (Sub uses it), so that a step of the
// wall clock neither expires nor prolongs a copy.
func (m *Memory) clock() int64 { return int64(m.now().Sub(m.epoch)) }

// expiry returns when a copy stored at now (a clock reading) expires; a
// TTL beyond the clock's range means never.
func (m *Memory) expiry(now int64) int64 {
	if e := now + int64(m.ttl); e >= now {
		return e
	}
	return math.MaxInt64
}

// lookup returns the copy held for key, shared (the caller must not modify
// it), and whether it is still fresh.
func (m *Memory) lookup(key string) (val []byte, fresh, ok bool) {
	m.mu.Lock()
	val, expires, ok := m.lru.get(key)
	m.mu.Unlock()
	if !ok {
		return nil, false, false
	}
	return val, m.clock() < expires, true
}

// fresh reports whether key is held and fresh, without making it the most
// recently used.
func (m *Memory) fresh(key string) bool {
	m.mu.Lock()
	_, expires, ok := m.lru.peek(key)
	m.mu.Unlock()
	return ok && m.clock() < expires
}

// evictOldest drops the least recently used entry to stay within the
// bounds; m.mu is held.
func (m *Memory) evictOldest() {
	if key, val, ok := m.lru.removeOldest(); ok {
		m.bytes -= size(key, val)
		m.evictions.Add(1)
	}
}

// generation returns the current generation, for store and remove.
func (m *Memory) generation() uint64 {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gen
}

// store holds a copy of data for key, fresh for the TTL. With check, it does
// so only if no Put or Delete happened since generation returned gen: a
// value read from a slower tier before a Put or Delete must not overwrite
// what that Put or Delete left. It reports whether the copy is held.
func (m *Memory) store(key string, data []byte, check bool, gen uint64) bool {
	n := size(key, data)
	var v []byte
	if n <= m.maxBytes {
		v = append([]byte{}, data...) // the caller may reuse data; never nil
	}
	expires := m.expiry(m.clock())
	m.mu.Lock()
	defer m.mu.Unlock()
	if check && gen != m.gen {
		return false
	}
	if !check {
		m.gen++
	}
	if v == nil { // too large to hold: drop the older copy, hold nothing
		m.removeLocked(key)
		return false
	}
	if old, had := m.lru.set(key, v, expires); had {
		m.bytes -= size(key, old)
	}
	m.bytes += n
	for m.lru.len() > m.maxEntries || m.bytes > m.maxBytes {
		m.evictOldest()
	}
	return true
}

// preloadStore holds a copy of data for key, fresh for the TTL, as a fill
// does, but it never evicts: a preload stops when the tier is full (full
// is true) rather than push out what handshakes loaded. It holds nothing
// if a Put or Delete happened since generation returned gen, if the tier
// holds a fresh copy already (a handshake was first), if the value alone
// exceeds MaxBytes, or after Close.
//
// The copies of key and data are made by s (the preload's slab).
func (m *Memory) preloadStore(key string, data []byte, gen uint64, s *slab) (stored, full bool) {
	n := size(key, data)
	if n > m.maxBytes {
		return false, false // never held by this tier; the next key may fit
	}
	v := s.copy(data)
	key = s.copyString(key) // not the listing's string, which may hold more
	now := m.clock()
	m.mu.Lock()
	defer m.mu.Unlock()
	if gen != m.gen || m.closed.Load() {
		return false, false
	}
	old, expires, had := m.lru.peek(key)
	if had && now < expires {
		return false, false
	}
	bytes, entries := m.bytes+n, m.lru.len()+1
	if had {
		bytes, entries = bytes-size(key, old), entries-1
	}
	if entries > m.maxEntries || bytes > m.maxBytes {
		return false, true
	}
	m.bytes = bytes
	m.lru.set(key, v, m.expiry(now))
	return true, false
}

// remove forgets key. With check, only if no Put or Delete happened since
// generation returned gen.
func (m *Memory) remove(key string, check bool, gen uint64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if check && gen != m.gen {
		return
	}
	if !check {
		m.gen++
	}
	m.removeLocked(key)
}

func (m *Memory) removeLocked(key string) {
	if val, ok := m.lru.remove(key); ok {
		m.bytes -= size(key, val)
	}
}

// Get implements autocert.Cache: a fresh copy is a hit; an expired or absent
// one is autocert.ErrCacheMiss.
func (m *Memory) Get(ctx context.Context, key string) ([]byte, error) {
	if err := m.check(ctx, "get", key); err != nil {
		return nil, err
	}
	v, fresh, ok := m.lookup(key)
	if !ok || !fresh {
		m.misses.Add(1)
		return nil, autocert.ErrCacheMiss
	}
	m.hits.Add(1)
	return append([]byte{}, v...), nil
}

// Put implements autocert.Cache. A value larger than MaxBytes is not held,
// and no older copy of key is kept either.
func (m *Memory) Put(ctx context.Context, key string, data []byte) error {
	if err := m.check(ctx, "put", key); err != nil {
		return err
	}
	if len(data) > certcache.MaxValueSize {
		return opError("put", key, fmt.Errorf("%w: %d bytes, limit %d", certcache.ErrTooLarge, len(data), certcache.MaxValueSize))
	}
	m.store(key, data, false, 0)
	return nil
}

// Delete implements autocert.Cache.
func (m *Memory) Delete(ctx context.Context, key string) error {
	if err := m.check(ctx, "delete", key); err != nil {
		return err
	}
	m.remove(key, false, 0)
	return nil
}

// Close implements certcache.Cache: it drops every copy held.
func (m *Memory) Close() error {
	if m.closed.Swap(true) {
		return nil
	}
	m.mu.Lock()
	m.lru.purge()
	m.bytes = 0
	m.mu.Unlock()
	return nil
}

// Stats returns a snapshot of the tier's counters. Hits has one element.
func (m *Memory) Stats() Stats {
	entries, bytes := m.usage()
	return Stats{
		Hits:      []uint64{m.hits.Load()},
		Misses:    m.misses.Load(),
		Evictions: m.evictions.Load(),
		Entries:   entries,
		Bytes:     bytes,
	}
}

func (m *Memory) usage() (entries int, bytes int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lru.len(), m.bytes
}

func (m *Memory) check(ctx context.Context, op, key string) error {
	return checkCall(&m.closed, ctx, op, key)
}

// checkCall refuses the calls that must not reach any tier.
func checkCall(closed *atomic.Bool, ctx context.Context, op, key string) error {
	if closed.Load() {
		return opError(op, key, certcache.ErrClosed)
	}
	if err := certcache.ValidateKey(key); err != nil {
		return opError(op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return opError(op, key, err)
	}
	return nil
}

// opError is an error of this package's own, "certcache/layered: op "key": …".
func opError(op, key string, err error) error {
	return &certcache.Error{Backend: "layered", Op: op, Key: key, Err: err}
}
