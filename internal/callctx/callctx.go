// Package callctx is the deadline context certcache puts around every
// store call: context.WithTimeout's behaviour at a fraction of its cost.
//
// context.WithTimeout allocates its context, a timer and two closures, and
// starts the timer, on every call, although almost every call ends long
// before its deadline and most SDKs never wait on the context. A Ctx is one
// allocation. Err compares the clock with the deadline, so nothing needs
// to run at the deadline until something waits: the Done channel is made,
// and a timer (kept in a pool and reused) armed, only when an SDK asks for
// Done or registers a function with AfterFunc.
//
// What an SDK registers on the context costs most when it derives contexts
// from it or calls context.AfterFunc (pgconn, database/sql, net/http). Under
// a parent that can end (autocert's contexts have a deadline), a Ctx that
// is waited on is a context.WithCancelCause of the parent, made then: the
// context package propagates the parent's ending to it and keeps the
// contexts derived from it in its map of children, as it does under a
// WithTimeout, and the Ctx adds only its deadline (a pooled timer). Under a
// parent that cannot end (context.Background, a WithoutCancel), the Ctx
// makes its own channel, and its AfterFunc method lets context.AfterFunc
// and derived contexts register a function instead of starting a goroutine
// each, as they must for a Context type the context package does not know.
package callctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// base anchors Now.
var base = time.Now()

// Now is time.Now for deadlines, with one clock read where time.Now takes
// two (the wall clock and the monotonic one): base plus the monotonic
// clock's progress since. Comparisons and durations with it, which use the
// monotonic reading, are exact; its wall-clock reading is base's plus that
// progress, blind to any step of the wall clock since.
func Now() time.Time { return base.Add(time.Since(base)) }

// Ctx is a context.Context that ends at its deadline, when its parent
// ends, or when Release is called, whichever comes first. Release it when
// the call it bounds returns, as one calls a CancelFunc.
type Ctx struct {
	parent     context.Context
	parentEnds bool // parent.Done() != nil
	deadline   time.Time
	state      atomic.Uint32 // live, released, expired or parentEnded; set once

	mu sync.Mutex
	w  *waker // armed by Done or AfterFunc; nil once ended

	// Under a parent that can end: a WithCancelCause of the parent, made
	// when c is waited on; its Done is c's.
	inner       context.Context
	cancelInner context.CancelCauseFunc

	// Under a parent that cannot end.
	done  chan struct{} // made by Done; closedChan if it ended before
	funcs []afterFunc   // registered by AfterFunc, not yet run or stopped
	buf   [2]afterFunc  // funcs' first array: SDKs register one or two
	next  uint64        // id of the next afterFunc
}

const (
	live uint32 = iota
	released
	expired
	parentEnded
)

type afterFunc struct {
	id uint64
	f  func()
}

// causes are what inner is cancelled with for each ending.
var causes = [...]error{released: context.Canceled, expired: context.DeadlineExceeded, parentEnded: nil}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

var _ context.Context = (*Ctx)(nil)

// New returns a Ctx that ends at deadline or when parent ends. A parent
// deadline earlier than deadline is kept.
func New(parent context.Context, deadline time.Time) *Ctx {
	if pd, ok := parent.Deadline(); ok && pd.Before(deadline) {
		deadline = pd
	}
	return &Ctx{parent: parent, parentEnds: parent.Done() != nil, deadline: deadline}
}

// Release ends c with context.Canceled, unless it has ended already, and
// frees its timer. A nil c does nothing, so that a caller that made no Ctx
// may still defer it.
func (c *Ctx) Release() {
	if c != nil {
		c.end(released, false)
	}
}

// Unwatched returns c's parent and deadline, and ok true, when the parent
// cannot end (its Done is nil): c then ends, before it is released, only
// at that deadline. A driver that can bound its own I/O by the deadline
// (a socket deadline) may run under the parent instead and never ask c for
// Done, which costs a channel, a timer and what the driver registers on it.
func (c *Ctx) Unwatched() (parent context.Context, deadline time.Time, ok bool) {
	return c.parent, c.deadline, !c.parentEnds
}

// Deadline implements context.Context.
func (c *Ctx) Deadline() (time.Time, bool) { return c.deadline, true }

// Err implements context.Context. A Ctx found past its deadline, or with
// its parent ended, ends then (closing Done and running what AfterFunc
// registered), without waiting for its timer.
func (c *Ctx) Err() error {
	switch c.state.Load() {
	case live:
	case released:
		return context.Canceled
	case expired:
		return context.DeadlineExceeded
	default:
		return c.parent.Err()
	}
	// Ending here may run in a caller that holds a lock a registered
	// function takes (a derived context's Err): those run in goroutines.
	if err := c.parent.Err(); err != nil {
		c.end(parentEnded, true)
		return c.Err() // the first ending wins: Release may have raced
	}
	if !time.Now().Before(c.deadline) {
		c.end(expired, true)
		return c.Err()
	}
	return nil
}

// Done implements context.Context. The channel is made on the first call.
func (c *Ctx) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.parentEnds {
		if c.inner == nil && c.state.Load() != live {
			return closedChan
		}
		return c.wait().Done()
	}
	if c.done == nil {
		if c.state.Load() != live {
			c.done = closedChan
		} else {
			c.done = make(chan struct{})
			c.arm()
		}
	}
	return c.done
}

