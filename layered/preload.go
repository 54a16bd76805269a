package layered

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/certkey"
	"golang.org/x/crypto/acme/autocert"
)

// preloadOptions are a Memory tier's preload settings, from MemoryOptions.
type preloadOptions struct {
	on          bool
	concurrency int
	logger      *slog.Logger
}

// preloader is the preload of a Stack: one listing of the authority, and a
// bounded pool of Gets that fill the Memory tiers that asked for it.
type preloader struct {
	targets     []*Memory
	concurrency int
	logger      *slog.Logger // nil: slog.Default() when logging

	stop context.CancelCauseFunc // Close stops the preload with errStackClosed
	done chan struct{}           // closed when the preload has ended

	listed, loaded, failed atomic.Uint64

	slab slab // the copies it stores

	mu       sync.Mutex
	firstErr error                    // the first failed Get, for the log
	reading  map[string]chan struct{} // keys being read → closed once their batch is stored
}

// Why a preload ended early; never seen outside this package.
var (
	errFrontFull   = errors.New("the memory front is full")
	errStackClosed = errors.New("the cache was closed")
)

// maxColdWorkers bounds the preload's workers that wait for their first
// answer, and so the connections a backend's pool opens for it at once.
const maxColdWorkers = 4

// closedChan is what PreloadDone returns for a Stack without a preload.
var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// startPreload starts the preload of s's Memory tiers that asked for one,
// in the background. The settings (concurrency, logger) are the first such
// tier's.
func (s *Stack) startPreload() {
	var p *preloader
	for _, m := range s.mems {
		if m == nil || !m.preload.on {
			continue
		}
		if p == nil {
			p = &preloader{concurrency: m.preload.concurrency, logger: m.preload.logger, done: make(chan struct{})}
		}
		p.targets = append(p.targets, m)
	}
	if p == nil {
		return
	}
	// The preload lives as long as the Stack, not as long as the context
	// of whoever opened it: Close stops it.
	ctx, stop := context.WithCancelCause(context.Background())
	p.stop = stop
	s.pre = p
	go s.preload(ctx, p)
}

// preload runs the preload p: it streams the authority's listing of keys,
// keeps the certificate keys, and hands them in batches to workers, each of
// which reads its batch with certcache.GetMany and stores the values in
// the target tiers. Over a backend that reads in batches (Redis, SQL), a
// batch is preloadBatch keys, one round trip, and at most preloadWorkers
// are read at once; over any other (file, S3, Azure), a batch is one key,
// a Get, and p.concurrency are read at once. It ends when
// the listing does, or early when a target is full, the store is
// unavailable, the listing fails or the Stack is closed.
func (s *Stack) preload(ctx context.Context, p *preloader) {
	defer close(p.done)
	start := time.Now()
	// The authority of a Stack is never coordinated (New removes it), but
	// a preload must never take an order lease whatever the Stack is
	// given: a miss here is a certificate deleted since it was listed, not
	// one to order.
	auth := certcache.Uncoordinated(s.auth)
	ctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)

	// Slow start: one worker at first, and one more per batch the store
	// answers, up to the limit, but never more than maxColdWorkers
	// waiting for their first answer. A new worker most likely needs a new
	// connection, with TCP, TLS and password handshakes, which a busy
	// PostgreSQL server serves one after the other (on a loaded two-core
	// test machine, a quarter of a second each): opening 16 at once pushed
	// Gets past their timeout, and a timeout opens the circuit breaker for
	// the node's handshakes too.
	size, workers := 1, p.concurrency
	if hook.ReadsInBatches(auth) {
		size, workers = preloadBatch, min(workers, preloadWorkers)
	}
	// The listing never waits for the reads: it queues up to
	// preloadQueue batches ahead, so that its next page is on the way
	// while the first batches are read.
	batches := make(chan []string, preloadQueue)
	var (
		wg     sync.WaitGroup
		r      = newRamp(workers)
		worker func()
	)
	worker = func() {
		isCold, grow := true, false
		for batch := range batches {
			// The worker that grows takes the next batch first: the new
			// one most likely opens a connection, several round trips,
			// where this one's next read takes one.
			if grow {
				grow = false
				wg.Go(worker) // this worker is counted by wg: Wait cannot have returned
			}
			if ctx.Err() != nil {
				continue
			}
			asked, answered := s.preloadBatch(ctx, p, auth, batch, stop)
			if asked && isCold {
				isCold = false
				r.warm()
			}
			grow = answered && r.grow()
		}
		if grow {
			wg.Go(worker) // counted by the ramp: it ends at once
		}
		if isCold {
			r.warm()
		}
	}
	wg.Go(worker)

	// The listing runs on its own, so that a batch can leave when the
	// listing pauses (a page on its way) as well as when it is full: the
	// keys of a page are read while the next is listed.
	listed := make(chan string, size)
	var listErr error // written before listed is closed
	go func() {
		defer close(listed)
		// Keys alone: over Redis, a listing with sizes takes a second
		// round trip per page.
		for key, err := range hook.ListKeys(ctx, auth, "") {
			if err != nil {
				if ctx.Err() == nil {
					listErr = err
				}
				return
			}
			if certkey.KindOf(key) != certkey.Cert {
				continue
			}
			p.listed.Add(1)
			select {
			case listed <- key:
			case <-ctx.Done():
				return
			}
		}
	}()
	batch := make([]string, 0, size)
	send := func() {
		select {
		case batches <- batch:
		case <-ctx.Done():
		}
		batch = make([]string, 0, size)
	}
	paused := time.NewTimer(time.Hour)
	paused.Stop()
	for open := true; open; {
		select {
		case key, ok := <-listed:
			if open = ok; !ok {
				break
			}
			if batch = append(batch, key); len(batch) == size {
				send()
				paused.Stop()
			} else {
				paused.Reset(preloadPause)
			}
		case <-paused.C:
			if len(batch) > 0 {
				send()
			}
		}
	}
	paused.Stop()
	if len(batch) > 0 && ctx.Err() == nil && listErr == nil {
		send()
	}
	close(batches)
	wg.Wait()
	if listErr != nil {
		p.failed.Add(1)
	}
	p.report(context.Cause(ctx), listErr, time.Since(start))
}

