//go:build benchreport

package benchreport

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"cloud.google.com/go/storage"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/jackc/pgx/v5/stdlib" // the "pgx" database/sql driver
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
	"google.golang.org/api/option"
	"modernc.org/sqlite"

	"github.com/certcache/certcache"
	_ "github.com/certcache/certcache/azblob"
	"github.com/certcache/certcache/drivertest"
	_ "github.com/certcache/certcache/gs"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/integration/testenv"
	_ "github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
)

var (
	flagOut      = flag.String("out", "bench-results", "directory for the report (relative to the module root)")
	flagRounds   = flag.Int("rounds", 5, "rounds per side")
	flagRound    = flag.Duration("round", 300*time.Millisecond, "length of one round")
	flagWarmup   = flag.Duration("warmup", 200*time.Millisecond, "warm-up per side before the rounds")
	flagAllocs   = flag.Duration("allocpass", 300*time.Millisecond, "length of the allocation pass per side")
	flagConc     = flag.String("conc", "1,16,64", "concurrencies")
	flagBackends = flag.String("backends", "", "comma-separated backends to run (default all)")
	flagSlack    = flag.Int("slack", 4, "goroutines or sockets a backend may leave behind after closing")
	flagProfile  = flag.String("profile", "", "BACKEND/OP: write CPU and allocation profiles of ours at concurrency 1 to the out directory")
)

// The keys every side uses; ours maps them to the physical names the raw
// side uses directly (a prefix, a table, an object name).
const (
	keyHit = "bench.example.com"
	// keyMiss is no certificate key (no dot): a miss of one is settled
	// by issuance coordination (an order lease, then ErrIssuing to every
	// later caller; coordinate.go), which is not a read of the store.
	keyMiss = "missing-key"
	keyPut  = "bench-put.example.com"
)

var opNames = []string{"GetHit", "GetMiss", "Put"}

// memoryFront is the name of the row of the layered memory front.
const memoryFront = "memory front"

// bench is one backend set up for measuring: our cache and the raw calls.
type bench struct {
	name, raw string
	ours      certcache.Cache
	rawOps    map[string]Op
	close     func() // closes what the raw and reference sides opened
	// ref names the reference side, refOps its operations (only those it
	// has: a floor under the SDK measures Gets); see Row.Ref.
	ref    string
	refOps map[string]Op
	// stopped is ours's URL with the server's address replaced by one
	// that nothing listens on (see stoppedURL); "" for in-process stores.
	stopped string
}

// stoppedURL returns rawURL with the server address addr, as it is or
// query-escaped, replaced by a loopback port that nothing listens on: to
// a client, a stopped server.
func stoppedURL(t *testing.T, rawURL, addr string) string {
	t.Helper()
	closed := testenv.ClosedAddr(t)
	out := strings.ReplaceAll(rawURL, addr, closed)
	out = strings.ReplaceAll(out, url.QueryEscape(addr), url.QueryEscape(closed))
	if out == rawURL {
		t.Fatalf("URL %q does not name the server's address %s", rawURL, addr)
	}
	return out
}

// measureStopped opens a cache on a stopped store, with the circuit
// breaker off so that every Get reaches it, and times gets Gets.
func measureStopped(ctx context.Context, name, rawURL string, gets int) (Stopped, error) {
	c, err := certcache.Open(ctx, withParam(rawURL, "breaker=false"))
	if err != nil {
		return Stopped{}, err
	}
	defer c.Close()
	st := Stopped{Backend: name, Gets: gets, Unavailable: true}
	times := make([]time.Duration, 0, gets)
	for range gets {
		start := time.Now()
		_, err := certcache.Uncoordinated(c).Get(ctx, keyHit)
		times = append(times, time.Since(start))
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) || !errors.Is(err, certcache.ErrUnavailable) {
			st.Unavailable = false
		}
	}
	slices.Sort(times)
	st.Median, st.Max = times[len(times)/2], times[len(times)-1]
	return st, nil
}

// setup opens a backend's cache and raw client; servers are already up.
type setup func(t *testing.T, ctx context.Context, value []byte) *bench

