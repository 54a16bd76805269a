package certcache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache/driver"
)

// releaseDriver fails every acquisition without an answer, so that the
// portable layer releases the lease in the background, and holds that
// release until its context ends.
type releaseDriver struct {
	hitDriver
	closed        atomic.Bool
	releaseStart  chan struct{}
	afterClose    atomic.Bool // a release returned after Close reached the driver
	releaseCtxErr atomic.Value
}

func (d *releaseDriver) AcquireLease(context.Context, string, string, time.Duration) error {
	return errors.New("connection reset by peer")
}
func (d *releaseDriver) RefreshLease(context.Context, string, string, time.Duration) error {
	return nil
}
func (d *releaseDriver) ReleaseLease(ctx context.Context, _, _ string) error {
	close(d.releaseStart)
	<-ctx.Done()
	d.releaseCtxErr.Store(ctx.Err())
	if d.closed.Load() {
		d.afterClose.Store(true)
	}
	return ctx.Err()
}
func (d *releaseDriver) Close() error { d.closed.Store(true); return nil }

// TestCloseEndsBackgroundRelease: a lease whose acquisition failed is
// released in the background; Close cancels that release and waits for it,
// so that no call reaches the driver after Close — a file:// release made
// after the directory was removed would bring it back.
func TestCloseEndsBackgroundRelease(t *testing.T) {
	d := &releaseDriver{releaseStart: make(chan struct{})}
	c := newPortable("stub", d, &Options{DisableBreaker: true}, nil)
	if _, err := c.acquireLease(context.Background(), "name", time.Minute); err == nil {
		t.Fatal("AcquireLease succeeded on a driver that fails it")
	}
	select {
	case <-d.releaseStart:
	case <-time.After(10 * time.Second):
		t.Fatal("the abandoned lease was never released")
	}
	start := time.Now()
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > DefaultTimeout/2 {
		t.Errorf("Close took %v: it waited for the release's own timeout instead of cancelling it", took)
	}
	if err, _ := d.releaseCtxErr.Load().(error); !errors.Is(err, context.Canceled) {
		t.Errorf("the background release ended with %v, want context.Canceled by Close", err)
	}
	if d.afterClose.Load() {
		t.Errorf("the background release was still in the driver after Close closed it")
	}
	if _, err := c.acquireLease(context.Background(), "name", time.Minute); !errors.Is(err, ErrClosed) {
		t.Errorf("AcquireLease after Close = %v, want ErrClosed", err)
	}
}

// TestFileLeaseReleaseWritesNothing: refreshing or releasing a lease in a
// directory that has none (never made, or removed since) creates nothing.
func TestFileLeaseReleaseWritesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "certs")
	ld := newDirDriver(dir).(driver.LeaseDriver)
	ctx := context.Background()
	if err := ld.ReleaseLease(ctx, "name", "token"); err != nil {
		t.Errorf("ReleaseLease with no lease directory = %v, want nil", err)
	}
	if err := ld.RefreshLease(ctx, "name", "token", time.Minute); !errors.Is(err, ErrLeaseLost) {
		t.Errorf("RefreshLease with no lease directory = %v, want ErrLeaseLost", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refresh and release made the directory: Stat = %v", err)
	}
	// Acquire makes it; a release after it was removed does not bring it back.
	if err := ld.AcquireLease(ctx, "name", "token", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := ld.ReleaseLease(ctx, "name", "token"); err != nil {
		t.Errorf("ReleaseLease after the directory was removed = %v, want nil", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ReleaseLease brought the removed directory back: Stat = %v", err)
	}
}
