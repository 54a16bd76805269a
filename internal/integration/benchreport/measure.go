// Package benchreport measures every certcache backend beside the raw SDK
// or driver call doing the same work on the same server, and writes the
// result as a Markdown table, a CSV file and an SVG chart.
//
// The measuring and the writing live here, with no dependency beyond the
// standard library, and are unit-tested by go test ./... . The run itself
// — starting the servers through internal/integration/testenv and opening every
// backend — is TestBenchReport, behind the build tag benchreport so that a
// normal go test neither compiles nor runs it:
//
//	cd internal/integration && go test -tags benchreport -run TestBenchReport -timeout 30m ./benchreport -args -out bench-results
//
// Some backends have a third, reference side in the same rounds (Row.Ref):
// for S3 and Azure the floor under the SDK, one GET signed by hand (SigV4,
// SharedKey) and sent by net/http; for PostgreSQL, database/sql with its
// default pool, the way most PostgreSQL caches open their database.
//
// # Method
//
// A machine with two shared cores is noisy, so ours and raw are measured in
// alternating short rounds (ours, raw, raw, ours, …) after a warm-up, each
// round at a fixed concurrency for a fixed time; a round's latencies go into
// a histogram with under 0.4% bucket error, and the figure reported is the
// median over rounds of each round's p50 (and p99, and ops/s). Allocations
// are counted in a separate pass at concurrency 1 (runtime.MemStats
// Mallocs delta over the pass's operations), so that the per-op figure is
// not muddied by other workers. Latency includes one time.Now per operation
// (tens of nanoseconds), on both sides alike.
package benchreport

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"time"
)

// Op is one operation under measurement: a Get, a Get of a missing key or
// a Put. It returns an error when the operation did not do what it should
// (a hit that missed, a miss that hit, a failure).
type Op func(ctx context.Context) error

// Config says how long to measure.
type Config struct {
	// Rounds is how many rounds each side runs (alternating).
	Rounds int
	// Round is how long one round lasts.
	Round time.Duration
	// Warmup is how long each side runs, unmeasured, before the rounds.
	Warmup time.Duration
	// AllocPass is how long the allocation-counting pass runs per side.
	AllocPass time.Duration
}

// Stats are one side's figures at one concurrency.
type Stats struct {
	P50, P99  time.Duration // median over rounds of the round's percentile
	OpsPerSec float64       // median over rounds
	Ops       int64         // operations measured, all rounds
}

// Allocs are one side's allocation figures at concurrency 1.
type Allocs struct {
	PerOp      float64 // heap allocations per operation
	BytesPerOp float64 // heap bytes allocated per operation
	Ops        int64
}

// ComparePair measures ours and raw at concurrency conc in alternating
// rounds after a warm-up of each, and returns both sides' figures.
func ComparePair(ctx context.Context, cfg Config, conc int, ours, raw Op) (o, r Stats, err error) {
	st, err := Compare(ctx, cfg, conc, ours, raw)
	if err != nil {
		return o, r, err
	}
	return st[0], st[1], nil
}

// Compare measures each of ops at concurrency conc, in rounds that run every
// op once, in an order that rotates and reverses from round to round so
// that no op always runs first or right after the same other; each op is
// warmed up first. It returns the figures of each op, in order.
func Compare(ctx context.Context, cfg Config, conc int, ops ...Op) ([]Stats, error) {
	if cfg.Rounds < 1 || conc < 1 || len(ops) == 0 {
		return nil, errors.New("benchreport: need at least one round, one worker and one op")
	}
	if cfg.Warmup > 0 {
		for i, op := range ops {
			if _, err := runRound(ctx, op, conc, cfg.Warmup); err != nil {
				return nil, fmt.Errorf("warm-up of side %d: %w", i, err)
			}
		}
	}
	results := make([][]roundResult, len(ops))
	for r := 0; r < cfg.Rounds; r++ {
		for _, i := range roundOrder(len(ops), r) {
			res, err := runRound(ctx, ops[i], conc, cfg.Round)
			if err != nil {
				return nil, fmt.Errorf("round %d, side %d: %w", r, i, err)
			}
			results[i] = append(results[i], res)
		}
	}
	st := make([]Stats, len(ops))
	for i := range ops {
		st[i] = summarize(results[i])
	}
	return st, nil
}

// roundOrder is the order of n sides in round r: 0 1 2, 2 1 0, 1 2 0,
// 0 2 1, … (for two sides: ours raw, raw ours, …).
func roundOrder(n, r int) []int {
	o := make([]int, n)
	for i := range o {
		o[i] = (i + r/2) % n
	}
	if r%2 == 1 {
		slices.Reverse(o)
	}
	return o
}

