// Package layered stacks certcache caches, fastest first, the last one
// authoritative, and gives any backend a bounded memory front that survives
// a backend outage.
//
// autocert.Manager already keeps the certificates it has loaded in its own
// memory, so a front is only worth having for what autocert cannot do: keep
// Get off the network when many Managers or processes read the same keys,
// serve a copy when the backend is down (at start-up too, with a local
// directory as a middle tier), and do both without ever making a node order
// a certificate that another node has already renewed.
//
//	import _ "github.com/certcache/certcache/layered" // registers the memory parameters
//
//	cache, err := certcache.Open(ctx, "redis://cache.internal:6379/0?memory=true&memory_ttl=1m")
//
// or, from Go code, with any tiers:
//
//	mem := layered.NewMemory(&layered.MemoryOptions{TTL: time.Minute})
//	disk, _ := certcache.Open(ctx, "file:///var/lib/myapp/certs")
//	s3, _ := certcache.Open(ctx, "s3://bucket/certs")
//	cache, err := layered.New(mem, disk, s3) // memory → disk → S3
//
// # URLs
//
// Importing the package adds these parameters to every backend's URL; they
// are handled here, once, and the backend never sees them:
//
//	memory              true or false: put a Memory tier in front of the
//	                    backend. Default false; any other memory_ parameter
//	                    turns it on, and is an error with memory=false.
//	memory_ttl          how long a copy is fresh, a Go duration; default 1m
//	memory_max_entries  the most keys held; default 10000
//	memory_max_bytes    the most bytes of keys and values held: a number of
//	                    bytes, or with a unit KiB, MiB, GiB (or KB, MB, GB);
//	                    default 64MiB
//	memory_preload      true or false: when the cache opens, load every
//	                    certificate of the backend into memory, in the
//	                    background (see Preloading); default false
//
// For example "mem://?memory=true&memory_ttl=30s&memory_max_bytes=8MiB".
// A bad value is an error wrapping certcache.ErrInvalidURL that names the
// parameter; a misspelt one (memory_tll) reaches the backend, which refuses
// it as unknown.
//
// # Reads
//
// Get asks the tiers in order. A Memory tier answers only with a copy that
// is still fresh (younger than its TTL); within the TTL a hit never touches
// the tiers below. Any other faster tier (a local directory in front of S3)
// cannot tell how old its copy is, so it is a fallback: written by Put and
// by every read from the authority (unless it holds that value already), but
// served from only when the authority fails.
// A fallback read in the normal course would serve a certificate that
// another node has since renewed, forever, and autocert, finding it near
// expiry, would order it again.
//
// A value read from the authority fills every faster tier (read-through).
// Concurrent misses for one key make one call to the authority; each
// caller still gets its own copy and still returns when its own context
// ends. The shared call runs without the first caller's cancellation,
// bounded by the authority's own per-call timeout.
//
// Misses are never cached: an HTTP-01 token written by another node must be
// visible at once, and a certificate stored by another node must be found
// by the next handshake.
//
// The freshness TTL bounds how old a copy can be when autocert reads it.
// autocert reads the cache before it renews; a node whose front loaded the
// certificate within the TTL before that read could see the copy from before
// another node's renewal. Expired copies are never served while the
// authority answers, so the window is the TTL (default a minute), against
// the hour of random jitter autocert spreads renewals over.
//
// # Writes
//
// Put writes the authoritative tier first and the faster tiers only after
// it succeeded, nearest the authority first, the Memory tier last; a failed
// Put leaves the faster tiers as they were. Delete goes in the same order:
// authority first, so that a concurrent Get can find the key only in the
// faster tiers, which are emptied next, and never refill them from the
// authority after they were emptied. (Deleting the fronts first would let a
// concurrent Get read the not-yet-deleted authority and put the copy back in
// front for a whole TTL.) A read that started before a Put or Delete does
// not fill a Memory tier after it: each Memory tier counts its writes and a
// fill from an older read is dropped. Fallback tiers are not filled by a
// read that overlapped a write through this Stack either.
//
// When a faster tier fails to take a Put or Delete after the authority took
// it, the Stack removes the key from that tier; if that fails too, the call
// returns an error saying the authority has the change but that tier may
// still hold an older value.
//
// # Errors
//
// Stale-if-error: when the authority fails with anything but a miss (server
// down, timeout), Get serves the first copy a faster tier holds, expired or
// not — an expired Memory copy, a fallback tier's file — and counts a stale
// serve, instead of failing the TLS handshake. Without any copy, Get returns
// the authority's error, never autocert.ErrCacheMiss. A miss from the
// authority is a miss even when a faster tier holds an old copy, and drops
// that copy. (Serving a stale copy never makes autocert renew where it would
// not have: given an error instead, its renewal goes ahead all the same.)
//
// Errors of the Stack itself (closed, invalid key, cancelled context) read
// "certcache/layered: get "key": …"; errors from a tier pass through as that
// tier returned them.
//
// # Preloading
//
// autocert reads a certificate it has not loaded yet while it holds a lock
// that every TLS handshake of the node takes, so a restarted node's first
// handshakes wait for each other: N names cost N store round trips one
// after the other (1,000 names behind 10 ms of latency: over ten seconds
// before the last one is served). With memory_preload=true
// (MemoryOptions.Preload), the Stack loads every certificate into its
// memory front as soon as it is made, in bulk: one streaming listing of
// the authority's keys (certcache.List, or keys alone where that saves
// round trips: Redis), and batched reads of what it lists
// (certcache.GetMany). Over Redis and SQL a batch of up to 1,000 names is
// one round trip (MGET, a SQL IN list); a batch leaves when it is full or
// when the listing pauses for its next page, so that the names of one page
// are read while the next is listed, and at most four batches are read at
// once (fewer if PreloadConcurrency is lower). Over file, S3 and Azure,
// which read one key per request, up to PreloadConcurrency Gets run at
// once (DefaultPreloadConcurrency). Either way the preload starts with one
// read in flight and adds one per answer, but never more than four
// waiting for their first answer, so that a cold connection pool
// opens its connections a few at a time (all at once, on a busy store,
// they can outlast the timeout, which would open the circuit breaker for
// the handshakes too). Handshakes then find their certificate in memory; one
// that comes before the preload reached its name reads the store as it
// would have without the preload, and one whose name the preload is
// reading takes whichever read lands first, its own or the preload's. The gain grows with
// the store's round trip: on a store a fraction of a millisecond away a
// preload saves little, and where CPU is short (the store on the same small
// machine) its Gets compete with the handshakes for it.
//
// The preload runs in the background: New, certcache.Open and Get never
// wait for it; PreloadDone reports its end, for a server that prefers to
// take traffic only then. It loads certificate keys only ("<domain>" and
// "<domain>+rsa"; tokens, HTTP-01 challenges and the account key are read
// when needed), never evicts anything (it stops when the front reaches
// memory_max_entries or memory_max_bytes: size them for every certificate),
// never overwrites a copy that a handshake, Put or Delete left meanwhile,
// and never takes an order lease (a certificate deleted since the listing
// is skipped). It needs a backend that can list (every backend of this
// module can). A failure only logs (MemoryOptions.Logger, default
// slog.Default()) and counts (Stats): a failed listing ends it; a batch
// that fails otherwise than by an unavailable store (a value that does not
// decrypt) is read again name by name, and a failed read is counted and
// skipped; an unavailable store (certcache.ErrUnavailable) ends it. Close
// stops it.
//
// A preloaded copy is fresh for the TTL like any other fill. After that,
// a name autocert has not asked for yet is read from the store again, under
// autocert's lock, as without the preload (autocert keeps what it loaded,
// so a name is read once per process either way). The expired copies stay
// in memory until the bounds evict them, and are served when the store
// fails (stale-if-error): a node restarted just before an outage still
// serves every certificate. A longer memory_ttl stretches the window in
// which first handshakes are answered from memory, at the cost of seeing
// another node's renewal later (see Reads).
//
// # Issuance coordination
//
// certcache.Open puts issuance coordination (certcache.ErrIssuing) above
// the memory front, where it sees what autocert sees, a due certificate in
// memory included. Below a front it would not: a renewal answered from
// memory would take no lease, and every node would renew. So a Stack uses
// its tiers beneath their coordination (certcache.Uncoordinated), and New
// does the same with tiers opened by certcache.Open, then puts the
// authority's coordination back on top of the Stack
// (hook.CoordinateAs): what New returns coordinates issuance as the
// authority tier did.
//
// # Counters
//
// Stats returns a snapshot of atomic counters: hits per tier, misses, stale
// serves, authority errors, faster-tier errors, evictions, and what the
// Memory tiers hold. A Stack with a Memory tier also reports them as
// OpenTelemetry metrics (certcache.memory.*; see docs/telemetry.md),
// and logs a stale serve at Warn (at most one line per 10 s, with a count).
// Stats is a plain struct, so expvar can publish it:
//
//	expvar.Publish("certcache", expvar.Func(func() any { s, _ := layered.StatsOf(cache); return s }))
package layered

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/authority"
	"golang.org/x/crypto/acme/autocert"
)

