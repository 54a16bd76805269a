package certcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/certcache/certcache/driver"
	"github.com/certcache/certcache/internal/callctx"

	"golang.org/x/crypto/acme/autocert"
)

// NewCache returns a Cache that keeps the package contract on top of d, for
// backend packages' New and URL openers; backend names it in errors.
func NewCache(backend string, d driver.Driver, o *Options) Cache {
	p := newPortable(backend, d, o, nil)
	return coordinate(p, p, o)
}

// newPortable is NewCache with the secrets of the URL the cache was opened
// with, which no error may show.
func newPortable(backend string, d driver.Driver, o *Options, secrets []string) *portable {
	c := &portable{backend: backend, d: d, timeout: DefaultTimeout, getTimeout: DefaultGetTimeout, secrets: secrets}
	c.bgCtx, c.bgStop = context.WithCancel(context.Background())
	c.excl.sem = make(chan struct{}, 1)
	probe := DefaultBreakerProbeInterval
	if o != nil {
		if o.Timeout > 0 {
			// An explicit Timeout bounds Get too, unless GetTimeout says
			// otherwise: "timeout=30s" keeps meaning every call.
			c.timeout, c.getTimeout = o.Timeout, o.Timeout
		}
		if o.GetTimeout > 0 {
			c.getTimeout = o.GetTimeout
		}
		if o.BreakerProbeInterval > 0 {
			probe = o.BreakerProbeInterval
		}
	}
	_, c.neverBlocks = d.(interface{ neverBlocks() })
	c.getWithin, _ = d.(timeoutGetter)
	// mem:// never blocks and never fails for want of an answer: no breaker.
	if !c.neverBlocks && (o == nil || !o.DisableBreaker) {
		c.brk = newBreaker(backend, getProbe(d), probe, c.getTimeout)
		if ld, ok := d.(driver.LeaseDriver); ok {
			c.lbrk = newBreaker(backend, c.leaseProbe(ld), probe, c.getTimeout)
		}
	}
	c.excl.uncoordinated = o != nil && o.DisableCoordination
	c.tel = newTelemetry(c, o)
	return c
}

// timeoutGetter is a driver whose Get needs the timeout alone, not a
// context that ends after it.
type timeoutGetter interface {
	// getWithin is Get, ended by ctx or after timeout, whichever comes
	// first; the timeout's end is context.DeadlineExceeded, as it is.
	getWithin(ctx context.Context, timeout time.Duration, key string) ([]byte, error)
}

// deadlinePassed is a context whose deadline has passed: what fail reads
// for a call that its timeout ended without a context of its own.
var deadlinePassed, _ = context.WithDeadline(context.Background(), time.Time{})

// portable is the Cache every backend is wrapped in.
type portable struct {
	backend    string
	d          driver.Driver
	timeout    time.Duration // Put, Delete, leases, each listed entry
	getTimeout time.Duration // Get, under autocert's lock
	secrets    []string
	closed     atomic.Bool
	brk        *breaker // Get, Put, Delete; nil when turned off, or for mem://
	lbrk       *breaker // lease calls; nil as brk is, or without leases
	excl       exclusion
	tel        *telemetry

	// neverBlocks: the driver answers from process memory (mem://), so a
	// per-call deadline would bound nothing and only cost a timer and four
	// allocations per call. The caller's context is still checked first.
	neverBlocks bool
	// getWithin, if the driver has it (file://), bounds a Get by the
	// timeout without a context made for the call: a file's read is
	// bounded by giving up on it, which needs only the time.
	getWithin timeoutGetter

	// Background calls (releases of abandoned leases) run under bgCtx and
	// in bg; Close cancels them and waits, so that none reaches the driver
	// after Close. bgMu orders bg.Add after the closed check against
	// Close's bg.Wait.
	bgMu   sync.Mutex
	bg     sync.WaitGroup
	bgCtx  context.Context
	bgStop context.CancelFunc

	watchOnce sync.Once
	watch     *watchHub // nil: the driver cannot push (see watch.go)
}

