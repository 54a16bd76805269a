package urlquery

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestReader(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		read        func(r *Reader) any
		want        any
		wantErr     string // "" means no error
	}{
		{"string", "a=x", func(r *Reader) any { return r.String("a") }, "x", ""},
		{"absent string", "", func(r *Reader) any { return r.String("a") }, "", ""},
		{"repeated", "a=x&a=y", func(r *Reader) any { return r.String("a") }, "", "a given 2 times"},
		{"duration", "t=5s", func(r *Reader) any { return r.Duration("t", time.Second) }, 5 * time.Second, ""},
		{"duration default", "", func(r *Reader) any { return r.Duration("t", time.Second) }, time.Second, ""},
		{"bad duration", "t=soon", func(r *Reader) any { return r.Duration("t", time.Second) }, time.Second, `t="soon": want a duration`},
		{"negative duration", "t=-1s", func(r *Reader) any { return r.Duration("t", 0) }, time.Duration(0), "want a duration"},
		{"int", "n=3", func(r *Reader) any { return r.Int("n", 1) }, 3, ""},
		{"bad int", "n=-3", func(r *Reader) any { return r.Int("n", 1) }, 1, "non-negative integer"},
		{"bool", "b=true", func(r *Reader) any { return r.Bool("b", false) }, true, ""},
		{"bad bool", "b=yes", func(r *Reader) any { return r.Bool("b", false) }, false, "want true or false"},
		{"choice", "c=b", func(r *Reader) any { return r.Choice("c", "a", "a", "b") }, "b", ""},
		{"bad choice", "c=z", func(r *Reader) any { return r.Choice("c", "a", "a", "b") }, "a", "want one of a, b"},
		{"leftovers sorted", "z=1&y=2&a=3", func(r *Reader) any { return r.String("a") }, "3", "unknown parameter y, z"},
		{"malformed", "a=%zz", func(r *Reader) any { return nil }, nil, "malformed query"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := Parse(tc.query)
			got := tc.read(r)
			if got != tc.want {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			err := r.Err()
			switch {
			case tc.wantErr == "" && err != nil:
				t.Errorf("Err() = %v, want nil", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Errorf("Err() = %v, want it to contain %q", err, tc.wantErr)
			case err != nil && !errors.Is(err, ErrParam):
				t.Errorf("Err() = %v does not wrap ErrParam", err)
			}
		})
	}
}

func TestReadErrIgnoresLeftovers(t *testing.T) {
	r := Parse("known=1&sdk_param=2")
	r.Int("known", 0)
	if err := r.ReadErr(); err != nil {
		t.Errorf("ReadErr() = %v, want nil", err)
	}
	if got := r.Remaining().Encode(); got != "sdk_param=2" {
		t.Errorf("Remaining() = %q", got)
	}
}

func TestNewDoesNotModifyInput(t *testing.T) {
	q := url.Values{"a": {"1"}}
	r := New(q)
	r.String("a")
	if _, ok := q["a"]; !ok {
		t.Error("New's reader modified the caller's values")
	}
}