func TestBenchReport(t *testing.T) {
	ctx := context.Background()
	started := time.Now()
	cfg := Config{Rounds: *flagRounds, Round: *flagRound, Warmup: *flagWarmup, AllocPass: *flagAllocs}
	concs := parseConcs(t, *flagConc)
	out := outDir(t, *flagOut)
	value := drivertest.CertValue()
	t.Logf("value: %d bytes (drivertest.CertValue)", len(value))

	all := []struct {
		name  string
		setup func(t *testing.T) setup // starts servers, returns the opener
	}{
		{"mem", func(*testing.T) setup { return setupMem }},
		{memoryFront, func(*testing.T) setup { return setupMemoryFront }},
		{"file", func(*testing.T) setup { return setupFile }},
		{"sqlite", func(*testing.T) setup { return setupSQLite }},
		{"redis", startRedis},
		{"postgres", startPostgres},
		{"mariadb", startMariaDB},
		{"s3", startS3},
		{"azblob", startAzblob},
		{"dynamodb", startDynamoDB},
		{"gs", startGS},
	}
	want := map[string]bool{}
	for _, n := range strings.Split(*flagBackends, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	// Every server first, so that the goroutine and socket counts taken
	// before and after the measurements see the same test environment.
	var setups []struct {
		name string
		open setup
	}
	for _, b := range all {
		if len(want) > 0 && !want[b.name] {
			continue
		}
		setups = append(setups, struct {
			name string
			open setup
		}{b.name, b.setup(t)})
	}
	if len(setups) == 0 {
		t.Fatalf("-backends=%q names no backend", *flagBackends)
	}

	rep := &Report{
		Machine: DescribeMachine(), Config: cfg, Started: started, Slack: *flagSlack,
		Command: "cd internal/integration && go test -tags benchreport -run TestBenchReport -timeout 30m ./benchreport -args -out bench-results",
	}
	floor, err := Compare(ctx, cfg, 1, func(context.Context) error { return nil })
	if err != nil {
		t.Fatal(err)
	}
	rep.TimerFloor = floor[0].P50
	t.Logf("timer floor: an empty op measures %s p50", fmtDur(rep.TimerFloor))
	total := Resources{Name: "whole run", GoroutinesBefore: runtime.NumGoroutine(), SocketsBefore: CountSockets()}
	var failures []string
	for _, s := range setups {
		// A subtest per backend: one that cannot be set up or measured
		// fails alone, and the report still holds the others.
		t.Run(s.name, func(t *testing.T) {
			res := Resources{Name: s.name, GoroutinesBefore: runtime.NumGoroutine(), SocketsBefore: CountSockets()}
			defer func() {
				res.GoroutinesAfter, res.SocketsAfter = settle(res, *flagSlack)
				rep.Resources = append(rep.Resources, res)
				t.Logf("%s: goroutines %d → %d, sockets %d → %d", s.name, res.GoroutinesBefore, res.GoroutinesAfter, res.SocketsBefore, res.SocketsAfter)
				if res.Grew(*flagSlack) {
					t.Errorf("%s left goroutines %d → %d, sockets %d → %d after closing (slack %d)",
						s.name, res.GoroutinesBefore, res.GoroutinesAfter, res.SocketsBefore, res.SocketsAfter, *flagSlack)
				}
			}()
			b := s.open(t, ctx, value)
			rows, err := measureBackend(ctx, t, cfg, concs, b, value, out)
			rep.Rows = append(rep.Rows, rows...)
			if cerr := b.ours.Close(); cerr != nil {
				t.Errorf("%s: closing ours: %v", b.name, cerr)
			}
			b.close()
			if err != nil {
				t.Errorf("%s: %v", s.name, err)
			}
			if b.stopped != "" {
				st, err := measureStopped(ctx, b.name, b.stopped, 7)
				if err != nil {
					t.Errorf("%s: opening on a stopped store: %v", b.name, err)
					return
				}
				rep.Stopped = append(rep.Stopped, st)
				t.Logf("%s: a stopped store reported in %s (median of %d), worst %s; ErrUnavailable: %v",
					b.name, fmtDur(st.Median), st.Gets, fmtDur(st.Max), st.Unavailable)
			}
		})
	}
	total.GoroutinesAfter, total.SocketsAfter = settle(total, *flagSlack)
	rep.Resources = append(rep.Resources, total)
	t.Logf("whole run: goroutines %d → %d, sockets %d → %d", total.GoroutinesBefore, total.GoroutinesAfter, total.SocketsBefore, total.SocketsAfter)
	if total.Grew(*flagSlack) {
		failures = append(failures, fmt.Sprintf("the run left goroutines %d → %d, sockets %d → %d (slack %d)",
			total.GoroutinesBefore, total.GoroutinesAfter, total.SocketsBefore, total.SocketsAfter, *flagSlack))
	}
	rep.Duration = time.Since(started)
	writeReport(t, out, rep)
	for _, m := range Misses(rep.Rows, memoryFront) {
		t.Logf("target missed: %s", m)
	}
	for _, f := range failures {
		t.Error(f)
	}
}

// measureBackend measures the three operations at each concurrency, ours
// beside raw, then counts allocations at concurrency 1.
func measureBackend(ctx context.Context, t *testing.T, cfg Config, concs []int, b *bench, value []byte, out string) ([]Row, error) {
	ours := oursOps(b.ours, value)
	var rows []Row
	for _, op := range opNames {
		if *flagProfile == b.name+"/"+op {
			if err := profile(ctx, cfg, out, b.name+"-"+op, ours[op]); err != nil {
				return rows, err
			}
		}
		for _, c := range concs {
			sides := []Op{ours[op], b.rawOps[op]}
			if c == 1 {
				sides = append(sides, withTimeout(b.rawOps[op]))
			}
			refOp, hasRef := b.refOps[op]
			if hasRef {
				sides = append(sides, refOp)
			}
			st, err := Compare(ctx, cfg, c, sides...)
			if err != nil {
				return rows, fmt.Errorf("%s at concurrency %d: %w", op, c, err)
			}
			o, r := st[0], st[1]
			row := Row{Backend: b.name, Raw: b.raw, Op: op, Conc: c, Ours: o, RawS: r}
			if hasRef {
				row.Ref, row.RefS = b.ref, &st[len(st)-1]
				t.Logf("%-12s %-7s c=%-2d ours p50 %-9s %s p50 %-9s ratio %.3f", b.name, op, c,
					fmtDur(o.P50), b.ref, fmtDur(row.RefS.P50), row.RefRatio())
			}
			if c == 1 {
				row.RawTimeout = &st[2]
				oa, err := CountAllocs(ctx, cfg.AllocPass, ours[op])
				if err != nil {
					return rows, fmt.Errorf("%s allocations (ours): %w", op, err)
				}
				ra, err := CountAllocs(ctx, cfg.AllocPass, b.rawOps[op])
				if err != nil {
					return rows, fmt.Errorf("%s allocations (raw): %w", op, err)
				}
				row.OursAllocs, row.RawAllocs = &oa, &ra
				// The raw call under the per-call timeout: what of ours is
				// the SDK's cost of a context it can watch.
				ta, err := CountAllocs(ctx, cfg.AllocPass, sides[2])
				if err != nil {
					return rows, fmt.Errorf("%s allocations (raw + timeout): %w", op, err)
				}
				t.Logf("%-12s %-7s allocs/op ours %.1f raw %.1f raw+timeout %.1f", b.name, op, oa.PerOp, ra.PerOp, ta.PerOp)
			}
			t.Logf("%-12s %-7s c=%-2d ours p50 %-9s raw p50 %-9s ratio %.3f (to raw+timeout %.3f)  p99 %s / %s  ops/s %.0f / %.0f",
				b.name, op, c, fmtDur(o.P50), fmtDur(r.P50), row.Ratio(), row.TimeoutRatio(), fmtDur(o.P99), fmtDur(r.P99), o.OpsPerSec, r.OpsPerSec)
			rows = append(rows, row)
		}
	}
	return rows, nil
}

// withTimeout runs op under the per-call timeout certcache's portable
// layer applies (portable.go callContext).
func withTimeout(op Op) Op {
	return func(ctx context.Context) error {
		cctx, cancel := context.WithTimeout(ctx, certcache.DefaultTimeout)
		defer cancel()
		return op(cctx)
	}
}

// oursOps are the three operations through a certcache.Cache.
func oursOps(c certcache.Cache, value []byte) map[string]Op {
	return map[string]Op{
		"GetHit": func(ctx context.Context) error {
			v, err := c.Get(ctx, keyHit)
			return checkHit(v, err, len(value))
		},
		"GetMiss": func(ctx context.Context) error {
			_, err := c.Get(ctx, keyMiss)
			if err != autocert.ErrCacheMiss { //nolint:errorlint // the contract: the bare sentinel
				return fmt.Errorf("Get of a missing key: %v, want autocert.ErrCacheMiss", err)
			}
			return nil
		},
		"Put": func(ctx context.Context) error { return c.Put(ctx, keyPut, value) },
	}
}

func checkHit(v []byte, err error, n int) error {
	if err != nil {
		return err
	}
	if len(v) != n {
		return fmt.Errorf("hit of %d bytes, want %d", len(v), n)
	}
	return nil
}

// profile writes a CPU profile of op at concurrency 1 over cfg's rounds,
// then an allocation profile of a pass of the same length with every
// 512th byte sampled (apart, so that sampling does not show in the CPU
// profile).
func profile(ctx context.Context, cfg Config, out, name string, op Op) error {
	d := time.Duration(cfg.Rounds) * cfg.Round
	cpu, err := os.Create(filepath.Join(out, name+".cpu.pprof"))
	if err != nil {
		return err
	}
	defer cpu.Close()
	if err := pprof.StartCPUProfile(cpu); err != nil {
		return err
	}
	_, err = runRound(ctx, op, 1, d)
	pprof.StopCPUProfile()
	if err != nil {
		return err
	}
	old := runtime.MemProfileRate
	runtime.MemProfileRate = 512
	_, err = runRound(ctx, op, 1, d)
	runtime.MemProfileRate = old
	if err != nil {
		return err
	}
	mem, err := os.Create(filepath.Join(out, name+".allocs.pprof"))
	if err != nil {
		return err
	}
	defer mem.Close()
	return pprof.Lookup("allocs").WriteTo(mem, 0)
}

// settle waits up to five seconds for goroutines and sockets to come back
// to their counts before (connections closing, goroutines ending), and
// returns the counts then.
func settle(r Resources, slack int) (goroutines, sockets int) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		goroutines, sockets = runtime.NumGoroutine(), CountSockets()
		if goroutines <= r.GoroutinesBefore+slack && sockets <= r.SocketsBefore+slack || time.Now().After(deadline) {
			return goroutines, sockets
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func writeReport(t *testing.T, out string, rep *Report) {
	var md, csvb, svg bytes.Buffer
	if err := WriteChart(&svg, rep.Rows, 1, "certcache vs the raw call: p50 latency at concurrency 1"); err != nil {
		t.Fatal(err)
	}
	if err := WriteMarkdown(&md, rep, "bench.svg", memoryFront); err != nil {
		t.Fatal(err)
	}
	if err := WriteCSV(&csvb, rep.Rows); err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"bench.md": md.Bytes(), "bench.csv": csvb.Bytes(), "bench.svg": svg.Bytes()} {
		if err := os.WriteFile(filepath.Join(out, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("report written to %s (bench.md, bench.csv, bench.svg)", out)
}

func parseConcs(t *testing.T, s string) []int {
	var cs []int
	for _, f := range strings.Split(s, ",") {
		c, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || c < 1 {
			t.Fatalf("-conc=%q: want positive integers separated by commas", s)
		}
		cs = append(cs, c)
	}
	return cs
}

// outDir resolves a relative -out against the module root (go test runs
// the test in the package's directory) and creates it.
func outDir(t *testing.T, dir string) string {
	if !filepath.IsAbs(dir) {
		root, err := filepath.Abs("../../..") // internal/integration/benchreport
		if err != nil {
			t.Fatal(err)
		}
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
			t.Fatalf("module root not found from %s: %v", root, err)
		}
		dir = filepath.Join(root, dir)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	return dir
}

func open(t *testing.T, ctx context.Context, rawURL string, value []byte) certcache.Cache {
	c, err := certcache.Open(ctx, rawURL)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	if err := c.Put(ctx, keyHit, value); err != nil {
		t.Fatalf("seeding %s: %v", keyHit, err)
	}
	if err := c.Delete(ctx, keyMiss); err != nil {
		t.Fatalf("clearing %s: %v", keyMiss, err)
	}
	return c
}

// withParam adds a query parameter to a URL that may have some already.
func withParam(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

// mapOps is the floor for the in-process caches: a map behind an
// RWMutex, copying in on Put and out on Get, as a hand-written cache would.
func mapOps(value []byte) (map[string]Op, func()) {
	var mu sync.RWMutex
	m := map[string][]byte{keyHit: bytes.Clone(value)}
	return map[string]Op{
		"GetHit": func(context.Context) error {
			mu.RLock()
			v, ok := m[keyHit]
			mu.RUnlock()
			if !ok {
				return errors.New("miss")
			}
			return checkHit(append([]byte(nil), v...), nil, len(value))
		},
		"GetMiss": func(context.Context) error {
			mu.RLock()
			_, ok := m[keyMiss]
			mu.RUnlock()
			if ok {
				return errors.New("hit")
			}
			return nil
		},
		"Put": func(context.Context) error {
			v := append([]byte(nil), value...)
			mu.Lock()
			m[keyPut] = v
			mu.Unlock()
			return nil
		},
	}, func() {}
}

func setupMem(t *testing.T, ctx context.Context, value []byte) *bench {
	ops, closeRaw := mapOps(value)
	return &bench{name: "mem", raw: "map+RWMutex, copy-out", ours: open(t, ctx, "mem://", value), rawOps: ops, close: closeRaw}
}

func setupMemoryFront(t *testing.T, ctx context.Context, value []byte) *bench {
	ops, closeRaw := mapOps(value)
	c := open(t, ctx, "mem://?memory=true", value)
	// The seeding Put went to both tiers; a first Get proves the front
	// holds it.
	if _, err := c.Get(ctx, keyHit); err != nil {
		t.Fatal(err)
	}
	return &bench{name: memoryFront, raw: "map+RWMutex, copy-out", ours: c, rawOps: ops, close: closeRaw}
}

func setupFile(t *testing.T, ctx context.Context, value []byte) *bench {
	dir := t.TempDir()
	// file:// lays out files as autocert.DirCache does: both sides use the
	// same files.
	c := open(t, ctx, (&url.URL{Scheme: "file", Path: dir}).String(), value)
	dc := autocert.DirCache(dir)
	return &bench{name: "file", raw: "autocert.DirCache", ours: c, close: func() {}, rawOps: map[string]Op{
		"GetHit": func(ctx context.Context) error {
			v, err := dc.Get(ctx, keyHit)
			return checkHit(v, err, len(value))
		},
		"GetMiss": func(ctx context.Context) error {
			if _, err := dc.Get(ctx, keyMiss); err != autocert.ErrCacheMiss { //nolint:errorlint
				return fmt.Errorf("miss: %v", err)
			}
			return nil
		},
		"Put": func(ctx context.Context) error { return dc.Put(ctx, keyPut, value) },
	}}
}

// sqlOps are the raw database/sql calls with the backend's own SQL.
func sqlOps(db *sql.DB, get, put string, value []byte) map[string]Op {
	return map[string]Op{
		"GetHit": func(ctx context.Context) error {
			var v []byte
			err := db.QueryRowContext(ctx, get, keyHit).Scan(&v)
			return checkHit(v, err, len(value))
		},
		"GetMiss": func(ctx context.Context) error {
			var v []byte
			if err := db.QueryRowContext(ctx, get, keyMiss).Scan(&v); !errors.Is(err, sql.ErrNoRows) {
				return fmt.Errorf("miss: %v", err)
			}
			return nil
		},
		"Put": func(ctx context.Context) error {
			_, err := db.ExecContext(ctx, put, keyPut, value)
			return err
		},
	}
}

// applyDefaultPool sets what the sql backend's URL opener sets when the
// URL names no pool parameter (sql/sql.go readPool).
func applyDefaultPool(db *sql.DB) {
	db.SetMaxOpenConns(backendopts.MaxConns())
	db.SetMaxIdleConns(2)
	db.SetConnMaxLifetime(0)
	db.SetConnMaxIdleTime(0)
}

func setupSQLite(t *testing.T, ctx context.Context, value []byte) *bench {
	path := filepath.Join(t.TempDir(), "bench.db")
	c := open(t, ctx, "sqlite://"+path+"?table=bench", value)
	// The DSN the backend builds (sql/sqlite.go).
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)",
		path, certcache.DefaultTimeout.Milliseconds())
	conn, err := sqlite.NewConnector(dsn)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	applyDefaultPool(db)
	ops := sqlOps(db, `SELECT "value" FROM "bench" WHERE "key" = ?`,
		`INSERT INTO "bench" ("key", "value", updated_at) VALUES (?, ?, CURRENT_TIMESTAMP) `+
			`ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value", updated_at = excluded.updated_at`, value)
	return &bench{name: "sqlite", raw: "database/sql + modernc sqlite", ours: c, rawOps: ops, close: func() { db.Close() }}
}

func startRedis(t *testing.T) setup {
	srv, u := testenv.Redis(t)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		ou := withParam(u, "prefix=bench")
		c := open(t, ctx, ou, value)
		// The options the backend's URL produces (redis/redis.go newClient).
		o, err := goredis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		o.ContextTimeoutEnabled = true
		client := goredis.NewClient(o)
		const prefix = "bench:"
		return &bench{name: "redis", raw: "go-redis", ours: c, close: func() { client.Close() }, stopped: stoppedURL(t, ou, srv.Addr(0)), rawOps: map[string]Op{
			"GetHit": func(ctx context.Context) error {
				v, err := client.Get(ctx, prefix+keyHit).Bytes()
				return checkHit(v, err, len(value))
			},
			"GetMiss": func(ctx context.Context) error {
				if err := client.Get(ctx, prefix+keyMiss).Err(); err != goredis.Nil { //nolint:errorlint
					return fmt.Errorf("miss: %v", err)
				}
				return nil
			},
			"Put": func(ctx context.Context) error { return client.Set(ctx, prefix+keyPut, value, 0).Err() },
		}}
	}
}

func startPostgres(t *testing.T) setup {
	srv, u := testenv.Postgres(t)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		ou := withParam(u, "table=bench")
		c := open(t, ctx, ou, value)
		// The pool the backend's URL produces: pgxpool.ParseConfig of the
		// same URL, with MaxConns ten per CPU when the URL
		// sets no pool_max_conns (sql/postgres.go openPostgres).
		pc, err := pgxpool.ParseConfig(u)
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(u, "pool_max_conns=") {
			pc.MaxConns = int32(backendopts.MaxConns())
		}
		pool, err := pgxpool.NewWithConfig(ctx, pc)
		if err != nil {
			t.Fatal(err)
		}
		const (
			get = `SELECT "value" FROM "bench" WHERE "key" = $1`
			put = `INSERT INTO "bench" ("key", "value", updated_at) VALUES ($1, $2, now()) ` +
				`ON CONFLICT ("key") DO UPDATE SET "value" = EXCLUDED."value", updated_at = EXCLUDED.updated_at`
		)
		// The way most PostgreSQL caches open their database: pgx's
		// database/sql driver with database/sql's default pool (no
		// SetMaxOpenConns: unbounded open connections, two idle).
		db, err := sql.Open("pgx", u)
		if err != nil {
			t.Fatal(err)
		}
		return &bench{name: "postgres", raw: "pgxpool", ours: c, stopped: stoppedURL(t, ou, srv.Addr(0)),
			close:  func() { pool.Close(); db.Close() },
			ref:    "database/sql default pool + pgx stdlib",
			refOps: sqlOps(db, get, put, value),
			rawOps: map[string]Op{
				"GetHit": func(ctx context.Context) error {
					var v []byte
					err := pool.QueryRow(ctx, get, keyHit).Scan(&v)
					return checkHit(v, err, len(value))
				},
				"GetMiss": func(ctx context.Context) error {
					var v []byte
					if err := pool.QueryRow(ctx, get, keyMiss).Scan(&v); !errors.Is(err, pgx.ErrNoRows) {
						return fmt.Errorf("miss: %v", err)
					}
					return nil
				},
				"Put": func(ctx context.Context) error {
					_, err := pool.Exec(ctx, put, keyPut, value)
					return err
				},
			}}
	}
}

func startMariaDB(t *testing.T) setup {
	srv, u := testenv.MariaDB(t)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		ou := withParam(u, "table=bench")
		c := open(t, ctx, ou, value)
		// The connector the backend's URL produces (sql/mysql.go
		// mysqlConfig: the DSN tcp(HOST)/DB, then the user and password).
		cfg, err := mysql.ParseDSN("tcp(" + srv.Addr(0) + ")/certcache")
		if err != nil {
			t.Fatal(err)
		}
		cfg.User, cfg.Passwd = testenv.MariaDBUser, testenv.MariaDBPassword
		conn, err := mysql.NewConnector(cfg)
		if err != nil {
			t.Fatal(err)
		}
		db := sql.OpenDB(conn)
		applyDefaultPool(db)
		ops := sqlOps(db, "SELECT `value` FROM `bench` WHERE `key` = ?",
			"INSERT INTO `bench` (`key`, `value`, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6)) "+
				"ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), updated_at = VALUES(updated_at)", value)
		return &bench{name: "mariadb", raw: "database/sql + go-sql-driver/mysql", ours: c, rawOps: ops, close: func() { db.Close() },
			stopped: stoppedURL(t, ou, srv.Addr(0))}
	}
}

