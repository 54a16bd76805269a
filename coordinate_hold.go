package certcache

import (
	"context"
	"errors"
	"hash/maphash"
	"sync"
	"time"

	"github.com/certcache/certcache/internal/certkey"
	"golang.org/x/crypto/acme/autocert"
)

// An order lease held by this Cache, from its acquisition to the Put that
// releases it or to its running out.

// orderLease is an order lease held by a coordinated Cache.
type orderLease struct {
	lease *Lease

	// Guarded by the Cache's mu.
	expires time.Time // when it runs out unless refreshed
	active  bool      // a goroutine keeps it alive: an order, or a Put retry, runs

	failedPut chan []byte   // a Put that failed, for keepAlive to try again
	done      chan struct{} // closed by stop: the certificate is stored
	stopOnce  sync.Once
}

func (h *orderLease) stop() { h.stopOnce.Do(func() { close(h.done) }) }

// holding reports whether this Cache holds key's order lease: an order (or
// a Put retry) runs under it, or one ended without storing a certificate
// less than a TTL ago. A lease that ran out is forgotten here.
func (c *coordinated) holding(key string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	h := c.held[key]
	if h == nil {
		return false
	}
	if !h.active && !time.Now().Before(h.expires) {
		delete(c.held, key)
		return false
	}
	return true
}

// resume takes back, for the renewal that ctx carries, key's order lease
// that this Cache holds but no order keeps alive (the last renewal under
// it ended without a Put), if the store confirms it is still ours. It
// reports whether the caller now holds a live lease, kept alive as by hold.
func (c *coordinated) resume(ctx context.Context, key string) bool {
	c.mu.Lock()
	h := c.held[key]
	if h != nil && h.active {
		c.mu.Unlock()
		return false // an order runs under it: wait for its certificate
	}
	c.mu.Unlock()
	if h == nil {
		return false
	}
	if err := h.lease.Refresh(ctx); err != nil {
		c.mu.Lock()
		if c.held[key] == h && errors.Is(err, ErrLeaseLost) {
			delete(c.held, key)
		}
		c.mu.Unlock()
		return false
	}
	c.mu.Lock()
	if c.held[key] != h || h.active {
		c.mu.Unlock()
		return false // another renewal of this process took it first
	}
	delete(c.held, key)
	c.mu.Unlock()
	c.hold(ctx, key, h.lease)
	return true
}

// hold records l, just acquired for key, and keeps it alive while the
// order that ctx carries may run: until ctx ends, and never longer than
// autocert lets an order run (maxOrder). A context without a deadline is
// not autocert's: its lease is not refreshed, so that a Get from a health
// check or a script holds the name for one TTL at most.
func (c *coordinated) hold(ctx context.Context, key string, l *Lease) {
	h := &orderLease{lease: l, expires: time.Now().Add(c.ttl), failedPut: make(chan []byte, 1), done: make(chan struct{})}
	deadline, ok := ctx.Deadline()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.held[key] = h
	if !ok || c.ctx.Err() != nil {
		return
	}
	h.active = true
	c.wg.Add(1)
	until := time.Now().Add(maxOrder)
	if deadline.Before(until) {
		until = deadline
	}
	go c.keepAlive(ctx.Done(), until, key, h)
}