// Stack is the Cache New returns: tiers in order, fastest first, the last
// one authoritative.
type Stack struct {
	tiers []certcache.Cache
	mems  []*Memory // mems[i] is tiers[i] when it is a *Memory, else nil
	auth  certcache.Cache

	flights flights       // reads of the authority in the air (flight.go)
	writes  atomic.Uint64 // Puts and Deletes begun; see load
	closed  atomic.Bool
	pre     *preloader      // nil without a preload
	tel     *stackTelemetry // metrics and the stale-serve log (otel.go)

	hits          []atomic.Uint64 // per tier
	misses        atomic.Uint64
	stale         atomic.Uint64
	backendErrors atomic.Uint64
	frontErrors   atomic.Uint64
}

var _ certcache.Cache = (*Stack)(nil)

// New returns a Cache over tiers, fastest first, the last one authoritative;
// its dynamic type is *Stack, under the authority's coordination if it had
// one (certcache.Uncoordinated reaches the *Stack). Tiers made by NewMemory are fronts that answer
// within their TTL; any other tier but the last is a fallback (see the
// package documentation). A Memory tier whose options ask for a preload
// starts loading the authority's certificates now, in the background.
// Close closes every tier.
//
// New uses each tier beneath its issuance coordination
// (certcache.Uncoordinated) and puts the authority's on top: see the
// package documentation (# Issuance coordination).
func New(tiers ...certcache.Cache) (certcache.Cache, error) {
	if len(tiers) == 0 {
		return nil, errors.New("certcache/layered: New: no tiers")
	}
	s := &Stack{
		tiers: make([]certcache.Cache, len(tiers)),
		mems:  make([]*Memory, len(tiers)),
		hits:  make([]atomic.Uint64, len(tiers)),
	}
	for i, t := range tiers {
		if t == nil {
			return nil, fmt.Errorf("certcache/layered: New: tier %d is nil", i)
		}
		t = certcache.Uncoordinated(t)
		for j := 0; j < i; j++ {
			if s.tiers[j] == t {
				return nil, fmt.Errorf("certcache/layered: New: tiers %d and %d are the same cache", j, i)
			}
		}
		s.tiers[i] = t
		if m, ok := t.(*Memory); ok && i < len(tiers)-1 {
			s.mems[i] = m
		}
	}
	s.auth = s.tiers[len(s.tiers)-1]
	s.startPreload()
	s.observe()
	// Coordination, taken off the authority above, goes back on top of
	// the stack, where it sees what autocert sees.
	return hook.CoordinateAs(s, tiers[len(tiers)-1]), nil
}

