package benchreport

import (
	"bytes"
	"context"
	"encoding/csv"
	"encoding/xml"
	"errors"
	"io"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"
)

func TestHistogramQuantiles(t *testing.T) {
	var h Histogram
	// 1..100000 ns: the p50 is 50000, the p99 99000, each within a bucket.
	for i := 1; i <= 100000; i++ {
		h.Add(time.Duration(i))
	}
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 50000}, {0.99, 99000}, {0.001, 100}} {
		got := float64(h.Quantile(c.q))
		if math.Abs(got-c.want)/c.want > 1.0/256 {
			t.Errorf("Quantile(%v) = %v, want %v within 0.4%%", c.q, got, c.want)
		}
	}
	if h.Count() != 100000 {
		t.Errorf("Count = %d", h.Count())
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Buckets are contiguous and increasing, and every value lies within
	// 1/256 of its bucket's middle.
	last := -1
	for _, ns := range []int64{0, 1, 255, 256, 257, 511, 512, 513, 1023, 1024, 99999, 1e6, 1e9, 1e12} {
		i := bucketOf(ns)
		if i < last {
			t.Errorf("bucketOf(%d) = %d, below the previous %d", ns, i, last)
		}
		last = i
		if mid := bucketMid(i); ns > 0 && math.Abs(mid-float64(ns))/float64(ns) > 1.0/256 {
			t.Errorf("value %d in bucket %d with middle %v", ns, i, mid)
		}
	}
	var h Histogram
	h.Add(-5)              // a clock step backwards does not panic
	h.Add(100 * time.Hour) // nor does an absurd duration
	if h.Quantile(1) == 0 {
		t.Error("Quantile of an absurd duration is 0")
	}
}

func TestComparePair(t *testing.T) {
	spin := func(d time.Duration) Op {
		return func(context.Context) error {
			for t0 := time.Now(); time.Since(t0) < d; {
			}
			return nil
		}
	}
	cfg := Config{Rounds: 3, Round: 50 * time.Millisecond, Warmup: 10 * time.Millisecond}
	o, r, err := ComparePair(context.Background(), cfg, 2, spin(40*time.Microsecond), spin(10*time.Microsecond))
	if err != nil {
		t.Fatal(err)
	}
	// Generous bounds: the machine is shared.
	if o.P50 < 40*time.Microsecond || r.P50 < 10*time.Microsecond || o.P50 <= r.P50 {
		t.Errorf("p50 ours %v raw %v; want ours ≥ 40µs > raw ≥ 10µs", o.P50, r.P50)
	}
	if o.P99 < o.P50 || o.OpsPerSec <= 0 || o.Ops == 0 || r.Ops <= o.Ops {
		t.Errorf("ours %+v raw %+v", o, r)
	}

	boom := errors.New("boom")
	_, _, err = ComparePair(context.Background(), cfg, 4, spin(0), func(context.Context) error { return boom })
	if !errors.Is(err, boom) {
		t.Errorf("a failing op: err = %v, want boom", err)
	}
}

func TestCompareThree(t *testing.T) {
	// Every side runs every round, whatever the order.
	var counts [3]int
	op := func(i int) Op {
		return func(context.Context) error { counts[i]++; time.Sleep(time.Millisecond); return nil }
	}
	cfg := Config{Rounds: 4, Round: 20 * time.Millisecond}
	st, err := Compare(context.Background(), cfg, 1, op(0), op(1), op(2))
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range st {
		if s.Ops < 4 || counts[i] == 0 || s.P50 < time.Millisecond {
			t.Errorf("side %d: %+v (%d calls)", i, s, counts[i])
		}
	}
	firsts := map[int]bool{}
	for r := 0; r < 6; r++ {
		o := roundOrder(3, r)
		firsts[o[0]] = true
		if len(o) != 3 || o[0]+o[1]+o[2] != 3 {
			t.Errorf("roundOrder(3, %d) = %v", r, o)
		}
	}
	if len(firsts) != 3 {
		t.Errorf("not every side goes first in six rounds: %v", firsts)
	}
}

