// Package reliability holds the fault-injection, resource and hostile-input
// tests that every backend goes through.
//
// Faults are injected by toxiproxy (github.com/Shopify/toxiproxy/v2) run
// in-process, through its own Proxy and toxics, between the cache and the
// backend's server in its container. In-process rather than in a container
// of its own: the proxy then reaches the server at the same 127.0.0.1
// address in host and bridge mode alike, and the test drives toxics without
// another HTTP API in between. The toxics are toxiproxy's own code either
// way.
package reliability

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	toxiproxy "github.com/Shopify/toxiproxy/v2"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/rs/zerolog"
	"golang.org/x/crypto/acme/autocert"
)

// callTimeout is the per-call timeout of every cache under fault. Faults
// hold the backend far longer, so every call must end near this bound.
const callTimeout = 2 * time.Second

// slack is what a loaded two-core machine may add to a call's timeout before
// we call it a hang. This is a bound on hangs, not a speed target.
const slack = 8 * time.Second

// proxy is one toxiproxy proxy in front of a server.
type proxy struct {
	p *toxiproxy.Proxy
}

var toxiServer = sync.OnceValue(func() *toxiproxy.ApiServer {
	return toxiproxy.NewServer(toxiproxy.NewMetricsContainer(prometheus.NewRegistry()), zerolog.Nop())
})

func newProxy(t testing.TB, upstream string) *proxy {
	t.Helper()
	p := toxiproxy.NewProxy(toxiServer(), strings.ReplaceAll(t.Name(), "/", "_"), "127.0.0.1:0", upstream)
	if err := p.Start(); err != nil {
		t.Fatalf("toxiproxy: %v", err)
	}
	t.Cleanup(p.Stop)
	return &proxy{p: p}
}

func (px *proxy) addr() string { return px.p.Listen }

// add adds a toxic, given as toxiproxy's JSON, to both directions unless
// the JSON names a stream.
func (px *proxy) add(t testing.TB, toxicJSON string) {
	t.Helper()
	if _, err := px.p.Toxics.AddToxicJson(strings.NewReader(toxicJSON)); err != nil {
		t.Fatalf("toxiproxy: add %s: %v", toxicJSON, err)
	}
}

func (px *proxy) reset() { px.p.Toxics.ResetToxics(context.Background()) }

// A fault breaks the path to the server and mends it.
type fault struct {
	name   string
	apply  func(t *testing.T, px *proxy, srv *testenv.Server)
	remove func(t *testing.T, px *proxy, srv *testenv.Server)
}

var faults = []fault{
	{"LatencyBeyondTimeout",
		func(t *testing.T, px *proxy, _ *testenv.Server) {
			px.add(t, fmt.Sprintf(`{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":%d}}`,
				(3*callTimeout).Milliseconds()))
		},
		func(t *testing.T, px *proxy, _ *testenv.Server) { px.reset() }},
	{"ResetMidRequest",
		func(t *testing.T, px *proxy, _ *testenv.Server) {
			// reset_peer closes every connection with RST as soon as data
			// flows: new connections are reset in the middle of a request.
			px.add(t, `{"name":"rst","type":"reset_peer","stream":"upstream","attributes":{"timeout":0}}`)
		},
		func(t *testing.T, px *proxy, _ *testenv.Server) { px.reset() }},
	{"BandwidthZero",
		func(t *testing.T, px *proxy, _ *testenv.Server) {
			px.add(t, `{"name":"bw","type":"bandwidth","stream":"downstream","attributes":{"rate":0}}`)
			px.add(t, `{"name":"bwup","type":"bandwidth","stream":"upstream","attributes":{"rate":0}}`)
		},
		func(t *testing.T, px *proxy, _ *testenv.Server) { px.reset() }},
	{"ServerStoppedAndRestarted",
		func(t *testing.T, _ *proxy, srv *testenv.Server) { srv.Stop(t) },
		func(t *testing.T, _ *proxy, srv *testenv.Server) { srv.Restart(t) }},
}

// A target is a backend under test: start brings up a durable server (one
// that keeps acknowledged writes across a restart) and returns it with a
// URL that opens a cache on it, every prerequisite (bucket, table,
// credentials) in place. The URL must contain srv.Addr(0) literally: the
// test points it at the proxy instead.
type target struct {
	name  string
	start func(t *testing.T) (srv *testenv.Server, rawURL string)
}

