package benchreport

import (
	"bytes"
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Row is one backend's operation at one concurrency, ours beside raw.
type Row struct {
	Backend string // "redis", "postgres", …
	Raw     string // what the raw side is: "go-redis", "pgxpool", …
	Op      string // "GetHit", "GetMiss", "Put"
	Conc    int
	Ours    Stats
	RawS    Stats
	// Allocations, measured at concurrency 1; nil on other rows.
	OursAllocs, RawAllocs *Allocs
	// RawTimeout is the raw call under the same per-call
	// context.WithTimeout as ours, measured at concurrency 1 in the same
	// rounds; nil on other rows. It tells the cost of the timeout apart
	// from the rest of our layer.
	RawTimeout *Stats
	// Ref is a third side measured in the same rounds where a backend has
	// one, at every concurrency: the signed HTTP request the SDK wraps
	// (the floor for S3 and Azure), or the way most PostgreSQL caches open
	// their database (database/sql with its default pool). RefS is nil
	// where there is none.
	Ref  string
	RefS *Stats
}

// RefRatio is ours' p50 over the reference side's p50; NaN where there is
// none.
func (r Row) RefRatio() float64 {
	if r.RefS == nil || r.RefS.P50 <= 0 {
		return math.NaN()
	}
	return float64(r.Ours.P50) / float64(r.RefS.P50)
}

// Ratio is ours' p50 over raw's p50.
func (r Row) Ratio() float64 {
	if r.RawS.P50 <= 0 {
		return math.NaN()
	}
	return float64(r.Ours.P50) / float64(r.RawS.P50)
}

// TimeoutRatio is ours' p50 over the raw call's p50 under the same
// per-call timeout; NaN where not measured.
func (r Row) TimeoutRatio() float64 {
	if r.RawTimeout == nil || r.RawTimeout.P50 <= 0 {
		return math.NaN()
	}
	return float64(r.Ours.P50) / float64(r.RawTimeout.P50)
}

// Resources are goroutine and socket counts before and after a run.
type Resources struct {
	Name                              string
	GoroutinesBefore, GoroutinesAfter int
	SocketsBefore, SocketsAfter       int
}

// Grew reports whether either count grew by more than slack.
func (r Resources) Grew(slack int) bool {
	return r.GoroutinesAfter > r.GoroutinesBefore+slack || r.SocketsAfter > r.SocketsBefore+slack
}

// Machine describes where a run happened.
type Machine struct {
	NProc     int
	CPU       string
	GoVersion string
	Kernel    string
	Network   string
	Docker    string
}

// Report is a whole run.
type Report struct {
	Machine   Machine
	Command   string
	Config    Config
	Started   time.Time
	Duration  time.Duration
	Rows      []Row
	Resources []Resources
	Slack     int
	Notes     []string
	// TimerFloor is the p50 of an operation that does nothing: the cost of
	// the clock read that every measured p50 includes.
	TimerFloor time.Duration
	// Stopped is how fast each network backend reports a stopped store.
	Stopped []Stopped
}

// Stopped is how long a Get takes to fail on a store whose port nothing
// listens on (a stopped server: the connection is refused), with the
// circuit breaker off so that every Get reaches the store.
type Stopped struct {
	Backend     string
	Gets        int
	Median, Max time.Duration
	// Unavailable: every Get failed with an error matching
	// certcache.ErrUnavailable, none with a miss.
	Unavailable bool
}

// StoppedLimit is how fast a stopped store must be reported: autocert
// calls Get under its Manager-wide lock.
const StoppedLimit = 100 * time.Millisecond

// Target is the p50 ratio a backend should keep to, the allocations a Get
// may make beyond the raw call's, and the memory front's hit bounds.
const (
	TargetRatio          = 1.03
	TargetExtraAllocs    = 3
	TargetMemoryHit      = 250 * time.Nanosecond
	TargetMemoryHitAlloc = 1.0
)

// CountSockets returns the number of this process's file descriptors that
// are sockets, from /proc/self/fd; -1 where there is no /proc.
func CountSockets() int {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	n := 0
	for _, e := range ents {
		if l, err := os.Readlink("/proc/self/fd/" + e.Name()); err == nil && strings.HasPrefix(l, "socket:") {
			n++
		}
	}
	return n
}

// DescribeMachine gathers what BENCHMARKS.md says about the machine.
func DescribeMachine() Machine {
	m := Machine{NProc: runtime.NumCPU(), GoVersion: runtime.Version(), CPU: "unknown", Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	m.Network = "bridge (ports published on 127.0.0.1)"
	switch os.Getenv("CERTCACHE_TEST_NETWORK") {
	case "host":
		m.Network = "host network (CERTCACHE_TEST_NETWORK=host)"
	case "":
		if _, err := os.Stat("/sys/class/net/docker0"); err != nil {
			m.Network = "host network (no docker0 bridge: containers share the host's loopback)"
		}
	}
	m.Docker = "unknown"
	if out, err := exec.Command("docker", "version", "--format", "{{.Server.Version}}").Output(); err == nil {
		m.Docker = strings.TrimSpace(string(out))
	}
	return m
}

func fmtDur(d time.Duration) string {
	ns := float64(d)
	switch {
	case d <= 0:
		return "–"
	case ns < 1e3:
		return fmt.Sprintf("%.0f ns", ns)
	case ns < 1e4:
		return fmt.Sprintf("%.2f µs", ns/1e3)
	case ns < 1e6:
		return fmt.Sprintf("%.1f µs", ns/1e3)
	case ns < 1e7:
		return fmt.Sprintf("%.2f ms", ns/1e6)
	}
	return fmt.Sprintf("%.1f ms", ns/1e6)
}

func fmtRate(r float64) string {
	switch {
	case r >= 1e6:
		return fmt.Sprintf("%.2fM", r/1e6)
	case r >= 1e4:
		return fmt.Sprintf("%.0fk", r/1e3)
	}
	return fmt.Sprintf("%.0f", r)
}

func fmtAllocs(a *Allocs) string {
	if a == nil {
		return ""
	}
	return fmt.Sprintf("%.1f", a.PerOp)
}

func fmtRatio(r float64) string {
	if math.IsNaN(r) {
		return "–"
	}
	s := fmt.Sprintf("%.2f", r)
	if r > TargetRatio {
		s = "**" + s + "**"
	}
	return s
}

// WriteTable writes two Markdown tables: at concurrency 1, ours beside
// the raw call and the raw call under the same per-call timeout, with
// allocations; then every concurrency with p50, p99 and ops/s. Ratios
// above TargetRatio are bold.
func WriteTable(w io.Writer, rows []Row) error {
	var b bytes.Buffer
	b.WriteString("At concurrency 1:\n\n")
	b.WriteString("| backend | raw call | op | ours p50 | raw p50 | **p50 ratio** | raw + timeout p50 | ours / (raw + timeout) | ours allocs/op | raw allocs/op | ours B/op | raw B/op |\n")
	b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		if r.Conc != 1 {
			continue
		}
		rt := "–"
		if r.RawTimeout != nil {
			rt = fmtDur(r.RawTimeout.P50)
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Backend, r.Raw, r.Op, fmtDur(r.Ours.P50), fmtDur(r.RawS.P50), fmtRatio(r.Ratio()),
			rt, fmtRatio(r.TimeoutRatio()), fmtAllocs(r.OursAllocs), fmtAllocs(r.RawAllocs),
			fmtBytes(r.OursAllocs), fmtBytes(r.RawAllocs))
	}
	b.WriteString("\nEvery concurrency:\n\n")
	b.WriteString("| backend | op | conc | ours p50 | raw p50 | p50 ratio | ours p99 | raw p99 | ours ops/s | raw ops/s |\n")
	b.WriteString("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|\n")
	for _, r := range rows {
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s | %s | %s |\n",
			r.Backend, r.Op, r.Conc, fmtDur(r.Ours.P50), fmtDur(r.RawS.P50), fmtRatio(r.Ratio()),
			fmtDur(r.Ours.P99), fmtDur(r.RawS.P99), fmtRate(r.Ours.OpsPerSec), fmtRate(r.RawS.OpsPerSec))
	}
	writeRefTable(&b, rows)
	_, err := w.Write(b.Bytes())
	return err
}

