package layered_test

import (
	"fmt"
	"runtime"
	"sync"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/certcache/certcache/layered"
)

// BenchmarkMemoryHit measures a Get answered by the memory front for a
// 4 KiB value (target: ≤ 250 ns/op, 1 alloc/op, the caller's copy), beside
// the same Get through the portable layer (mem://) and a bare mutex-guarded
// map with the same copy: the floor.
func BenchmarkMemoryHit(b *testing.B) {
	v := drivertest.PEMLike(4096)
	const key = "example.com"
	back, err := certcache.Open(bg(), "mem://")
	if err != nil {
		b.Fatal(err)
	}
	stack, err := layered.New(layered.NewMemory(nil), back)
	if err != nil {
		b.Fatal(err)
	}
	defer stack.Close()
	mem := layered.NewMemory(nil)
	plain, _ := certcache.Open(bg(), "mem://")
	for _, c := range []certcache.Cache{stack, mem, plain} {
		if err := c.Put(bg(), key, v); err != nil {
			b.Fatal(err)
		}
	}
	get := func(c certcache.Cache) func(b *testing.B) {
		return func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			defer reportCPU(b)()
			for b.Loop() {
				if _, err := c.Get(bg(), key); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("Stack", get(stack))
	b.Run("Memory", get(mem))
	b.Run("StackParallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		defer reportCPU(b)()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := stack.Get(bg(), key); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("raw/mem", get(plain))
	b.Run("raw/MutexMap", func(b *testing.B) {
		var mu sync.Mutex
		m := map[string][]byte{key: v}
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		defer reportCPU(b)()
		for b.Loop() {
			mu.Lock()
			s := m[key]
			mu.Unlock()
			_ = append([]byte{}, s...)
		}
	})
}

// reportCPU, deferred at the start of a benchmark, reports the process's CPU
// time per operation (all threads, the GC's included) as cpu-ns/op. On a
// shared machine wall time per op (ns/op) counts the time other processes
// hold the cores; CPU time does not.
func reportCPU(b *testing.B) func() {
	start, ok := testenv.CPUTime()
	return func() {
		end, ok2 := testenv.CPUTime()
		if ok && ok2 && b.N > 0 {
			b.ReportMetric(float64(end-start)/float64(b.N), "cpu-ns/op")
		}
	}
}

// BenchmarkStack runs the shared backend benchmarks (hit, miss, put) on a
// memory front over mem://. A miss goes to the authority every time.
func BenchmarkStack(b *testing.B) {
	c, err := certcache.Open(bg(), "mem://?memory=true")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	drivertest.RunBenchmarks(b, c)
}

// BenchmarkMemory10k reports the heap a Memory tier holding 10,000
// certificates (drivertest.CertValue, about 3.5 KiB each) takes, in total
// and per entry beyond the key and value themselves.
func BenchmarkMemory10k(b *testing.B) {
	const n = 10000
	v := drivertest.CertValue()
	keys := make([]string, n)
	payload := 0
	for i := range keys {
		keys[i] = fmt.Sprintf("host-%05d.example.com", i)
		payload += len(keys[i]) + len(v)
	}
	var heap uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		m := layered.NewMemory(&layered.MemoryOptions{MaxEntries: n, MaxBytes: 1 << 30})
		for _, k := range keys {
			if err := m.Put(bg(), k, v); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		heap = after.HeapAlloc - before.HeapAlloc
		if st, _ := layered.StatsOf(m); st.Entries != n {
			b.Fatalf("holds %d entries, want %d", st.Entries, n)
		}
		runtime.KeepAlive(m)
	}
	b.ReportMetric(float64(heap), "heap-B")
	b.ReportMetric(float64(heap)/n, "heap-B/entry")
	b.ReportMetric(float64(int(heap)-payload)/n, "overhead-B/entry")
	b.ReportMetric(0, "ns/op") // the time to fill is not the point
}
