package dynamodb_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// TestStoppedServerFailsFast: when the store is down (its port refuses
// connections), calls fail at once with an error matching
// certcache.ErrUnavailable, never a miss, instead of waiting out the SDK's
// retries of the refused dial.
func TestStoppedServerFailsFast(t *testing.T) {
	t.Parallel()
	srv, endpoint := dynalite(t)
	ctx := context.Background()
	// Without the circuit breaker, which would answer from memory after
	// the first failure: every call here reaches for the server.
	c := open(t, cacheURL(endpoint, "stopped", "&breaker=false"))
	if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	testenv.StoppedServerFailsFast(t, c, srv, "example.com", 100*time.Millisecond, true)
}

// TestMissingTable: a table that does not exist is an error on every call,
// naming the table and the key schema it needs, never an empty cache.
func TestMissingTable(t *testing.T) {
	t.Parallel()
	_, endpoint := dynalite(t)
	ctx := context.Background()
	c := open(t, "dynamodb://no-such-table/certs?endpoint="+endpoint)
	_, err := c.Get(ctx, "example.com")
	errs := map[string]error{"get": err, "put": c.Put(ctx, "example.com", []byte("v")), "delete": c.Delete(ctx, "example.com")}
	_, errs["lease"] = certcache.AcquireLease(ctx, c, "example.com", time.Minute)
	for _, errs["list"] = range certcache.List(ctx, c, "") {
		break
	}
	for op, err := range errs {
		switch {
		case err == nil:
			t.Errorf("%s on a missing table succeeded", op)
		case errors.Is(err, autocert.ErrCacheMiss), errors.Is(err, certcache.ErrLeaseHeld):
			t.Errorf("%s on a missing table = %v: a failure reported as a miss or a held lease", op, err)
		case !containsAll(err.Error(), `certcache/dynamodb:`, `table "no-such-table" does not exist`, `partition key "pk"`, "ResourceNotFoundException"):
			t.Errorf("%s on a missing table = %v; want it to name the backend, the table, the key schema and DynamoDB's error", op, err)
		}
	}
}

func containsAll(s string, subs ...string) bool {
	for _, sub := range subs {
		if !strings.Contains(s, sub) {
			return false
		}
	}
	return true
}
