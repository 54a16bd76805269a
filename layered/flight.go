package layered

import (
	"context"
	"errors"
	"sync"

	"github.com/certcache/certcache/internal/callctx"
)

// A flight is one read of a key from the authority, shared by the misses
// for that key that come while it is in the air, as with
// golang.org/x/sync/singleflight, but without what that costs per call (a
// goroutine, a channel, a closure, the boxed result): the first caller
// reads in its own goroutine when nothing can end its wait, and a channel
// is made only when someone has to wait on it (see Stack.Get).
type flight struct {
	// ctx is the read's context: the first caller's values, none of its
	// cancellation (see Stack.Get).
	ctx  callctx.Detached
	done chan struct{} // nil until a caller waits; closed when v and err are set
	v    []byte        // not held by any tier; copied for each caller when shared
	err  error
	// joined counts the callers that joined the first; under flights.mu,
	// and final once the flight has landed.
	joined int
}

// flights are the reads in the air, by key.
type flights struct {
	mu sync.Mutex
	m  map[string]*flight
}

// errReadPanicked is what the callers that joined a read get when it
// panicked (in the first caller's goroutine, which panics on).
var errReadPanicked = errors.New("the read from the authority panicked")

// join returns the flight for key, and whether the caller is the first,
// whose ctx the read takes its values from. A caller that will wait for
// the flight's done channel says so (wait); every caller but the first
// does.
func (fs *flights) join(ctx context.Context, key string, wait bool) (*flight, bool) {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	if f := fs.m[key]; f != nil {
		f.joined++
		if f.done == nil {
			f.done = make(chan struct{})
		}
		return f, false
	}
	f := &flight{ctx: callctx.Detached{Parent: ctx}}
	if wait {
		f.done = make(chan struct{})
	}
	if fs.m == nil {
		fs.m = make(map[string]*flight)
	}
	fs.m[key] = f
	return f, true
}

// fly reads key from the authority for f and lands it: no caller joins f
// after this, and those that joined are woken.
func (s *Stack) fly(key string, f *flight) {
	read := false
	defer func() {
		if !read { // load panicked
			f.v, f.err = nil, opError("get", key, errReadPanicked)
		}
		s.flights.land(key, f)
	}()
	f.v, f.err = s.load(&f.ctx, key, true)
	read = true
}

func (fs *flights) land(key string, f *flight) {
	fs.mu.Lock()
	delete(fs.m, key)
	if f.done != nil {
		close(f.done)
	}
	fs.mu.Unlock()
}

// result is what one caller of a landed flight gets: a slice of its own.
func (f *flight) result() ([]byte, error) {
	switch {
	case f.err != nil:
		return nil, f.err
	case f.joined > 0:
		return append([]byte{}, f.v...), nil
	}
	return f.v, nil
}
