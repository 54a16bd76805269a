package certcache

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache/internal/authority"
	"github.com/certcache/certcache/internal/certkey"
	"github.com/certcache/certcache/internal/hook"
	"golang.org/x/crypto/acme/autocert"
)

// Issuance coordination: one order per certificate for the whole fleet, on
// every path on which autocert orders. autocert orders
//
//   - on the handshake path, when Get returns exactly autocert.ErrCacheMiss,
//     or a value it refuses (expired, not yet valid, another name, a key
//     that does not match): exactly one caller in the fleet, the one that
//     takes the lease "order:<key>" on the store, gets the bare miss; every
//     other caller gets ErrIssuing at once, because autocert calls Get
//     there while holding the lock every handshake of the node takes;
//   - on the renewal path (autocert's renewal timer, outside that lock),
//     after any Get error, a value it refuses, or a certificate due by the
//     Manager's RenewBefore: the caller that takes the lease renews; the
//     others, and every renewal that meets a store error, wait until the
//     store answers with a certificate that is not due, or until their
//     context ends. A renewal is never handed an error it could order on.
//
// Every read that decides an order goes to the authoritative store, past
// any memory front (internal/authority). The holder's lease is refreshed
// while its order can run — no longer than autocert lets an order run —
// and released by the Put of the certificate; a Put that fails is tried
// again in the background while the lease is kept. An order that ends
// without a Put keeps the lease until it runs out: the fleet places at most
// one order per lease TTL for the name, as one node alone would with
// autocert's one-minute pause after a failed order.
//
// The account key: the first node to miss "acme_account+key" makes it;
// the others wait for it to land, so the fleet registers one account.

const leasePrefix = "order:"

// maxOrder is the longest autocert lets one order run: a renewal has ten
// minutes (renewal.go), a handshake five. A lease is never kept alive
// longer, whatever the caller's context says.
const maxOrder = 10 * time.Minute

// putRetryFor bounds how long a Put that failed after an order is tried
// again, with the order lease kept, before the lease is left to run out.
const putRetryFor = 5 * time.Minute

// coordinated is the Cache that coordinates issuance above a stack whose
// backend has leases.
type coordinated struct {
	inner       Cache
	p           *portable
	ttl         time.Duration
	renewBefore time.Duration // Options.RenewBefore

	mu        sync.Mutex
	held      map[string]*orderLease   // key → the order lease this Cache holds
	elsewhere map[string]time.Time     // key → when its lease was last found held by another
	managers  []*autocert.Manager      // told by GetCertificate: their RenewBefore counts
	verdicts  map[string]storedVerdict // key → what the value last inspected is

	// ctx ends at Close; wg counts the goroutines this Cache started
	// (keep-alives, Put retries), which Close waits for.
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	tel *coordTelemetry // lease events, certificate expiry (observe.go)
}

// heldRecheck is how long a lease found held by another holder is taken to
// be still held without asking the store again. Every handshake for the
// name on this node reads the key (the certificate may have landed), but
// only one in heldRecheck tries the lease, which on an object store is
// several round trips, all under autocert's lock.
const heldRecheck = time.Second

func coordinate(inner Cache, p *portable, o *Options) Cache {
	if _, ok := p.d.(driver.LeaseDriver); !ok || (o != nil && o.DisableCoordination) {
		return inner
	}
	ttl := DefaultLeaseTTL
	var renewBefore time.Duration
	if o != nil {
		if o.LeaseTTL > 0 {
			ttl = max(o.LeaseTTL, minLeaseTTL)
		}
		renewBefore = o.RenewBefore
	}
	return newCoordinated(inner, p, ttl, renewBefore, newCoordTelemetry(p, o))
}

func newCoordinated(inner Cache, p *portable, ttl, renewBefore time.Duration, tel *coordTelemetry) *coordinated {
	c := &coordinated{inner: inner, p: p, ttl: ttl, renewBefore: renewBefore, tel: tel,
		held: map[string]*orderLease{}, elsewhere: map[string]time.Time{}, verdicts: map[string]storedVerdict{}}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	return c
}

