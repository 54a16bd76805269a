package certcache

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/certcache/certcache/driver"
)

// Poll intervals of a keyWatch. Without a push, a waiter polls from
// pollFloor (or twice the store's round trip, whichever is longer),
// doubling to pollCap (or ten round trips, up to maxPoll): within one
// interval of the value landing. With a push, it reads again every
// safetyPoll in case a notification was lost.
const (
	pollFloor  = 25 * time.Millisecond
	pollCap    = 250 * time.Millisecond
	maxPoll    = time.Second
	safetyPoll = 2 * time.Second
)

// watchRetry bounds the pause between two subscriptions of a driver's
// Watch, from the first failure on.
const (
	watchRetryMin = 100 * time.Millisecond
	watchRetryMax = 5 * time.Second
)

// keyWatch waits for changes of one key of a Cache's store, for callers
// that read a key until another node has written it. Without a push from
// the store (the backend has no driver.WatchDriver, or its subscription is down)
// it polls, with a backoff tuned to the store's round trip.
//
//	w := certcache.watchKey(c, key)
//	defer w.Stop()
//	for {
//		v, err := c.Get(ctx, key)
//		if done(v, err) { … }
//		if err := w.Wait(ctx); err != nil { return err }
//	}
//
// The watch is armed from watchKey on, and again whenever Wait returns, so
// a change between a read and the next Wait is never missed.
type keyWatch struct {
	hub *watchHub // nil: the Cache has no portable layer or no push
	key string

	armed  <-chan struct{}
	wait   time.Duration // the next poll interval without a push
	lastRT time.Duration // the caller's read between two Waits
	since  time.Time     // when Wait last returned
}

// watchKey returns a keyWatch of key on c's store, looking through
// wrappers to the backend. The first keyWatch of a Cache whose backend
// has a driver.WatchDriver subscribes, once for the Cache however many keys are
// watched; Close ends the subscription. Stop the keyWatch when done.
func watchKey(c Cache, key string) *keyWatch {
	w := &keyWatch{key: key, wait: pollFloor, since: time.Now()}
	if p := findPortable(c); p != nil {
		w.hub = p.watchHub()
	}
	if w.hub != nil {
		w.armed = w.hub.arm(key, nil)
	}
	return w
}

// Pushing reports whether the store's push reaches this process now.
func (w *keyWatch) Pushing() bool { return w.hub != nil && w.hub.isUp() }

// Wait returns nil when key may have changed since watchKey or the last
// Wait — a push for it, the push going down or coming back — or when it
// is time to poll, and ctx's error if ctx ends first.
func (w *keyWatch) Wait(ctx context.Context) error {
	w.lastRT = time.Since(w.since)
	interval := safetyPoll
	if !w.Pushing() {
		interval = w.pollInterval()
	}
	t := time.NewTimer(interval)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-w.armed:
	case <-t.C:
	}
	if w.hub != nil {
		w.armed = w.hub.arm(w.key, w.armed)
	}
	w.since = time.Now()
	return nil
}

// pollInterval is the next poll interval without a push: from twice the
// caller's read, at least pollFloor, doubling to ten reads, at least
// pollCap and at most maxPoll. A store 1 ms away is read about every
// 250 ms once the wait is long; one 50 ms away every 500 ms.
func (w *keyWatch) pollInterval() time.Duration {
	ceil := min(max(pollCap, 10*w.lastRT), maxPoll)
	d := min(max(w.wait, 2*w.lastRT), ceil)
	w.wait = min(2*d, ceil)
	return d
}

// Stop ends the keyWatch.
func (w *keyWatch) Stop() {
	if w.hub != nil && w.armed != nil {
		w.hub.disarm(w.key)
		w.armed = nil
	}
}

// watchHub fans one driver subscription out to the waiters of a Cache, by
// key.
type watchHub struct {
	p  *portable
	wd driver.WatchDriver

	mu      sync.Mutex
	started bool
	up      bool
	keys    map[string]*keyWaiters
}

// keyWaiters are the KeyWatches of one key: ch is closed, and replaced,
// when the key may have changed.
type keyWaiters struct {
	ch chan struct{}
	n  int
}

// watchHub returns c's hub, or nil if its driver cannot push.
func (c *portable) watchHub() *watchHub {
	c.watchOnce.Do(func() {
		if wd, ok := c.d.(driver.WatchDriver); ok {
			c.watch = &watchHub{p: c, wd: wd, keys: map[string]*keyWaiters{}}
		}
	})
	return c.watch
}

// arm returns the channel that the next change of key closes. prev is the
// channel the caller armed last (nil for a new waiter): a waiter that
// already counts keeps its place.
func (h *watchHub) arm(key string, prev <-chan struct{}) <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	kw := h.keys[key]
	if kw == nil {
		kw = &keyWaiters{ch: make(chan struct{})}
		h.keys[key] = kw
	}
	if prev == nil {
		kw.n++
	}
	if !h.started {
		h.started = true
		h.p.runBackground(h.run)
	}
	return kw.ch
}

func (h *watchHub) disarm(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if kw := h.keys[key]; kw != nil {
		if kw.n--; kw.n <= 0 {
			delete(h.keys, key)
		}
	}
}

func (h *watchHub) isUp() bool {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.up
}

// changed wakes the waiters of key, or every waiter for "".
func (h *watchHub) changed(key string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if key == "" {
		h.wakeAll()
		return
	}
	if kw := h.keys[key]; kw != nil {
		close(kw.ch)
		kw.ch = make(chan struct{})
	}
}

// setUp records whether the push is up and wakes every waiter: going
// down, they turn to polling; coming up, they read once more, since a
// change while it was down was not pushed.
func (h *watchHub) setUp(up bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.up == up {
		return
	}
	h.up = up
	h.wakeAll()
}

func (h *watchHub) wakeAll() {
	for _, kw := range h.keys {
		close(kw.ch)
		kw.ch = make(chan struct{})
	}
}

// run keeps the driver subscribed until ctx (the Cache's background
// context) ends at Close, pausing with backoff after each failure. A
// subscription that ran for a while resets the backoff.
func (h *watchHub) run(ctx context.Context) {
	pause := watchRetryMin
	for ctx.Err() == nil {
		began := time.Now()
		err := h.wd.Watch(ctx, func() { h.setUp(true) }, h.changed)
		h.setUp(false)
		if ctx.Err() != nil || errors.Is(err, ErrUnsupported) {
			return // closed, or this store cannot push: waiters poll
		}
		if time.Since(began) > watchRetryMax {
			pause = watchRetryMin
		}
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		pause = min(2*pause, watchRetryMax)
	}
}

// runBackground runs f in a goroutine under the Cache's background
// context, unless c is closed; Close cancels it and waits for f.
func (c *portable) runBackground(f func(ctx context.Context)) {
	c.bgMu.Lock()
	defer c.bgMu.Unlock()
	if c.closed.Load() {
		return
	}
	c.bg.Add(1)
	go func() {
		defer c.bg.Done()
		f(c.bgCtx)
	}()
}
