package certcache

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// Issuance coordination: one order per name for the whole fleet.
//
// autocert orders a certificate when Get returns autocert.ErrCacheMiss, on
// every node that misses. A coordinated Cache lets exactly one caller in the
// fleet have that miss: on a miss for a certificate key ("<domain>" or
// "<domain>+rsa") it acquires the lease "order:<key>" on the store; the
// caller that gets it gets the miss, and with it the job of ordering. Every
// other caller, on any node, gets an error matching ErrIssuing at once:
// autocert calls Get while holding a lock that every handshake of the node
// takes, so Get must never wait for another node's order. autocert fails
// that one handshake without ordering and without remembering anything; the
// next handshake finds the certificate. GetCertificate and TLSConfig wait
// outside that lock instead, so that every handshake succeeds.
//
// The holder's lease is refreshed every third of its TTL while the order can
// still be alive (autocert orders under the context it gave Get, which ends
// when its GetCertificate returns) and released by the Put of the
// certificate. An order that ends without a Put (the CA refused, the node
// died) keeps the lease until it runs out: the fleet, this node included,
// places at most one order per lease TTL for the name, as one node alone
// would with autocert's one-minute pause after a failed order.
//
// Renewals: autocert renews on each node, reading the cache first and
// ordering only if the cached certificate is due. A renewal's Get (made
// outside autocert's lock, with the ten-minute context autocert gives a
// renewal) that finds a certificate due for renewal takes the same lease;
// the node that gets it renews, the others wait for its certificate to land
// and take that. A due certificate read on the handshake path is returned
// at once, as always.
//
// The account key: autocert reads "acme_account+key" outside that lock and
// makes a new key on a miss. The first node to miss gets the lease
// "order:acme_account+key" and the miss; the others wait for its key to land
// and register with the same key, so the fleet has one ACME account.

// ErrIssuing means a certificate is being ordered by another holder of its
// order lease (another node, or another Manager in this process), or that
// an order for it failed within the last lease TTL. It is never a miss, so
// autocert does not order again; GetCertificate waits for the certificate.
var ErrIssuing = errors.New("certificate is being issued elsewhere")

const leasePrefix = "order:"

// keyKind tells what autocert keeps under a key.
type keyKind int

const (
	otherKey keyKind = iota
	certKey
	accountKey
)

// kindOf recognises autocert's certificate keys: a domain name as autocert
// makes it (lower case ASCII after IDNA, at least one dot), optionally with
// "+rsa". Token and challenge keys carry other suffixes.
func kindOf(key string) keyKind {
	if key == "acme_account+key" {
		return accountKey
	}
	name := strings.TrimSuffix(key, "+rsa")
	if !strings.Contains(name, ".") || strings.HasPrefix(name, ".") || strings.HasSuffix(name, ".") || name == "acme_account.key" {
		return otherKey
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-' || c == '_') {
			return otherKey
		}
	}
	return certKey
}

// coordinated is the Cache that coordinates issuance above a stack whose
// backend has leases.
type coordinated struct {
	inner Cache
	p     *portable
	ttl   time.Duration

	mu        sync.Mutex
	held      map[string]*orderLease // key → the order lease this Cache holds
	elsewhere map[string]time.Time   // key → when its lease was last found held by another

	tel *coordTelemetry // lease events, certificate expiry (observe.go)
}

// heldRecheck is how long a lease found held by another holder is taken to
// be still held without asking the store again. Every handshake for the
// name on this node reads the key (the certificate may have landed), but
// only one in heldRecheck tries the lease, which on an object store is
// several round trips, all under autocert's lock.
const heldRecheck = time.Second

// orderLease is an order lease held by this Cache.
type orderLease struct {
	lease *Lease
	done  chan struct{} // closed by the Put that releases it
}

func coordinate(inner Cache, p *portable, o *Options) Cache {
	if _, ok := p.d.(LeaseDriver); !ok || (o != nil && o.DisableCoordination) {
		return inner
	}
	ttl := DefaultLeaseTTL
	if o != nil && o.LeaseTTL > 0 {
		ttl = max(o.LeaseTTL, minLeaseTTL)
	}
	return &coordinated{inner: inner, p: p, ttl: ttl, held: map[string]*orderLease{}, elsewhere: map[string]time.Time{},
		tel: newCoordTelemetry(p, o)}
}

type peekKey struct{}

