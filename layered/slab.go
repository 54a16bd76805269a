package layered

import "sync"

// slab makes the preload's copies of values, packed one after the other
// in blocks of slabBlock bytes. Copied one by one, each value would take
// the next of the Go allocator's size classes: a certificate of 827 bytes
// takes 896, 8% more, up to 12.5% for other sizes. Packed, a block loses
// less than one value at its end.
//
// A block stays in memory while any copy in it is held. The front holds
// a preloaded copy until it is replaced (a Put, a fill after the TTL) or
// evicted, so a block outlives some of its copies at most until the last
// of its copies goes: never more than the preload itself took.
type slab struct {
	mu  sync.Mutex
	buf []byte // the current block; its free space is buf[len(buf):cap(buf)]
}

// slabBlock is the size of a block: 64 KiB, some 75 certificates.
const slabBlock = 64 << 10

// copy returns a copy of v whose capacity is its length, so that no
// append to it can reach the next copy.
func (s *slab) copy(v []byte) []byte {
	if len(v) > slabBlock/16 {
		c := make([]byte, len(v)) // a large value loses little alone
		copy(c, v)
		return c
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if cap(s.buf)-len(s.buf) < len(v) {
		s.buf = make([]byte, 0, slabBlock)
	}
	n := len(s.buf)
	s.buf = append(s.buf, v...)
	if len(v) == 0 {
		return []byte{} // never nil: a held value is a hit
	}
	return s.buf[n:len(s.buf):len(s.buf)]
}
