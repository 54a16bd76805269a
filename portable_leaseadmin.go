package certcache

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"
)

// leaseAdmin returns the driver's LeaseAdminDriver, or an error for op.
func (c *portable) leaseAdmin(op, name string) (LeaseAdminDriver, error) {
	la, ok := c.d.(LeaseAdminDriver)
	if !ok {
		return nil, newError(c.backend, op, name, fmt.Errorf("%w: %s cannot list or break leases", ErrUnsupported, c.backend))
	}
	return la, nil
}

// breakLease validates name like a key and bounds the call by the
// per-call timeout. It does not go through the circuit breaker: an
// operator breaking a stuck lease wants the store's own answer.
func (c *portable) breakLease(ctx context.Context, name string, force bool) error {
	la, err := c.leaseAdmin("break lease", name)
	if err != nil {
		return err
	}
	if err := c.check(ctx, "break lease", name); err != nil {
		return err
	}
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	if err := la.BreakLease(cctx, name, force); err != nil {
		return c.fail(ctx, cctx, "break lease", name, err)
	}
	return nil
}

// listLeases streams the driver's listing of leases. As for a listing of
// keys, the per-call timeout bounds the wait for each lease, not the
// whole listing.
func (c *portable) listLeases(ctx context.Context, prefix string) iter.Seq2[LeaseInfo, error] {
	const op = "list leases"
	return func(yield func(LeaseInfo, error) bool) {
		la, err := c.leaseAdmin(op, prefix)
		if err != nil {
			yield(LeaseInfo{}, err)
			return
		}
		if c.closed.Load() {
			yield(LeaseInfo{}, newError(c.backend, op, prefix, ErrClosed))
			return
		}
		if err := ctx.Err(); err != nil {
			yield(LeaseInfo{}, newError(c.backend, op, prefix, err))
			return
		}
		lctx, cancel := context.WithCancel(ctx)
		defer cancel()
		var stall *time.Timer
		if !c.neverBlocks {
			stall = time.AfterFunc(c.timeout, cancel)
			defer stall.Stop()
		}
		for l, err := range la.ListLeases(lctx, prefix) {
			if err != nil {
				yield(LeaseInfo{}, c.fail(ctx, lctx, op, prefix, err))
				return
			}
			if stall != nil && !stall.Stop() {
				yield(LeaseInfo{}, c.fail(ctx, lctx, op, prefix, context.DeadlineExceeded))
				return
			}
			// The breaker's and the exclusion probe's leases are ours,
			// not the operator's.
			if !strings.HasPrefix(l.Name, reservedLeasePrefix) && !yield(l, nil) {
				return
			}
			if stall != nil {
				stall.Reset(c.timeout)
			}
		}
	}
}