type peekKey struct{}

// peek marks ctx for a Get that only looks: a value autocert would refuse
// is a miss, and no lease is taken (the waiters of GetCertificate poll
// with it).
func peek(ctx context.Context) context.Context { return context.WithValue(ctx, peekKey{}, true) }

// Get implements autocert.Cache.
func (c *coordinated) Get(ctx context.Context, key string) ([]byte, error) {
	data, err := c.get(ctx, key)
	if err == nil {
		c.tel.certificate(key, data) // what the caller gets: a renewal's wait may end with a newer one
	}
	return data, err
}

func (c *coordinated) get(ctx context.Context, key string) ([]byte, error) {
	kind := certkey.KindOf(key)
	switch {
	case kind != certkey.Cert && kind != certkey.Account: // nothing autocert orders
		return c.inner.Get(ctx, key)
	case ctx.Value(peekKey{}) != nil:
		data, err := c.inner.Get(authority.Context(ctx), key)
		if err == nil && kind == certkey.Cert && !c.usable(key, data, time.Now()) {
			return nil, autocert.ErrCacheMiss
		}
		return data, err
	case kind == certkey.Cert && renewing(ctx):
		return c.await(ctx, key, true)
	}
	data, err := c.inner.Get(ctx, key)
	switch {
	case err != nil && err != autocert.ErrCacheMiss: //nolint:errorlint // the contract's bare sentinel
		return nil, err
	case err == nil && (kind == certkey.Account || c.usable(key, data, time.Now())):
		return data, nil // a due certificate too: the handshake path never renews
	case kind == certkey.Account:
		return c.await(ctx, key, false)
	}
	return c.takeOrder(ctx, key)
}

// takeOrder settles, on the handshake path, a certificate key that holds
// nothing autocert will use: the miss for the caller that gets the order
// lease, ErrIssuing for everyone else.
func (c *coordinated) takeOrder(ctx context.Context, key string) ([]byte, error) {
	if c.holding(key) {
		return nil, c.issuing(key, "an order by this process is running, or failed less than a lease TTL ago")
	}
	c.mu.Lock()
	seen, heldElsewhere := c.elsewhere[key]
	c.mu.Unlock()
	if heldElsewhere && time.Since(seen) < heldRecheck {
		return nil, c.issuing(key, "another holder of its order lease is ordering it")
	}
	data, got, err := c.acquire(ctx, key, false)
	switch {
	case err != nil:
		return nil, err
	case data != nil && !got:
		return data, nil
	case !got:
		return nil, c.issuing(key, "another holder of its order lease is ordering it")
	}
	return nil, autocert.ErrCacheMiss
}

