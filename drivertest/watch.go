package drivertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
)

// The watch cases check certcache.WatchKey: on a backend whose harness says
// it pushes (Harness.Pushes), a change made through another Cache on the
// same store wakes a waiter long before it would have polled, and a waiter
// whose push went down with the store still ends within a poll of the value
// landing; on the other backends, a waiter polls until the value lands.

// pushedWithin bounds the wake-up of a pushed change: far below the safety
// poll (2 s) of a watch whose push is up, so only a push passes.
const pushedWithin = time.Second

// waitPushing waits until w's push is up, and fails the test if it does
// not come up.
func waitPushing(t testing.TB, w hook.KeyWatch, within time.Duration) {
	t.Helper()
	for deadline := time.Now().Add(within); !w.Pushing(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the store's push did not come up within %v", within)
		}
	}
}

// awaitValue reads key from c until it holds want, waiting on w between
// reads, and returns how long that took, or an error after limit.
func awaitValue(ctx context.Context, c certcache.Cache, w hook.KeyWatch, key string, want []byte, limit time.Duration) (time.Duration, error) {
	start := time.Now()
	wctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		v, err := c.Get(wctx, key)
		if err == nil && string(v) == string(want) {
			return time.Since(start), nil
		}
		if err := w.Wait(wctx); err != nil {
			return 0, fmt.Errorf("%q did not land within %v: %w", key, limit, err)
		}
	}
}

func (s *suite) testWatchChange(t *testing.T) {
	ns := s.ns()
	waiterCache, writer := s.open(t, ns), s.open(t, ns)
	const key = "watched.example.com"
	w := hook.WatchKey(waiterCache, key)
	defer w.Stop()
	if !s.h.Pushes {
		// Polling: a wait ends within a poll, and the value is found.
		go func() { time.Sleep(100 * time.Millisecond); writer.Put(context.Background(), key, PEMLike(200)) }()
		took, err := awaitValue(ctx(t), waiterCache, w, key, PEMLike(200), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("polled: found %v after the Put was started (the push is not claimed by the harness)", took)
		return
	}
	mustPut(t, writer, "warm-up.example.com", PEMLike(10)) // a lazily created table, a first connection
	waitPushing(t, w, 15*time.Second)
	for i, change := range []func() error{
		func() error { return writer.Put(ctx(t), key, PEMLike(300)) },
		func() error { return writer.Put(ctx(t), key, PEMLike(301)) }, // an overwrite
		func() error { return writer.Delete(ctx(t), key) },
	} {
		w.Stop()
		w = hook.WatchKey(waiterCache, key) // armed now that the push is up
		woke := make(chan time.Time, 1)
		go func() {
			if w.Wait(ctx(t)) == nil {
				woke <- time.Now()
			}
		}()
		start := time.Now()
		if err := change(); err != nil {
			t.Fatalf("change %d: %v", i, err)
		}
		select {
		case at := <-woke:
			t.Logf("change %d woke the waiter %v after the call began", i, at.Sub(start))
		case <-time.After(pushedWithin):
			t.Fatalf("change %d through another Cache did not wake the waiter within %v", i, pushedWithin)
		}
	}
	// Another key's change wakes no waiter of this one... but may (a
	// store that cannot tell keys apart wakes all): nothing to check.
}

func (s *suite) testWatchFallback(t *testing.T) {
	if s.h.Outage == nil || !s.h.Pushes {
		return // testOutage reports a missing Outage; without a push, testWatchChange polls
	}
	coordinated, stop, start := s.h.Outage(t)
	defer coordinated.Close()
	c := certcache.Uncoordinated(coordinated)
	key := "fallback-" + s.ns() + ".example.com"
	w := hook.WatchKey(c, key)
	defer w.Stop()
	waitPushing(t, w, 15*time.Second)
	stop()
	// The push goes down with the store; a waiter then polls.
	for deadline := time.Now().Add(s.timeout() + 10*time.Second); w.Pushing(); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the push still looks up %v after the store stopped", s.timeout()+10*time.Second)
		}
	}
	// A waiter waits through the outage, reading in vain; the value is
	// Put as soon as the store is back, when the push may not be: its
	// notification may be lost. The wait still ends within a poll.
	landed := make(chan time.Time, 1)
	type ended struct {
		at  time.Time
		err error
	}
	done := make(chan ended, 1)
	wctx, cancel := context.WithCancel(context.Background())
	var waiting sync.WaitGroup
	defer waiting.Wait() // before w.Stop
	defer cancel()
	waiting.Go(func() {
		_, err := awaitValue(wctx, c, w, key, PEMLike(400), 2*time.Minute)
		done <- ended{time.Now(), err}
	})
	start()
	var err error
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if err = c.Put(ctx(t), key, PEMLike(400)); err == nil {
			landed <- time.Now()
			break
		}
	}
	if err != nil {
		t.Fatalf("Put after the restart: %v", err)
	}
	// The longest poll interval, a read that may wait for a reconnection,
	// and slack for a loaded machine.
	bound := 2*time.Second + s.timeout()
	select {
	case e := <-done:
		if e.err != nil {
			t.Fatal(e.err)
		}
		t.Logf("after the restart the wait ended %v after the Put landed (pushing now: %v)", e.at.Sub(<-landed), w.Pushing())
	case <-time.After(bound):
		t.Fatalf("the wait did not end within %v of the Put after the restart", bound)
	}
}
