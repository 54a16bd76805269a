package certcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// This file tests the classification of outcomes and the instrumentation's
// cost without a provider; no test of this package installs one
// (TestNoProviderCostsNoAllocation relies on it). The tests that need the
// OpenTelemetry SDK live in internal/integration/observetest, so that this
// package's tests keep the SDK out of its users' go.sum.

type httpStatusErr int

func (e httpStatusErr) Error() string       { return fmt.Sprintf("HTTP %d", int(e)) }
func (e httpStatusErr) HTTPStatusCode() int { return int(e) }

// apiCodeErr is a smithy-go API error with its HTTP status, as the AWS
// SDK's errors unwrap.
type apiCodeErr struct {
	httpStatusErr
	code string
}

func (e apiCodeErr) ErrorCode() string { return e.code }

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "SQLSTATE " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		op   callOp
		err  error
		want string
	}{
		{opGet, nil, "hit"},
		{opPut, nil, "ok"},
		{opList, nil, "ok"},
		{opGet, autocert.ErrCacheMiss, "miss"},
		{opGet, newError("x", "get", "k", ErrCircuitOpen), "circuit_open"},
		{opGet, newError("x", "get", "k", fmt.Errorf("%w: refused", ErrUnavailable)), "unavailable"},
		{opGet, newError("x", "get", "k", noAnswer{fmt.Errorf("%w: no answer within 3s: boom", ErrUnavailable)}), "timeout"},
		{opPut, newError("x", "put", "k", context.DeadlineExceeded), "timeout"},
		{opPut, newError("x", "put", "k", fmt.Errorf("%w (%v)", context.Canceled, "eof")), "canceled"},
		{opGet, newError("x", "get", "", ErrInvalidKey), "invalid"},
		{opPut, newError("x", "put", "k", ErrTooLarge), "too_large"},
		{opGet, newError("x", "get", "k", ErrClosed), "closed"},
		{opLeaseAcquire, newError("x", "lease", "n", ErrLeaseHeld), "held"},
		{opLeaseRefresh, newError("x", "refresh lease", "n", ErrLeaseLost), "lost"},
		{opList, newError("x", "list", "", ErrUnsupported), "unsupported"},
		{opGet, newError("file", "get", "k", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}), "denied"},
		{opGet, newError("s3", "get", "k", fmt.Errorf("api error: %w", httpStatusErr(403))), "denied"},
		{opGet, newError("s3", "get", "k", httpStatusErr(500)), "other"},
		{opGet, newError("dynamodb", "get", "k", apiCodeErr{httpStatusErr(400), "AccessDeniedException"}), "denied"},
		{opGet, newError("dynamodb", "get", "k", apiCodeErr{httpStatusErr(400), "ValidationException"}), "other"},
		{opGet, newError("postgres", "get", "k", sqlStateErr("28P01")), "denied"},
		{opGet, newError("postgres", "get", "k", sqlStateErr("42501")), "denied"},
		{opGet, newError("postgres", "get", "k", sqlStateErr("23505")), "other"},
		{opGet, newError("redis", "get", "k", redisErr("NOPERM User u has no permissions")), "denied"},
		{opGet, newError("redis", "get", "k", redisErr("WRONGPASS invalid username-password pair")), "denied"},
		{opGet, newError("redis", "get", "k", redisErr("LOADING Redis is loading")), "other"},
		{opGet, errors.New("strange"), "other"},
	} {
		if got := outcomeNames[outcomeOf(tc.op, tc.err)]; got != tc.want {
			t.Errorf("outcomeOf(%s, %v) = %s, want %s", opNames[tc.op], tc.err, got, tc.want)
		}
	}
}

// TestNoProviderCostsNoAllocation: with no provider installed, a Get hit
// allocates what it did before the instrumentation (the caller's copy of
// the value), through the portable layer and through coordination.
// internal/integration/observetest checks the same with an SDK provider.
func TestNoProviderCostsNoAllocation(t *testing.T) {
	ctx := context.Background()
	value := certValue(t, "hit.example", time.Now(), time.Now().Add(90*24*time.Hour))
	for _, tc := range []struct {
		name string
		open func() (Cache, error)
		on   bool // the instrumentation records
	}{
		{"mem://?coordinate=false", func() (Cache, error) { return Open(ctx, "mem://?coordinate=false") }, false},
		{"mem://", func() (Cache, error) { return Open(ctx, "mem://") }, false},
	} {
		c, err := tc.open()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Put(ctx, "hit.example", value); err != nil {
			t.Fatal(err)
		}
		if on := findPortable(c).tel.on(ctx); on != tc.on {
			t.Fatalf("%s: instrumentation on = %v, want %v", tc.name, on, tc.on)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := c.Get(ctx, "hit.example"); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 1 {
			t.Errorf("%s: Get hit allocates %v times, want 1 (the value)", tc.name, allocs)
		}
	}
}
