package layered

import (
	"bytes"
	"testing"
	"unsafe"
)

// TestSlab: copies are equal to what was copied, cannot be appended into
// their neighbours, and small ones share a block.
func TestSlab(t *testing.T) {
	var s slab
	vals := [][]byte{bytes.Repeat([]byte("a"), 827), bytes.Repeat([]byte("b"), 1000), {}, bytes.Repeat([]byte("c"), slabBlock/16+1)}
	var copies [][]byte
	for _, v := range vals {
		c := s.copy(v)
		if !bytes.Equal(c, v) || c == nil || cap(c) != len(c) {
			t.Fatalf("copy of %d bytes = %d bytes (nil: %v), cap %d", len(v), len(c), c == nil, cap(c))
		}
		copies = append(copies, c)
	}
	_ = append(copies[0], 'x') // must not write into copies[1]
	if copies[1][0] != 'b' {
		t.Errorf("an append to one copy wrote into the next")
	}
	if unsafe.SliceData(copies[1]) != unsafe.SliceData(s.buf[len(vals[0]):]) {
		t.Errorf("two small copies are not packed in one block")
	}
	for i := range 200 { // more than a block
		v := bytes.Repeat([]byte{byte(i)}, 900)
		if c := s.copy(v); !bytes.Equal(c, v) {
			t.Fatalf("copy %d differs", i)
		}
	}
	k := s.copyString("example.com")
	if k != "example.com" || s.copyString("") != "" {
		t.Errorf("copyString = %q", k)
	}
	for i, c := range copies[:2] {
		if !bytes.Equal(c, vals[i]) {
			t.Errorf("copy %d changed after later copies", i)
		}
	}
}