// observation is one row of the backend × fault table.
type observation struct {
	backend, fault string
	errKind        string
	maxErrTime     time.Duration
	recovery       time.Duration
}

var results struct {
	mu   sync.Mutex
	rows []observation
}

func TestFaults(t *testing.T) {
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			srv, raw := tg.start(t)
			px := newProxy(t, srv.Addr(0))
			if !strings.Contains(raw, srv.Addr(0)) {
				t.Fatalf("target URL %q does not name the server's address %s", raw, srv.Addr(0))
			}
			u := withParam(strings.ReplaceAll(raw, srv.Addr(0), px.addr()), "timeout="+callTimeout.String())
			c, err := certcache.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			c = certcache.Uncoordinated(c) // numbered values, no certificates: the store's contract
			w := startWriter(c)
			for _, f := range faults {
				t.Run(f.name, func(t *testing.T) {
					obs := observation{backend: tg.name, fault: f.name}
					mustWork(t, c)
					f.apply(t, px, srv)
					removed := false
					defer func() {
						if !removed {
							f.remove(t, px, srv)
						}
					}()
					obs.errKind, obs.maxErrTime = failsWithinTimeout(t, c)
					f.remove(t, px, srv)
					removed = true
					obs.recovery = recovers(t, c)
					results.mu.Lock()
					results.rows = append(results.rows, obs)
					results.mu.Unlock()
				})
			}
			w.stopAndVerify(t, c)
		})
	}
	logTable(t)
}

// mustWork fails unless a Put and a Get succeed.
func mustWork(t *testing.T, c certcache.Cache) {
	t.Helper()
	ctx := context.Background()
	if err := c.Put(ctx, "probe.example", []byte("ok")); err != nil {
		t.Fatalf("Put before the fault: %v", err)
	}
	if v, err := c.Get(ctx, "probe.example"); err != nil || string(v) != "ok" {
		t.Fatalf("Get before the fault = %q, %v", v, err)
	}
}