// preloadBatch is how many keys a preload reads at once: as many as one
// driver GetMany call takes (certcache's chunk), about a MiB of
// certificates, one round trip.
const preloadBatch = 1000

// preloadPause is how long a preload's listing may yield nothing before
// the keys it has yielded leave as a batch that is not full: far longer
// than it takes to yield the keys of a page it holds, shorter than a page
// that comes over the network.
const preloadPause = 2 * time.Millisecond

// preloadQueue is how many batches a preload's listing may be ahead of its
// reads: the keys of 32,000 names, a few MiB at most.
const preloadQueue = 64

// preloadWorkers bounds the batches a preload reads at once (and so the
// connections it holds): four overlap the round trips of a distant store
// with the listing and with each other.
const preloadWorkers = 4

// ramp decides when a preload adds a worker: after an answer, unless it
// has max workers or maxColdWorkers of them wait for their first answer.
// It starts with one worker, cold.
type ramp struct {
	mu                 sync.Mutex
	workers, cold, max int
}

func newRamp(max int) *ramp { return &ramp{workers: 1, cold: 1, max: max} }

// grow reports whether to start another worker, and counts it if so.
func (r *ramp) grow() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.workers >= r.max || r.cold >= maxColdWorkers {
		return false
	}
	r.workers++
	r.cold++
	return true
}

// warm records that a worker's first Get is over.
func (r *ramp) warm() {
	r.mu.Lock()
	r.cold--
	r.mu.Unlock()
}

// preloadBatch loads the certificate keys of batch into p's targets with
// one certcache.GetMany. A batch that fails for another reason than an
// unavailable store or the end of ctx (a value that does not decrypt) is
// read again key by key, so that one bad value costs only its own key. It
// reports whether it asked the store, and whether the store answered.
func (s *Stack) preloadBatch(ctx context.Context, p *preloader, auth certcache.Cache, batch []string, stop context.CancelCauseFunc) (asked, answered bool) {
	gens := make([]uint64, len(p.targets))
	for i, m := range p.targets {
		gens[i] = m.generation()
	}
	need := batch[:0]
	for _, key := range batch {
		for _, m := range p.targets {
			if !m.fresh(key) {
				need = append(need, key)
				break
			}
		}
	}
	if len(need) == 0 {
		return false, false // handshakes loaded them first
	}
	stored := p.reads(need)
	defer p.readDone(need, stored)
	values, err := certcache.GetMany(ctx, auth, need)
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return true, false // stopped: not a failure of these keys
	case errors.Is(err, certcache.ErrUnavailable):
		p.fail(err)
		stop(err) // every other read would fail the same way, one timeout each
		return true, false
	default:
		for _, key := range need {
			if ctx.Err() != nil {
				break
			}
			s.preloadKey(ctx, p, auth, key, stop)
		}
		return true, true
	}
	for i, key := range need {
		if values[i] != nil { // nil: deleted since it was listed
			p.store(key, values[i], gens, stop)
		}
	}
	return true, true
}