const s3Bucket = "certcache-bench"

func startS3(t *testing.T) setup {
	srv, endpoint := testenv.MinIO(t)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		t.Cleanup(testenv.IsolateAWS())
		testenv.UseMinIOCredentials()
		// A CA bundle makes the SDK insist on its own HTTP client type,
		// whose transport cannot be closed; the endpoint is plain HTTP, so
		// neither side uses it.
		t.Setenv("AWS_CA_BUNDLE", "")
		// The client the backend's URL produces (s3/url.go newClient: the
		// SDK's default transport, MaxConnsPerHost = ten per CPU), on
		// an HTTP client of our own so that closing can drop its idle
		// connections.
		tr := awshttp.NewBuildableClient().GetTransport()
		tr.MaxConnsPerHost = backendopts.MaxConns()
		hc := &http.Client{Transport: tr}
		cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("us-east-1"), config.WithHTTPClient(hc),
			func(o *config.LoadOptions) error {
				o.DefaultsModeOptions.IMDSClient = imds.New(imds.Options{ClientEnableState: imds.ClientDisabled})
				return nil
			})
		if err != nil {
			t.Fatal(err)
		}
		client := awss3.NewFromConfig(cfg, func(o *awss3.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			o.UsePathStyle = true
		})
		if _, err := client.CreateBucket(ctx, &awss3.CreateBucketInput{Bucket: aws.String(s3Bucket)}); err != nil {
			var owned *types.BucketAlreadyOwnedByYou
			if !errors.As(err, &owned) {
				t.Fatal(err)
			}
		}
		ou := fmt.Sprintf("s3://%s/bench?endpoint=%s&use_path_style=true", s3Bucket, endpoint)
		c := open(t, ctx, ou, value)
		name := func(k string) *string { return aws.String("bench/" + k) }
		floor, closeFloor := s3Floor(t, ctx, cfg, endpoint, len(value))
		return &bench{name: "s3", raw: "aws-sdk-go-v2 S3 client", ours: c, stopped: stoppedURL(t, ou, srv.Addr(0)),
			close:  func() { tr.CloseIdleConnections(); closeFloor() },
			ref:    "SigV4-signed GET (net/http)",
			refOps: floor,
			rawOps: map[string]Op{
				"GetHit": func(ctx context.Context) error {
					out, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s3Bucket), Key: name(keyHit)})
					if err != nil {
						return err
					}
					defer out.Body.Close()
					v, err := readSized(out.Body, aws.ToInt64(out.ContentLength))
					return checkHit(v, err, len(value))
				},
				"GetMiss": func(ctx context.Context) error {
					_, err := client.GetObject(ctx, &awss3.GetObjectInput{Bucket: aws.String(s3Bucket), Key: name(keyMiss)})
					var nsk *types.NoSuchKey
					if !errors.As(err, &nsk) {
						return fmt.Errorf("miss: %v", err)
					}
					return nil
				},
				"Put": func(ctx context.Context) error {
					_, err := client.PutObject(ctx, &awss3.PutObjectInput{Bucket: aws.String(s3Bucket), Key: name(keyPut),
						Body: bytes.NewReader(value), ContentLength: aws.Int64(int64(len(value)))})
					return err
				},
			}}
	}
}

