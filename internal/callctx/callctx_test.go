package callctx

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait fails t unless ch closes within a second.
func wait(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(time.Second):
		t.Fatalf("%s: not done after 1s", what)
	}
}

func open(t *testing.T, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
		t.Fatalf("%s: done too early", what)
	default:
	}
}

// Each way a Ctx ends, seen through every way of looking at it: Err,
// Done, context.Cause, a context.AfterFunc, and a context derived with
// context.WithCancel (which registers through the AfterFunc method).
func TestEndings(t *testing.T) {
	parentCause := errors.New("parent's cause")
	for _, tc := range []struct {
		name      string
		timeout   time.Duration
		end       func(c *Ctx, cancelParent context.CancelCauseFunc)
		err       error
		cause     error
		lookFirst bool // call Done and register before the ending
	}{
		{"released", time.Hour, func(c *Ctx, _ context.CancelCauseFunc) { c.Release() }, context.Canceled, context.Canceled, true},
		{"released, seen after", time.Hour, func(c *Ctx, _ context.CancelCauseFunc) { c.Release() }, context.Canceled, context.Canceled, false},
		{"deadline", 20 * time.Millisecond, func(*Ctx, context.CancelCauseFunc) {}, context.DeadlineExceeded, context.DeadlineExceeded, true},
		{"deadline, seen after", 20 * time.Millisecond, func(*Ctx, context.CancelCauseFunc) { time.Sleep(30 * time.Millisecond) }, context.DeadlineExceeded, context.DeadlineExceeded, false},
		{"parent canceled", time.Hour, func(_ *Ctx, cancel context.CancelCauseFunc) { cancel(parentCause) }, context.Canceled, parentCause, true},
		{"parent canceled, seen after", time.Hour, func(_ *Ctx, cancel context.CancelCauseFunc) { cancel(parentCause) }, context.Canceled, parentCause, false},
	} {
		// Under a parent that can end (the Ctx is a WithCancelCause of it
		// once waited on), and one that cannot (its own channel and
		// AfterFunc).
		for _, endless := range []bool{false, true} {
			if endless && tc.cause == parentCause {
				continue
			}
			name := tc.name
			if endless {
				name += ", parent cannot end"
			}
			t.Run(name, func(t *testing.T) { testEnding(t, tc.timeout, tc.end, tc.err, tc.cause, tc.lookFirst, endless) })
		}
	}
}

// testEnding checks one ending of a Ctx under a parent that can end or
// one that cannot (endless).
func testEnding(t *testing.T, timeout time.Duration, end func(*Ctx, context.CancelCauseFunc), wantErr, wantCause error, lookFirst, endless bool) {
	parent, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	if endless {
		parent = context.WithoutCancel(parent)
	}
	c := New(parent, time.Now().Add(timeout))
	defer c.Release()
	var ran atomic.Bool
	ranCh := make(chan struct{})
	var child context.Context
	var done <-chan struct{}
	if lookFirst {
		done = c.Done()
		context.AfterFunc(c, func() { ran.Store(true); close(ranCh) })
		var cc context.CancelFunc
		child, cc = context.WithCancel(c)
		defer cc()
		open(t, done, "Done")
		if c.Err() != nil || child.Err() != nil || context.Cause(c) != nil {
			t.Fatalf("before the ending: Err %v, child %v, Cause %v", c.Err(), child.Err(), context.Cause(c))
		}
	}
	end(c, cancel)
	if !lookFirst {
		if err := c.Err(); !errors.Is(err, wantErr) {
			t.Fatalf("Err = %v, want %v", err, wantErr)
		}
		done = c.Done()
		context.AfterFunc(c, func() { ran.Store(true); close(ranCh) })
		var cc context.CancelFunc
		child, cc = context.WithCancel(c)
		defer cc()
	}
	wait(t, done, "Done")
	wait(t, ranCh, "AfterFunc")
	wait(t, child.Done(), "derived context")
	if err := c.Err(); err != wantErr { //nolint:errorlint // the context package's bare errors
		t.Errorf("Err = %v, want %v", err, wantErr)
	}
	if got := context.Cause(c); got != wantCause { //nolint:errorlint
		t.Errorf("Cause = %v, want %v", got, wantCause)
	}
	if got := context.Cause(child); got != wantCause { //nolint:errorlint
		t.Errorf("derived context's Cause = %v, want %v", got, wantCause)
	}
	// A later ending changes nothing.
	c.Release()
	cancel(errors.New("later"))
	if err := c.Err(); err != wantErr { //nolint:errorlint
		t.Errorf("Err after a second ending = %v, want %v", err, wantErr)
	}
}

