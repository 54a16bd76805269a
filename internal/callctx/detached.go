package callctx

import (
	"context"
	"time"
)

// Detached is context.WithoutCancel's context as a value: the values of
// Parent, none of its deadline or cancellation. A struct that is allocated
// anyway can hold one and hand out its address, where WithoutCancel
// allocates a context of its own on every call.
type Detached struct {
	Parent context.Context
}

var _ context.Context = (*Detached)(nil)

// Deadline implements context.Context: none.
func (*Detached) Deadline() (time.Time, bool) { return time.Time{}, false }

// Done implements context.Context: nil, it never ends.
func (*Detached) Done() <-chan struct{} { return nil }

// Err implements context.Context: nil, it never ends.
func (*Detached) Err() error { return nil }

// Value implements context.Context: Parent's values, but none for the
// context package's key of the cancelCtx that governs a context, as
// WithoutCancel answers, so that context.Cause does not report the
// parent's ending.
func (d *Detached) Value(key any) any {
	if key == cancelCtxKey {
		return nil
	}
	return d.Parent.Value(key)
}