// emptySHA256 is the SHA-256 of an empty body, the payload hash of a GET
// (the SDK sends it too over plain HTTP, where it does not sign payloads
// as UNSIGNED-PAYLOAD).
const emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

// s3Floor is the least a GetObject can be: one GET of the object's
// path-style URL, signed with the SDK's SigV4 signer and sent by net/http
// on a transport of the backend's settings (its own, so that the pools do
// not mix). A 404 is a miss. It returns the Get ops and what closes the
// transport.
func s3Floor(t *testing.T, ctx context.Context, cfg aws.Config, endpoint string, size int) (map[string]Op, func()) {
	creds, err := cfg.Credentials.Retrieve(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tr := awshttp.NewBuildableClient().GetTransport()
	tr.MaxConnsPerHost = backendopts.MaxConns()
	hc := &http.Client{Transport: tr}
	signer := v4.NewSigner()
	get := func(ctx context.Context, key string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/"+s3Bucket+"/bench/"+key, nil)
		if err != nil {
			return nil, err
		}
		req.Header.Set("X-Amz-Content-Sha256", emptySHA256)
		if err := signer.SignHTTP(ctx, creds, req, emptySHA256, "s3", cfg.Region, time.Now()); err != nil {
			return nil, err
		}
		return hc.Do(req)
	}
	return getOps(get, size), tr.CloseIdleConnections
}

// getOps are the Get hit and Get miss of a floor side: get sends one signed
// GET of a key; a miss is a 404 whose error document is read, as the SDKs
// read it, so that the connection goes back to the pool.
func getOps(get func(ctx context.Context, key string) (*http.Response, error), size int) map[string]Op {
	return map[string]Op{
		"GetHit": func(ctx context.Context) error {
			resp, err := get(ctx, keyHit)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				return fmt.Errorf("GET: %s", resp.Status)
			}
			v, err := readSized(resp.Body, resp.ContentLength)
			return checkHit(v, err, size)
		},
		"GetMiss": func(ctx context.Context) error {
			resp, err := get(ctx, keyMiss)
			if err != nil {
				return err
			}
			defer resp.Body.Close()
			if _, err := io.Copy(io.Discard, resp.Body); err != nil {
				return err
			}
			if resp.StatusCode != http.StatusNotFound {
				return fmt.Errorf("GET of a missing key: %s, want 404", resp.Status)
			}
			return nil
		},
	}
}

