package observetest

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/otelname"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/encrypt"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"github.com/certcache/certcache/internal/integration/metrictest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
	goredis "github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/crypto/acme/autocert"
)

// The global providers and logger every test reports to, installed once,
// as an application installs them.
var (
	reader = sdkmetric.NewManualReader()
	spans  = tracetest.NewSpanRecorder()
	logs   = &logCapture{}
)

func TestMain(m *testing.M) {
	otel.SetMeterProvider(sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader)))
	otel.SetTracerProvider(sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(spans)))
	slog.SetDefault(slog.New(logs))
	os.Exit(m.Run())
}

func bg() context.Context { return context.Background() }

// snapshot is one collection: sums and gauges by series, histograms as
// series "name_count{…}" and "name_sum{…}".
type snapshot map[string]float64

// series names a data point as snapshot does: the metric's name and its
// attributes, encoded as the SDK encodes them.
var series = metrictest.Series

func collect(t *testing.T) snapshot {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := reader.Collect(bg(), &rm); err != nil {
		t.Fatal(err)
	}
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if h, ok := m.Data.(metricdata.Histogram[float64]); ok {
				for _, p := range h.DataPoints {
					if !equalBounds(p.Bounds, m.Name) {
						t.Errorf("%s: bucket bounds %v", m.Name, p.Bounds)
					}
				}
			}
		}
	}
	return snapshot(metrictest.Flatten(rm))
}

// equalBounds checks the call-duration buckets: microseconds to seconds.
func equalBounds(b []float64, name string) bool {
	if name != otelname.MetricCallDuration {
		return true
	}
	return len(b) > 10 && b[0] <= 0.00001 && b[len(b)-1] >= 5
}

// delta returns what changed between before and s, for series.
func (s snapshot) delta(before snapshot, series string) float64 { return s[series] - before[series] }

func calls(op, outcome string) string {
	return series(otelname.MetricCalls, otelname.AttrBackend, "redis", otelname.AttrOperation, op, otelname.AttrOutcome, outcome)
}

func redisSeries(name string, kv ...string) string {
	return series(name, append([]string{otelname.AttrBackend, "redis"}, kv...)...)
}

// logCapture is a slog.Handler that keeps every record.
type logCapture struct {
	mu   sync.Mutex
	recs []slog.Record
}

func (*logCapture) Enabled(context.Context, slog.Level) bool { return true }
func (l *logCapture) Handle(_ context.Context, r slog.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recs = append(l.recs, r.Clone())
	return nil
}
func (l *logCapture) WithAttrs([]slog.Attr) slog.Handler { return l }
func (l *logCapture) WithGroup(string) slog.Handler      { return l }

// mark returns where the records of what follows begin, for find.
func (l *logCapture) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.recs)
}

// find returns the records since mark whose message begins with msg and
// whose "key" attribute is key, as text.
func (l *logCapture) find(mark int, msg, key string) []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, r := range l.recs[mark:] {
		if !strings.HasPrefix(r.Message, msg) {
			continue
		}
		text := r.Level.String() + " " + r.Message
		match := false
		r.Attrs(func(a slog.Attr) bool {
			text += " " + a.String()
			match = match || (a.Key == "key" && a.Value.String() == key)
			return true
		})
		if match {
			out = append(out, text)
		}
	}
	return out
}

