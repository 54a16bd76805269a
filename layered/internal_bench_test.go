package layered

import (
	"context"
	"testing"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// BenchmarkHitWithoutCopy measures what a memory hit costs besides the copy
// handed to the caller: the checks, the look-up, the clock and the counter.
// BenchmarkMemoryHit adds the copy; on a busy machine the 4 KiB allocation
// and copy dominate.
func BenchmarkHitWithoutCopy(b *testing.B) {
	c := frontOverMem(b)
	s := certcache.Uncoordinated(c).(*Stack)
	ctx := context.Background()
	if err := s.Put(ctx, "example.com", make([]byte, 4096)); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := checkCall(&s.closed, ctx, "get", "example.com"); err != nil {
			b.Fatal(err)
		}
		if v, ok := s.fresh("example.com"); !ok || len(v) != 4096 {
			b.Fatal("no hit")
		}
	}
}

// BenchmarkMiss measures a miss through a memory front over mem://: the
// front's look-up, the shared read of the authority (the flight) and the
// authority's miss, of no certificate key (coordination passes it
// through), as benchreport's allocation pass counts it. Under a context
// that can end, the read runs in a goroutine of its own.
func BenchmarkMiss(b *testing.B) {
	c := frontOverMem(b)
	canEnd, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, bc := range []struct {
		name string
		ctx  context.Context
	}{
		{"CannotEnd", context.Background()},
		{"CanEnd", canEnd},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(bc.ctx, "missing-key"); err != autocert.ErrCacheMiss { //nolint:errorlint // the bare sentinel
					b.Fatal(err)
				}
			}
		})
	}
}

// frontOverMem returns a memory front over mem://, closed when b ends.
func frontOverMem(b *testing.B) certcache.Cache {
	back, err := certcache.Open(context.Background(), "mem://")
	if err != nil {
		b.Fatal(err)
	}
	c, err := New(NewMemory(nil), back)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { c.Close() })
	return c
}
