package certcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"syscall"
)

// Sentinels that classify an *Error, for errors.Is. None is ever a miss:
// a miss is autocert.ErrCacheMiss alone.
var (
	// ErrUnavailable: the store could not be reached or did not answer in
	// time (network error, refused or reset connection, shutdown). Retrying
	// later may work.
	ErrUnavailable = errors.New("backend unavailable")

	// ErrCircuitOpen: the breaker refused the call without asking the store,
	// which an earlier call found unable to answer. It wraps ErrUnavailable.
	ErrCircuitOpen = fmt.Errorf("%w: circuit open", ErrUnavailable)

	// ErrIssuing: another holder of the order lease (another node, or
	// another Manager in this process) is ordering the certificate, or an
	// order for it failed within the last lease TTL. GetCertificate waits.
	ErrIssuing = errors.New("certificate is being issued elsewhere")

	ErrInvalidKey = errors.New("invalid key")                  // the key cannot be stored; nothing was sent
	ErrTooLarge   = errors.New("value too large")              // a Put over MaxValueSize; nothing was sent
	ErrClosed     = errors.New("cache is closed")              // a call after Close
	ErrInvalidURL = errors.New("invalid cache URL")            // Open cannot use the URL (it names the part)
	ErrLeaseHeld  = errors.New("lease held by another holder") // another holder's lease runs
	ErrLeaseLost  = errors.New("lease lost")                   // the lease expired, was released or taken over

	// ErrUnsupported: the backend lacks an optional capability (leases,
	// listing). It is errors.ErrUnsupported.
	ErrUnsupported = errors.ErrUnsupported
)

// Error is the error of a failed Cache call or Open. Its message names the
// backend, the operation and the key, e.g.
//
//	certcache/redis: get "example.com": dial tcp 127.0.0.1:6379: connect: connection refused
//
// It never holds a secret from the URL.
type Error struct {
	Backend string // "redis", "s3", "file", …; empty when Open failed before a backend was chosen
	Op      string // "get", "put", "delete", "open" or "close"
	Key     string // the cache key; empty for open and close
	Err     error  // the cause

	kind error // one of the sentinels, or nil
}

func (e *Error) Error() string {
	b := make([]byte, 0, 64)
	b = append(b, "certcache"...)
	if e.Backend != "" {
		b = append(b, '/')
		b = append(b, e.Backend...)
	}
	b = append(b, ": "...)
	b = append(b, e.Op...)
	if e.Key != "" {
		b = append(b, ' ')
		b = strconv.AppendQuote(b, e.Key)
	}
	if e.Err != nil {
		b = append(b, ": "...)
		b = append(b, e.Err.Error()...)
	}
	return string(b)
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is the sentinel that classifies e, whatever
// the cause (a plain network error matches ErrUnavailable).
func (e *Error) Is(target error) bool { return target != nil && target == e.kind }

// newError builds an *Error, classifying cause.
func newError(backend, op, key string, cause error) *Error {
	return &Error{Backend: backend, Op: op, Key: key, Err: cause, kind: classify(cause)}
}

// classify returns the sentinel that describes cause, or nil.
func classify(err error) error {
	for _, s := range []error{ErrUnavailable, ErrInvalidKey, ErrTooLarge, ErrClosed, ErrInvalidURL} {
		if errors.Is(err, s) {
			return nil // the cause already carries it; Unwrap finds it
		}
	}
	if isUnavailable(err) {
		return ErrUnavailable
	}
	return nil
}

// isUnavailable recognises the transport failures every network SDK surfaces
// in its own way, so that drivers need not classify them one by one.
func isUnavailable(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false // the caller gave up; the backend may be fine
	}
	var ne net.Error
	if errors.As(err, &ne) {
		return true
	}
	var oe *net.OpError
	if errors.As(err, &oe) {
		return true
	}
	for _, e := range []error{
		syscall.ECONNREFUSED, syscall.ECONNRESET, syscall.ECONNABORTED,
		syscall.EPIPE, syscall.EHOSTUNREACH, syscall.ENETUNREACH, syscall.ETIMEDOUT,
		io.ErrUnexpectedEOF, io.EOF,
	} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}