// peek marks ctx for a Get that only looks: a miss is a miss, no lease is
// taken (the waiters of GetCertificate poll with it).
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
	data, err := c.inner.Get(ctx, key)
	kind := kindOf(key)
	if kind == otherKey || (err != nil && err != autocert.ErrCacheMiss) || ctx.Value(peekKey{}) != nil {
		return data, err
	}
	switch {
	case err == nil && kind == certKey && renewing(ctx) && due(data, time.Now()):
		return c.renewal(ctx, key, data)
	case err == nil:
		return data, nil
	case kind == accountKey:
		return c.waitOrTake(ctx, key)
	}
	return c.takeOrder(ctx, key)
}

// takeOrder settles a miss of a certificate key: the miss for the caller
// that gets the order lease, ErrIssuing for everyone else.
func (c *coordinated) takeOrder(ctx context.Context, key string) ([]byte, error) {
	c.mu.Lock()
	_, mine := c.held[key]
	seen, heldElsewhere := c.elsewhere[key]
	c.mu.Unlock()
	if mine {
		return nil, c.issuing(key, "an order by this process is running, or failed less than a lease TTL ago")
	}
	if heldElsewhere && time.Since(seen) < heldRecheck {
		return nil, c.issuing(key, "another holder of its order lease is ordering it")
	}
	data, got, err := c.acquire(ctx, key)
	switch {
	case err != nil:
		return nil, err
	case data != nil:
		return data, nil
	case !got:
		return nil, c.issuing(key, "another holder of its order lease is ordering it")
	}
	return nil, autocert.ErrCacheMiss
}

// acquire takes the order lease for key. With it, it reads key again (the
// previous holder may have stored it and let go between our miss and now);
// if the value is there it lets the lease go and returns the value.
// Otherwise the lease is held, and kept alive while ctx lives.
func (c *coordinated) acquire(ctx context.Context, key string) (data []byte, got bool, err error) {
	l, err := c.p.acquireWithin(ctx, leasePrefix+key, c.ttl, c.p.getTimeout)
	var sawHeld bool // by another holder, lately: see MetricLeaseEvents, taken_over
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
	data, err = c.inner.Get(ctx, key)
	if err == nil && !(kindOf(key) == certKey && renewing(ctx) && due(data, time.Now())) {
		c.releaseLater(l)
		return data, false, nil
	}
	if err != nil && err != autocert.ErrCacheMiss {
		c.releaseLater(l)
		return nil, false, err
	}
	h := &orderLease{lease: l, done: make(chan struct{})}
	c.mu.Lock()
	c.held[key] = h
	c.mu.Unlock()
	if sawHeld {
		c.tel.takenOver(ctx, key)
	}
	go c.keepAlive(ctx, key, h)
	return data, true, nil
}

// releaseLater lets l go without keeping the caller, who may hold
// autocert's lock, waiting for one more write to the store.
func (c *coordinated) releaseLater(l *Lease) {
	c.p.background(func(ctx context.Context) { l.Release(ctx) })
}

// keepAlive refreshes h while the order that ctx carries may run. When ctx
// ends without the Put that releases h, the order failed: the lease is left
// to run out, so that neither this node nor another orders again before.
func (c *coordinated) keepAlive(ctx context.Context, key string, h *orderLease) {
	tick := time.NewTicker(c.ttl / 3)
	defer tick.Stop()
	expires := time.Now().Add(c.ttl)
	forget := func() {
		c.mu.Lock()
		if c.held[key] == h {
			delete(c.held, key)
		}
		c.mu.Unlock()
	}
	for {
		select {
		case <-h.done:
			return
		case <-ctx.Done():
			time.AfterFunc(time.Until(expires), forget)
			return
		case <-tick.C:
			rctx, cancel := context.WithTimeout(context.Background(), c.ttl/3)
			err := h.lease.Refresh(rctx)
			cancel()
			switch {
			case err == nil:
				expires = time.Now().Add(c.ttl)
			case errors.Is(err, ErrLeaseLost):
				forget() // another node took over after it expired
				c.tel.lost(key, err)
				return
			case errors.Is(err, ErrClosed):
				return // the lease runs out by its TTL
			}
			// Any other error (the store is down): try again at the next
			// tick; the lease may yet be alive.
		}
	}
}

// renewal settles a renewal's Get of a certificate that is due: the caller
// that gets the order lease renews (gets the due certificate); the others
// wait for the renewed certificate and get that.
func (c *coordinated) renewal(ctx context.Context, key string, data []byte) ([]byte, error) {
	c.mu.Lock()
	_, mine := c.held[key]
	c.mu.Unlock()
	if mine {
		return data, nil
	}
	return c.waitOrTake(ctx, key)
}