// writeRefTable writes, when some rows have a reference side, ours beside
// it at every concurrency. The ratio is not held to TargetRatio (so not
// bold): a floor below the SDK is not what ours is measured against.
func writeRefTable(b *bytes.Buffer, rows []Row) {
	head := false
	for _, r := range rows {
		if r.RefS == nil {
			continue
		}
		if !head {
			b.WriteString("\nBeside a reference call (a floor under the SDK, or another common way to make the call):\n\n")
			b.WriteString("| backend | reference call | op | conc | ours p50 | reference p50 | ours / reference | raw / reference | ours p99 | reference p99 | ours ops/s | reference ops/s | ours mean | reference mean |\n")
			b.WriteString("|---|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n")
			head = true
		}
		rawRef := math.NaN()
		if r.RefS.P50 > 0 {
			rawRef = float64(r.RawS.P50) / float64(r.RefS.P50)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %d | %s | %s | %.2f | %.2f | %s | %s | %s | %s | %s | %s |\n",
			r.Backend, r.Ref, r.Op, r.Conc, fmtDur(r.Ours.P50), fmtDur(r.RefS.P50), r.RefRatio(), rawRef,
			fmtDur(r.Ours.P99), fmtDur(r.RefS.P99), fmtRate(r.Ours.OpsPerSec), fmtRate(r.RefS.OpsPerSec),
			fmtDur(meanLatency(r.Conc, r.Ours.OpsPerSec)), fmtDur(meanLatency(r.Conc, r.RefS.OpsPerSec)))
	}
}

