package e2e_test

// The push that wakes waiters, killed during a stampede: five nodes, three
// handshakes each for a new name, the holder's order held at finalize
// while every other node waits on the store's push; then the push dies
// (Redis restarted with its data; PostgreSQL's LISTEN sessions terminated)
// and the order goes on. Every waiter must still end within a poll of the
// certificate landing, and the name gets one certificate.

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/jackc/pgx/v5"
)

// pushLostBound is how long after the holder's handshake ended a waiter may
// still be waiting when the push was killed: the safety poll of a watch
// whose push is up (2 s), with slack for a loaded machine.
const pushLostBound = 3 * time.Second

func TestWakePushKilled(t *testing.T) {
	t.Parallel()
	rows := []struct {
		name  string
		start func(t *testing.T) (rawURL string, kill func(t *testing.T) string)
	}{
		{"redis-restarted", func(t *testing.T) (string, func(*testing.T) string) {
			srv, u := testenv.RedisDurable(t) // the lease and the account key survive the restart
			return u, func(t *testing.T) string {
				srv.Stop(t)
				srv.Restart(t)
				return "restarted"
			}
		}},
		{"postgres-listen-terminated", func(t *testing.T) (string, func(*testing.T) string) {
			_, u := testenv.Postgres(t)
			return u, func(t *testing.T) string {
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				conn, err := pgx.Connect(ctx, u)
				if err != nil {
					t.Fatal(err)
				}
				defer conn.Close(ctx)
				var n int
				err = conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE query LIKE 'LISTEN %'`).Scan(&n)
				if err != nil {
					t.Fatal(err)
				}
				if n == 0 {
					t.Errorf("no LISTEN session to terminate: the waiters were not pushed to")
				}
				return fmt.Sprintf("%d LISTEN sessions terminated", n)
			}
		}},
	}
	for _, row := range rows {
		t.Run(row.name, func(t *testing.T) {
			t.Parallel()
			fleetSlots <- struct{}{}
			defer func() { <-fleetSlots }()
			rawURL, kill := row.start(t)
			testPushKilled(t, withParam(rawURL, "timeout=5s"), "wake-"+row.name+".certcache.test", kill)
		})
	}
}

// ended is a handshake and when it ended.
type ended struct {
	handshake
	at time.Time
}

func testPushKilled(t *testing.T, rawURL, domain string, kill func(t *testing.T) string) {
	release := make(chan struct{})
	finalizing := make(chan struct{}, 1)
	gate := func(_ int, rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.Path, "/finalize-order/") {
				select {
				case finalizing <- struct{}{}:
				default:
				}
				<-release
			}
			return rt.RoundTrip(r)
		})
	}
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true, gate: gate}, fleetSize, letsEncrypt)
	var wg sync.WaitGroup
	results := make(chan ended, 3*fleetSize)
	for i := range fleetSize {
		for range 3 {
			wg.Go(func() {
				h := timedFetch(e, i, domain)
				results <- ended{h, time.Now()}
			})
		}
	}
	select {
	case <-finalizing:
	case <-time.After(2 * time.Minute):
		close(release)
		t.Fatalf("no node reached finalize (Pebble %v)", e.pebble.Stats())
	}
	// The waiters of every other node are pushed to before the kill.
	pushing := func(when string) {
		for i := range fleetSize {
			if e.node(i).orders.Load() > 0 {
				continue
			}
			w := hook.WatchKey(e.node(i).cache, domain)
			for deadline := time.Now().Add(30 * time.Second); !w.Pushing(); time.Sleep(20 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Errorf("node %d: the store's push is not up %s", i, when)
					break
				}
			}
			w.Stop()
		}
	}
	pushing("while its handshakes wait")
	killedAt := time.Now()
	how := kill(t)
	close(release)
	wg.Wait()
	close(results)

	// A node that sent an order is a holder; the others' handshakes waited.
	var holderEnd time.Time
	var all []ended
	for h := range results {
		all = append(all, h)
		if h.err != nil {
			t.Errorf("node %d: handshake failed: %v", h.node, h.err)
		}
		if e.node(h.node).orders.Load() > 0 && h.at.After(holderEnd) {
			holderEnd = h.at
		}
	}
	if holderEnd.IsZero() {
		t.Fatalf("no node ordered")
	}
	var late []time.Duration
	for _, h := range all {
		if e.node(h.node).orders.Load() == 0 && h.err == nil {
			late = append(late, h.at.Sub(holderEnd))
		}
	}
	st := e.pebble.Stats()
	t.Logf("PUSH KILLED (%s, %v after the order reached finalize): %d certificate(s), %d orders; the holder's last handshake ended %v after the kill; waiters ended after it: p50 %v max %v (n=%d)",
		how, time.Since(killedAt).Round(time.Millisecond), st.Finalized, st.Orders, holderEnd.Sub(killedAt).Round(time.Millisecond),
		percentile(late, 50), percentile(late, 100), len(late))
	if st.Finalized != 1 {
		t.Errorf("%d certificates, want 1", st.Finalized)
	}
	if st.Orders > 2 {
		t.Errorf("%d orders, want at most 2 (one dropped TLS-ALPN-01 attempt)", st.Orders)
	}
	if worst := percentile(late, 100); worst > pushLostBound {
		t.Errorf("a waiter ended %v after the holder's handshake, want at most %v", worst, pushLostBound)
	}
	pushing("again after the kill")
}
