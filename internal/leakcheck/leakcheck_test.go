package leakcheck

import (
	"testing"
	"time"
)

// recorder is a testing.TB that keeps whether it was failed.
type recorder struct {
	testing.TB
	failed bool
	msg    string
}

func (r *recorder) Helper() {}
func (r *recorder) Errorf(format string, args ...any) {
	r.failed = true
	r.msg = format
}

func TestVerifyNone(t *testing.T) {
	before := Take()
	stop := make(chan struct{})
	go func() { <-stop }()

	r := &recorder{TB: t}
	VerifyNone(r, before, 50*time.Millisecond)
	if !r.failed {
		t.Fatal("a goroutine still blocked was not reported")
	}

	close(stop)
	r = &recorder{TB: t}
	VerifyNone(r, before, 5*time.Second)
	if r.failed {
		t.Fatal("a goroutine that ended was reported")
	}
}

func TestGoroutineStartedBeforeIsNotCounted(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	go func() { <-stop }()
	before := Take()
	r := &recorder{TB: t}
	VerifyNone(r, before, 50*time.Millisecond)
	if r.failed {
		t.Fatal("a goroutine alive before the snapshot was reported")
	}
}

func TestParallelTestGoroutinesAreNotCounted(t *testing.T) {
	before := Take()
	t.Run("child", func(t *testing.T) {
		r := &recorder{TB: t}
		VerifyNone(r, before, 50*time.Millisecond)
		if r.failed {
			t.Fatal("the test's own goroutines were reported")
		}
	})
}