var _ Cache = (*portable)(nil)

// Get implements autocert.Cache.
func (c *portable) Get(ctx context.Context, key string) ([]byte, error) {
	if !c.tel.on(ctx) {
		return c.get(ctx, key)
	}
	ctx, ob := c.tel.begin(ctx, opGet, key)
	data, err := c.get(ctx, key)
	ob.end(ctx, err)
	return data, err
}

func (c *portable) get(ctx context.Context, key string) ([]byte, error) {
	if err := c.check(ctx, "get", key); err != nil {
		return nil, err
	}
	st, err := c.brk.admit("get", key)
	if err != nil {
		return nil, err
	}
	var (
		data []byte
		cctx context.Context // what bounded the call, for fail
	)
	if c.getWithin != nil {
		data, err = c.getWithin.getWithin(ctx, c.getTimeout, key)
		cctx = context.Background()
		if err == context.DeadlineExceeded && ctx.Err() == nil { //nolint:errorlint // getWithin's own timeout, as it is
			cctx = deadlinePassed
		}
	} else {
		var bound *callctx.Ctx
		cctx, bound = c.bound(ctx, c.getTimeout)
		defer bound.Release()
		data, err = c.d.Get(cctx, key)
	}
	if err == nil {
		if data == nil {
			data = []byte{} // a stored empty value is a hit, not a nil
		}
		return data, nil
	}
	// err == first: errors.Is starts with a reflective check of the
	// target, which costs a miss more than the comparison.
	if (err == autocert.ErrCacheMiss || errors.Is(err, autocert.ErrCacheMiss)) && ctx.Err() == nil { //nolint:errorlint // the fast path of errors.Is
		// The bare sentinel: autocert compares it with ==. A "miss" seen
		// after the caller's context ended is not trusted; it falls through
		// and becomes a context error.
		return nil, autocert.ErrCacheMiss
	}
	return nil, c.brk.failed(ctx, st, c.fail(ctx, cctx, "get", key, err))
}

// Put implements autocert.Cache.
func (c *portable) Put(ctx context.Context, key string, data []byte) error {
	if !c.tel.on(ctx) {
		return c.put(ctx, key, data)
	}
	ctx, ob := c.tel.begin(ctx, opPut, key)
	err := c.put(ctx, key, data)
	ob.end(ctx, err)
	return err
}

func (c *portable) put(ctx context.Context, key string, data []byte) error {
	if err := c.check(ctx, "put", key); err != nil {
		return err
	}
	if len(data) > MaxValueSize {
		return newError(c.backend, "put", key, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxValueSize))
	}
	st, err := c.brk.admit("put", key)
	if err != nil {
		return err
	}
	cctx, bound := c.bound(ctx, c.timeout)
	defer bound.Release()
	if err := c.d.Put(cctx, key, data); err != nil {
		return c.brk.failed(ctx, st, c.fail(ctx, cctx, "put", key, err))
	}
	return nil
}

// Delete implements autocert.Cache.
func (c *portable) Delete(ctx context.Context, key string) error {
	if !c.tel.on(ctx) {
		return c.delete(ctx, key)
	}
	ctx, ob := c.tel.begin(ctx, opDelete, key)
	err := c.delete(ctx, key)
	ob.end(ctx, err)
	return err
}

func (c *portable) delete(ctx context.Context, key string) error {
	if err := c.check(ctx, "delete", key); err != nil {
		return err
	}
	st, err := c.brk.admit("delete", key)
	if err != nil {
		return err
	}
	cctx, bound := c.bound(ctx, c.timeout)
	defer bound.Release()
	if err := c.d.Delete(cctx, key); err != nil && !errors.Is(err, autocert.ErrCacheMiss) {
		return c.brk.failed(ctx, st, c.fail(ctx, cctx, "delete", key, err))
	}
	return nil
}