// preloadKey loads one certificate key into p's targets with a Get.
func (s *Stack) preloadKey(ctx context.Context, p *preloader, auth certcache.Cache, key string, stop context.CancelCauseFunc) {
	gens := make([]uint64, len(p.targets))
	for i, m := range p.targets {
		gens[i] = m.generation()
	}
	v, err := auth.Get(ctx, key)
	switch {
	case err == nil:
		p.store(key, v, gens, stop)
	case err == autocert.ErrCacheMiss: //nolint:errorlint // the contract's bare sentinel
	case ctx.Err() != nil:
	default:
		p.fail(err)
		if errors.Is(err, certcache.ErrUnavailable) {
			stop(err)
		}
	}
}

// store holds v for key in p's targets, unless a Put or Delete happened
// since gens were read (see preloadStore), and stops the preload when a
// target is full.
func (p *preloader) store(key string, v []byte, gens []uint64, stop context.CancelCauseFunc) {
	stored := false
	for i, m := range p.targets {
		ok, full := m.preloadStore(key, v, gens[i], &p.slab)
		stored = stored || ok
		if full {
			stop(errFrontFull)
		}
	}
	if stored {
		p.loaded.Add(1)
	}
}

// reads records that keys are being read, for preloadReading, and
// returns the channel readDone closes.
func (p *preloader) reads(keys []string) chan struct{} {
	ch := make(chan struct{})
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.reading == nil {
		p.reading = make(map[string]chan struct{}, len(keys))
	}
	for _, k := range keys {
		p.reading[k] = ch
	}
	return ch
}

// readDone records that keys, read with ch, are stored or failed.
func (p *preloader) readDone(keys []string, ch chan struct{}) {
	p.mu.Lock()
	for _, k := range keys {
		if p.reading[k] == ch {
			delete(p.reading, k)
		}
	}
	p.mu.Unlock()
	close(ch)
}

// preloadReading returns a channel that is closed when the preload's read
// of key has ended, stored or not, or nil if the preload is not reading
// key.
func (s *Stack) preloadReading(key string) <-chan struct{} {
	p := s.pre
	if p == nil {
		return nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.reading[key]
}

// fail counts a failed read and keeps the first error for the log.
func (p *preloader) fail(err error) {
	p.failed.Add(1)
	p.mu.Lock()
	if p.firstErr == nil {
		p.firstErr = err
	}
	p.mu.Unlock()
}

// report logs how the preload ended: cause is why it was stopped (nil if
// it ran to the end of the listing), listErr a failed listing.
func (p *preloader) report(cause, listErr error, took time.Duration) {
	log := p.logger
	if log == nil {
		log = slog.Default()
	}
	attrs := []any{
		slog.Uint64("loaded", p.loaded.Load()),
		slog.Uint64("listed", p.listed.Load()),
		slog.Uint64("errors", p.failed.Load()),
		slog.Duration("took", took),
	}
	p.mu.Lock()
	firstErr := p.firstErr
	p.mu.Unlock()
	switch {
	case listErr != nil:
		log.Warn("certcache/layered: preload failed: listing the store", append(attrs, slog.Any("err", listErr))...)
	case errors.Is(cause, errStackClosed):
		log.Info("certcache/layered: preload stopped: "+errStackClosed.Error(), attrs...)
	case errors.Is(cause, errFrontFull):
		log.Info("certcache/layered: preload stopped: "+errFrontFull.Error()+" (memory_max_entries, memory_max_bytes)", attrs...)
	case cause != nil && !errors.Is(cause, context.Canceled):
		log.Warn("certcache/layered: preload failed", append(attrs, slog.Any("err", cause))...)
	case firstErr != nil:
		log.Warn("certcache/layered: preload done, some certificates could not be read", append(attrs, slog.Any("first_error", firstErr))...)
	default:
		log.Info("certcache/layered: preload done", attrs...)
	}
}

// close stops a running preload and waits for it to end: every call it
// has in flight honours the cancellation, so this is prompt.
func (p *preloader) close() {
	p.stop(errStackClosed)
	<-p.done
}

// PreloadDone returns a channel that is closed when the Stack's preload has
// ended, whatever the outcome (Stats tells it), or at once if the Stack
// has no preload. A server that wants every certificate in memory before
// it takes traffic can wait for it, with a deadline of its own (the Cache
// certcache.Open returns is the Stack beneath issuance coordination):
//
//	stack := certcache.Uncoordinated(cache).(*layered.Stack)
//	select {
//	case <-stack.PreloadDone():
//	case <-time.After(10 * time.Second):
//	}
func (s *Stack) PreloadDone() <-chan struct{} {
	if s.pre == nil {
		return closedChan
	}
	return s.pre.done
}

// preloadStats fills the preload counters of st.
func (s *Stack) preloadStats(st *Stats) {
	p := s.pre
	if p == nil {
		return
	}
	st.PreloadListed = p.listed.Load()
	st.PreloadLoaded = p.loaded.Load()
	st.PreloadErrors = p.failed.Load()
	select {
	case <-p.done:
		st.PreloadDone = true
	default:
	}
}
