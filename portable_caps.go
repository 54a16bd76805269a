package certcache

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/certcache/certcache/driver"
)

// minLeaseTTL is the shortest lease time to live: below a second, the
// round trip to a distant store and clock granularity (Redis PX is exact,
// SQL timestamps and object stores' times are not) eat the lease.
const minLeaseTTL = time.Second

// newToken returns a random lease token no other holder has.
func newToken() string {
	var b [16]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// leases returns the driver's driver.LeaseDriver, or an error for op.
func (c *portable) leases(ctx context.Context, op, name string) (driver.LeaseDriver, error) {
	ld, ok := c.d.(driver.LeaseDriver)
	if !ok {
		return nil, newError(c.backend, op, name, fmt.Errorf("%w: %s has no leases", ErrUnsupported, c.backend))
	}
	if err := c.check(ctx, op, name); err != nil {
		return nil, err
	}
	if err := reservedLease(name); err != nil {
		return nil, newError(c.backend, op, name, err)
	}
	return ld, nil
}

func (c *portable) acquireLease(ctx context.Context, name string, ttl time.Duration) (*Lease, error) {
	return c.acquireWithin(ctx, name, ttl, c.timeout)
}

// acquireWithin is acquireLease bounded by timeout: issuance coordination
// takes its order leases on autocert's handshake path, under the lock every
// handshake of the node waits for, and bounds them as a Get (getTimeout).
func (c *portable) acquireWithin(ctx context.Context, name string, ttl, timeout time.Duration) (*Lease, error) {
	if !c.tel.on(ctx) {
		return c.acquire(ctx, name, ttl, timeout)
	}
	ctx, ob := c.tel.begin(ctx, opLeaseAcquire, name)
	l, err := c.acquire(ctx, name, ttl, timeout)
	ob.end(ctx, err)
	return l, err
}

func (c *portable) acquire(ctx context.Context, name string, ttl, timeout time.Duration) (*Lease, error) {
	ttl = max(ttl, minLeaseTTL)
	ld, err := c.leases(ctx, "lease", name)
	if err != nil {
		return nil, err
	}
	st, err := c.lbrk.admit("lease", name)
	if err != nil {
		return nil, err
	}
	cctx, cancel := c.within(ctx, timeout)
	defer cancel()
	if err := c.checkExclusion(ctx, cctx, ld, name, timeout); err != nil {
		return nil, c.lbrk.failed(ctx, st, err)
	}
	token := newToken()
	if err := ld.AcquireLease(cctx, name, token, ttl); err != nil {
		if !errors.Is(err, ErrLeaseHeld) {
			// A write cut short by a timeout or a cancelled caller may
			// still land; no one could release it then, and the name
			// would be held for a whole TTL. Let it go, as well as a
			// store that just failed can be asked to.
			c.releaseAbandoned(ld, name, token)
		}
		return nil, c.lbrk.failed(ctx, st, c.failWithin(ctx, cctx, "lease", name, err, timeout))
	}
	return &Lease{Name: name, token: token, ttl: ttl, c: c}, nil
}

// releaseAbandoned releases, in the background and at most once, a lease
// no caller will release: one whose acquisition failed without an answer,
// or a probe's.
func (c *portable) releaseAbandoned(ld driver.LeaseDriver, name, token string) {
	c.background(func(ctx context.Context) { ld.ReleaseLease(ctx, name, token) })
}

// background runs f in a goroutine, under the per-call timeout, unless c
// is closed. Close cancels f's context and waits for f: nothing started
// here reaches the driver after Close (a lease f leaves behind runs out by
// its TTL).
func (c *portable) background(f func(ctx context.Context)) {
	c.runBackground(func(ctx context.Context) {
		ctx, cancel := context.WithTimeout(ctx, c.timeout)
		defer cancel()
		f(ctx)
	})
}

func (c *portable) refreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	if !c.tel.on(ctx) {
		return c.refresh(ctx, name, token, ttl)
	}
	ctx, ob := c.tel.begin(ctx, opLeaseRefresh, name)
	err := c.refresh(ctx, name, token, ttl)
	ob.end(ctx, err)
	return err
}