// Get implements autocert.Cache; see the package documentation.
func (s *Stack) Get(ctx context.Context, key string) ([]byte, error) {
	if err := checkCall(&s.closed, ctx, "get", key); err != nil {
		return nil, err
	}
	if authority.Required(ctx) {
		// A read that decides an order: the authority's answer, whatever
		// the front holds, and its error rather than a stale copy.
		return s.load(ctx, key, false)
	}
	if v, ok := s.fresh(key); ok {
		return append([]byte{}, v...), nil // the caller owns what it gets
	}
	// The preload may be reading key already; whichever read lands first
	// answers. Under autocert's lock every handshake of the node waits for
	// this one, and the preload's batch may be one round trip from landing
	// or stuck behind a connection's handshake.
	landed := s.preloadReading(key)
	// The read runs without the first caller's cancellation (its values
	// only), bounded by the authority's own per-call timeout: a caller
	// that gives up must not fail the others that joined its read, nor
	// leave the faster tiers unfilled. So the first caller reads in its
	// own goroutine only when nothing can end its wait, and has no other
	// read to take; otherwise the read runs in a goroutine of its own
	// and the caller waits for whichever comes first.
	inline := landed == nil && ctx.Done() == nil
	f, first := s.flights.join(ctx, key, !inline)
	if first {
		if inline {
			s.fly(key, f)
			return f.result()
		}
		go s.fly(key, f)
	}
	for {
		select {
		case <-f.done:
			return f.result()
		case <-landed:
			landed = nil
			if v, ok := s.fresh(key); ok {
				return append([]byte{}, v...), nil
			}
		case <-ctx.Done():
			return nil, opError("get", key, ctx.Err())
		}
	}
}