// await settles a renewal's Get of a certificate key, or a Get of the
// account key that missed, outside autocert's lock. It returns at once
// what needs no order (a certificate that is not due; the account key).
// Otherwise the caller that gets the order lease gets what autocert orders
// on (the due certificate, or the miss), and every other caller waits for
// the holder's value to land. A renewal also waits out store errors: any
// error makes autocert renew, so it gets one only when its context has
// ended (autocert's order then fails at once) or the Cache is closed.
func (c *coordinated) await(ctx context.Context, key string, renewal bool) ([]byte, error) {
	var began time.Time // of the wait, if it waited
	defer func() { c.tel.waited(ctx, key, began) }()
	actx := authority.Context(ctx)
	// The holder's Put wakes the wait where the store pushes (watchKey);
	// it polls otherwise. Close ends it as the caller's context does.
	watch := watchKey(c.p, key)
	defer watch.Stop()
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer context.AfterFunc(c.ctx, cancel)()
	var lastErr error
	resumed := false // this renewal holds the lease it took back: read until the store answers
	for {
		// A lease this process holds is waited out as another node's
		// would be while an order runs under it (another Manager's). A
		// renewal may take back one whose renewal ended without a Put:
		// autocert draws its jitter again after reading a due
		// certificate and may renew a moment later.
		if resumed || renewal && c.resume(ctx, key) {
			resumed = true
			data, err := c.inner.Get(actx, key)
			if err == nil && c.satisfied(key, data, true) {
				c.stored(ctx, key, data) // renewed meanwhile: let the lease go
				return data, nil
			}
			if err == nil && c.usable(key, data, time.Now()) {
				return data, nil
			}
			if err == nil || err == autocert.ErrCacheMiss { //nolint:errorlint
				return nil, autocert.ErrCacheMiss
			}
			lastErr = err // held and kept alive: read again after the wait
		} else if !c.holding(key) {
			data, err := c.inner.Get(actx, key)
			switch {
			case err == nil && c.satisfied(key, data, renewal):
				return data, nil
			case err == nil || err == autocert.ErrCacheMiss: //nolint:errorlint
				data, got, err := c.acquire(ctx, key, renewal)
				switch {
				case err == nil && got && data == nil:
					return nil, autocert.ErrCacheMiss
				case err == nil && (got || data != nil):
					return data, nil // ours to order on, or landed already
				case err != nil && (!renewal || final(err)):
					return nil, err
				}
				lastErr = err
			case !renewal || final(err):
				return nil, err
			default:
				lastErr = err
			}
		}
		if began.IsZero() {
			began = time.Now()
		}
		if watch.Wait(wctx) != nil {
			if ctx.Err() == nil {
				return nil, newError(c.p.backend, "get", key, ErrClosed)
			}
			why := fmt.Errorf("waiting for another node's %s: %w", what(key), ctx.Err())
			if lastErr != nil {
				why = fmt.Errorf("%w (last store error: %v)", why, lastErr)
			}
			return nil, newError(c.p.backend, "get", key, why)
		}
	}
}

// final reports whether err will not go away by asking again. A timeout
// is not final: the store may answer the next call (the caller's own
// context ending is seen by the caller's wait).
func final(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrInvalidKey) || errors.Is(err, ErrUnsupported)
}

// acquire takes the order lease for key. With it, it reads key again from
// the authority (the previous holder may have stored it and let go between
// our read and now): if that needs no order (see satisfied), it lets the
// lease go and returns the value. Otherwise the lease is held and kept
// alive while ctx lives, and acquire returns what the caller orders on:
// on a renewal a usable due certificate, else nil (a miss).
func (c *coordinated) acquire(ctx context.Context, key string, renewal bool) (data []byte, got bool, err error) {
	l, err := c.p.acquireWithin(ctx, leasePrefix+key, c.ttl, c.p.getTimeout)
	var sawHeld bool // by another holder, lately: see otelname.MetricLeaseEvents, taken_over
	c.mu.Lock()
	if errors.Is(err, ErrLeaseHeld) {
		if len(c.elsewhere) >= 1024 { // forget what is stale, so the map stays small
			for k, t := range c.elsewhere {
				if time.Since(t) >= heldRecheck {
					delete(c.elsewhere, k)
				}
			}
		}
		c.elsewhere[key] = time.Now()
	} else {
		seen, ok := c.elsewhere[key]
		sawHeld = ok && err == nil && time.Since(seen) < takeoverWindow*c.ttl
		delete(c.elsewhere, key)
	}
	c.mu.Unlock()
	if errors.Is(err, ErrLeaseHeld) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	c.tel.event(ctx, evAcquired)
	data, err = c.inner.Get(authority.Context(ctx), key)
	switch {
	case err != nil && err != autocert.ErrCacheMiss: //nolint:errorlint
		c.releaseLater(l)
		return nil, false, err
	case err == nil && c.satisfied(key, data, renewal):
		c.releaseLater(l)
		return data, false, nil
	}
	c.hold(ctx, key, l)
	if sawHeld {
		c.tel.takenOver(ctx, key)
	}
	if err == nil && certkey.KindOf(key) == certkey.Cert && c.usable(key, data, time.Now()) {
		return data, true, nil // due: autocert renews it
	}
	return nil, true, nil
}

