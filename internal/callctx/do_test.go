package callctx

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestDo: Do returns what f returns, or the context's error when the
// context ends first: at its deadline (never before, whether the deadline
// is within the shared tick or ticks away), or when its parent ends
// (without waiting for a tick or the deadline); for a context that has
// ended already, without calling f; on a *Ctx and on any other context
// alike, and for DoWithin, which takes the parent and a timeout. Once no
// Do waits, the shared tick stops.
func TestDo(t *testing.T) {
	for _, tc := range []struct {
		name     string
		plain    bool          // a context.WithDeadline, not a *Ctx
		within   bool          // DoWithin(parent, timeout), no context made
		timeout  time.Duration // from now
		answers  bool          // f returns at once; else it never does
		cancel   bool          // the parent is cancelled while Do waits
		ended    bool          // the parent is cancelled before Do
		want     error
		deadline bool // Do returns at or after the deadline
	}{
		{name: "Answers", timeout: time.Hour, answers: true},
		{name: "AnswersPlain", plain: true, timeout: time.Hour, answers: true},
		{name: "DeadlineWithinATick", timeout: coarseTick / 2, want: context.DeadlineExceeded, deadline: true},
		{name: "DeadlineTicksAway", timeout: 2*coarseTick + coarseTick/2, want: context.DeadlineExceeded, deadline: true},
		{name: "DeadlinePlain", plain: true, timeout: coarseTick / 2, want: context.DeadlineExceeded, deadline: true},
		{name: "DeadlinePassed", timeout: -time.Second, answers: true, want: context.DeadlineExceeded, deadline: true},
		{name: "ParentCancelled", timeout: time.Hour, cancel: true, want: context.Canceled},
		{name: "ParentCancelledPlain", plain: true, timeout: time.Hour, cancel: true, want: context.Canceled},
		{name: "ParentEnded", timeout: time.Hour, answers: true, ended: true, want: context.Canceled},
		{name: "ParentEndedPlain", plain: true, timeout: time.Hour, answers: true, ended: true, want: context.Canceled},
		{name: "AnswersWithin", within: true, timeout: time.Hour, answers: true},
		{name: "DeadlineWithinATickWithin", within: true, timeout: coarseTick / 2, want: context.DeadlineExceeded, deadline: true},
		{name: "DeadlineTicksAwayWithin", within: true, timeout: 2*coarseTick + coarseTick/2, want: context.DeadlineExceeded, deadline: true},
		{name: "DeadlinePassedWithin", within: true, timeout: -time.Second, answers: true, want: context.DeadlineExceeded, deadline: true},
		{name: "ParentCancelledWithin", within: true, timeout: time.Hour, cancel: true, want: context.Canceled},
		{name: "ParentEndedWithin", within: true, timeout: time.Hour, answers: true, ended: true, want: context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			parent, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tc.ended {
				cancel()
			}
			deadline := time.Now().Add(tc.timeout)
			var ctx context.Context
			if tc.plain {
				var stop context.CancelFunc
				ctx, stop = context.WithDeadline(parent, deadline)
				defer stop()
			} else {
				c := New(parent, deadline)
				defer c.Release()
				ctx = c
			}
			hang := make(chan struct{})
			defer close(hang)
			var called atomic.Bool
			f := func() (int, error) {
				called.Store(true)
				if !tc.answers {
					<-hang
				}
				return 7, nil
			}
			if tc.cancel {
				time.AfterFunc(10*time.Millisecond, cancel)
			}
			var v int
			var err error
			if tc.within {
				v, err = DoWithin(parent, tc.timeout, f)
			} else {
				v, err = Do(ctx, f)
			}
			returned := time.Now()
			if !errors.Is(err, tc.want) || tc.want == nil && v != 7 {
				t.Errorf("Do = %d, %v; want %v", v, err, tc.want)
			}
			if tc.deadline && returned.Before(deadline) {
				t.Errorf("Do returned %v before the deadline", deadline.Sub(returned))
			}
			if (tc.ended || tc.timeout < 0) && called.Load() {
				t.Error("Do called f on an ended context")
			}
		})
	}
	if n := coarse.waiting.Load(); n != 0 {
		t.Errorf("%d Dos counted as waiting after all returned", n)
	}
	time.Sleep(2 * coarseTick)
	if coarse.tick.Load() != nil {
		t.Error("the shared tick still runs with no Do waiting")
	}
}

// TestDoConcurrent: many Dos on Ctxs with different deadlines, some
// answered and some not, share the tick (run with -race).
func TestDoConcurrent(t *testing.T) {
	const n = 64
	hang := make(chan struct{})
	defer close(hang)
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := New(context.Background(), time.Now().Add(time.Duration(i%4+1)*coarseTick))
			defer c.Release()
			answers := i%2 == 0
			_, err := Do(c, func() (struct{}, error) {
				if !answers {
					<-hang
				}
				return struct{}{}, nil
			})
			if answers && err != nil || !answers && !errors.Is(err, context.DeadlineExceeded) {
				errs[i] = err
			}
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Do %d: %v", i, err)
		}
	}
}