func (c *portable) refresh(ctx context.Context, name, token string, ttl time.Duration) error {
	ld, err := c.leases(ctx, "refresh lease", name)
	if err != nil {
		return err
	}
	st, err := c.lbrk.admit("refresh lease", name)
	if err != nil {
		return err
	}
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	if err := ld.RefreshLease(cctx, name, token, ttl); err != nil {
		return c.lbrk.failed(ctx, st, c.fail(ctx, cctx, "refresh lease", name, err))
	}
	return nil
}

func (c *portable) releaseLease(ctx context.Context, name, token string) error {
	if !c.tel.on(ctx) {
		return c.release(ctx, name, token)
	}
	ctx, ob := c.tel.begin(ctx, opLeaseRelease, name)
	err := c.release(ctx, name, token)
	ob.end(ctx, err)
	return err
}

func (c *portable) release(ctx context.Context, name, token string) error {
	ld, err := c.leases(ctx, "release lease", name)
	if err != nil {
		return err
	}
	st, err := c.lbrk.admit("release lease", name)
	if err != nil {
		return err
	}
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	if err := ld.ReleaseLease(cctx, name, token); err != nil {
		return c.lbrk.failed(ctx, st, c.fail(ctx, cctx, "release lease", name, err))
	}
	return nil
}

// list streams the driver's listing, observed as one call from the first
// entry asked for to the last (see listing). With keysOnly, the entries
// may hold their keys alone (see driver.KeyListDriver).
func (c *portable) list(ctx context.Context, prefix string, keysOnly bool) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		if !c.tel.on(ctx) {
			c.listing(ctx, prefix, keysOnly)(yield)
			return
		}
		ctx, ob := c.tel.begin(ctx, opList, prefix)
		var failed error
		c.listing(ctx, prefix, keysOnly)(func(e Entry, err error) bool {
			failed = err
			return yield(e, err)
		})
		ob.end(ctx, failed)
	}
}

// listing streams the driver's listing of keys (see stream).
func (c *portable) listing(ctx context.Context, prefix string, keysOnly bool) iter.Seq2[Entry, error] {
	if kd, ok := c.d.(driver.KeyListDriver); ok && keysOnly {
		return stream(c, ctx, "list", prefix, func(lctx context.Context) iter.Seq2[Entry, error] {
			return func(yield func(Entry, error) bool) {
				for k, err := range kd.ListKeys(lctx, prefix) {
					if !yield(Entry{Key: k}, err) {
						return
					}
				}
			}
		})
	}
	ld, ok := c.d.(driver.ListDriver)
	if !ok {
		return func(yield func(Entry, error) bool) {
			yield(Entry{}, newError(c.backend, "list", prefix, fmt.Errorf("%w: %s cannot list", ErrUnsupported, c.backend)))
		}
	}
	return stream(c, ctx, "list", prefix, func(lctx context.Context) iter.Seq2[Entry, error] { return ld.List(lctx, prefix) })
}

// stream runs a driver's listing (of keys, of leases) for op. The per-call
// timeout bounds the wait for each item, not the whole listing, which may
// be long: a store that stops answering mid-listing fails within the
// timeout.
func stream[T any](c *portable, ctx context.Context, op, prefix string, list func(context.Context) iter.Seq2[T, error]) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		var zero T
		if c.closed.Load() {
			yield(zero, newError(c.backend, op, prefix, ErrClosed))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(zero, newError(c.backend, op, prefix, err))
			return
		}
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var stall *time.Timer
		if !c.neverBlocks {
			// A watchdog per item, stopped while the caller handles an
			// item and restarted when the driver is asked for the next.
			stall = time.AfterFunc(c.timeout, cancel)
			defer stall.Stop()
		}
		for e, err := range list(lctx) {
			if err != nil {
				yield(zero, c.fail(ctx, lctx, op, prefix, err))
				return
			}
			if stall != nil && !stall.Stop() {
				// The watchdog fired: the listing's context is over.
				yield(zero, c.fail(ctx, lctx, op, prefix, context.DeadlineExceeded))
				return
			}
			if !yield(e, nil) {
				return
			}
			if stall != nil {
				stall.Reset(c.timeout)
			}
		}
	}
}
