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
// For a *Ctx, Do waits without making its Done channel, which arms a timer
// per call for a deadline almost no call reaches. It waits on the parent's
// Done instead (nil under context.Background; an existing channel under
// autocert's contexts) and on a tick shared by every Do that waits,
// coarseTick apart; within a tick of the deadline it waits on Done, so
// that the call still ends at its deadline, not up to a tick after.
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
	parentDone := c.parent.Done()
	left := time.Until(c.deadline) // one clock read, for Err's check and the wait
	if left <= 0 || c.state.Load() != live || c.parent.Err() != nil {
		return zero, c.Err()
	}
	ch := start(f)
	if left > coarseTick {
		tick := coarse.enter()
		defer coarse.leave()
		for {
			select {
			case r := <-ch:
				return r.v, r.err
			case <-parentDone:
				return zero, c.Err()
			case <-tick:
			}
			if time.Until(c.deadline) <= coarseTick {
				break
			}
			tick = coarse.current()
		}
	}
	select {
	case r := <-ch:
		return r.v, r.err
	case <-c.Done():
		return zero, c.Err()
	}
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
