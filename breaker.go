package certcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certcache/certcache/driver"

	"golang.org/x/crypto/acme/autocert"
)

// The circuit breaker.
//
// autocert calls Cache.Get for a name it has not loaded while it holds the
// mutex every TLS handshake on the node takes first (Manager.stateMu in
// Manager.cert), cached names included. A store that hangs therefore costs
// every handshake on the node one full Get timeout for every new name asked
// for. The breaker bounds that to one timeout per outage: after a call shows
// that the store cannot answer, calls fail at once, and background probes
// find out when it answers again.
//
//   - Closed (the healthy state): calls go to the driver. A call that fails
//     with ErrUnavailable (no answer within the timeout, a refused or reset
//     connection) while its caller still waits opens the breaker. A miss, a
//     denied request, an invalid key, a value too large or a caller who gave
//     up (cancelled or expired context) never does: the store answered, or
//     was never asked.
//   - Open: every Get, Put and Delete fails at once with an error matching
//     ErrCircuitOpen and so ErrUnavailable — never a miss, so autocert
//     orders nothing — that says since when and after what. There is no
//     half-open state letting real calls through: on a frozen store such a
//     call would hold autocert's lock for a full timeout again. Instead a
//     goroutine probes the driver (Get of probeKey): at once, then
//     every Options.BreakerProbeInterval, one after another, each bounded by
//     a second; the first answer that is not unavailability (a hit, a miss,
//     even a refusal) closes the breaker. Beside them, one probe at a time
//     takes the whole Get timeout, so that a store slower than a second but
//     within the timeout is not locked out for good.
//
// Lease calls have a breaker of their own, the same but probed by a lease
// on leaseProbeName (see portable_caps.go): lease writes can hang while
// reads answer (a row lock held on a SQL lease table, a writer waiting on
// SQLite, an object store throttling writes), and a Get probe would then
// close a breaker that a lease call opened, at once, again and again —
// each new name costing autocert's lock a full timeout.
//
// At most two probes are in flight, and the hot path of a healthy store is
// one atomic pointer load; docs/design/breaker.md says why, and why not
// github.com/sony/gobreaker.

// breakerProbeTimeout bounds the short probes. A probe is a Get of one
// small key; a store that answers it within a second is found within about
// a second of coming back, whatever became of the probe in flight. (Long
// probes beside them get the whole Get timeout; see watch.)
const breakerProbeTimeout = time.Second

// probeKey is the key probes read. It is a valid key on every backend and
// one autocert never uses (its keys are domain names, optionally with the
// suffixes +rsa, +token and +http-01, and acme_account+key); it is never
// written, so a probe is a miss, which is an answer.
const probeKey = "certcache+breaker-probe"

// breaker is a circuit breaker of one portable cache: its Get, Put and
// Delete, or its lease calls.
type breaker struct {
	st       atomic.Pointer[breakerState]
	probe    func(ctx context.Context) error // asks the store for an answer
	backend  string
	interval time.Duration // between probes
	short    time.Duration // most probes' timeout
	long     time.Duration // the Get timeout, for the long probes

	mu      sync.Mutex // guards stopped and wg.Add against shutdown
	stopped bool
	life    context.Context // ended by shutdown: ends a probe in flight at once
	end     context.CancelFunc
	wg      sync.WaitGroup // the probing goroutine

	opened, closed, fastFailed, probes atomic.Uint64
}

// breakerState is one state of a breaker; never modified once published.
type breakerState struct {
	open  bool
	since time.Time // when it opened
	cause string    // the failure that opened it, without the backend prefix
	err   error     // what calls fail with while open
}

// getProbe is the main breaker's probe: a Get of probeKey.
func getProbe(d driver.Driver) func(context.Context) error {
	return func(ctx context.Context) error {
		_, err := d.Get(ctx, probeKey)
		return err
	}
}

// newBreaker returns a closed breaker whose probe is asked every interval
// while it is open; getTimeout bounds its long probes.
func newBreaker(backend string, probe func(context.Context) error, interval, getTimeout time.Duration) *breaker {
	b := &breaker{
		probe:    probe,
		backend:  backend,
		interval: interval,
		short:    min(breakerProbeTimeout, getTimeout),
		long:     getTimeout,
	}
	b.life, b.end = context.WithCancel(context.Background())
	b.st.Store(&breakerState{})
	return b
}

// admit returns the state a call starts in, and the error to fail it with
// at once if the breaker is open. A nil breaker admits everything.
func (b *breaker) admit(op, key string) (*breakerState, error) {
	if b == nil {
		return nil, nil
	}
	s := b.st.Load()
	if s.open {
		b.fastFailed.Add(1)
		return s, newError(b.backend, op, key, s.err)
	}
	return s, nil
}