// waitOrTake waits, outside autocert's lock, for another holder's value of
// key to land — a renewed certificate, or the account key — and returns it.
// If the lease comes free first (the holder died or failed), the caller
// takes it and gets what the store has: the due certificate to renew, or a
// miss to make the account key.
func (c *coordinated) waitOrTake(ctx context.Context, key string) ([]byte, error) {
	var began time.Time // of the wait, if it waited
	defer func() { c.tel.waited(ctx, key, began) }()
	for wait := 50 * time.Millisecond; ; wait = min(wait*2, time.Second) {
		data, got, err := c.acquire(ctx, key)
		switch {
		case err != nil:
			return nil, err
		case got && data == nil:
			return nil, autocert.ErrCacheMiss
		case got || data != nil:
			return data, nil // ours to renew, or landed already
		}
		// Held elsewhere: has its value landed?
		data, err = c.inner.Get(ctx, key)
		switch {
		case err == nil && !(kindOf(key) == certKey && due(data, time.Now())):
			return data, nil
		case err != nil && err != autocert.ErrCacheMiss:
			return nil, err
		}
		if began.IsZero() {
			began = time.Now()
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, newError(c.p.backend, "get", key, fmt.Errorf("waiting for another node's %s: %w", what(key), ctx.Err()))
		case <-t.C:
		}
	}
}

func what(key string) string {
	if kindOf(key) == accountKey {
		return "account key"
	}
	return "renewal"
}

func (c *coordinated) issuing(key, why string) error {
	c.tel.event(context.Background(), evIssuing)
	return newError(c.p.backend, "get", key, fmt.Errorf("%w: %s", ErrIssuing, why))
}

// Put implements autocert.Cache. The Put of a key whose order lease this
// Cache holds releases the lease once the value is stored.
func (c *coordinated) Put(ctx context.Context, key string, data []byte) error {
	err := c.inner.Put(ctx, key, data)
	if err != nil {
		return err // the lease runs out: the fleet tries again after its TTL
	}
	c.tel.certificate(key, data)
	c.mu.Lock()
	h := c.held[key]
	delete(c.held, key)
	c.mu.Unlock()
	if h != nil {
		close(h.done)
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.p.timeout)
		h.lease.Release(rctx)
		cancel()
	}
	return nil
}

// Delete implements autocert.Cache.
func (c *coordinated) Delete(ctx context.Context, key string) error {
	c.tel.forget(key)
	return c.inner.Delete(ctx, key)
}

// Close implements Cache. Leases this Cache holds are left to run out: a
// Close in the middle of an order is a node going away.
func (c *coordinated) Close() error {
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
	return ok && left > 6*time.Minute && left <= 10*time.Minute
}

// due reports whether the certificate in an autocert cache value is due for
// renewal by autocert's default rule: within the last third of its life.
// A value that does not parse (sealed below this layer, say) is not due:
// it is returned as it is, uncoordinated.
func due(data []byte, now time.Time) bool {
	rest := data
	for {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			return false
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		leaf, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return false
		}
		life := leaf.NotAfter.Sub(leaf.NotBefore)
		return !now.Before(leaf.NotAfter.Add(-min(life/3, 30*24*time.Hour)))
	}
}

// Uncoordinated returns the Cache beneath c's issuance coordination, or c
// if it has none. Tools that read or copy the store without taking part in
// issuance (listing, inspecting, migrating) use it, so that a Get of a
// missing certificate is a plain miss and takes no order lease.
func Uncoordinated(c Cache) Cache {
	if co, ok := c.(*coordinated); ok {
		return co.inner
	}
	return c
}

// CoordinateAs puts issuance coordination over c as as has it — the same
// leases, in the store beneath as, and the same TTL — and returns c itself
// if as has none. A wrapper that builds a new Cache over tiers taken from
// beneath their coordination (layered.New) uses it to put coordination
// back on top, where it sees values as autocert does. as must not be used
// after: c takes its place.
func CoordinateAs(c, as Cache) Cache {
	co, ok := as.(*coordinated)
	if !ok {
		return c
	}
	return &coordinated{inner: c, p: co.p, ttl: co.ttl, held: map[string]*orderLease{}, elsewhere: map[string]time.Time{}, tel: co.tel}
}