// satisfied reports whether a value read for key needs no order: the
// account key, whatever it is; a certificate autocert will use, and on a
// renewal one that is not due.
func (c *coordinated) satisfied(key string, data []byte, renewal bool) bool {
	if certkey.KindOf(key) != certkey.Cert {
		return true
	}
	now := time.Now()
	v, ok := c.inspect(key, data)
	return ok && v.ValidAt(now) && (!renewal || !v.Due(c.threshold(v), now))
}

// releaseLater lets l go without keeping the caller, who may hold
// autocert's lock, waiting for one more write to the store.
func (c *coordinated) releaseLater(l *Lease) {
	c.p.background(func(ctx context.Context) { l.Release(ctx) })
}

func what(key string) string {
	if certkey.KindOf(key) == certkey.Account {
		return "account key"
	}
	return "renewal"
}

func (c *coordinated) issuing(key, why string) error {
	c.tel.event(context.Background(), evIssuing)
	return newError(c.p.backend, "get", key, fmt.Errorf("%w: %s", ErrIssuing, why))
}

// Put implements autocert.Cache. The Put of a key whose order lease this
// Cache holds releases the lease once the value is stored; if the store
// refuses it, it is tried again in the background with the lease kept
// (autocert ignores Put errors: without this the fleet would order the
// certificate again one TTL later).
func (c *coordinated) Put(ctx context.Context, key string, data []byte) error {
	err := c.inner.Put(ctx, key, data)
	if err != nil {
		c.retryPut(key, data)
		return err
	}
	c.stored(ctx, key, data)
	return nil
}

// stored releases key's order lease, if this Cache holds it, once data is
// in the store.
func (c *coordinated) stored(ctx context.Context, key string, data []byte) {
	c.tel.certificate(key, data)
	c.mu.Lock()
	h := c.held[key]
	delete(c.held, key)
	c.mu.Unlock()
	if h != nil {
		h.stop()
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.p.timeout)
		h.lease.Release(rctx)
		cancel()
	}
}

// Delete implements autocert.Cache.
func (c *coordinated) Delete(ctx context.Context, key string) error {
	c.tel.forget(key)
	return c.inner.Delete(ctx, key)
}

// Close implements Cache. It ends every goroutine the coordination
// started; leases this Cache holds are left to run out: a Close in the
// middle of an order is a node going away.
func (c *coordinated) Close() error {
	c.mu.Lock() // hold starts no keep-alive after this
	c.cancel()
	c.mu.Unlock()
	c.wg.Wait()
	c.tel.close()
	return c.inner.Close()
}

// Unwrap returns the Cache under the coordination.
func (c *coordinated) Unwrap() Cache { return c.inner }

// renewing reports whether ctx is autocert's renewal context: renewals run
// with a ten-minute timeout (renewal.go), handshakes with five minutes
// (GetCertificate). Only a renewal may wait in Get; the e2e renewal test
// pins this against the autocert in go.mod.
func renewing(ctx context.Context) bool {
	dl, ok := ctx.Deadline()
	left := time.Until(dl)
	return ok && left > 6*time.Minute && left <= maxOrder
}

// Uncoordinated returns the Cache beneath c's issuance coordination, or c.
// Tools that read or copy a store (list, inspect, migrate) use it, so that
// a missing certificate is a plain miss and takes no order lease.
func Uncoordinated(c Cache) Cache {
	if co, ok := c.(*coordinated); ok {
		return co.inner
	}
	return c
}

// coordinateAs is hook.CoordinateAs.
func coordinateAs(c, as hook.Cache) hook.Cache {
	co, ok := as.(*coordinated)
	if !ok {
		return c
	}
	n := newCoordinated(c, co.p, co.ttl, co.renewBefore, co.tel)
	co.mu.Lock()
	n.managers = append(n.managers, co.managers...)
	co.mu.Unlock()
	return n
}
