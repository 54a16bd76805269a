package certcache

import (
	"context"
	"iter"
	"time"

	"github.com/certcache/certcache/driver"
	"github.com/certcache/certcache/internal/hook"
)

// Optional driver capabilities. A driver.Driver may also implement driver.LeaseDriver and
// driver.ListDriver; NewCache finds them once, the way io.Copy finds io.WriterTo,
// and the Cache it returns offers them (see AcquireLease and List) with the
// same validation, timeouts and error wrapping as Get. drivertest
// proves each capability for every backend that has it.

// Lease is a lease held through a Cache; see AcquireLease.
type Lease struct {
	Name  string // the lease's name
	token string
	ttl   time.Duration
	c     *portable
}

// Token returns the random string that proves this holder holds the lease.
func (l *Lease) Token() string { return l.token }

// TTL returns the time to live the lease is acquired and refreshed with.
func (l *Lease) TTL() time.Duration { return l.ttl }

// Refresh extends the lease to its TTL from now, or fails with ErrLeaseLost.
func (l *Lease) Refresh(ctx context.Context) error {
	return l.c.refreshLease(ctx, l.Name, l.token, l.ttl)
}

// Release frees the lease. Releasing a lease that was lost does nothing.
func (l *Lease) Release(ctx context.Context) error {
	return l.c.releaseLease(ctx, l.Name, l.token)
}

// AcquireLease acquires the lease called name in c's store for ttl, for
// work a fleet coordinates (the certmagic adapter's locks). It fails with
// ErrLeaseHeld while another holder's lease runs, and with ErrUnsupported
// if the backend has no leases.
func AcquireLease(ctx context.Context, c Cache, name string, ttl time.Duration) (*Lease, error) {
	p := findPortable(c)
	if p == nil {
		return nil, newError("", "lease", name, ErrUnsupported)
	}
	return p.acquireLease(ctx, name, ttl)
}

// List yields the keys of c's namespace that begin with prefix, with their
// sizes and times, streaming from the store (driver.ListDriver); a backend
// that cannot list yields one ErrUnsupported.
func List(ctx context.Context, c Cache, prefix string) iter.Seq2[Entry, error] {
	p := findPortable(c)
	if p == nil {
		return func(yield func(Entry, error) bool) {
			yield(Entry{}, newError("", "list", "", ErrUnsupported))
		}
	}
	return p.list(ctx, prefix, false)
}

// listKeys (hook.ListKeys) yields the keys List yields, listed with the
// driver's driver.KeyListDriver where it has one.
func listKeys(ctx context.Context, c hook.Cache, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		entries := List(ctx, c, prefix)
		if p := findPortable(c); p != nil {
			entries = p.list(ctx, prefix, true)
		}
		for e, err := range entries {
			if !yield(e.Key, err) {
				return
			}
		}
	}
}

// findPortable finds the portable layer under c, looking through wrappers
// that expose what they wrap: Unwrap() Cache (encryption) or Unwrap()
// []Cache (a layered Stack, whose last tier is its authority).
func findPortable(c Cache) *portable {
	for depth := 0; c != nil && depth < 16; depth++ {
		switch w := c.(type) {
		case *portable:
			return w
		case interface{ Unwrap() Cache }:
			c = w.Unwrap()
		case interface{ Unwrap() []Cache }:
			tiers := w.Unwrap()
			if len(tiers) == 0 {
				return nil
			}
			c = tiers[len(tiers)-1]
		default:
			return nil
		}
	}
	return nil
}

// Entry describes one stored key in a listing (see List).
type Entry = driver.Entry
