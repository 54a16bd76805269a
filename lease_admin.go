package certcache

import (
	"context"
	"iter"

	"github.com/certcache/certcache/driver"
)

// ListLeases yields the leases of c's store whose names begin with prefix
// (driver.LeaseAdminDriver), or one ErrUnsupported.
func ListLeases(ctx context.Context, c Cache, prefix string) iter.Seq2[LeaseInfo, error] {
	p := findPortable(c)
	if p == nil {
		return func(yield func(LeaseInfo, error) bool) {
			yield(LeaseInfo{}, newError("", "list leases", "", ErrUnsupported))
		}
	}
	return p.listLeases(ctx, prefix)
}

// BreakLease frees the lease called name, whoever holds it. Without force
// it refuses (ErrLeaseHeld) a lease that has not expired; the holder of a
// broken lease learns it at its next refresh (ErrLeaseLost).
func BreakLease(ctx context.Context, c Cache, name string, force bool) error {
	p := findPortable(c)
	if p == nil {
		return newError("", "break lease", name, ErrUnsupported)
	}
	return p.breakLease(ctx, name, force)
}

// yieldLeases yields the leases a driver has gathered, until ctx ends or
// the caller stops.
func yieldLeases(ctx context.Context, ls []LeaseInfo, yield func(LeaseInfo, error) bool) {
	for _, l := range ls {
		if err := ctx.Err(); err != nil {
			yield(LeaseInfo{}, err)
			return
		}
		if !yield(l, nil) {
			return
		}
	}
}

// LeaseInfo describes one lease in a listing (see ListLeases).
type LeaseInfo = driver.LeaseInfo
