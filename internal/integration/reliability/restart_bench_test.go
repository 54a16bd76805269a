package reliability

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// BenchmarkRestart measures the restart of a node with memory_preload on
// Redis and PostgreSQL, on loopback and behind 10 ms of latency
// (toxiproxy, server to client), as issue 24 asks (make bench-restart):
//
//   - n1000: a node with 1,000 certificates restarted with every first
//     handshake at once (see restart), five times on each link, the links
//     alternating; each run behind 10 ms against the loopback run beside it;
//   - n10000/preload: a node that only preloads 10,000 certificates: the
//     time, the heap the memory front keeps and what it allocates, beside
//     the time of the listing alone and the heap of a preload of an empty
//     namespace (the fixed part: the client, its connection, the front);
//   - n10000/headstart: a node with 10,000 certificates that gets a 2 s
//     head start, then 64 clients handshaking every name; timed from the
//     first handshake.
//
// Each restart logs its heap: what the open cache and the Manager hold
// after a GC (the Manager's parsed certificates included).
//
//	go test -run '^$' -bench '^BenchmarkRestart$' -benchtime 1x -v ./internal/reliability
func BenchmarkRestart(b *testing.B) {
	if testing.Short() {
		b.Skip("fills Redis and PostgreSQL with 11,000 certificates each")
	}
	const small, large, runs, headStart = 1000, 10000, 5, 2 * time.Second
	certs := sync.OnceValue(func() []storedCert { return makeCerts(b, large) })
	for _, be := range []struct {
		name  string
		start func(b *testing.B) (*testenv.Server, string)
		ns    func(ns string) string // the URL's tail selecting namespace ns
	}{
		{"redis", func(b *testing.B) (*testenv.Server, string) {
			srv, u := testenv.Redis(b)
			return srv, u + "/0?"
		}, func(ns string) string { return "prefix=" + ns }},
		{"postgres", func(b *testing.B) (*testenv.Server, string) {
			srv, u := testenv.Postgres(b)
			return srv, u + "&"
		}, func(ns string) string { return "table=" + ns }},
	} {
		b.Run(be.name, func(b *testing.B) {
			srv, base := be.start(b)
			storeCerts(b, base+be.ns("restart1k"), certs()[:small])
			storeCerts(b, base+be.ns("restart10k"), certs())
			px := newProxy(b, srv.Addr(0))
			px.add(b, `{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":10}}`)
			slow := strings.Replace(base, srv.Addr(0), px.addr(), 1)
			links := []struct{ name, url string }{{"loopback", base}, {"latency10ms", slow}}
			const preload = "&memory_preload=true"

			b.Run("n1000", func(b *testing.B) {
				for b.Loop() {
					worst := 0.0
					for run := range runs {
						var all [2]time.Duration
						for i, link := range links {
							r := restart(b, link.url+be.ns("restart1k")+preload, certs()[:small])
							b.Logf("run %d, %s: %v", run, link.name, r)
							checkPreloaded(b, r, small)
							all[i] = r.all
						}
						ratio := float64(all[1]) / float64(all[0])
						b.Logf("run %d: 10 ms / loopback = %.2f", run, ratio)
						worst = max(worst, ratio)
					}
					b.ReportMetric(worst, "worst-ratio")
					b.ReportMetric(0, "ns/op")
				}
			})
			for _, link := range links {
				b.Run("n10000/preload/"+link.name, func(b *testing.B) {
					for b.Loop() {
						// The fixed part of the heap: a preload of nothing
						// (its metrics are replaced by the next).
						preloadAlone(b, link.url+be.ns("restart0")+preload, 0)
						listAlone(b, link.url+be.ns("restart10k"), large)
						preloadAlone(b, link.url+be.ns("restart10k")+preload, large)
						b.ReportMetric(0, "ns/op")
					}
				})
			}
			b.Run("n10000/headstart", func(b *testing.B) {
				for b.Loop() {
					var all [2]time.Duration
					for i, link := range links {
						r := restartAfter(b, link.url+be.ns("restart10k")+preload, certs(), headStart)
						b.Logf("%s, %v head start: %v", link.name, headStart, r)
						checkPreloaded(b, r, large)
						all[i] = r.all
						b.ReportMetric(r.all.Seconds(), link.name+"-all-s")
						b.ReportMetric(float64(r.percentile(0.99).Microseconds())/1e3, link.name+"-p99-ms")
						b.ReportMetric(float64(r.heap), link.name+"-heap-B")
					}
					b.Logf("10 ms / loopback = %.2f", float64(all[1])/float64(all[0]))
					b.ReportMetric(float64(all[1])/float64(all[0]), "ratio")
					b.ReportMetric(0, "ns/op")
				}
			})
		})
	}
}

// listAlone times the listing of the n keys at rawURL, without values:
// what a preload that took the values in the listing's own pass would
// cost at least.
func listAlone(b *testing.B, rawURL string, n int) {
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	start := time.Now()
	got := 0
	for _, err := range certcache.List(context.Background(), c, "") {
		if err != nil {
			b.Fatal(err)
		}
		got++
	}
	took := time.Since(start)
	if got != n {
		b.Fatalf("listed %d keys, want %d", got, n)
	}
	b.Logf("listing alone: %d keys in %v", got, took.Round(time.Millisecond))
	b.ReportMetric(took.Seconds(), "list-s")
}

// checkPreloaded fails b unless the preload of a restart listed n
// certificates without an error.
func checkPreloaded(b *testing.B, r restartResult, n int) {
	b.Helper()
	if r.stats.PreloadErrors != 0 || r.stats.PreloadListed != uint64(n) {
		b.Errorf("preload Stats = %+v, want %d listed, no errors", r.stats, n)
	}
}