// readSized reads r to EOF into one buffer of the announced size.
func readSized(r io.Reader, size int64) ([]byte, error) {
	b := make([]byte, 0, size+1)
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return nil, err
		}
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

func startAzblob(t *testing.T) setup {
	srv, endpoint := testenv.Azurite(t)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		acct := testenv.AzuriteDevAccount
		t.Setenv("AZURE_STORAGE_CONNECTION_STRING", "")
		t.Setenv("AZURE_STORAGE_SAS_TOKEN", "")
		t.Setenv("AZURE_STORAGE_ACCOUNT", acct.Name)
		t.Setenv("AZURE_STORAGE_KEY", acct.Key)
		ou := "azblob://bench/bench?create_container=true&endpoint=" + url.QueryEscape(endpoint)
		c := open(t, ctx, ou, value)
		// The client the backend's URL produces (azblob/credentials.go
		// newClient): the same transport settings and telemetry policy.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxIdleConnsPerHost = 64
		tr.MaxConnsPerHost = backendopts.MaxConns()
		cred, err := azblob.NewSharedKeyCredential(acct.Name, acct.Key)
		if err != nil {
			t.Fatal(err)
		}
		client, err := azblob.NewClientWithSharedKeyCredential(endpoint, cred, &azblob.ClientOptions{ClientOptions: azcore.ClientOptions{
			Transport: &http.Client{Transport: tr},
			Telemetry: policy.TelemetryOptions{ApplicationID: "certcache"},
		}})
		if err != nil {
			t.Fatal(err)
		}
		const container = "bench"
		name := func(k string) string { return "bench/" + k }
		floor, closeFloor, err := azureFloor(endpoint, acct, container, len(value))
		if err != nil {
			t.Fatal(err)
		}
		return &bench{name: "azblob", raw: "azblob SDK client", ours: c, stopped: stoppedURL(t, ou, srv.Addr(0)),
			close:  func() { tr.CloseIdleConnections(); closeFloor() },
			ref:    "SharedKey-signed GET (net/http)",
			refOps: floor,
			rawOps: map[string]Op{
				"GetHit": func(ctx context.Context) error {
					resp, err := client.DownloadStream(ctx, container, name(keyHit), nil)
					if err != nil {
						return err
					}
					defer resp.Body.Close()
					v := make([]byte, *resp.ContentLength)
					_, err = io.ReadFull(resp.Body, v)
					return checkHit(v, err, len(value))
				},
				"GetMiss": func(ctx context.Context) error {
					_, err := client.DownloadStream(ctx, container, name(keyMiss), nil)
					if !bloberror.HasCode(err, bloberror.BlobNotFound) {
						return fmt.Errorf("miss: %v", err)
					}
					return nil
				},
				"Put": func(ctx context.Context) error {
					_, err := client.UploadBuffer(ctx, container, name(keyPut), value, nil)
					return err
				},
			}}
	}
}

