package callctx

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Do calls f in a goroutine and returns what it returns, or ctx's error
// once ctx ends, whichever comes first: for work that cannot be
// interrupted (a file system call), so that the call returns at its
// deadline even if the work never does. An ended ctx is reported without
// calling f. Work abandoned that way runs on, and its result is dropped.
//
// For a *Ctx, Do waits as DoWithin does, without making its Done channel,
// which arms a timer per call for a deadline almost no call reaches.
func Do[T any](ctx context.Context, f func() (T, error)) (T, error) {
	var zero T
	c, ok := ctx.(*Ctx)
	if !ok {
		if err := ctx.Err(); err != nil {
			return zero, err
		}
		ch := start(f)
		select {
		case r := <-ch:
			return r.v, r.err
		case <-ctx.Done():
			return zero, ctx.Err()
		}
	}
	if c.state.Load() != live {
		return zero, c.Err()
	}
	if r, ok := until(c.parent, c.deadline, time.Until(c.deadline), f); ok {
		return r.v, r.err
	}
	return zero, c.Err()
}

// DoWithin is Do for a call bounded by timeout and parent, without a
// context made for it: it returns parent's error once parent ends, and
// context.DeadlineExceeded, as it is, once timeout has passed. It reads
// the clock once (Now).
func DoWithin[T any](parent context.Context, timeout time.Duration, f func() (T, error)) (T, error) {
	if r, ok := until(parent, Now().Add(timeout), timeout, f); ok {
		return r.v, r.err
	}
	var zero T
	if err := parent.Err(); err != nil {
		return zero, err
	}
	return zero, context.DeadlineExceeded
}

// until runs f as Do does, and reports false, without f's result, if
// parent ended or deadline, left from now, passed first. It waits on
// parent's Done (nil under context.Background; an existing channel under
// autocert's contexts) and on a tick shared by every call that waits,
// coarseTick apart; within a tick of the deadline it waits on a timer of
// its own, so that the call still ends at its deadline, not up to a tick
// after.
func until[T any](parent context.Context, deadline time.Time, left time.Duration, f func() (T, error)) (result[T], bool) {
	parentDone := parent.Done()
	if left <= 0 || parent.Err() != nil {
		return result[T]{}, false
	}
	ch := start(f)
	if left > coarseTick {
		tick := coarse.enter()
		defer coarse.leave()
		for {
			select {
			case r := <-ch:
				return r, true
			case <-parentDone:
				return result[T]{}, false
			case <-tick:
			}
			if left = time.Until(deadline); left <= coarseTick {
				break
			}
			tick = coarse.current()
		}
	}
	t := time.NewTimer(left)
	defer t.Stop()
	select {
	case r := <-ch:
		return r, true
	case <-parentDone:
	case <-t.C:
	}
	return result[T]{}, false
}

type result[T any] struct {
	v   T
	err error
}

// start runs f in a goroutine that delivers its result on the channel it
// returns, which it never blocks on.
func start[T any](f func() (T, error)) <-chan result[T] {
	ch := make(chan result[T], 1)
	go func() {
		v, err := f()
		ch <- result[T]{v, err}
	}()
	return ch
}

// coarseTick is how often the shared tick wakes the Dos that wait: each
// then compares the clock with its deadline.
const coarseTick = 100 * time.Millisecond

// coarse is the shared tick: its channel is closed every coarseTick while
// some Do waits on it, and replaced. The timer is armed at most once a
// tick however many calls wait, and stops at a tick that finds none. A
// waiter costs two atomic additions and a load while the tick runs.
var coarse ticker

type ticker struct {
	waiting atomic.Int64
	tick    atomic.Pointer[chan struct{}] // nil while the timer is stopped

	mu    sync.Mutex // orders starting the timer against its firing
	timer *time.Timer
}

// enter counts a Do as waiting and returns the current tick.
func (t *ticker) enter() <-chan struct{} {
	t.waiting.Add(1)
	return t.current()
}

func (t *ticker) leave() { t.waiting.Add(-1) }

// current returns the tick, starting the timer if it is stopped. A tick
// that is closed after it is returned only wakes its waiter early.
func (t *ticker) current() <-chan struct{} {
	if p := t.tick.Load(); p != nil {
		return *p
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.tick.Load(); p != nil {
		return *p
	}
	ch := make(chan struct{})
	t.tick.Store(&ch)
	if t.timer == nil {
		t.timer = time.AfterFunc(coarseTick, t.fire)
	} else {
		t.timer.Reset(coarseTick)
	}
	return ch
}

// fire closes the tick and, if a Do waits, starts the next one.
func (t *ticker) fire() {
	t.mu.Lock()
	p := t.tick.Swap(nil)
	close(*p)
	restart := t.waiting.Load() > 0
	t.mu.Unlock()
	if restart {
		t.current()
	}
}