// fresh returns a fresh copy held by a Memory tier, shared (the caller must
// not modify it), and counts the hit.
func (s *Stack) fresh(key string) ([]byte, bool) {
	for i, m := range s.mems {
		if m == nil {
			continue
		}
		if v, fresh, ok := m.lookup(key); ok && fresh {
			s.hits[i].Add(1)
			return v, true
		}
	}
	return nil, false
}

// load reads key from the authority, fills or empties the faster tiers, and
// falls back to a stale copy when the authority fails, if staleIfError.
// The slice it returns is not held by any tier.
func (s *Stack) load(ctx context.Context, key string, staleIfError bool) ([]byte, error) {
	last := len(s.tiers) - 1
	var buf [4]uint64 // on the stack: the tiers of most Stacks
	gens := buf[:]
	if len(s.mems) > len(buf) {
		gens = make([]uint64, len(s.mems))
	}
	for i, m := range s.mems {
		if m != nil {
			gens[i] = m.generation()
		}
	}
	writes := s.writes.Load()
	v, err := s.auth.Get(ctx, key)
	switch {
	case err == nil:
		s.hits[last].Add(1)
		for i := last - 1; i >= 0; i-- {
			if m := s.mems[i]; m != nil {
				m.store(key, v, true, gens[i])
			} else if s.writes.Load() == writes {
				s.fill(ctx, i, key, v)
			}
		}
		return v, nil
	case err == autocert.ErrCacheMiss: //nolint:errorlint // the contract's bare sentinel
		s.misses.Add(1)
		for i := last - 1; i >= 0; i-- {
			if m := s.mems[i]; m != nil {
				m.remove(key, true, gens[i])
			} else if s.writes.Load() == writes {
				if err := s.tiers[i].Delete(ctx, key); err != nil {
					s.frontErrors.Add(1)
				}
			}
		}
		return nil, autocert.ErrCacheMiss
	}
	s.backendErrors.Add(1)
	if !staleIfError || errors.Is(err, certcache.ErrClosed) || errors.Is(err, certcache.ErrInvalidKey) {
		return nil, err // not an outage, or not to be hidden
	}
	for i := 0; i < last; i++ {
		var stale []byte
		if m := s.mems[i]; m != nil {
			if sv, _, ok := m.lookup(key); ok {
				stale = append([]byte{}, sv...)
			}
		} else if fv, ferr := s.tiers[i].Get(ctx, key); ferr == nil {
			stale = fv
		}
		if stale != nil {
			s.stale.Add(1)
			s.servedStale(ctx, key, i, err)
			return stale, nil
		}
	}
	return nil, err
}

// fill copies v into fallback tier i unless it holds v already: a read is
// cheaper than a write (file:// syncs every Put to disk), and a fallback is
// filled on every read from the authority.
func (s *Stack) fill(ctx context.Context, i int, key string, v []byte) {
	if old, err := s.tiers[i].Get(ctx, key); err == nil && bytes.Equal(old, v) {
		return
	}
	if err := s.tiers[i].Put(ctx, key, v); err != nil {
		s.frontErrors.Add(1)
		s.tiers[i].Delete(ctx, key) // best effort; it is read only in outages
	}
}

// Put implements autocert.Cache: the authority first, then the faster
// tiers, the fastest last.
func (s *Stack) Put(ctx context.Context, key string, data []byte) error {
	if err := checkCall(&s.closed, ctx, "put", key); err != nil {
		return err
	}
	s.writes.Add(1)
	if err := s.auth.Put(ctx, key, data); err != nil {
		s.backendErrors.Add(1)
		return err
	}
	var errs []error
	for i := len(s.tiers) - 2; i >= 0; i-- {
		if m := s.mems[i]; m != nil {
			m.store(key, data, false, 0)
			continue
		}
		if err := s.tiers[i].Put(ctx, key, data); err != nil {
			s.frontErrors.Add(1)
			if derr := s.tiers[i].Delete(ctx, key); derr != nil {
				errs = append(errs, fmt.Errorf("tier %d: %w", i, err))
			}
		}
	}
	return frontFailure("put", key, errs)
}