// keepAlive refreshes h every third of the TTL while the order may run
// (until orderDone is closed or until), and while a Put that failed is
// tried again (putRetryFor). When neither runs any longer without the
// certificate stored, the order failed: the lease is left to run out, so
// that neither this node nor another orders again before.
func (c *coordinated) keepAlive(orderDone <-chan struct{}, until time.Time, key string, h *orderLease) {
	defer c.wg.Done()
	refresh := time.NewTicker(c.ttl / 3)
	defer refresh.Stop()
	bound := time.NewTimer(time.Until(until))
	defer bound.Stop()
	var (
		pending  []byte           // the value whose Put failed
		retry    <-chan time.Time // the next try of that Put
		backoff  = time.Second
		retryEnd time.Time
	)
	inactive := func() {
		c.mu.Lock()
		h.active = false
		c.mu.Unlock()
	}
	for {
		select {
		case <-h.done:
			return
		case <-c.ctx.Done():
			inactive()
			return
		case <-orderDone:
			orderDone = nil
			if pending == nil {
				inactive()
				return
			}
		case <-bound.C:
			orderDone = nil
			if pending == nil {
				inactive()
				return
			}
		case data := <-h.failedPut:
			if pending == nil {
				retryEnd = time.Now().Add(putRetryFor)
				retry = time.After(backoff)
			}
			pending = data
		case <-retry:
			ctx, cancel := context.WithTimeout(c.ctx, c.p.timeout)
			err := c.inner.Put(ctx, key, pending)
			cancel()
			if err == nil {
				c.stored(c.ctx, key, pending)
				return
			}
			if time.Now().After(retryEnd) || final(err) {
				c.tel.log().Warn("certcache: a certificate the store refused after its order was not stored; its order lease runs out and the fleet orders it again",
					"backend", c.p.backend, "key", key, "err", err)
				inactive()
				return
			}
			backoff = min(2*backoff, 15*time.Second)
			retry = time.After(backoff)
		case <-refresh.C:
			rctx, cancel := context.WithTimeout(c.ctx, c.ttl/3)
			err := h.lease.Refresh(rctx)
			cancel()
			switch {
			case err == nil:
				c.mu.Lock()
				h.expires = time.Now().Add(c.ttl)
				c.mu.Unlock()
			case errors.Is(err, ErrLeaseLost):
				c.mu.Lock()
				if c.held[key] == h {
					delete(c.held, key) // another node took over after it expired
				}
				c.mu.Unlock()
				c.tel.lost(key, err)
				return
			case errors.Is(err, ErrClosed):
				inactive()
				return // the lease runs out by its TTL
			}
			// Any other error (the store is down): try again at the next
			// tick; the lease may yet be alive.
		}
	}
}

// retryPut hands data, whose Put failed, to the keep-alive of key's order
// lease if this Cache holds it and keeps it alive.
func (c *coordinated) retryPut(key string, data []byte) {
	c.mu.Lock()
	h := c.held[key]
	ok := h != nil && h.active
	c.mu.Unlock()
	if !ok {
		return
	}
	v := append([]byte(nil), data...) // the caller may reuse data
	select {
	case h.failedPut <- v:
	default: // one is pending already: it is the same certificate
	}
}

// storedVerdict is what inspecting a stored value found, by the value's
// hash: autocert Gets a certificate once per process, but the renewal
// waits and the waiters of GetCertificate read it again and again.
type storedVerdict struct {
	sum      uint64
	validity certkey.Validity
	ok       bool
}

var verdictSeed = maphash.MakeSeed()

// inspect returns when the certificate under key is valid, or false if
// autocert would never use data (certkey.Inspect).
func (c *coordinated) inspect(key string, data []byte) (certkey.Validity, bool) {
	sum := maphash.Bytes(verdictSeed, data)
	c.mu.Lock()
	v, ok := c.verdicts[key]
	c.mu.Unlock()
	if ok && v.sum == sum {
		return v.validity, v.ok
	}
	val, err := certkey.Inspect(key, data) // outside the lock: parsing takes tens of microseconds
	v = storedVerdict{sum: sum, validity: val, ok: err == nil}
	c.mu.Lock()
	if len(c.verdicts) >= 1024 {
		clear(c.verdicts)
	}
	c.verdicts[key] = v
	c.mu.Unlock()
	return v.validity, v.ok
}

// usable reports whether autocert uses the certificate data under key at
// now.
func (c *coordinated) usable(key string, data []byte, now time.Time) bool {
	v, ok := c.inspect(key, data)
	return ok && v.ValidAt(now)
}

// threshold is how long before its expiry a certificate valid over v is
// renewed: as the Managers told by GetCertificate renew it, or as
// Options.RenewBefore says, the earliest of these; a third of its life
// (autocert's default) if nothing says.
func (c *coordinated) threshold(v certkey.Validity) time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.managers) == 0 {
		return certkey.Threshold(v, c.renewBefore)
	}
	t := time.Duration(0)
	if c.renewBefore > 0 {
		t = certkey.Threshold(v, c.renewBefore)
	}
	for _, m := range c.managers {
		t = max(t, certkey.Threshold(v, m.RenewBefore))
	}
	return t
}

// watch makes m's RenewBefore count in the renewal threshold.
func (c *coordinated) watch(m *autocert.Manager) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, w := range c.managers {
		if w == m {
			return
		}
	}
	c.managers = append(c.managers, m)
}
