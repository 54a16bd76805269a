package s3_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestStoppedServerFailsFast: when the store is down (its port refuses
// connections), calls fail at once with an error matching
// certcache.ErrUnavailable instead of waiting out the SDK's retries of the
// refused dial (issue 18: 3.4 s before).
func TestStoppedServerFailsFast(t *testing.T) {
	srv, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	// Without the circuit breaker, which would answer from memory after
	// the first failure: every call here reaches for the server.
	c := open(t, cacheURL(endpoint, "stopped", "&breaker=false"))
	if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	testenv.StoppedServerFailsFast(t, c, srv, "example.com", time.Second, true)
}

// TestServerErrorsRetried: a refused connection is no longer retried, but
// throttling and server errors still are, as the SDK is configured to.
func TestServerErrorsRetried(t *testing.T) {
	useCredentials(t, "test-id", "test-secret")
	for _, tc := range []struct {
		status int
		code   string
	}{
		{http.StatusServiceUnavailable, "SlowDown"},
		{http.StatusInternalServerError, "InternalError"},
		{http.StatusBadRequest, "RequestTimeout"}, // S3 says so of an idle upload
	} {
		t.Run(tc.code, func(t *testing.T) {
			var requests atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				// The first answer goes to the Get's fast path (fastget.go),
				// which hands any non-plain answer to the SDK call; the
				// second to the SDK's first attempt, which must retry.
				if requests.Add(1) <= 2 {
					w.Header().Set("Content-Type", "application/xml")
					w.WriteHeader(tc.status)
					fmt.Fprintf(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>%s</Code><Message>try again</Message></Error>`, tc.code)
					return
				}
				w.Header().Set("Content-Length", "5")
				w.Write([]byte("value"))
			}))
			defer srv.Close()
			c := open(t, cacheURL(srv.URL, "retried", ""))
			got, err := c.Get(context.Background(), "example.com")
			if err != nil || string(got) != "value" {
				t.Fatalf("Get = %q, %v; want the value after one retry", got, err)
			}
			if n := requests.Load(); n != 3 {
				t.Errorf("%d requests; want 3 (the fast path's and the SDK's first attempt answered %d %s, then the SDK's retry)", n, tc.status, tc.code)
			}
		})
	}
}
