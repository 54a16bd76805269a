package certcache

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certcache/certcache/driver"
)

// The lease probes: what the portable layer asks of a store's leases on
// its own behalf, under lease names no caller can use.

// reservedLeasePrefix begins every lease name the portable layer takes for
// itself; AcquireLease refuses it to callers, so that their leases never
// meet the probes'.
const reservedLeasePrefix = "certcache+"

// leaseProbeName is the lease the lease breaker's probe acquires and
// releases, with a fresh token each time: a write that takes the same
// locks as any acquisition. Found held (by another node's probe), it is
// still an answer.
const leaseProbeName = reservedLeasePrefix + "breaker-probe"

// exclusionProbeName is the lease the exclusion probe takes. One name for
// every node, so that a store keeping released leases as objects (S3,
// Azure) keeps one for the probe, not one per process started.
const exclusionProbeName = reservedLeasePrefix + "exclusion-probe"

// reservedLease refuses a caller's lease name that the portable layer
// keeps for itself.
func reservedLease(name string) error {
	if strings.HasPrefix(name, reservedLeasePrefix) {
		return fmt.Errorf("%w: lease names beginning with %q are reserved", ErrInvalidKey, reservedLeasePrefix)
	}
	return nil
}

// leaseProbe is the lease breaker's probe: acquire leaseProbeName with a
// fresh token and, if that succeeded, release it in the background (the
// acquisition's answer is what the breaker waits for). A probe that timed
// out is not released: its lease, if it landed, runs out within a second,
// and a release would be one more write waiting on a store that hangs.
func (c *portable) leaseProbe(ld driver.LeaseDriver) func(context.Context) error {
	return func(ctx context.Context) error {
		token := newToken()
		err := ld.AcquireLease(ctx, leaseProbeName, token, minLeaseTTL)
		if err == nil {
			c.releaseAbandoned(ld, leaseProbeName, token)
		}
		return err
	}
}

// exclusion is the state of a cache's exclusion probe. Some S3-compatible
// stores accept conditional writes (If-None-Match, If-Match) and ignore the
// condition: every node then "acquires" every lease, and coordination would
// let the whole fleet order each name. Before the first acquisition the
// portable layer checks that a held lease excludes a second holder; a probe
// that got no answer is tried again at the next acquisition, one that
// passed is never run again, and a store that let the second holder in
// fails every acquisition.
type exclusion struct {
	sem           chan struct{} // one probe at a time; made by newPortable
	passed        atomic.Bool
	broken        atomic.Bool
	uncoordinated bool // coordination was turned off: the error says so
}

// noExclusion is the error of every acquisition on a store whose leases do
// not exclude. It matches ErrUnsupported.
type noExclusion struct{ uncoordinated bool }

func (e noExclusion) Error() string {
	msg := "the store does not honour conditional writes (a second holder acquired a held lease), so leases cannot exclude: use a store that does"
	if !e.uncoordinated {
		msg += ", or set coordinate=false (Options.DisableCoordination) to run uncoordinated"
	}
	return msg
}

func (noExclusion) Unwrap() error { return ErrUnsupported }

// exclusionProbeTTL is the exclusion probe's lease time: longer than the
// probe can last, so that its first lease cannot run out before the second
// acquisition tries it.
func (c *portable) exclusionProbeTTL() time.Duration {
	return max(DefaultLeaseTTL, 2*c.timeout)
}

// checkExclusion runs the exclusion probe before the acquisition of name,
// unless it passed already; cctx bounds it and the acquisition together.
// Its error is the acquisition's.
func (c *portable) checkExclusion(ctx, cctx context.Context, ld driver.LeaseDriver, name string, timeout time.Duration) error {
	if c.excl.passed.Load() {
		return nil
	}
	if c.excl.broken.Load() {
		return newError(c.backend, "lease", name, noExclusion{c.excl.uncoordinated})
	}
	select {
	case c.excl.sem <- struct{}{}:
	case <-cctx.Done():
		return c.failWithin(ctx, cctx, "lease", name, cctx.Err(), timeout)
	}
	defer func() { <-c.excl.sem }()
	switch {
	case c.excl.passed.Load():
		return nil
	case c.excl.broken.Load():
		return newError(c.backend, "lease", name, noExclusion{c.excl.uncoordinated})
	}
	err := c.probeExclusion(cctx, ld)
	switch {
	case err == nil:
		c.excl.passed.Store(true)
		return nil
	case errors.As(err, new(noExclusion)):
		c.excl.broken.Store(true)
		return newError(c.backend, "lease", name, err)
	}
	return c.failWithin(ctx, cctx, "lease", name, err, timeout)
}

// probeExclusion acquires the probe's lease for one token, then for
// another: the second must find it held. Both are released in the
// background: a few writes, once per cache. Finding the lease held at the
// first acquisition (another node is probing, or one that stopped
// mid-probe left it to run out) is exclusion seen too.
func (c *portable) probeExclusion(ctx context.Context, ld driver.LeaseDriver) error {
	name := exclusionProbeName
	a, b := newToken(), newToken()
	ttl := c.exclusionProbeTTL()
	if err := ld.AcquireLease(ctx, name, a, ttl); err != nil {
		if errors.Is(err, ErrLeaseHeld) {
			return nil
		}
		c.releaseAbandoned(ld, name, a)
		return fmt.Errorf("exclusion probe: %w", err)
	}
	defer c.releaseAbandoned(ld, name, a)
	err := ld.AcquireLease(ctx, name, b, ttl)
	if errors.Is(err, ErrLeaseHeld) {
		return nil
	}
	c.releaseAbandoned(ld, name, b)
	if err == nil {
		return noExclusion{c.excl.uncoordinated}
	}
	return fmt.Errorf("exclusion probe: %w", err)
}
