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

// Sentinels that classify an *Error; test them with errors.Is. None of them
// is ever returned for a miss: a miss is autocert.ErrCacheMiss alone.
var (
	// ErrUnavailable means the backend could not be reached or did not
	// answer within the timeout: a network error, a refused or reset
	// connection, a server that is shutting down. Retrying later may work.
	ErrUnavailable = errors.New("backend unavailable")

	// ErrInvalidKey means the key cannot be stored (see MaxKeyLen and the
	// Cache contract). Nothing was sent to the backend.
	ErrInvalidKey = errors.New("invalid key")

	// ErrTooLarge means a Put value exceeds MaxValueSize. Nothing was sent to
	// the backend.
	ErrTooLarge = errors.New("value too large")

	// ErrClosed means the Cache was used after Close.
	ErrClosed = errors.New("cache is closed")

	// ErrInvalidURL means Open was given a URL it cannot use: it does not
	// parse, names no registered scheme, or carries an unknown, repeated or
	// malformed parameter.
	ErrInvalidURL = errors.New("invalid cache URL")

	// ErrCircuitOpen means a call was refused without reaching the store
	// because the circuit breaker is open: an earlier call found the store
	// unable to answer, and no background probe has seen it answer since. It
	// wraps ErrUnavailable, so errors.Is(err, ErrUnavailable) holds too.
	ErrCircuitOpen = fmt.Errorf("%w: circuit open", ErrUnavailable)

	// ErrIssuing means a certificate is being ordered by another holder of its
	// order lease (another node, or another Manager in this process), or that
	// an order for it failed within the last lease TTL. It is never a miss, so
	// autocert does not order again; GetCertificate waits for the certificate.
	ErrIssuing = errors.New("certificate is being issued elsewhere")

	// ErrLeaseHeld means a lease is held by someone else and has not expired.
	ErrLeaseHeld = errors.New("lease held by another holder")

	// ErrLeaseLost means the token no longer holds the lease: it expired, was
	// released, or was taken over by another holder after it expired.
	ErrLeaseLost = errors.New("lease lost")

	// ErrUnsupported means a Cache's backend lacks an optional capability
	// (leases, listing). It is errors.ErrUnsupported, so either matches.
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

// Is reports whether target is the sentinel that classifies e, so that
// errors.Is(err, certcache.ErrUnavailable) holds for an unreachable backend
// even when the cause is a plain network error.
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