// meanLatency is the mean time per call of conc callers that each call
// again as soon as a call returns (Little's law: conc / throughput). Unlike
// a percentile it cannot look good while some callers wait for seconds.
func meanLatency(conc int, opsPerSec float64) time.Duration {
	if opsPerSec <= 0 {
		return 0
	}
	return time.Duration(float64(conc) / opsPerSec * float64(time.Second))
}

func fmtBytes(a *Allocs) string {
	if a == nil {
		return ""
	}
	return fmt.Sprintf("%.0f", a.BytesPerOp)
}

// WriteCSV writes rows as CSV with raw numbers (nanoseconds, ops/s).
func WriteCSV(w io.Writer, rows []Row) error {
	cw := csv.NewWriter(w)
	cw.Write([]string{"backend", "raw_call", "op", "concurrency",
		"ours_p50_ns", "raw_p50_ns", "p50_ratio", "ours_p99_ns", "raw_p99_ns",
		"ours_ops_per_s", "raw_ops_per_s", "ours_ops", "raw_ops",
		"ours_allocs_per_op", "raw_allocs_per_op", "ours_bytes_per_op", "raw_bytes_per_op",
		"raw_timeout_p50_ns", "ours_to_raw_timeout_ratio", "ref_call", "ref_p50_ns", "ref_p99_ns", "ours_to_ref_ratio"})
	f := func(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
	af := func(a *Allocs, bytes bool) string {
		switch {
		case a == nil:
			return ""
		case bytes:
			return strconv.FormatFloat(a.BytesPerOp, 'f', 1, 64)
		}
		return strconv.FormatFloat(a.PerOp, 'f', 2, 64)
	}
	rt := func(r Row) string {
		if r.RawTimeout == nil {
			return ""
		}
		return strconv.FormatInt(int64(r.RawTimeout.P50), 10)
	}
	rtRatio := func(r Row) string {
		if r.RawTimeout == nil {
			return ""
		}
		return strconv.FormatFloat(r.TimeoutRatio(), 'f', 4, 64)
	}
	ref := func(r Row) []string {
		if r.RefS == nil {
			return []string{r.Ref, "", "", ""}
		}
		return []string{r.Ref, strconv.FormatInt(int64(r.RefS.P50), 10), strconv.FormatInt(int64(r.RefS.P99), 10),
			strconv.FormatFloat(r.RefRatio(), 'f', 4, 64)}
	}
	for _, r := range rows {
		cw.Write(append([]string{r.Backend, r.Raw, r.Op, strconv.Itoa(r.Conc),
			strconv.FormatInt(int64(r.Ours.P50), 10), strconv.FormatInt(int64(r.RawS.P50), 10),
			strconv.FormatFloat(r.Ratio(), 'f', 4, 64),
			strconv.FormatInt(int64(r.Ours.P99), 10), strconv.FormatInt(int64(r.RawS.P99), 10),
			f(math.Round(r.Ours.OpsPerSec)), f(math.Round(r.RawS.OpsPerSec)),
			strconv.FormatInt(r.Ours.Ops, 10), strconv.FormatInt(r.RawS.Ops, 10),
			af(r.OursAllocs, false), af(r.RawAllocs, false), af(r.OursAllocs, true), af(r.RawAllocs, true),
			rt(r), rtRatio(r)}, ref(r)...))
	}
	cw.Flush()
	return cw.Error()
}

// Misses lists the targets the rows miss, one line each.
func Misses(rows []Row, memoryFront string) []string {
	var out []string
	for _, r := range rows {
		if r.Conc == 1 && r.Ratio() > TargetRatio {
			out = append(out, fmt.Sprintf("%s %s: ours p50 %s is %.2f× raw (%s %s); target ≤ %.2f×",
				r.Backend, r.Op, fmtDur(r.Ours.P50), r.Ratio(), r.Raw, fmtDur(r.RawS.P50), TargetRatio))
		}
		if r.Conc == 1 && strings.HasPrefix(r.Op, "Get") && r.OursAllocs != nil && r.RawAllocs != nil &&
			r.OursAllocs.PerOp > r.RawAllocs.PerOp+TargetExtraAllocs+0.05 {
			out = append(out, fmt.Sprintf("%s %s: %.1f allocs/op, %.1f more than the raw call's %.1f; target ≤ %d more",
				r.Backend, r.Op, r.OursAllocs.PerOp, r.OursAllocs.PerOp-r.RawAllocs.PerOp, r.RawAllocs.PerOp, TargetExtraAllocs))
		}
		if r.Backend == memoryFront && r.Op == "GetHit" && r.Conc == 1 {
			if r.Ours.P50 > TargetMemoryHit {
				out = append(out, fmt.Sprintf("%s GetHit: p50 %s; target ≤ %s", r.Backend, fmtDur(r.Ours.P50), fmtDur(TargetMemoryHit)))
			}
			if r.OursAllocs != nil && r.OursAllocs.PerOp > TargetMemoryHitAlloc+0.05 {
				out = append(out, fmt.Sprintf("%s GetHit: %.2f allocs/op; target ≤ 1", r.Backend, r.OursAllocs.PerOp))
			}
		}
	}
	return out
}

// WriteMarkdown writes the whole report: machine, command, method, table,
// resource checks and missed targets. chart, when not empty, is the path
// of the SVG to show.
func WriteMarkdown(w io.Writer, rep *Report, chart, memoryFront string) error {
	var b bytes.Buffer
	m := rep.Machine
	fmt.Fprintf(&b, "Run of %s UTC, %s long.\n\n", rep.Started.UTC().Format("2006-01-02 15:04"), rep.Duration.Round(time.Second))
	fmt.Fprintf(&b, "- Machine: %d CPUs (`nproc`), %s; kernel %s; %s; Docker %s, %s.\n",
		m.NProc, m.CPU, m.Kernel, m.GoVersion, m.Docker, m.Network)
	fmt.Fprintf(&b, "- Command: `%s`\n", rep.Command)
	fmt.Fprintf(&b, "- Method: per backend, op and concurrency, a %v warm-up of each side, then %d rounds of %v each, alternating ours and raw; figures are the median over rounds of each round's p50, p99 and ops/s. Allocations: a separate %v pass per side at concurrency 1 (Mallocs delta / ops).\n\n",
		rep.Config.Warmup, rep.Config.Rounds, rep.Config.Round, rep.Config.AllocPass)
	if rep.TimerFloor > 0 {
		fmt.Fprintf(&b, "- Timer floor: an empty operation measures %s p50 at concurrency 1 (one clock read per operation); every p50 below includes it, on both sides.\n\n", fmtDur(rep.TimerFloor))
	}
	if chart != "" {
		fmt.Fprintf(&b, "![p50 at concurrency 1, ours beside raw](%s)\n\n", chart)
	}
	if err := WriteTable(&b, rep.Rows); err != nil {
		return err
	}
	b.WriteString("\nRatios above the target (≤ 1.03× the raw call's p50) are bold. \"raw + timeout\" is the raw call under the same per-call context.WithTimeout(ctx, 10s) that certcache puts around every call, measured in the same rounds.\n\n")
	if len(rep.Stopped) > 0 {
		fmt.Fprintf(&b, "A stopped store (nothing listens on its port: the connection is refused): Get with the circuit breaker off (`breaker=false`), so that each call reaches the store; over %s is bold:\n\n", fmtDur(StoppedLimit))
		b.WriteString("| backend | Gets | median | worst | every error ErrUnavailable, none a miss |\n|---|--:|--:|--:|---|\n")
		for _, st := range rep.Stopped {
			med, worst := fmtDur(st.Median), fmtDur(st.Max)
			if st.Max > StoppedLimit {
				worst = "**" + worst + "**"
			}
			if st.Median > StoppedLimit {
				med = "**" + med + "**"
			}
			ok := "yes"
			if !st.Unavailable {
				ok = "**no**"
			}
			fmt.Fprintf(&b, "| %s | %d | %s | %s | %s |\n", st.Backend, st.Gets, med, worst, ok)
		}
		b.WriteString("\n")
	}
	b.WriteString("Goroutines and sockets (/proc/self/fd entries that link to socket:) before opening and after closing each backend's caches and clients:\n\n")
	b.WriteString("| backend | goroutines before | after | sockets before | after | grew? |\n|---|--:|--:|--:|--:|---|\n")
	for _, r := range rep.Resources {
		grew := "no"
		if r.Grew(rep.Slack) {
			grew = "**yes**"
		}
		fmt.Fprintf(&b, "| %s | %d | %d | %d | %d | %s |\n", r.Name, r.GoroutinesBefore, r.GoroutinesAfter, r.SocketsBefore, r.SocketsAfter, grew)
	}
	fmt.Fprintf(&b, "\n(slack: %d)\n", rep.Slack)
	if misses := Misses(rep.Rows, memoryFront); len(misses) > 0 {
		b.WriteString("\nTargets missed at concurrency 1:\n\n")
		for _, s := range misses {
			b.WriteString("- " + s + "\n")
		}
	}
	for _, n := range rep.Notes {
		b.WriteString("\n" + n + "\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}
