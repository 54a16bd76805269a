package drivertest

import (
	"context"
	"testing"
	"time"

	"github.com/certcache/certcache"
)

// Suite is the machinery Run's cases share, for suites that extend this one
// with cases of their own (the repository's CertMagic cases are one): unique
// namespaces, and caches opened through the Harness and closed when the test
// ends.
type Suite struct{ s *suite }

// NewSuite checks h and returns a Suite on it.
func NewSuite(t *testing.T, h Harness) *Suite { return &Suite{newSuite(t, h)} }

// Harness returns the harness the suite runs on.
func (s *Suite) Harness() Harness { return s.s.h }

// Namespace returns a namespace no other test in any run has used.
func (s *Suite) Namespace() string { return s.s.ns() }

// Open opens a cache on ns beneath issuance coordination, for cases about
// storage.
func (s *Suite) Open(t testing.TB, ns string) certcache.Cache { return s.s.open(t, ns) }

// OpenCoordinated opens a cache on ns as the harness does, coordination
// included.
func (s *Suite) OpenCoordinated(t testing.TB, ns string) certcache.Cache {
	return s.s.openCoordinated(t, ns)
}

// Timeout is the per-call timeout of the harness's caches.
func (s *Suite) Timeout() time.Duration { return s.s.timeout() }

// CheckFailure fails t unless err is a failure (not a miss) matching want
// (any error if want is nil) that reveals none of the harness's secrets.
func (s *Suite) CheckFailure(t testing.TB, op string, err, want error) {
	t.Helper()
	s.s.checkFailure(t, op, err, want)
}

// Context returns a context that ends with the test, or after two minutes.
func Context(t testing.TB) context.Context { return ctx(t) }

// MustGet fails t unless key holds want in c.
func MustGet(t testing.TB, c certcache.Cache, key string, want []byte) {
	t.Helper()
	mustGet(t, c, key, want)
}

// MustPut fails t unless c stores v under key.
func MustPut(t testing.TB, c certcache.Cache, key string, v []byte) {
	t.Helper()
	mustPut(t, c, key, v)
}
