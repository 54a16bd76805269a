package certcache_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/certcache/certcache"
)

// TestFileHungReadEndsAtDeadline: a file system call that does not return
// (here the open of a FIFO that no one writes to, as on a hung network
// file system) does not hold a Get past its deadline, the caller's or the
// cache's own get_timeout, whether that is within the shared tick of
// callctx.Await or ticks away, and returns when its caller gives up.
func TestFileHungReadEndsAtDeadline(t *testing.T) {
	for _, tc := range []struct {
		name        string
		getTimeout  string
		callerAfter time.Duration // the caller's own deadline, if any
		cancelAfter time.Duration // when the caller gives up, if it does
		want        error
	}{
		{"GetTimeout", "50ms", 0, 0, certcache.ErrUnavailable},
		{"GetTimeoutTicksAway", "350ms", 0, 0, certcache.ErrUnavailable},
		{"CallersDeadline", "1h", 250 * time.Millisecond, 0, context.DeadlineExceeded},
		{"CallerGivesUp", "1h", 0, 50 * time.Millisecond, context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			fifo := filepath.Join(dir, "example.com")
			if err := syscall.Mkfifo(fifo, 0o600); err != nil {
				t.Skipf("no FIFO here: %v", err)
			}
			// The goroutine left in the open returns when a writer comes.
			defer func() {
				if w, err := os.OpenFile(fifo, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
					w.Close()
				}
			}()
			c, err := certcache.Open(context.Background(), "file://"+dir+"?get_timeout="+tc.getTimeout+"&breaker=false")
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ctx := context.Background()
			if tc.callerAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithTimeout(ctx, tc.callerAfter)
				defer cancel()
			}
			if tc.cancelAfter > 0 {
				var cancel context.CancelFunc
				ctx, cancel = context.WithCancel(ctx)
				defer cancel()
				time.AfterFunc(tc.cancelAfter, cancel)
			}
			start := time.Now()
			got := make(chan error, 1)
			go func() {
				_, err := certcache.Uncoordinated(c).Get(ctx, "example.com")
				got <- err
			}()
			select {
			case err := <-got:
				if !errors.Is(err, tc.want) {
					t.Errorf("Get of a hung file = %v, want %v", err, tc.want)
				}
				t.Logf("returned after %v: %v", time.Since(start).Round(time.Millisecond), err)
			case <-time.After(time.Minute):
				t.Fatal("Get of a hung file outlived its deadline")
			}
		})
	}
}