// Value implements context.Context: the parent's values, but for the
// context package's own key for the cancelCtx that governs a context, which
// context.Cause reads the cause from and the context package uses to
// register derived contexts. For that key a Ctx answers with its
// WithCancelCause, if it has made one; else nil, so that Cause falls back
// to Err (as for a WithTimeout's deadline), unless the parent's ending came
// first.
func (c *Ctx) Value(key any) any {
	if key != cancelCtxKey {
		return c.parent.Value(key)
	}
	if c.parentEnds {
		// The context package asks after Done, which made inner: the
		// cancelCtx that governs c, whose children it keeps.
		c.mu.Lock()
		inner := c.inner
		c.mu.Unlock()
		if inner != nil {
			return inner.Value(key)
		}
	}
	if c.state.Load() == parentEnded {
		return c.parent.Value(key)
	}
	return nil
}

// wait makes inner and arms the timer, for a parent that can end, unless
// done already. c.mu is held and c is live or inner exists.
func (c *Ctx) wait() context.Context {
	if c.inner == nil {
		c.inner, c.cancelInner = context.WithCancelCause(c.parent)
		c.arm()
	}
	return c.inner
}

// AfterFunc arranges for f to be called once c ends; stop unregisters f,
// reporting whether it did so before f was started. It is what
// context.AfterFunc calls for a Ctx, and what the context package uses to
// propagate cancellation from a Ctx to the contexts derived from it, under
// a parent that cannot end (under one that can, the context package finds
// the Ctx's WithCancelCause instead, and AfterFunc registers f there).
// Both hand it short functions that do not block (context.AfterFunc's
// starts the user's function in a goroutine), so f is called by the
// goroutine that ends c, as a cancelCtx cancels its children, unless c has
// ended already: then f runs in a goroutine of its own, since the context
// package calls AfterFunc holding the derived context's lock, which f
// takes.
func (c *Ctx) AfterFunc(f func()) (stop func() bool) {
	c.mu.Lock()
	if c.parentEnds && (c.inner != nil || c.state.Load() == live) {
		inner := c.wait()
		c.mu.Unlock()
		return context.AfterFunc(inner, f)
	}
	if c.state.Load() != live {
		c.mu.Unlock()
		go f()
		return func() bool { return false }
	}
	id := c.next
	c.next++
	if c.funcs == nil {
		c.funcs = c.buf[:0]
	}
	c.funcs = append(c.funcs, afterFunc{id, f})
	c.arm()
	c.mu.Unlock()
	return func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for i, a := range c.funcs {
			if a.id == id {
				c.funcs = append(c.funcs[:i], c.funcs[i+1:]...)
				return true
			}
		}
		return false
	}
}

// arm starts the timer, once. c.mu is held and c is live.
func (c *Ctx) arm() {
	if c.w != nil {
		return
	}
	c.w = getWaker(c)
}

// end ends c in state s, if it is live: closes Done, frees the waker and
// runs the registered functions, in goroutines if async.
func (c *Ctx) end(s uint32, async bool) {
	if s != parentEnded && c.parentEnds && c.parent.Err() != nil {
		s = parentEnded // it came first: inner's Done may be closed already
	}
	if !c.state.CompareAndSwap(live, s) {
		return
	}
	c.mu.Lock()
	switch c.done {
	case nil:
		c.done = closedChan
	case closedChan:
	default:
		close(c.done)
	}
	funcs, w, cancelInner := c.funcs, c.w, c.cancelInner
	c.funcs, c.w = nil, nil
	c.mu.Unlock()
	if w != nil {
		w.release()
	}
	if cancelInner != nil {
		// inner's children are cancelled with it, as a cancelCtx's are;
		// a parent's ending has reached it already.
		cancelInner(causes[s])
	}
	for _, a := range funcs {
		if async {
			go a.f()
		} else {
			a.f()
		}
	}
}

// A waker ends the Ctx it is lent to at that Ctx's deadline. Wakers are
// pooled with their timer. The timer may still run for the Ctx served last
// after the waker has been lent to another, so it checks the deadline of
// the Ctx it finds. mu orders the timer's resets, so that a late run for
// the last Ctx cannot move the current one's deadline.
type waker struct {
	mu    sync.Mutex
	timer *time.Timer
	cur   *Ctx
}

var wakers sync.Pool

func getWaker(c *Ctx) *waker {
	w, _ := wakers.Get().(*waker)
	if w == nil {
		w = &waker{}
		w.timer = time.AfterFunc(time.Hour, w.fire)
		w.timer.Stop()
	}
	w.mu.Lock()
	w.cur = c
	w.timer.Reset(time.Until(c.deadline))
	w.mu.Unlock()
	return w
}

func (w *waker) fire() {
	w.mu.Lock()
	c := w.cur
	if c == nil {
		w.mu.Unlock()
		return
	}
	if d := time.Until(c.deadline); d > 0 {
		// A late run for the Ctx served before: not c's deadline yet.
		w.timer.Reset(d)
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	c.end(expired, false)
}

// release stops w and returns it to the pool. The Ctx it served has ended.
func (w *waker) release() {
	w.mu.Lock()
	w.timer.Stop()
	w.cur = nil
	w.mu.Unlock()
	wakers.Put(w)
}

// cancelCtxKey is the context package's unexported key for the cancelCtx
// governing a context, which context.Cause looks up with Value. It is
// learnt by asking Cause about a context that records the key it is asked
// for.
var cancelCtxKey = func() any {
	var spy keySpy
	_ = context.Cause(&spy)
	return spy.key
}()

type keySpy struct {
	context.Context
	key any
}

func (s *keySpy) Value(key any) any {
	if s.key == nil {
		s.key = key
	}
	return nil
}

// Err and Done: an ended context, which Cause looks into.
func (s *keySpy) Err() error { return context.Canceled }

func (s *keySpy) Done() <-chan struct{} { return closedChan }