func TestDeadline(t *testing.T) {
	d := time.Now().Add(time.Minute)
	if got, ok := New(context.Background(), d).Deadline(); !ok || !got.Equal(d) {
		t.Errorf("Deadline = %v, %v; want %v, true", got, ok, d)
	}
	// An earlier deadline of the parent is kept.
	pd := time.Now().Add(30 * time.Millisecond)
	parent, cancel := context.WithDeadline(context.Background(), pd)
	defer cancel()
	c := New(parent, d)
	defer c.Release()
	if got, _ := c.Deadline(); !got.Equal(pd) {
		t.Errorf("Deadline under an earlier parent deadline = %v, want %v", got, pd)
	}
	wait(t, c.Done(), "Done at the parent's deadline")
	if err := c.Err(); err != context.DeadlineExceeded { //nolint:errorlint
		t.Errorf("Err = %v, want DeadlineExceeded", err)
	}
}

type key struct{}

func TestValue(t *testing.T) {
	parent := context.WithValue(context.Background(), key{}, "v")
	c := New(parent, time.Now().Add(time.Hour))
	defer c.Release()
	if got := c.Value(key{}); got != "v" {
		t.Errorf("Value = %v, want the parent's v", got)
	}
	if got := c.Value("other"); got != nil {
		t.Errorf("Value of an unknown key = %v, want nil", got)
	}
	child := context.WithValue(c, "k2", 2)
	if child.Value(key{}) != "v" || child.Value("k2") != 2 {
		t.Errorf("derived values: %v, %v", child.Value(key{}), child.Value("k2"))
	}
}

// Stopping a registered function before the ending keeps it from running;
// stopping it after reports false.
func TestAfterFuncStop(t *testing.T) {
	c := New(context.Background(), time.Now().Add(time.Hour))
	var ran atomic.Int32
	stop1 := context.AfterFunc(c, func() { ran.Add(1) })
	ran2 := make(chan struct{})
	stop2 := context.AfterFunc(c, func() { ran.Add(10); close(ran2) })
	stop3 := context.AfterFunc(c, func() { ran.Add(100) }) // beyond the first array
	if !stop1() || !stop3() {
		t.Fatal("stop before the ending = false")
	}
	c.Release()
	wait(t, ran2, "second function")
	if stop2() {
		t.Error("stop after the function ran = true")
	}
	time.Sleep(10 * time.Millisecond)
	if got := ran.Load(); got != 10 {
		t.Errorf("ran = %d, want only the second function (10)", got)
	}
}

// A Ctx nobody waits on arms nothing: no timer, no watch of the parent.
// One that is waited on and released returns its timer, which a later Ctx
// reuses without its old deadline or parent reaching the new one.
func TestWakerReuse(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := New(parent, time.Now().Add(time.Hour))
	if c.Err() != nil {
		t.Fatal(c.Err())
	}
	c.mu.Lock()
	armed := c.w != nil
	c.mu.Unlock()
	if armed {
		t.Fatal("armed without Done or AfterFunc")
	}
	c.Release()

	for i := range 200 {
		short := New(parent, time.Now().Add(time.Millisecond))
		d := short.Done()
		wait(t, d, "short deadline")
		long := New(context.Background(), time.Now().Add(time.Hour))
		ld := long.Done()
		if i%2 == 0 {
			time.Sleep(2 * time.Millisecond) // any late run of a reused timer has had its chance
		}
		open(t, ld, "a reused timer's new Ctx")
		long.Release()
	}
	// A parent ending after its Ctx was released reaches no later Ctx.
	for range 50 {
		p2, cancel2 := context.WithCancel(context.Background())
		a := New(p2, time.Now().Add(time.Hour))
		_ = a.Done()
		a.Release()
		b := New(context.Background(), time.Now().Add(time.Hour))
		bd := b.Done()
		cancel2()
		time.Sleep(time.Millisecond)
		open(t, bd, "a Ctx after a released one's parent ended")
		b.Release()
	}
	cancel()
}

// Many goroutines looking at one Ctx while it ends, for the race detector.
func TestConcurrentEnd(t *testing.T) {
	for range 100 {
		parent, cancel := context.WithCancel(context.Background())
		c := New(parent, time.Now().Add(time.Duration(1+time.Now().UnixNano()%3)*time.Millisecond))
		var wg sync.WaitGroup
		for i := range 8 {
			wg.Go(func() {
				switch i % 4 {
				case 0:
					<-c.Done()
				case 1:
					stop := context.AfterFunc(c, func() {})
					if i%8 == 1 {
						stop()
					}
				case 2:
					child, cc := context.WithCancel(c)
					<-child.Done()
					cc()
				case 3:
					for c.Err() == nil {
						time.Sleep(100 * time.Microsecond)
					}
				}
			})
		}
		switch time.Now().UnixNano() % 3 {
		case 0:
			c.Release()
		case 1:
			cancel()
		}
		wg.Wait()
		if c.Err() == nil {
			t.Fatal("Err nil after Done")
		}
		c.Release()
		cancel()
	}
}

