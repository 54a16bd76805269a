package sqlcache_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestPausedUnwatched: a Get whose caller's context cannot end runs its
// query under that context, bounded by a socket deadline instead of a
// watched context (sql/postgres valueByDeadline, sql/mysql socketBound,
// which finds the socket under a database/sql connection). With the
// server paused
// (the kernel accepts and queues, nothing answers) and one connection in
// the pool, each phase must end at the timeout: the query on the pooled
// connection, the wait of a second Get for that connection, and a dial of
// a new one after the deadline closed it. After the resume, Gets work on
// new connections again.
func TestPausedUnwatched(t *testing.T) {
	for _, tc := range []struct {
		name   string
		server func(testing.TB) (*testenv.Server, string)
		pool   string // the URL parameter for one connection in the pool
	}{
		{"postgres", testenv.Postgres, "pool_max_conns=1"},
		{"mariadb", testenv.MariaDB, "max_open_conns=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv, u := tc.server(t)
			pausedUnwatched(t, srv, withParam(u, "table=paused&timeout=1s&breaker=false&"+tc.pool))
		})
	}
}

func pausedUnwatched(t *testing.T, srv *testenv.Server, u string) {
	const timeout = time.Second
	c := open(t, u)
	ctx := context.Background()
	if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if v, err := c.Get(ctx, "example.com"); err != nil || string(v) != "v" {
		t.Fatalf("Get before the pause = %q, %v", v, err)
	}
	resume, ok := srv.Pause(t)
	if !ok {
		t.Fatal("the server could not be paused")
	}
	defer resume()
	// The bound: the timeout plus what a loaded two-core machine may add.
	const bound = timeout + 5*time.Second
	get := func(what string) {
		start := time.Now()
		errc := make(chan error, 1)
		go func() { _, err := c.Get(ctx, "example.com"); errc <- err }()
		var err error
		select {
		case err = <-errc:
		case <-time.After(bound):
			// A hang: resume the server, so that the Get (and the test)
			// can end.
			t.Errorf("%s: Get on a paused server still running after %v", what, bound)
			resume()
			err = <-errc
		}
		took := time.Since(start)
		if !errors.Is(err, certcache.ErrUnavailable) {
			t.Errorf("%s: Get on a paused server = %v, want ErrUnavailable", what, err)
		}
		t.Logf("%s: %v after %v", what, err, took)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		get("query on the pooled connection")
	}()
	time.Sleep(100 * time.Millisecond) // the first Get holds the one connection
	get("waiting for the pool")
	<-done
	get("dialing a new connection")
	resume()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, err := c.Get(ctx, "example.com")
		if err == nil && string(v) == "v" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get 30s after the resume = %q, %v", v, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
