package redis_test

import (
	"context"
	"errors"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// TestStoppedServerFailsFast: once the server is stopped, a Get fails in
// well under the per-call timeout with an error that matches
// certcache.ErrUnavailable and ECONNREFUSED and is no miss. go-redis's own
// retries took about 1.7 s to report a refused connection; the goal is
// under 100 ms.
//
// Each of the five samples is the first Get of its own cache after the
// stop, on a client whose pooled connection the stop broke: the call meets
// the dead connection, then the refusal, as the first call of an outage
// does (later calls may be answered by the cache's circuit breaker, which
// is not what this measures). The median is logged; the assertion is
// looser (one second) so that a loaded machine does not fail the test.
func TestStoppedServerFailsFast(t *testing.T) {
	for _, tc := range []struct {
		name  string
		start func(testing.TB) (*testenv.Server, string)
	}{
		{"single", testenv.Redis},
		{"sentinel", testenv.RedisSentinel},
		{"cluster", testenv.RedisCluster},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, u := tc.start(t)
			ctx := context.Background()
			caches := make([]certcache.Cache, 5)
			for i := range caches {
				caches[i] = openPrefix(t, u, "refused")
				mustPutRaw(t, caches[i], "example.com", []byte("v"))
			}
			srv.Stop(t)

			var took []time.Duration
			for _, c := range caches {
				start := time.Now()
				_, err := c.Get(ctx, "example.com")
				took = append(took, time.Since(start))
				switch {
				case err == nil || errors.Is(err, autocert.ErrCacheMiss):
					t.Fatalf("Get with the server stopped = %v, want a non-miss error", err)
				case !errors.Is(err, certcache.ErrUnavailable):
					t.Errorf("Get with the server stopped = %v, want it to match ErrUnavailable", err)
				case !errors.Is(err, syscall.ECONNREFUSED):
					t.Errorf("Get with the server stopped = %v, want it to match ECONNREFUSED", err)
				}
			}
			slices.Sort(took)
			t.Logf("first Get with the server stopped: median %v (min %v, max %v)", took[2], took[0], took[4])
			if took[2] > time.Second {
				t.Errorf("median Get with the server stopped took %v, want well under 1s", took[2])
			}
		})
	}
}