func open(t *testing.T, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(bg(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// certValue returns an autocert cache value (key PEM, then the leaf) whose
// leaf lives from notBefore to notAfter.
func certValue(t testing.TB, name string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(t, err)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	must(t, err)
	kb, _ := x509.MarshalECPrivateKey(key)
	v := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	return append(v, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

// eventually polls cond every 50 ms for up to d.
func eventually(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(d); !cond(); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(end) {
			t.Fatalf("after %v: %s", d, what)
		}
	}
}

// TestCallsRedis makes known calls on a real Redis and checks the call
// counter by outcome, the duration histogram and the spans: hits, misses,
// writes, and one error of each class a Redis can produce (denied by its
// ACL, a timeout while it is paused, unavailable, circuit open) or the
// portable layer refuses (invalid, too large, closed, cancelled).
func TestCallsRedis(t *testing.T) {
	srv, u := testenv.RedisWith(t, "--save", "", "--appendonly", "no",
		"--user", "limited", "on", ">limited-pw", "~*", "-@all", "+@connection")
	c := open(t, u+"?prefix=calls")
	denied := open(t, "redis://limited:limited-pw@"+srv.Addr(0)+"?prefix=calls")
	paused := open(t, u+"?prefix=calls&get_timeout=300ms&breaker=false")
	down := open(t, "redis://"+testenv.ClosedAddr(t)+"?prefix=calls&dial_timeout=1s")
	closed, err := certcache.Open(bg(), u+"?prefix=calls")
	must(t, err)
	closed.Close()
	const value = "-----BEGIN CERTIFICATE-----\nvalue-never-in-telemetry\n"

	before := collect(t)
	must(t, c.Put(bg(), "k1+token", []byte(value)))
	must(t, c.Put(bg(), "k2+token", []byte(value)))
	for _, k := range []string{"k1+token", "k2+token", "k1+token"} {
		if _, err := c.Get(bg(), k); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"m1+token", "m2+token"} {
		if _, err := c.Get(bg(), k); err != autocert.ErrCacheMiss { //nolint:errorlint
			t.Fatalf("Get(%s) = %v, want a miss", k, err)
		}
	}
	must(t, c.Delete(bg(), "k2+token"))
	c.Get(bg(), "")
	c.Put(bg(), "big+token", make([]byte, certcache.MaxValueSize+1))
	cctx, cancel := context.WithCancel(bg())
	cancel()
	c.Get(cctx, "k1+token")
	closed.Get(bg(), "k1+token")
	if _, err := denied.Get(bg(), "k1+token"); err == nil {
		t.Fatal("the limited user read a key")
	}
	srv.Exec(t, "redis-cli", "-p", srv.Port(0), "CLIENT", "PAUSE", "1500", "ALL")
	if _, err := paused.Get(bg(), "k1+token"); !errors.Is(err, certcache.ErrUnavailable) {
		t.Fatalf("Get while paused = %v, want a timeout (ErrUnavailable)", err)
	}
	for range 2 { // the first finds the store down, the second the breaker open
		if _, err := down.Get(bg(), "k1+token"); !errors.Is(err, certcache.ErrUnavailable) {
			t.Fatalf("Get from a closed port = %v", err)
		}
	}
	after := collect(t)

	gets := 0.0
	for _, tc := range []struct {
		op, outcome string
		want        float64
	}{
		{"put", "ok", 2},
		{"get", "hit", 3},
		{"get", "miss", 2},
		{"delete", "ok", 1},
		{"get", "invalid", 1},
		{"put", "too_large", 1},
		{"get", "canceled", 1},
		{"get", "closed", 1},
		{"get", "denied", 1},
		{"get", "timeout", 1},
		{"get", "unavailable", 1},
		{"get", "circuit_open", 1},
	} {
		if got := after.delta(before, calls(tc.op, tc.outcome)); got != tc.want {
			t.Errorf("calls %s/%s: %v, want %v", tc.op, tc.outcome, got, tc.want)
		}
		if tc.op == "get" {
			gets += tc.want
		}
	}
	durCount := redisSeries(otelname.MetricCallDuration+"_count", otelname.AttrOperation, "get")
	durSum := redisSeries(otelname.MetricCallDuration+"_sum", otelname.AttrOperation, "get")
	if got := after.delta(before, durCount); got != gets {
		t.Errorf("get durations recorded: %v, want one per Get, %v", got, gets)
	}
	// The paused Get waited its 300 ms; the others took far less each.
	if got := after.delta(before, durSum); got < 0.3 || got > 0.3+float64(gets) {
		t.Errorf("get durations sum to %vs, want at least the 0.3s timeout", got)
	}

	// One span per call, none holding the value; errors recorded on theirs.
	var hit, deniedSpan bool
	for _, s := range spans.Ended() {
		a := map[string]string{}
		for _, kv := range s.Attributes() {
			a[string(kv.Key)] = kv.Value.Emit()
			if strings.Contains(kv.Value.Emit(), "value-never-in-telemetry") {
				t.Errorf("span %s holds the value", s.Name())
			}
		}
		if a[otelname.AttrBackend] != "redis" || a[otelname.AttrKey] != "k1+token" {
			continue
		}
		switch a[otelname.AttrOutcome] {
		case "hit":
			hit = true
			if s.Name() != "certcache.get" || s.Status().Code == codes.Error {
				t.Errorf("hit span %s: status %v", s.Name(), s.Status())
			}
		case "denied":
			deniedSpan = true
			if s.Status().Code != codes.Error || !strings.Contains(s.Status().Description, "NOPERM") {
				t.Errorf("denied span: status %v, want Error with the server's refusal", s.Status())
			}
		}
	}
	if !hit || !deniedSpan {
		t.Errorf("spans: hit %v, denied %v; want both", hit, deniedSpan)
	}
}

// TestOutageRedis stops a real Redis under a memory front: the stale copy
// is served and counted (and logged, without the value), the breaker's
// counters and gauge follow it opening, failing calls fast, probing and
// closing once the server is back; the front's hits, misses, evictions and
// holdings are reported too.
func TestOutageRedis(t *testing.T) {
	mark := logs.mark()
	srv, u := testenv.Redis(t)
	c := open(t, u+"?prefix=outage&memory=true&memory_ttl=3s&memory_max_entries=3&get_timeout=1s&breaker_probe=100ms")
	const key = "s.example+token"
	before := collect(t)
	for _, k := range []string{"e1+token", "e2+token", "e3+token", key} { // the fourth evicts e1
		must(t, c.Put(bg(), k, []byte("secret-"+k)))
	}
	if _, err := c.Get(bg(), key); err != nil { // fresh in memory
		t.Fatal(err)
	}
	if _, err := c.Get(bg(), "nope+token"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get of a missing key = %v", err)
	}
	mid := collect(t)
	for s, want := range map[string]float64{
		redisSeries(otelname.MetricMemoryHits):      1,
		redisSeries(otelname.MetricMemoryMisses):    1,
		redisSeries(otelname.MetricMemoryEvictions): 1,
	} {
		if got := mid.delta(before, s); got != want {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
	if got := mid[redisSeries(otelname.MetricMemoryEntries)]; got < 3 {
		t.Errorf("memory entries %v, want at least this front's 3", got)
	}
	if got := mid[redisSeries(otelname.MetricMemoryBytes)]; got <= 0 {
		t.Errorf("memory bytes %v", got)
	}

	time.Sleep(3100 * time.Millisecond) // the copy expires
	srv.Stop(t)
	for i := range 2 { // the store down, then the breaker open: stale both times
		v, err := c.Get(bg(), key)
		if err != nil || string(v) != "secret-"+key {
			t.Fatalf("Get %d during the outage = %q, %v; want the stale copy", i, v, err)
		}
	}
	eventually(t, 10*time.Second, "no probe counted", func() bool {
		return collect(t).delta(before, redisSeries(otelname.MetricBreakerProbes)) >= 1
	})
	out := collect(t)
	for _, tc := range []struct {
		series string
		want   float64
	}{
		{redisSeries(otelname.MetricMemoryStaleServed), 2},
		{redisSeries(otelname.MetricBreakerOpened), 1},
		{redisSeries(otelname.MetricBreakerFastFailed), 1},
		{calls("get", "circuit_open"), 1},
	} {
		if got := out.delta(before, tc.series); got != tc.want {
			t.Errorf("during the outage, %s: %v, want %v", tc.series, got, tc.want)
		}
	}
	if out[redisSeries(otelname.MetricBreakerOpen)] != 1 {
		t.Errorf("breaker open gauge %v during the outage, want 1", out[redisSeries(otelname.MetricBreakerOpen)])
	}
	recs := logs.find(mark, "certcache/layered: served a stale copy", key)
	if len(recs) != 1 || !strings.HasPrefix(recs[0], "WARN") {
		t.Errorf("stale-serve log: %q, want one Warn line (the second serve is counted for the next)", recs)
	}
	for _, r := range recs {
		if strings.Contains(r, "secret-") {
			t.Errorf("the log holds the value: %s", r)
		}
	}

	srv.Restart(t)
	eventually(t, 30*time.Second, "the breaker did not close", func() bool {
		return collect(t)[redisSeries(otelname.MetricBreakerOpen)] == 0
	})
	if got := collect(t).delta(before, redisSeries(otelname.MetricBreakerClosed)); got != 1 {
		t.Errorf("breaker closed %v times, want 1", got)
	}
}

// TestLeaseEventsRedis: two nodes on one Redis. An order whose node gave
// up is taken over after its lease runs out; a lease deleted under its
// holder is lost; a renewal waits for the other node's certificate. Each
// is counted and the first two logged.
func TestLeaseEventsRedis(t *testing.T) {
	mark := logs.mark()
	_, u := testenv.Redis(t)
	const params = "?prefix=leases&lease_ttl=3s" // refreshed every second: a slow test machine keeps its leases
	a, b := open(t, u+params), open(t, u+params)
	before := collect(t)
	ev := func(s snapshot, e string) float64 {
		return s.delta(before, redisSeries(otelname.MetricLeaseEvents, otelname.AttrEvent, e))
	}

	// Taken over: a's order ends (its context) without a certificate.
	actx, acancel := context.WithTimeout(bg(), 5*time.Minute)             // autocert's handshake
	if _, err := a.Get(actx, "t.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("first Get = %v, want the miss", err)
	}
	if _, err := b.Get(bg(), "t.example"); !errors.Is(err, certcache.ErrIssuing) {
		t.Fatalf("second node's Get = %v, want ErrIssuing", err)
	}
	issuing := 1.0
	acancel()
	eventually(t, 10*time.Second, "the second node never got the order", func() bool {
		_, err := b.Get(bg(), "t.example")
		if errors.Is(err, certcache.ErrIssuing) {
			issuing++
		}
		return err == autocert.ErrCacheMiss //nolint:errorlint
	})
	now := time.Now()
	must(t, b.Put(bg(), "t.example", certValue(t, "t.example", now.Add(-time.Hour), now.Add(30*24*time.Hour))))
	if recs := logs.find(mark, "certcache: order lease taken over", "t.example"); len(recs) != 1 || !strings.HasPrefix(recs[0], "WARN") {
		t.Errorf("takeover log: %q, want one Warn line", recs)
	}

	// Lost: the lease disappears under its holder, whose next refresh
	// (every third of the TTL) finds it gone.
	lctx, lcancel := context.WithTimeout(bg(), 5*time.Minute) // kept alive while autocert's order may run
	defer lcancel()
	if _, err := a.Get(lctx, "l.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get = %v, want the miss", err)
	}
	opts, err := goredis.ParseURL(u)
	must(t, err)
	rc := goredis.NewClient(opts)
	defer rc.Close()
	keys, err := rc.Keys(bg(), "*lease:order:l.example").Result()
	must(t, err)
	if len(keys) != 1 {
		t.Fatalf("lease keys %q, want one", keys)
	}
	must(t, rc.Del(bg(), keys...).Err())
	eventually(t, 5*time.Second, "no lease lost", func() bool { return ev(collect(t), "lost") == 1 })
	if recs := logs.find(mark, "certcache: order lease lost", "l.example"); len(recs) != 1 || !strings.HasPrefix(recs[0], "WARN") {
		t.Errorf("lost-lease log: %q, want one Warn line", recs)
	}

	// Waited: both nodes renew a due certificate with autocert's renewal
	// context; b waits for a's renewed certificate.
	must(t, a.Put(bg(), "w.example", certValue(t, "w.example", now.Add(-80*24*time.Hour), now.Add(10*24*time.Hour))))
	rctx, rcancel := context.WithTimeout(bg(), 10*time.Minute)
	defer rcancel()
	if _, err := a.Get(rctx, "w.example"); err != nil {
		t.Fatal(err)
	}
	held := collect(t)[calls("lease_acquire", "held")]
	done := make(chan error, 1)
	go func() { _, err := b.Get(rctx, "w.example"); done <- err }()
	eventually(t, 10*time.Second, "the second node never found the lease held", func() bool {
		return collect(t)[calls("lease_acquire", "held")] > held
	})
	time.Sleep(300 * time.Millisecond) // b waits
	must(t, a.Put(bg(), "w.example", certValue(t, "w.example", now, now.Add(90*24*time.Hour))))
	must(t, <-done)

	after := collect(t)
	for _, tc := range []struct {
		event    string
		min, max float64
	}{
		{"taken_over", 1, 1},
		{"lost", 1, 1},
		{"waited", 1, 1},
		{"issuing", issuing, issuing}, // b asks again while the lease runs out
		{"acquired", 4, 5},            // a: t, l, w; b: t; and w if a released it before b's retry
	} {
		if got := ev(after, tc.event); got < tc.min || got > tc.max {
			t.Errorf("lease event %s: %v, want %v to %v", tc.event, got, tc.min, tc.max)
		}
	}
	wait := redisSeries(otelname.MetricLeaseWait+"_count", otelname.AttrWait, "renewal")
	if got := after.delta(before, wait); got != 1 {
		t.Errorf("renewal waits recorded: %v, want 1", got)
	}
	if got := after.delta(before, redisSeries(otelname.MetricLeaseWait+"_sum", otelname.AttrWait, "renewal")); got < 0.2 {
		t.Errorf("the renewal waited %vs, want about 0.3s", got)
	}
	// The renewed certificates' expiry, as this process wrote them.
	for key, days := range map[string]float64{"t.example": 30, "w.example": 90} {
		got := after[redisSeries(otelname.MetricCertificateExpiry, otelname.AttrCertificate, key)]
		if math.Abs(got-days*24*3600) > 120 {
			t.Errorf("expiry of %s: %vs, want %v days", key, got, days)
		}
	}
}

// TestPreloadRedis: a front that preloads reports its progress.
func TestPreloadRedis(t *testing.T) {
	_, u := testenv.Redis(t)
	w := open(t, u+"?prefix=preload")
	for _, k := range []string{"p1.example", "p2.example", "p2.example+rsa", "p1.example+token"} {
		must(t, w.Put(bg(), k, []byte("v")))
	}
	before := collect(t)
	c := open(t, u+"?prefix=preload&memory=true&memory_preload=true")
	stack, ok := certcache.Uncoordinated(c).(*layered.Stack)
	if !ok {
		t.Fatalf("the cache is a %T, want a *layered.Stack under coordination", certcache.Uncoordinated(c))
	}
	select {
	case <-stack.PreloadDone():
	case <-time.After(30 * time.Second):
		t.Fatal("the preload did not end")
	}
	after := collect(t)
	for s, want := range map[string]float64{
		redisSeries(otelname.MetricPreloadListed): 3, // certificate keys only
		redisSeries(otelname.MetricPreloadLoaded): 3,
		redisSeries(otelname.MetricPreloadErrors): 0,
	} {
		if got := after.delta(before, s); got != want {
			t.Errorf("%s: %v, want %v", s, got, want)
		}
	}
	if got, ok := after[redisSeries(otelname.MetricPreloadDone)]; !ok || got != 1 {
		t.Errorf("preload done gauge %v (%v), want 1", got, ok)
	}
}

// TestDecryptFailureLogged: a value sealed with another key fails to open;
// the failure is logged at Error with the key, never the value.
func TestDecryptFailureLogged(t *testing.T) {
	mark := logs.mark()
	_, u := testenv.Redis(t)
	for _, name := range []string{"OBSERVETEST_KEY_A", "OBSERVETEST_KEY_B"} {
		k := make([]byte, 32)
		rand.Read(k)
		t.Setenv(name, base64.StdEncoding.EncodeToString(k))
	}
	w := open(t, u+"?prefix=sealed&encryption_key=env:OBSERVETEST_KEY_A")
	r := open(t, u+"?prefix=sealed&encryption_key=env:OBSERVETEST_KEY_B")
	must(t, w.Put(bg(), "d.example+token", []byte("plaintext-secret")))
	if _, err := r.Get(bg(), "d.example+token"); !errors.Is(err, encrypt.ErrDecrypt) {
		t.Fatalf("Get with the wrong key = %v, want ErrDecrypt", err)
	}
	recs := logs.find(mark, "certcache/encrypt: a stored value failed to decrypt", "d.example+token")
	if len(recs) != 1 || !strings.HasPrefix(recs[0], "ERROR") || !strings.Contains(recs[0], "backend=redis") {
		t.Errorf("decrypt log: %q, want one Error line naming the backend", recs)
	}
	for _, rec := range recs {
		if strings.Contains(rec, "plaintext-secret") {
			t.Errorf("the log holds the value: %s", rec)
		}
	}
}

// TestExpiryFromPebble: autocert obtains a certificate from Pebble into a
// Redis cache during a real handshake; the expiry gauge reports the
// certificate the client was served.
func TestExpiryFromPebble(t *testing.T) {
	_, u := testenv.Redis(t)
	const domain = "expiry.certcache.test"
	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	pebble, err := acmetest.Start(acmetest.Options{HTTPPort: httpL.Addr().(*net.TCPAddr).Port, Log: testWriter{t}})
	if err != nil {
		httpL.Close()
		t.Fatal(err)
	}
	t.Cleanup(pebble.Close)
	cache := open(t, u+"?prefix=pebble")
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      cache,
		HostPolicy: autocert.HostWhitelist(domain),
		Client:     pebble.Client(),
	}
	challenges := m.HTTPHandler(nil)
	httpSrv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Pebble's VA names the port, which a real CA's (port 80) would
		// not: autocert's host policy wants the name alone.
		if host, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = host
		}
		challenges.ServeHTTP(w, r)
	})}
	go httpSrv.Serve(httpL)
	t.Cleanup(func() { httpSrv.Close() })
	tlsL, err := tls.Listen("tcp", "127.0.0.1:0", certcache.TLSConfig(m, cache))
	must(t, err)
	httpsSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") }),
		ReadHeaderTimeout: 10 * time.Second, ErrorLog: log.New(testWriter{t}, "https: ", 0)}
	go httpsSrv.Serve(tlsL)
	t.Cleanup(func() { httpsSrv.Close() })

	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 2 * time.Minute}, "tcp", tlsL.Addr().String(), pebble.TLSClientConfig(domain))
	must(t, err)
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()
	got, ok := collect(t)[redisSeries(otelname.MetricCertificateExpiry, otelname.AttrCertificate, domain)]
	want := time.Until(leaf.NotAfter).Seconds()
	if !ok || math.Abs(got-want) > 60 {
		t.Errorf("expiry gauge for %s = %v (%v), want %v: the served certificate's", domain, got, ok, want)
	}
	if got := collect(t)[calls("lease_acquire", "ok")]; got < 1 {
		t.Errorf("lease_acquire calls %v: the order took no lease", got)
	}
}

// testWriter writes a server's error log to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}
