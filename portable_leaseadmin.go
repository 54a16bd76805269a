package certcache

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/certcache/certcache/driver"
)

// leaseAdmin returns the driver's driver.LeaseAdminDriver, or an error for op.
func (c *portable) leaseAdmin(op, name string) (driver.LeaseAdminDriver, error) {
	la, ok := c.d.(driver.LeaseAdminDriver)
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

// listLeases streams the driver's listing of leases (see stream), less
// the breaker's and the exclusion probe's, which are ours, not the
// operator's.
func (c *portable) listLeases(ctx context.Context, prefix string) iter.Seq2[LeaseInfo, error] {
	const op = "list leases"
	la, err := c.leaseAdmin(op, prefix)
	if err != nil {
		return func(yield func(LeaseInfo, error) bool) { yield(LeaseInfo{}, err) }
	}
	return stream(c, ctx, op, prefix, func(lctx context.Context) iter.Seq2[LeaseInfo, error] {
		return func(yield func(LeaseInfo, error) bool) {
			for l, err := range la.ListLeases(lctx, prefix) {
				if err == nil && strings.HasPrefix(l.Name, reservedLeasePrefix) {
					continue
				}
				if !yield(l, err) {
					return
				}
			}
		}
	})
}
