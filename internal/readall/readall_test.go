package readall

import (
	"bytes"
	"errors"
	"io"
	"testing"
	"testing/iotest"
)

func TestSized(t *testing.T) {
	v := bytes.Repeat([]byte("0123456789"), 500)
	for _, tc := range []struct {
		name string
		size int64
	}{
		{"exact", int64(len(v))}, {"unknown", -1}, {"too small", 10}, {"too large", int64(len(v)) * 3},
		{"absurd", 1 << 40}, {"zero", 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Sized(iotest.HalfReader(bytes.NewReader(v)), tc.size)
			if err != nil || !bytes.Equal(got, v) {
				t.Fatalf("Sized = %d bytes, %v; want the %d bytes", len(got), err, len(v))
			}
		})
	}
	if got, err := Sized(bytes.NewReader(nil), 0); err != nil || got == nil || len(got) != 0 {
		t.Errorf("empty body = %v, %v; want an empty non-nil slice", got, err)
	}
	boom := errors.New("boom")
	if _, err := Sized(io.MultiReader(bytes.NewReader(v[:10]), iotest.ErrReader(boom)), 100); !errors.Is(err, boom) {
		t.Errorf("a failing body gave %v, want its error", err)
	}
}
