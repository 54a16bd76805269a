package core

import "sync"

// ValueDest is the Scan destination of a Get: one binary column, which the
// driver copies into it (pgx and database/sql both copy into a *[]byte).
// Destinations are pooled: a new one per Get costs two allocations (the
// slice header that Scan writes through, and Scan's argument list), which
// the raw call pays too but certcache need not. A driver keeps no
// destination after Scan returns.
type ValueDest struct {
	v    []byte
	args [1]any // &v
}

var valueDests = sync.Pool{New: func() any {
	d := new(ValueDest)
	d.args[0] = &d.v
	return d
}}

// GetValueDest returns a destination from the pool; Take gives it back.
func GetValueDest() *ValueDest { return valueDests.Get().(*ValueDest) }

// Args returns Scan's arguments.
func (d *ValueDest) Args() []any { return d.args[:] }

// Take returns what Scan stored, nil if nothing, and returns d to the
// pool: d must not be used after.
func (d *ValueDest) Take() []byte {
	v := d.v
	d.v = nil
	valueDests.Put(d)
	return v
}