func TestCountAllocs(t *testing.T) {
	var sink []byte
	a, err := CountAllocs(context.Background(), 20*time.Millisecond, func(context.Context) error {
		sink = make([]byte, 4096)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	_ = sink
	if a.PerOp < 0.99 || a.PerOp > 1.1 || a.BytesPerOp < 4096 || a.Ops == 0 {
		t.Errorf("one 4 KiB allocation per op: got %+v", a)
	}
}

func sampleRows() []Row {
	st := func(p50 time.Duration) Stats {
		return Stats{P50: p50, P99: 3 * p50, OpsPerSec: 1e9 / float64(p50), Ops: 1000}
	}
	return []Row{
		{Backend: "redis", Raw: "go-redis", Op: "GetHit", Conc: 1, Ours: st(101 * time.Microsecond), RawS: st(100 * time.Microsecond),
			OursAllocs: &Allocs{PerOp: 12, BytesPerOp: 5000}, RawAllocs: &Allocs{PerOp: 9, BytesPerOp: 4800}, RawTimeout: &Stats{P50: 100 * time.Microsecond}},
		{Backend: "redis", Raw: "go-redis", Op: "Put", Conc: 1, Ours: st(150 * time.Microsecond), RawS: st(100 * time.Microsecond)},
		{Backend: "redis", Raw: "go-redis", Op: "Put", Conc: 16, Ours: st(time.Millisecond), RawS: st(time.Millisecond),
			Ref: "signed GET", RefS: &Stats{P50: 800 * time.Microsecond, P99: 2 * time.Millisecond, OpsPerSec: 1250}},
		{Backend: "memory <front>", Raw: "map+RWMutex", Op: "GetHit", Conc: 1, Ours: st(300), RawS: st(200),
			OursAllocs: &Allocs{PerOp: 2}},
	}
}

func TestWriteTableAndMisses(t *testing.T) {
	rows := sampleRows()
	var b bytes.Buffer
	if err := WriteTable(&b, rows); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"| redis | go-redis | GetHit | 101.0 µs | 100.0 µs | 1.01 | 100.0 µs | 1.01 | 12.0 | 9.0 | 5000 | 4800 |",
		"| redis | Put | 16 | 1.00 ms | 1.00 ms | 1.00 |", "| **1.50** |", "| 300 ns | 200 ns |",
		"| redis | signed GET | Put | 16 | 1.00 ms | 800.0 µs | 1.25 | 1.25 | 3.00 ms | 2.00 ms | 1000 | 1250 | 16.0 ms | 12.8 ms |"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
	misses := strings.Join(Misses(rows, "memory <front>"), "\n")
	for _, want := range []string{"redis Put", "GetHit: p50 300 ns", "2.00 allocs/op"} {
		if !strings.Contains(misses, want) {
			t.Errorf("misses lack %q:\n%s", want, misses)
		}
	}
	if strings.Contains(misses, "redis GetHit") {
		t.Errorf("a 1.01 ratio, or 3 allocations above the raw call's, counted as a miss:\n%s", misses)
	}
	over := []Row{{Backend: "gs", Op: "GetMiss", Conc: 1, Ours: Stats{P50: 100}, RawS: Stats{P50: 100},
		OursAllocs: &Allocs{PerOp: 30.4}, RawAllocs: &Allocs{PerOp: 27}}}
	if got := strings.Join(Misses(over, ""), "\n"); !strings.Contains(got, "gs GetMiss: 30.4 allocs/op, 3.4 more than the raw call's 27.0; target ≤ 3 more") {
		t.Errorf("3.4 allocations above the raw call's: misses = %q", got)
	}

	var m bytes.Buffer
	rep := &Report{Rows: rows, Resources: []Resources{{Name: "redis", GoroutinesBefore: 5, GoroutinesAfter: 9}}, Slack: 2, Command: "go test",
		Stopped: []Stopped{
			{Backend: "redis", Gets: 7, Median: 50 * time.Microsecond, Max: 400 * time.Microsecond, Unavailable: true},
			{Backend: "s3", Gets: 7, Median: 3 * time.Second, Max: 4 * time.Second},
		}}
	if err := WriteMarkdown(&m, rep, "chart.svg", "memory <front>"); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"![p50", "**yes**", "| redis | 7 | 50.0 µs | 400.0 µs | yes |", "| s3 | 7 | **3000.0 ms** | **4000.0 ms** | **no** |"} {
		if !strings.Contains(m.String(), want) {
			t.Errorf("markdown lacks %q:\n%s", want, m.String())
		}
	}
}

func TestWriteCSV(t *testing.T) {
	var b bytes.Buffer
	if err := WriteCSV(&b, sampleRows()); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(&b).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 || len(recs[0]) != len(recs[1]) {
		t.Fatalf("csv: %v", recs)
	}
	if recs[1][4] != "101000" || recs[1][6] != "1.0100" || recs[1][13] != "12.00" || recs[2][13] != "" ||
		recs[1][17] != "100000" || recs[1][18] != "1.0100" || recs[2][17] != "" {
		t.Errorf("row: %v", recs[1])
	}
	// Only the third row has a reference side.
	if recs[3][19] != "signed GET" || recs[3][20] != "800000" || recs[3][21] != "2000000" || recs[3][22] != "1.2500" ||
		recs[1][19] != "" || recs[1][20] != "" || recs[1][22] != "" {
		t.Errorf("reference columns: %v / %v", recs[1], recs[3])
	}
}

// TestWriteChart checks that the chart is well-formed XML with a bar per
// side and row at the concurrency asked for, labels escaped.
func TestWriteChart(t *testing.T) {
	var b bytes.Buffer
	if err := WriteChart(&b, sampleRows(), 1, "p50 <c=1>"); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	rects, texts := 0, []string{}
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, b.String())
		}
		switch tok := tok.(type) {
		case xml.StartElement:
			if tok.Name.Local == "rect" {
				rects++
			}
		case xml.CharData:
			texts = append(texts, string(tok))
		}
	}
	// A background, two legend swatches, two bars for each of three rows.
	if rects != 3+2*3 {
		t.Errorf("%d rects, want 9", rects)
	}
	all := strings.Join(texts, "|")
	// The redis GetHit row has a raw+timeout figure: its ratio shows too.
	if n := strings.Count(all, "1.01×"); n != 2 {
		t.Errorf("1.01× shown %d times, want 2 (p50 ratio and ratio to raw + timeout): %s", n, all)
	}
	for _, want := range []string{"p50 <c=1>", "1.50×", "memory <front> · GetHit"} {
		if !strings.Contains(all, want) {
			t.Errorf("chart text lacks %q: %s", want, all)
		}
	}
}

func TestCountSockets(t *testing.T) {
	if runtime.GOOS == "linux" && CountSockets() < 0 {
		t.Error("no socket count from /proc/self/fd on Linux")
	}
	m := DescribeMachine()
	if m.NProc < 1 || m.GoVersion == "" {
		t.Errorf("machine: %+v", m)
	}
}