// gsBucket is the bucket of the gs row.
const gsBucket = "bench"

func startGS(t *testing.T) setup {
	srv, endpoint := testenv.FakeGCS(t, gsBucket)
	return func(t *testing.T, ctx context.Context, value []byte) *bench {
		ou := "gs://" + gsBucket + "/bench?endpoint=" + url.QueryEscape(endpoint)
		c := open(t, ctx, ou, value)
		// The client the backend's URL produces (gs/url.go newClient): a
		// clone of the default transport with MaxConnsPerHost =
		// ten connections per CPU, no authentication for an emulator, JSON reads.
		tr := http.DefaultTransport.(*http.Transport).Clone()
		tr.MaxConnsPerHost = backendopts.MaxConns()
		tr.MaxIdleConnsPerHost = backendopts.MaxConns()
		client, err := storage.NewClient(ctx, option.WithEndpoint(endpoint+"/storage/v1/"),
			option.WithoutAuthentication(), option.WithHTTPClient(&http.Client{Transport: tr}), storage.WithJSONReads())
		if err != nil {
			t.Fatal(err)
		}
		obj := func(k string) *storage.ObjectHandle { return client.Bucket(gsBucket).Object("bench/" + k) }
		return &bench{name: "gs", raw: "cloud.google.com/go/storage client", ours: c, stopped: stoppedURL(t, ou, srv.Addr(0)),
			close: func() { client.Close(); tr.CloseIdleConnections() },
			rawOps: map[string]Op{
				"GetHit": func(ctx context.Context) error {
					r, err := obj(keyHit).NewReader(ctx)
					if err != nil {
						return err
					}
					defer r.Close()
					v, err := readSized(r, r.Attrs.Size)
					return checkHit(v, err, len(value))
				},
				"GetMiss": func(ctx context.Context) error {
					if _, err := obj(keyMiss).NewReader(ctx); !errors.Is(err, storage.ErrObjectNotExist) {
						return fmt.Errorf("miss: %v", err)
					}
					return nil
				},
				"Put": func(ctx context.Context) error {
					w := obj(keyPut).NewWriter(ctx)
					w.ChunkSize = 0
					if _, err := w.Write(value); err != nil {
						w.Close()
						return err
					}
					return w.Close()
				},
			}}
	}
}