// CountAllocs runs op alone (concurrency 1) for about d and returns its
// heap allocations per operation.
func CountAllocs(ctx context.Context, d time.Duration, op Op) (Allocs, error) {
	// One call first, so that lazily built state is not counted.
	if err := op(ctx); err != nil {
		return Allocs{}, err
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	var n int64
	deadline := time.Now().Add(d)
	for {
		if err := op(ctx); err != nil {
			return Allocs{}, err
		}
		n++
		// Check the clock every 16 calls: time.Now does not allocate,
		// but there is no need to pay for it on every call.
		if n%16 == 0 && time.Now().After(deadline) {
			break
		}
	}
	runtime.ReadMemStats(&after)
	return Allocs{
		PerOp:      float64(after.Mallocs-before.Mallocs) / float64(n),
		BytesPerOp: float64(after.TotalAlloc-before.TotalAlloc) / float64(n),
		Ops:        n,
	}, nil
}

type roundResult struct {
	p50, p99 time.Duration
	ops      int64
	elapsed  time.Duration
}

// runRound runs op on conc workers for d and returns the round's figures.
// Each worker times its own calls into its own histogram.
func runRound(ctx context.Context, op Op, conc int, d time.Duration) (roundResult, error) {
	hists := make([]Histogram, conc)
	errs := make([]error, conc)
	var wg sync.WaitGroup
	start := make(chan struct{})
	var stop sync.Once
	failed := make(chan struct{})
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func(h *Histogram, errp *error) {
			defer wg.Done()
			<-start
			deadline := time.Now().Add(d)
			t0 := time.Now()
			for {
				if err := op(ctx); err != nil {
					*errp = err
					stop.Do(func() { close(failed) })
					return
				}
				t1 := time.Now()
				h.Add(t1.Sub(t0))
				if t1.After(deadline) {
					return
				}
				select {
				case <-failed:
					return
				default:
				}
				t0 = t1
			}
		}(&hists[w], &errs[w])
	}
	began := time.Now()
	close(start)
	wg.Wait()
	elapsed := time.Since(began)
	if err := errors.Join(errs...); err != nil {
		return roundResult{}, err
	}
	var all Histogram
	for i := range hists {
		all.Merge(&hists[i])
	}
	return roundResult{p50: all.Quantile(0.50), p99: all.Quantile(0.99), ops: all.Count(), elapsed: elapsed}, nil
}

func summarize(rs []roundResult) Stats {
	var p50, p99 []time.Duration
	var rate []float64
	var s Stats
	for _, r := range rs {
		p50 = append(p50, r.p50)
		p99 = append(p99, r.p99)
		rate = append(rate, float64(r.ops)/r.elapsed.Seconds())
		s.Ops += r.ops
	}
	s.P50, s.P99, s.OpsPerSec = median(p50), median(p99), median(rate)
	return s
}

// median returns the middle value (the mean of the two middle ones for an
// even count).
func median[T ~int64 | ~float64](xs []T) T {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// subBuckets is the number of buckets per power of two: a value lands in a
// bucket at most 1/256 (0.4%) wider than itself.
const (
	subBits    = 8
	subBuckets = 1 << subBits
	// Buckets reach 2^(numShifts+subBits) ns, about 18 minutes.
	numShifts = 32
)

// Histogram counts durations in log-linear buckets: exact below 256 ns,
// then 256 buckets per power of two. The zero value is empty.
type Histogram struct {
	counts [subBuckets * (numShifts + 1)]int64
	n      int64
}

func bucketOf(ns int64) int {
	if ns < subBuckets {
		if ns < 0 {
			return 0
		}
		return int(ns)
	}
	shift := bits.Len64(uint64(ns)) - subBits - 1 // ns>>shift is in [256, 511]
	if shift >= numShifts {
		return len(Histogram{}.counts) - 1
	}
	return subBuckets*(shift+1) + int(ns>>shift) - subBuckets
}

// bucketMid returns the middle of bucket i in nanoseconds.
func bucketMid(i int) float64 {
	if i < subBuckets {
		return float64(i)
	}
	shift := i/subBuckets - 1
	lo := int64(i%subBuckets+subBuckets) << shift
	return float64(lo) + float64(int64(1)<<shift)/2 - 0.5
}

// Add counts one duration.
func (h *Histogram) Add(d time.Duration) {
	h.counts[bucketOf(int64(d))]++
	h.n++
}

// Merge adds o's counts to h.
func (h *Histogram) Merge(o *Histogram) {
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// Count is the number of durations added.
func (h *Histogram) Count() int64 { return h.n }

// Quantile returns the q-quantile (0 < q ≤ 1): the smallest bucket whose
// cumulative count reaches q of the total, as the bucket's middle.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := int64(q*float64(h.n) + 0.5)
	if rank < 1 {
		rank = 1
	}
	var cum int64
	for i, c := range h.counts {
		cum += c
		if cum >= rank {
			return time.Duration(bucketMid(i) + 0.5)
		}
	}
	return time.Duration(bucketMid(len(h.counts) - 1))
}
