// Package urlquery reads a backend's URL query parameters the way go-redis's
// ParseURL does: typed getters remove each parameter as they read it and
// remember the first error, and Err finally reports whatever no one read.
// Every backend uses it, so that unknown, repeated and malformed parameters
// are refused with the same precise messages everywhere.
package urlquery

import (
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrParam is wrapped by every error a Reader reports. Backends join it with
// certcache.ErrInvalidURL.
var ErrParam = errors.New("bad URL parameter")

// Reader consumes URL query parameters.
type Reader struct {
	q   url.Values
	err error
}

// New returns a Reader over a copy of q; q itself is not modified.
func New(q url.Values) *Reader {
	c := make(url.Values, len(q))
	for k, v := range q {
		c[k] = v
	}
	return &Reader{q: c}
}

// Parse parses a raw query. A malformed query is reported by Err.
func Parse(rawQuery string) *Reader {
	q, err := url.ParseQuery(rawQuery)
	r := New(q)
	if err != nil {
		r.err = fmt.Errorf("%w: malformed query: %v", ErrParam, err)
	}
	return r
}

// Has reports whether name is present and not yet read.
func (r *Reader) Has(name string) bool {
	_, ok := r.q[name]
	return ok
}

// String removes name and returns its value, or "" if absent. A repeated
// parameter is an error.
func (r *Reader) String(name string) string {
	vs, ok := r.q[name]
	if !ok {
		return ""
	}
	delete(r.q, name)
	if len(vs) != 1 {
		r.setErr(fmt.Errorf("%w: %s given %d times", ErrParam, name, len(vs)))
		return ""
	}
	return vs[0]
}

// Strings removes name and returns all its values, for parameters that may
// repeat (a list of addresses).
func (r *Reader) Strings(name string) []string {
	vs := r.q[name]
	delete(r.q, name)
	return vs
}

// Duration removes name and parses it as a Go duration ("5s"), or returns
// def if absent. Negative durations are errors.
func (r *Reader) Duration(name string, def time.Duration) time.Duration {
	if !r.Has(name) {
		return def
	}
	s := r.String(name)
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		r.setErr(fmt.Errorf("%w: %s=%q: want a duration such as 5s", ErrParam, name, s))
		return def
	}
	return d
}

// Int removes name and parses it as a non-negative integer, or returns def if
// absent.
func (r *Reader) Int(name string, def int) int {
	if !r.Has(name) {
		return def
	}
	s := r.String(name)
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		r.setErr(fmt.Errorf("%w: %s=%q: want a non-negative integer", ErrParam, name, s))
		return def
	}
	return n
}

// Bool removes name and parses it ("true", "false", "1", "0"), or returns def
// if absent.
func (r *Reader) Bool(name string, def bool) bool {
	if !r.Has(name) {
		return def
	}
	s := r.String(name)
	b, err := strconv.ParseBool(s)
	if err != nil {
		r.setErr(fmt.Errorf("%w: %s=%q: want true or false", ErrParam, name, s))
		return def
	}
	return b
}

// Choice removes name and checks its value is one of allowed, or returns def
// if absent.
func (r *Reader) Choice(name, def string, allowed ...string) string {
	if !r.Has(name) {
		return def
	}
	s := r.String(name)
	for _, a := range allowed {
		if s == a {
			return s
		}
	}
	r.setErr(fmt.Errorf("%w: %s=%q: want one of %s", ErrParam, name, s, strings.Join(allowed, ", ")))
	return def
}

// Fail records err (wrapped with ErrParam) as the Reader's error if it has
// none yet, for checks a getter cannot make.
func (r *Reader) Fail(format string, args ...any) {
	r.setErr(fmt.Errorf("%w: "+format, append([]any{ErrParam}, args...)...))
}

// Remaining returns the parameters not read yet, without consuming them, for
// handing on to an SDK's own parser.
func (r *Reader) Remaining() url.Values { return r.q }

// ReadErr returns the first error met while reading, ignoring parameters
// not read yet: for a backend that hands Remaining to an SDK parser that
// reports unknown names itself.
func (r *Reader) ReadErr() error { return r.err }

// Err returns the first error met, else an error naming every parameter
// no one read, sorted, else nil.
func (r *Reader) Err() error {
	if r.err != nil {
		return r.err
	}
	if len(r.q) == 0 {
		return nil
	}
	names := make([]string, 0, len(r.q))
	for k := range r.q {
		names = append(names, k)
	}
	sort.Strings(names)
	return fmt.Errorf("%w: unknown parameter %s", ErrParam, strings.Join(names, ", "))
}

func (r *Reader) setErr(err error) {
	if r.err == nil {
		r.err = err
	}
}

// Container reads the head of an object store's URL, SCHEME://NAME/PREFIX
// (a bucket, a table): NAME is the host and PREFIX the path without its
// leading slash. It refuses credentials in the URL (credentials says where
// they come from instead), a missing or opaque NAME, a port (the server is
// named with endpoint=) and a fragment. Its errors never show the URL.
func Container(u *url.URL, noun, credentials string) (name, prefix string, err error) {
	switch {
	case u.User != nil:
		return "", "", fmt.Errorf("credentials do not belong in the URL: %s", credentials)
	case u.Opaque != "" || u.Host == "":
		return "", "", fmt.Errorf("no %s (want %s://%s/PREFIX)", noun, u.Scheme, strings.ToUpper(noun))
	case u.Port() != "":
		return "", "", fmt.Errorf("%s %q has a port; name the server with endpoint=", noun, u.Hostname())
	case u.Fragment != "":
		return "", "", fmt.Errorf("%s URLs take no fragment", u.Scheme)
	}
	return u.Host, strings.TrimPrefix(u.Path, "/"), nil
}