// azureVersion is the REST API version the azblob SDK in go.mod sends
// (x-ms-version); the floor sends the same.
const azureVersion = "2026-12-06"

// azureFloor is the least a blob download can be: one GET of the blob's
// URL with a SharedKey Authorization header, computed here from the
// documented string-to-sign (azblob's SharedKeyCredential signs only
// inside the SDK's pipeline), sent by net/http on a transport of the
// backend's settings (its own). A 404 is a miss. It returns the Get ops
// and what closes the transport.
func azureFloor(endpoint string, acct testenv.AzuriteAccount, container string, size int) (map[string]Op, func(), error) {
	key, err := base64.StdEncoding.DecodeString(acct.Key)
	if err != nil {
		return nil, nil, fmt.Errorf("account key: %w", err)
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.MaxIdleConnsPerHost = 64
	tr.MaxConnsPerHost = backendopts.MaxConns()
	hc := &http.Client{Transport: tr}
	get := func(ctx context.Context, name string) (*http.Response, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/"+container+"/bench/"+name, nil)
		if err != nil {
			return nil, err
		}
		date := time.Now().UTC().Format(http.TimeFormat)
		req.Header["x-ms-date"] = []string{date}
		req.Header["x-ms-version"] = []string{azureVersion}
		req.Header["Authorization"] = []string{"SharedKey " + acct.Name + ":" + sharedKeyGET(key, acct.Name, req.URL.EscapedPath(), date)}
		return hc.Do(req)
	}
	return getOps(get, size), tr.CloseIdleConnections, nil
}

// sharedKeyGET is the SharedKey signature of a GET with no body, no
// conditional or range headers, and x-ms-date and x-ms-version as its
// only x-ms- headers: the verb, eleven empty standard headers (Date is
// empty because x-ms-date is sent), the canonicalized x-ms- headers in
// order, and the canonicalized resource (/account then the escaped path;
// no query), HMAC-SHA256 under the decoded account key, in base64.
func sharedKeyGET(key []byte, account, escapedPath, date string) string {
	toSign := "GET\n" + strings.Repeat("\n", 11) +
		"x-ms-date:" + date + "\nx-ms-version:" + azureVersion + "\n" +
		"/" + account + escapedPath
	h := hmac.New(sha256.New, key)
	h.Write([]byte(toSign))
	return base64.StdEncoding.EncodeToString(h.Sum(nil))
}
