package certcache

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"
)

func TestPollInterval(t *testing.T) {
	ms := time.Millisecond
	for _, tc := range []struct {
		name string
		rt   time.Duration // the caller's read between two Waits
		want []time.Duration
	}{
		{"loopback", 100 * time.Microsecond, []time.Duration{25 * ms, 50 * ms, 100 * ms, 200 * ms, 250 * ms, 250 * ms}},
		{"20 ms away", 20 * ms, []time.Duration{40 * ms, 80 * ms, 160 * ms, 250 * ms, 250 * ms}},
		{"50 ms away", 50 * ms, []time.Duration{100 * ms, 200 * ms, 400 * ms, 500 * ms, 500 * ms}},
		{"a read that timed out", 10 * time.Second, []time.Duration{time.Second, time.Second}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := &keyWatch{wait: pollFloor, lastRT: tc.rt}
			for i, want := range tc.want {
				if got := w.pollInterval(); got != want {
					t.Errorf("interval %d = %v, want %v", i, got, want)
				}
			}
		})
	}
}

// deadPush is a mem store whose push never comes up: each Watch fails at
// once, as a store whose subscription keeps breaking.
type deadPush struct {
	*memStore
	tries       atomic.Int64
	unsupported bool
}

func (d *deadPush) Watch(context.Context, func(), func(string)) error {
	d.tries.Add(1)
	if d.unsupported {
		return ErrUnsupported
	}
	return errors.New("subscription refused")
}

// A waiter whose store's push is dead polls, and finds a value another
// Cache stored within a poll; a driver that cannot push is asked once.
func TestWatchFallsBackToPolling(t *testing.T) {
	for _, unsupported := range []bool{false, true} {
		store := newMemStore()
		d := &deadPush{memStore: store, unsupported: unsupported}
		waiter := NewCache("dead", d, nil)
		writer := NewCache("mem", store, nil)
		w := watchKey(waiter, "k")
		done := make(chan time.Duration, 1)
		go func() {
			start := time.Now()
			for {
				if _, err := waiter.Get(context.Background(), "k"); err == nil {
					done <- time.Since(start)
					return
				}
				w.Wait(context.Background())
			}
		}()
		time.Sleep(1500 * time.Millisecond) // the poll interval grows to its cap
		landed := time.Now()
		if err := writer.Put(context.Background(), "k", []byte("v")); err != nil {
			t.Fatal(err)
		}
		<-done
		if after := time.Since(landed); after > pollCap+500*time.Millisecond {
			t.Errorf("unsupported=%v: the waiter found the value %v after it landed, want within a poll (%v)", unsupported, after, pollCap)
		}
		if w.Pushing() {
			t.Errorf("unsupported=%v: a dead push reported up", unsupported)
		}
		w.Stop()
		waiter.Close()
		writer.Close()
		if n := d.tries.Load(); unsupported && n != 1 {
			t.Errorf("Watch of a store that cannot push was called %d times, want 1", n)
		} else if !unsupported && n < 2 {
			t.Errorf("Watch of a failing push was called %d times, want it tried again", n)
		}
	}
}

// silentPush is a mem store whose push comes up and never delivers: every
// notification is lost.
type silentPush struct{ *memStore }

func (silentPush) Watch(ctx context.Context, ready func(), _ func(string)) error {
	ready()
	<-ctx.Done()
	return ctx.Err()
}

// A waiter whose push is up but lost the notification still reads again
// within the safety poll.
func TestWatchLostNotification(t *testing.T) {
	store := newMemStore()
	waiter := NewCache("silent", silentPush{store}, nil)
	defer waiter.Close()
	writer := NewCache("mem", store, nil)
	defer writer.Close()
	w := watchKey(waiter, "k")
	defer w.Stop()
	for deadline := time.Now().Add(5 * time.Second); !w.Pushing(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the push did not come up")
		}
	}
	w.Wait(context.Background()) // the push coming up wakes the waiter once
	landed := make(chan time.Time, 1)
	go func() {
		time.Sleep(100 * time.Millisecond)
		writer.Put(context.Background(), "k", []byte("v"))
		landed <- time.Now()
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for {
		if _, err := waiter.Get(ctx, "k"); err == nil {
			break
		}
		if err := w.Wait(ctx); err != nil {
			t.Fatalf("the waiter never read the value again: %v", err)
		}
	}
	if after := time.Since(<-landed); after > safetyPoll+500*time.Millisecond {
		t.Errorf("the waiter found the value %v after it landed, want within the safety poll (%v)", after, safetyPoll)
	}
}
