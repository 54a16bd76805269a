package reliability

import (
	"context"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/certcache/certcache/layered"
)

// BenchmarkPreload fills a store with 10,000 certificates and restarts a
// node on it (see restart): every name's first handshake, with and without
// memory_preload, on loopback and behind 10 ms of latency (toxiproxy,
// server to client). It reports the handshakes' p50 and p99 and the time
// until the last one ended; for the preload alone (a node that only
// preloads, no handshakes), the time it takes, the heap it leaves (the
// memory front's copies), what it allocates in all (the garbage it makes
// besides) and the CPU time the process spent meanwhile. Run it once per
// case:
//
//	go test -run '^$' -bench Preload -benchtime 1x ./internal/reliability/
//
// Without a preload, a restart behind 10 ms reads the 10,000 names one
// after the other: about two minutes per backend.
func BenchmarkPreload(b *testing.B) {
	if testing.Short() {
		b.Skip("fills Redis and PostgreSQL with 10,000 certificates each")
	}
	const n = 10000
	certs := sync.OnceValue(func() []storedCert { return makeCerts(b, n) })
	for _, be := range []struct {
		name  string
		start func(b *testing.B) (*testenv.Server, string)
	}{
		{"redis", func(b *testing.B) (*testenv.Server, string) {
			srv, u := testenv.Redis(b)
			return srv, u + "/0?prefix=preload"
		}},
		{"postgres", func(b *testing.B) (*testenv.Server, string) {
			srv, u := testenv.Postgres(b)
			return srv, u + "&table=preload"
		}},
	} {
		b.Run(be.name, func(b *testing.B) {
			srv, direct := be.start(b)
			storeCerts(b, direct, certs())
			px := newProxy(b, srv.Addr(0))
			px.add(b, `{"name":"lat","type":"latency","stream":"downstream","attributes":{"latency":10}}`)
			slow := strings.Replace(direct, srv.Addr(0), px.addr(), 1)
			for _, link := range []struct{ name, url string }{{"loopback", direct}, {"latency10ms", slow}} {
				b.Run(link.name+"/cold", func(b *testing.B) {
					for b.Loop() {
						reportRestart(b, restart(b, link.url, certs()))
					}
				})
				b.Run(link.name+"/preload", func(b *testing.B) {
					for b.Loop() {
						preloadAlone(b, link.url+"&memory_preload=true", n)
						reportRestart(b, restart(b, link.url+"&memory_preload=true", certs()))
					}
				})
			}
		})
	}
}

func reportRestart(b *testing.B, r restartResult) {
	b.Logf("%v", r)
	b.ReportMetric(float64(r.percentile(0.50).Microseconds())/1e3, "p50-ms")
	b.ReportMetric(float64(r.percentile(0.99).Microseconds())/1e3, "p99-ms")
	b.ReportMetric(r.all.Seconds(), "all-s")
	b.ReportMetric(0, "ns/op") // one restart per case: the metrics above are the point
}

// preloadAlone opens rawURL, waits for its preload of n certificates and
// reports its time and memory.
func preloadAlone(b *testing.B, rawURL string, n int) {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/gc/heap/allocs:bytes"}}
	read := func() (live, allocs uint64) {
		metrics.Read(samples)
		return samples[0].Value.Uint64(), samples[1].Value.Uint64()
	}
	runtime.GC()
	live0, allocs0 := read()
	cpu0, cpuOK := testenv.CPUTime()
	start := time.Now()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	stack := certcache.Uncoordinated(c).(*layered.Stack)
	<-stack.PreloadDone()
	took := time.Since(start)
	cpu1, cpuOK1 := testenv.CPUTime()
	_, allocs := read()
	runtime.GC()
	live, _ := read()
	st := stack.Stats()
	if st.PreloadLoaded != uint64(n) || st.PreloadErrors != 0 {
		b.Fatalf("preload Stats = %+v, want %d loaded, no errors", st, n)
	}
	heap := int64(live) - int64(live0) // negative when the GC freed more than the cache holds
	b.Logf("preload alone: %d certificates (%d bytes of keys and values) in %v (%v of CPU); heap %+d KiB after, %d KiB allocated",
		st.PreloadLoaded, st.Bytes, took.Round(time.Millisecond), (cpu1 - cpu0).Round(time.Millisecond), heap>>10, (allocs-allocs0)>>10)
	b.ReportMetric(took.Seconds(), "preload-s")
	if cpuOK && cpuOK1 {
		b.ReportMetric((cpu1 - cpu0).Seconds(), "preload-cpu-s")
	}
	b.ReportMetric(float64(heap), "preload-heap-B")
	b.ReportMetric(float64(allocs-allocs0), "preload-alloc-B")
	runtime.KeepAlive(c)
}