// The cost: what a call that makes a Ctx pays. Nobody waiting: the Ctx
// alone. Waited on (Done, as go-redis's pool and database/sql look): its
// channel too; the timer comes from the pool.
func TestAllocs(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates on its own account")
	}
	bg := context.Background()
	for _, tc := range []struct {
		name string
		max  float64
		f    func()
	}{
		{"Err only", 1, func() {
			c := New(bg, time.Now().Add(time.Minute))
			_ = c.Err()
			c.Release()
		}},
		{"Done", 2, func() {
			c := New(bg, time.Now().Add(time.Minute))
			<-closedIfErr(c)
			c.Release()
		}},
	} {
		if got := testing.AllocsPerRun(1000, tc.f); got > tc.max {
			t.Errorf("%s: %v allocations, want at most %v", tc.name, got, tc.max)
		}
	}
}

func closedIfErr(c *Ctx) <-chan struct{} {
	select {
	case <-c.Done():
	default:
	}
	return closedChan
}

// BenchmarkCallCtx compares a Ctx with context.WithTimeout under a parent
// that cannot end (a benchmark's) and one with a deadline (autocert's),
// for an SDK that only looks at Done (go-redis's pool) and for one that
// also watches it (pgx: context.AfterFunc; net/http: a derived
// context.WithCancelCause).
func BenchmarkCallCtx(b *testing.B) {
	parent, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	look := func(c context.Context) {
		select {
		case <-c.Done():
		default:
		}
	}
	watch := func(c context.Context) {
		stop := context.AfterFunc(c, func() {})
		child, cc := context.WithCancelCause(c)
		look(child)
		cc(nil)
		stop()
	}
	for _, p := range []struct {
		name string
		ctx  context.Context
	}{{"background", context.Background()}, {"deadline-parent", parent}} {
		for _, sdk := range []struct {
			name string
			f    func(context.Context)
		}{{"look", look}, {"watch", watch}} {
			b.Run(p.name+"/"+sdk.name+"/WithTimeout", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c, cancel := context.WithTimeout(p.ctx, time.Minute)
					sdk.f(c)
					cancel()
				}
			})
			b.Run(p.name+"/"+sdk.name+"/callctx", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					c := New(p.ctx, time.Now().Add(time.Minute))
					sdk.f(c)
					c.Release()
				}
			})
		}
	}
}

// The context package's key for a governing cancelCtx is learnt, so that
// under a parent that can end, contexts derived from a Ctx join the
// children of its cancelCtx (no goroutine, no AfterFunc registration), and
// under one that cannot, the Ctx answers for itself.
func TestCancelCtxKey(t *testing.T) {
	if cancelCtxKey == nil {
		t.Fatal("the context package's cancelCtx key was not learnt")
	}
	parent, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := New(parent, time.Now().Add(time.Hour))
	defer c.Release()
	d := c.Done()
	gov, ok := c.Value(cancelCtxKey).(context.Context)
	if !ok || gov.Done() != d {
		t.Errorf("under a parent that can end: Value(cancelCtxKey) = %v, want the cancelCtx whose Done is the Ctx's", gov)
	}
	e := New(context.Background(), time.Now().Add(time.Hour))
	defer e.Release()
	_ = e.Done()
	if v := e.Value(cancelCtxKey); v != nil {
		t.Errorf("under a parent that cannot end: Value(cancelCtxKey) = %v, want nil", v)
	}
}

// Unwatched reports the parent and deadline only when the parent cannot
// end, and without making Done's channel.
func TestUnwatched(t *testing.T) {
	canceled, cancel := context.WithCancel(context.Background())
	defer cancel()
	soon := time.Now().Add(time.Minute)
	for _, tc := range []struct {
		name   string
		parent context.Context
		ok     bool
	}{
		{"background", context.Background(), true},
		{"without cancel", context.WithoutCancel(canceled), true},
		{"can end", canceled, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := New(tc.parent, soon)
			defer c.Release()
			parent, deadline, ok := c.Unwatched()
			if ok != tc.ok || parent != tc.parent || !deadline.Equal(soon) {
				t.Errorf("Unwatched() = %v, %v, %v; want %v, %v, %v", parent, deadline, ok, tc.parent, soon, tc.ok)
			}
			if c.done != nil || c.inner != nil {
				t.Error("Unwatched made Done's channel")
			}
		})
	}
}