// failed opens the breaker if err shows that the store cannot answer and
// the call began in state s. ctx is the caller's: a caller who gave up says
// nothing about the store. It returns err.
func (b *breaker) failed(ctx context.Context, s *breakerState, err error) error {
	if b == nil || s == nil || ctx.Err() != nil || !errors.Is(err, ErrUnavailable) {
		return err
	}
	if b.st.Load() != s {
		return err // opened by another call, or closed again since this one began
	}
	now := time.Now()
	cause := strings.TrimPrefix(err.Error(), "certcache/"+b.backend+": ")
	ns := &breakerState{
		open:  true,
		since: now,
		cause: cause,
		err:   fmt.Errorf("%w since %s after: %s", ErrCircuitOpen, now.Format("15:04:05.000"), cause),
	}
	if !b.st.CompareAndSwap(s, ns) {
		return err
	}
	b.opened.Add(1)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.stopped {
		b.wg.Add(1)
		go b.watch(ns)
	}
	return err
}

// watch probes the store while s is the state, until a probe closes the
// breaker or the cache is closed. Two chains of probes, one probe in flight
// in each: short probes, the first at once, each next one interval after
// the previous began (or as soon as it ended, if it waited out its
// timeout); and beside them long probes, bounded by the Get timeout, the
// next one as soon as the last ended (at most every interval).
//
// The long chain is what finds a store that answers, but slower than a
// short probe allows: one slower than a second at its tail, or one whose
// every new connection takes that long, as PostgreSQL's (a fork and a
// password exchange) can on a loaded machine; each timed-out short probe
// then gives up on its connection, and the next starts over.
func (b *breaker) watch(s *breakerState) {
	defer b.wg.Done()
	ctx, cancel := context.WithCancel(b.life)
	var long sync.WaitGroup
	defer func() {
		cancel() // a probe still in flight is not needed any more
		long.Wait()
	}()
	probe := func(timeout time.Duration) bool {
		b.probes.Add(1)
		if !b.answers(ctx, timeout) {
			return false
		}
		if b.st.CompareAndSwap(s, &breakerState{}) {
			b.closed.Add(1)
		}
		return true
	}
	chain := func(timeout time.Duration) {
		timer := time.NewTimer(0)
		defer timer.Stop()
		for b.st.Load() == s {
			select {
			case <-ctx.Done():
				return
			case <-timer.C:
			}
			began := time.Now()
			if probe(timeout) {
				return
			}
			timer.Reset(max(0, b.interval-time.Since(began)))
		}
	}
	if b.long > b.short {
		long.Add(1)
		go func() {
			defer long.Done()
			chain(b.long)
			cancel() // it closed the breaker: the short chain may stop
		}()
	}
	chain(b.short)
}

// answers reports whether the store answered a probe within timeout: a
// hit, a miss, a lease held by another, or any error that is not
// unavailability (a store that refuses a request is up).
func (b *breaker) answers(ctx context.Context, timeout time.Duration) bool {
	pctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	err := b.probe(pctx)
	switch {
	case pctx.Err() != nil:
		return false // no answer in time (or the cache is closing)
	case err == nil || errors.Is(err, autocert.ErrCacheMiss) || errors.Is(err, ErrLeaseHeld):
		return true
	case errors.Is(err, ErrUnavailable) || isUnavailable(err):
		return false
	}
	return true
}

// shutdown stops probing and waits for the probes in flight; the driver may
// be closed after it returns.
func (b *breaker) shutdown() {
	if b == nil {
		return
	}
	b.mu.Lock()
	b.stopped = true
	b.mu.Unlock()
	b.end()
	b.wg.Wait()
}

// BreakerStats is a snapshot of a Cache's circuit breakers, for logs and
// metrics: the breaker of Get, Put and Delete, and Lease that of leases.
type BreakerStats struct {
	Open       bool      // open now: calls fail at once with ErrCircuitOpen
	OpenSince  time.Time // when it opened; zero while closed
	Cause      string    // the failure that opened it; empty while closed
	Opened     uint64    // times it opened
	Closed     uint64    // times a probe found the store answering and closed it
	FastFailed uint64    // calls refused at once while open
	Probes     uint64    // probes sent while open

	// Lease is the breaker of lease calls; nil without leases.
	Lease *BreakerStats
}

// BreakerStatsOf returns the counters of c's breakers. ok is false when c
// has none: breaker=false, mem://, or a Cache not made by Open or NewCache.
func BreakerStatsOf(c Cache) (stats BreakerStats, ok bool) {
	p := findPortable(c)
	if p == nil || p.brk == nil {
		return BreakerStats{}, false
	}
	stats = p.brk.stats()
	if p.lbrk != nil {
		ls := p.lbrk.stats()
		stats.Lease = &ls
	}
	return stats, true
}

func (b *breaker) stats() BreakerStats {
	s := b.st.Load()
	stats := BreakerStats{
		Open:       s.open,
		Opened:     b.opened.Load(),
		Closed:     b.closed.Load(),
		FastFailed: b.fastFailed.Load(),
		Probes:     b.probes.Load(),
	}
	if s.open {
		stats.OpenSince, stats.Cause = s.since, s.cause
	}
	return stats
}
