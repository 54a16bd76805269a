package callctx

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestDetached: a Detached answers as context.WithoutCancel does, under a
// parent that has ended with a cause and a deadline, and so do the contexts
// derived from it.
func TestDetached(t *testing.T) {
	type key struct{}
	cause := errors.New("the caller gave up")
	parent, cancel := context.WithCancelCause(context.WithValue(context.Background(), key{}, "v"))
	parent, cancelTimeout := context.WithTimeout(parent, time.Hour)
	defer cancelTimeout()
	cancel(cause)
	for _, tc := range []struct {
		name string
		ctx  context.Context
	}{
		{"WithoutCancel", context.WithoutCancel(parent)},
		{"Detached", &Detached{Parent: parent}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, ok := tc.ctx.Deadline(); ok {
				t.Error("Deadline: has one")
			}
			if tc.ctx.Done() != nil || tc.ctx.Err() != nil || context.Cause(tc.ctx) != nil {
				t.Errorf("Done %v, Err %v, Cause %v; want none", tc.ctx.Done(), tc.ctx.Err(), context.Cause(tc.ctx))
			}
			if got := tc.ctx.Value(key{}); got != "v" {
				t.Errorf("Value = %v, want the parent's", got)
			}
			derived, stop := context.WithCancel(tc.ctx)
			defer stop()
			if derived.Err() != nil || context.Cause(derived) != nil {
				t.Errorf("derived: Err %v, Cause %v; want none", derived.Err(), context.Cause(derived))
			}
			stop()
			if !errors.Is(context.Cause(derived), context.Canceled) {
				t.Errorf("derived, cancelled: Cause %v, want context.Canceled", context.Cause(derived))
			}
		})
	}
}