// Delete implements autocert.Cache: the authority first, then the faster
// tiers, the fastest last; see the package documentation for why.
func (s *Stack) Delete(ctx context.Context, key string) error {
	if err := checkCall(&s.closed, ctx, "delete", key); err != nil {
		return err
	}
	s.writes.Add(1)
	if err := s.auth.Delete(ctx, key); err != nil {
		s.backendErrors.Add(1)
		return err
	}
	var errs []error
	for i := len(s.tiers) - 2; i >= 0; i-- {
		if m := s.mems[i]; m != nil {
			m.remove(key, false, 0)
			continue
		}
		if err := s.tiers[i].Delete(ctx, key); err != nil {
			s.frontErrors.Add(1)
			errs = append(errs, fmt.Errorf("tier %d: %w", i, err))
		}
	}
	return frontFailure("delete", key, errs)
}

func frontFailure(op, key string, errs []error) error {
	if len(errs) == 0 {
		return nil
	}
	return opError(op, key, fmt.Errorf("the authoritative tier has the change, but a faster tier may still hold an older value: %w", errors.Join(errs...)))
}

// Unwrap returns the tiers, fastest first, so that code looking for a
// wrapper below the stack (encrypt.Reseal looks for the encrypting cache)
// finds it, as errors.Unwrap does for a tree of errors.
func (s *Stack) Unwrap() []certcache.Cache { return s.tiers }

// Close implements certcache.Cache: it stops a running preload, closes
// every tier, and returns the first error.
func (s *Stack) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	if s.pre != nil {
		s.pre.close()
	}
	s.tel.close()
	var first error
	for _, t := range s.tiers {
		if err := t.Close(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Stats is a snapshot of a Stack's (or a Memory tier's) counters.
type Stats struct {
	// Hits counts the Gets each tier answered, fastest first; the last is
	// the authority. Stale serves are not hits.
	Hits []uint64

	// Misses counts Gets that found nothing: the authority said the key
	// does not exist.
	Misses uint64

	// StaleServes counts Gets answered with a faster tier's copy because
	// the authority failed.
	StaleServes uint64

	// BackendErrors counts failed Get, Put and Delete calls of the
	// authoritative tier, whether or not a stale copy hid the failure.
	BackendErrors uint64

	// FrontErrors counts failed writes to faster tiers (fills, Puts,
	// Deletes) after the authority succeeded.
	FrontErrors uint64

	// Evictions counts entries the Memory tiers dropped to stay within
	// their bounds.
	Evictions uint64

	// Entries and Bytes are what the Memory tiers hold now (keys and
	// values, expired ones included).
	Entries int
	Bytes   int64

	// PreloadListed counts the certificate keys a preload has found in
	// the authority's listing so far; PreloadLoaded the copies it has put
	// in memory (keys a handshake loaded first, or deleted since they were
	// listed, are not counted); PreloadErrors its failed Gets, and a
	// failed listing. PreloadDone is true once the preload has ended, in
	// whatever way: run to the end, stopped by a full front, by an
	// unavailable store, or by Close. All are zero without a preload.
	PreloadListed uint64
	PreloadLoaded uint64
	PreloadErrors uint64
	PreloadDone   bool
}

// Stats returns a snapshot of the Stack's counters.
func (s *Stack) Stats() Stats {
	st := Stats{
		Hits:          make([]uint64, len(s.hits)),
		Misses:        s.misses.Load(),
		StaleServes:   s.stale.Load(),
		BackendErrors: s.backendErrors.Load(),
		FrontErrors:   s.frontErrors.Load(),
	}
	for i := range s.hits {
		st.Hits[i] = s.hits[i].Load()
	}
	for _, m := range s.mems {
		if m != nil {
			st.Evictions += m.evictions.Load()
			n, b := m.usage()
			st.Entries += n
			st.Bytes += b
		}
	}
	s.preloadStats(&st)
	return st
}

// StatsOf returns the counters of c if it is a Stack or a Memory tier, as
// New and NewMemory return them, or such a cache beneath issuance
// coordination, as certcache.Open with memory=true returns it.
func StatsOf(c certcache.Cache) (Stats, bool) {
	switch c := certcache.Uncoordinated(c).(type) {
	case *Stack:
		return c.Stats(), true
	case *Memory:
		return c.Stats(), true
	}
	return Stats{}, false
}