// failsWithinTimeout checks that Get (of a present and of an absent key),
// Put and Delete all fail with non-miss errors that match
// certcache.ErrUnavailable, each within the timeout plus slack. It returns
// the kinds of error seen and the slowest call.
func failsWithinTimeout(t *testing.T, c certcache.Cache) (string, time.Duration) {
	t.Helper()
	kinds := map[string]bool{}
	var slowest time.Duration
	calls := []struct {
		op string
		fn func(ctx context.Context) error
	}{
		{"Get(present)", func(ctx context.Context) error { _, err := c.Get(ctx, "probe.example"); return err }},
		{"Get(absent)", func(ctx context.Context) error { _, err := c.Get(ctx, "absent.example"); return err }},
		{"Put", func(ctx context.Context) error { return c.Put(ctx, "fault-put.example", []byte("x")) }},
		{"Delete", func(ctx context.Context) error { return c.Delete(ctx, "fault-delete.example") }},
	}
	for _, call := range calls {
		start := time.Now()
		err := call.fn(context.Background())
		d := time.Since(start)
		slowest = max(slowest, d)
		switch {
		case err == nil:
			// A call may slip through before a toxic bites the pooled
			// connection it used; the fault must still show on retry.
			err = call.fn(context.Background())
			if err == nil {
				t.Errorf("%s succeeded twice under the fault", call.op)
				continue
			}
		}
		if err == autocert.ErrCacheMiss || errors.Is(err, autocert.ErrCacheMiss) { //nolint:errorlint
			t.Errorf("%s = %v: a fault reported as a miss", call.op, err)
		}
		if !errors.Is(err, certcache.ErrUnavailable) {
			t.Errorf("%s = %v; want an error matching certcache.ErrUnavailable", call.op, err)
		}
		if d > callTimeout+slack {
			t.Errorf("%s took %v; the per-call timeout is %v", call.op, d, callTimeout)
		}
		kinds[errKind(err)] = true
	}
	var ks []string
	for k := range kinds {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return strings.Join(ks, "+"), slowest
}

// errKind names an error's class for the report.
func errKind(err error) string {
	switch {
	case errors.Is(err, context.DeadlineExceeded) || strings.Contains(err.Error(), "no answer within"):
		return "timeout"
	case strings.Contains(err.Error(), "reset"):
		return "reset"
	case strings.Contains(err.Error(), "refused"):
		return "refused"
	case strings.Contains(err.Error(), "EOF"):
		return "EOF"
	case errors.Is(err, certcache.ErrUnavailable):
		return "unavailable"
	}
	return "other"
}

// recovers waits until the same Cache works again, without reopening, and
// returns how long that took.
func recovers(t *testing.T, c certcache.Cache) time.Duration {
	t.Helper()
	start := time.Now()
	deadline := start.Add(60 * time.Second)
	var err error
	for time.Now().Before(deadline) {
		if err = c.Put(context.Background(), "recovered.example", []byte("r")); err == nil {
			var v []byte
			if v, err = c.Get(context.Background(), "recovered.example"); err == nil && string(v) == "r" {
				return time.Since(start)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("the cache did not recover within a minute: %v", err)
	return 0
}

// writer keeps writing numbered values to a few keys through every fault,
// remembering for each key the last value a Put acknowledged and every value
// it attempted after that.
type writer struct {
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	// acked[key] is the number of the last acknowledged value; attempted
	// is the highest number sent.
	acked, attempted map[string]int
}

var writerKeys = []string{"w1.example", "w2.example+rsa", "acme_account+key"}

func startWriter(c certcache.Cache) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{}), acked: map[string]int{}, attempted: map[string]int{}}
	go func() {
		defer close(w.done)
		for n := 1; ; n++ {
			for _, key := range writerKeys {
				select {
				case <-w.stop:
					return
				default:
				}
				w.mu.Lock()
				w.attempted[key] = n
				w.mu.Unlock()
				if err := c.Put(context.Background(), key, numbered(key, n)); err == nil {
					w.mu.Lock()
					w.acked[key] = n
					w.mu.Unlock()
				}
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	return w
}

// numbered is a value that names its key and number and is long enough to
// be torn: 4 KiB, the size of a certificate.
func numbered(key string, n int) []byte {
	head := fmt.Sprintf("%s#%d|", key, n)
	return []byte(head + strings.Repeat(fmt.Sprintf("%08d", n), (4096-len(head))/8))
}

// stopAndVerify checks that no acknowledged write was lost and no value is
// torn: each key holds its last acknowledged value or a later attempted one
// (a Put that failed may still have landed).
func (w *writer) stopAndVerify(t *testing.T, c certcache.Cache) {
	t.Helper()
	close(w.stop)
	<-w.done
	for _, key := range writerKeys {
		acked, attempted := w.acked[key], w.attempted[key]
		v, err := c.Get(context.Background(), key)
		if err != nil {
			t.Errorf("Get(%q) after the faults: %v (last acknowledged #%d)", key, err, acked)
			continue
		}
		ok := false
		for n := acked; n <= attempted && n > 0; n++ {
			if string(v) == string(numbered(key, n)) {
				ok = true
				break
			}
		}
		if !ok {
			head := v
			if len(head) > 40 {
				head = head[:40]
			}
			t.Errorf("%q holds %d bytes %q…; want value #%d (last acknowledged) to #%d (last attempted), whole",
				key, len(v), head, acked, attempted)
		}
		t.Logf("%s: last acknowledged #%d, attempted #%d: intact", key, acked, attempted)
	}
}

func logTable(t *testing.T) {
	results.mu.Lock()
	defer results.mu.Unlock()
	var b strings.Builder
	b.WriteString("\n| backend | fault | error (all calls non-miss, ErrUnavailable) | slowest failing call | recovery of the same Cache |\n|---|---|---|---|---|\n")
	for _, r := range results.rows {
		fmt.Fprintf(&b, "| %s | %s | %s | %v | %v |\n", r.backend, r.fault, r.errKind,
			r.maxErrTime.Round(10*time.Millisecond), r.recovery.Round(10*time.Millisecond))
	}
	t.Log(b.String())
	if path := os.Getenv("CERTCACHE_FAULT_TABLE"); path != "" {
		os.WriteFile(path, []byte(b.String()), 0o644)
	}
}

func withParam(rawURL, param string) string {
	if strings.Contains(rawURL, "?") {
		return rawURL + "&" + param
	}
	return rawURL + "?" + param
}
