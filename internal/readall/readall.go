// Package readall reads a response body whose length the server announced,
// for the object-store backends: one allocation of the right size when the
// announcement is plausible, growth as needed when it is not.
package readall

import (
	"io"

	"github.com/certcache/certcache"
)

// Sized reads r to EOF. size is the length the server announced (negative
// if unknown); a size beyond certcache.MaxValueSize is not trusted for the
// first allocation. A body longer or shorter than announced is read whole
// all the same.
func Sized(r io.Reader, size int64) ([]byte, error) {
	if size < 0 || size > certcache.MaxValueSize {
		size = 0
	}
	b := make([]byte, 0, size+1) // +1: EOF is seen without growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)] // grow
		}
	}
}
