package certcache

import (
	"context"
	"iter"
	"time"
)

// LeaseInfo describes one lease in a listing of leases.
type LeaseInfo struct {
	Name   string // the lease's name
	Holder string // the holder's token
	// Expires is when the lease runs out, as the store judges it (its
	// remaining time by the store's clock, added to this machine's clock
	// at the listing): before now for a lease that has expired but is
	// still stored. Zero if the lease never expires (a Redis key without
	// an expiry, written by something other than certcache).
	Expires time.Time
}

// LeaseAdminDriver is the optional capability of a driver to show and
// break the leases of its namespace, for an operator facing a stuck lock
// (certcache leases, certcache unlock). Expiry is judged as AcquireLease
// judges it, by the store's clock.
//
//   - ListLeases yields every lease whose name begins with prefix ("" for
//     all) and that its holder has not released, expired ones included
//     where the store keeps them, each once and in no particular order. It
//     never yields a cache key. It stops at the first error, which it
//     yields with a zero LeaseInfo, and when ctx ends or the caller stops.
//   - BreakLease frees the lease called name whoever holds it. Without
//     force it frees only a lease that has expired, and returns an error
//     wrapping ErrLeaseHeld for one that has not. Breaking a lease that
//     does not exist (or was released) does nothing and returns nil.
type LeaseAdminDriver interface {
	ListLeases(ctx context.Context, prefix string) iter.Seq2[LeaseInfo, error]
	BreakLease(ctx context.Context, name string, force bool) error
}

// ListLeases yields the leases of c's store whose names begin with prefix;
// see LeaseAdminDriver. Wrappers are looked through. If c's backend cannot
// list its leases, ListLeases yields one error matching ErrUnsupported.
func ListLeases(ctx context.Context, c Cache, prefix string) iter.Seq2[LeaseInfo, error] {
	p := findPortable(c)
	if p == nil {
		return func(yield func(LeaseInfo, error) bool) {
			yield(LeaseInfo{}, newError("", "list leases", "", ErrUnsupported))
		}
	}
	return p.listLeases(ctx, prefix)
}

// BreakLease frees the lease called name on c's store, whoever holds it.
// Without force it refuses, with an error matching ErrLeaseHeld, a lease
// that has not expired; breaking a lease that does not exist returns nil.
// The holder of a broken lease learns it at its next refresh
// (ErrLeaseLost), so work it guards may briefly run twice. Wrappers are
// looked through; a backend without the capability gives ErrUnsupported.
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