// Close implements Cache.
func (c *portable) Close() error {
	if c.closed.Swap(true) {
		return nil
	}
	c.brk.shutdown() // no probe uses the driver after this
	c.lbrk.shutdown()
	c.bgMu.Lock() // no background call starts after this
	c.bgMu.Unlock()
	c.bgStop()
	c.bg.Wait()
	c.tel.close()
	if err := c.d.Close(); err != nil {
		return newError(c.backend, "close", "", redact(err, c.secrets))
	}
	return nil
}

// Unwrap returns the driver, for tests and for wrappers that need to reach
// backend-specific behaviour.
func (c *portable) Unwrap() driver.Driver { return c.d }

// check refuses calls that must not reach the driver.
func (c *portable) check(ctx context.Context, op, key string) error {
	if c.closed.Load() {
		return newError(c.backend, op, key, ErrClosed)
	}
	if err := ValidateKey(key); err != nil {
		return newError(c.backend, op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return newError(c.backend, op, key, err)
	}
	return nil
}

// callContext bounds one call by the per-call timeout. A context that already
// has an earlier deadline keeps it.
func (c *portable) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return c.within(ctx, c.timeout)
}

// within bounds one call by timeout, as callContext does.
func (c *portable) within(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if c.neverBlocks {
		return ctx, noCancel
	}
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) <= timeout {
		return ctx, noCancel
	}
	return context.WithTimeout(ctx, timeout)
}

func noCancel() {}

// bound is within for the calls that are made most (Get, Put, Delete),
// with the deadline context of internal/callctx: one allocation where
// context.WithTimeout costs four, a timer only for an SDK that waits on
// Done. The *callctx.Ctx is nil when ctx is used as it is; Release it when
// the call returns.
func (c *portable) bound(ctx context.Context, timeout time.Duration) (context.Context, *callctx.Ctx) {
	if c.neverBlocks {
		return ctx, nil
	}
	now := time.Now()
	if dl, ok := ctx.Deadline(); ok && dl.Sub(now) <= timeout {
		return ctx, nil
	}
	b := callctx.New(ctx, now.Add(timeout))
	return b, b
}

// fail wraps a driver error. SDKs report an expired context in many ways
// (their own timeout errors, "use of closed connection"); fail makes the
// context error visible to errors.Is whatever the SDK said, and marks our
// own timeout as ErrUnavailable: the backend did not answer in time.
func (c *portable) fail(ctx, cctx context.Context, op, key string, err error) error {
	timeout := c.timeout
	if op == "get" {
		timeout = c.getTimeout
	}
	return c.failWithin(ctx, cctx, op, key, err, timeout)
}

// failWithin is fail for a call that cctx bounded by timeout.
func (c *portable) failWithin(ctx, cctx context.Context, op, key string, err error, timeout time.Duration) error {
	err = redact(err, c.secrets)
	switch {
	case ctx.Err() != nil:
		// The caller's context ended: report that, not a backend fault.
		if !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return newError(c.backend, op, key, err)
	case cctx.Err() != nil:
		return newError(c.backend, op, key, noAnswer{fmt.Errorf("%w: no answer within %v: %w", ErrUnavailable, timeout, err)})
	}
	return newError(c.backend, op, key, err)
}

// ValidateKey reports whether every backend can store key: 1 to MaxKeyLen
// bytes of UTF-8 without control characters. The error wraps ErrInvalidKey.
func ValidateKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidKey)
	case len(key) > MaxKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKey, len(key), MaxKeyLen)
	}
	// Keys are ASCII almost always: one pass over the bytes, and the
	// UTF-8 checks only for a key that needs them.
	i := 0
	for ; i < len(key); i++ {
		b := key[i]
		if b >= utf8.RuneSelf {
			break
		}
		if b < 0x20 || b == 0x7f {
			return fmt.Errorf("%w: control character %U", ErrInvalidKey, rune(b))
		}
	}
	if i == len(key) {
		return nil
	}
	if !utf8.ValidString(key) {
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidKey)
	}
	for _, r := range key[i:] {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%w: control character %U", ErrInvalidKey, r)
		}
	}
	return nil
}
