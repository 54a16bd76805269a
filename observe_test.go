package certcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/metrictest"
	"github.com/certcache/certcache/internal/otelname"

	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"golang.org/x/crypto/acme/autocert"
)

// This file tests the instrumentation with providers passed in Options;
// no test of this package installs a global provider, so the global ones
// stay uninstalled here (TestNoProviderCostsNoAllocation relies on it).
// internal/integration/observetest checks every instrument against Redis through the
// global providers.

type httpStatusErr int

func (e httpStatusErr) Error() string       { return fmt.Sprintf("HTTP %d", int(e)) }
func (e httpStatusErr) HTTPStatusCode() int { return int(e) }

// apiCodeErr is a smithy-go API error with its HTTP status, as the AWS
// SDK's errors unwrap.
type apiCodeErr struct {
	httpStatusErr
	code string
}

func (e apiCodeErr) ErrorCode() string { return e.code }

type sqlStateErr string

func (e sqlStateErr) Error() string    { return "SQLSTATE " + string(e) }
func (e sqlStateErr) SQLState() string { return string(e) }

type redisErr string

func (e redisErr) Error() string { return string(e) }
func (redisErr) RedisError()     {}

func TestOutcomeOf(t *testing.T) {
	for _, tc := range []struct {
		op   callOp
		err  error
		want string
	}{
		{opGet, nil, "hit"},
		{opPut, nil, "ok"},
		{opList, nil, "ok"},
		{opGet, autocert.ErrCacheMiss, "miss"},
		{opGet, newError("x", "get", "k", ErrCircuitOpen), "circuit_open"},
		{opGet, newError("x", "get", "k", fmt.Errorf("%w: refused", ErrUnavailable)), "unavailable"},
		{opGet, newError("x", "get", "k", noAnswer{fmt.Errorf("%w: no answer within 3s: boom", ErrUnavailable)}), "timeout"},
		{opPut, newError("x", "put", "k", context.DeadlineExceeded), "timeout"},
		{opPut, newError("x", "put", "k", fmt.Errorf("%w (%v)", context.Canceled, "eof")), "canceled"},
		{opGet, newError("x", "get", "", ErrInvalidKey), "invalid"},
		{opPut, newError("x", "put", "k", ErrTooLarge), "too_large"},
		{opGet, newError("x", "get", "k", ErrClosed), "closed"},
		{opLeaseAcquire, newError("x", "lease", "n", ErrLeaseHeld), "held"},
		{opLeaseRefresh, newError("x", "refresh lease", "n", ErrLeaseLost), "lost"},
		{opList, newError("x", "list", "", ErrUnsupported), "unsupported"},
		{opGet, newError("file", "get", "k", &fs.PathError{Op: "open", Path: "/x", Err: fs.ErrPermission}), "denied"},
		{opGet, newError("s3", "get", "k", fmt.Errorf("api error: %w", httpStatusErr(403))), "denied"},
		{opGet, newError("s3", "get", "k", httpStatusErr(500)), "other"},
		{opGet, newError("dynamodb", "get", "k", apiCodeErr{httpStatusErr(400), "AccessDeniedException"}), "denied"},
		{opGet, newError("dynamodb", "get", "k", apiCodeErr{httpStatusErr(400), "ValidationException"}), "other"},
		{opGet, newError("postgres", "get", "k", sqlStateErr("28P01")), "denied"},
		{opGet, newError("postgres", "get", "k", sqlStateErr("42501")), "denied"},
		{opGet, newError("postgres", "get", "k", sqlStateErr("23505")), "other"},
		{opGet, newError("redis", "get", "k", redisErr("NOPERM User u has no permissions")), "denied"},
		{opGet, newError("redis", "get", "k", redisErr("WRONGPASS invalid username-password pair")), "denied"},
		{opGet, newError("redis", "get", "k", redisErr("LOADING Redis is loading")), "other"},
		{opGet, errors.New("strange"), "other"},
	} {
		if got := outcomeNames[outcomeOf(tc.op, tc.err)]; got != tc.want {
			t.Errorf("outcomeOf(%s, %v) = %s, want %s", opNames[tc.op], tc.err, got, tc.want)
		}
	}
}

// TestNoProviderCostsNoAllocation: with no provider installed, a Get hit
// allocates what it did before the instrumentation (the caller's copy of
// the value), through the portable layer and through coordination; with an
// SDK MeterProvider, it still does (attribute sets are made in advance).
func TestNoProviderCostsNoAllocation(t *testing.T) {
	ctx := context.Background()
	value := certValue(t, "hit.example", time.Now(), time.Now().Add(90*24*time.Hour))
	for _, tc := range []struct {
		name string
		open func() (Cache, error)
		on   bool // the instrumentation records
	}{
		{"mem://?coordinate=false", func() (Cache, error) { return Open(ctx, "mem://?coordinate=false") }, false},
		{"mem://", func() (Cache, error) { return Open(ctx, "mem://") }, false},
		{"SDK MeterProvider", func() (Cache, error) {
			mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
			return NewCache("mem", newMemStore(), &Options{MeterProvider: mp}), nil
		}, true},
	} {
		c, err := tc.open()
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		if err := c.Put(ctx, "hit.example", value); err != nil {
			t.Fatal(err)
		}
		if on := findPortable(c).tel.on(ctx); on != tc.on {
			t.Fatalf("%s: instrumentation on = %v, want %v", tc.name, on, tc.on)
		}
		allocs := testing.AllocsPerRun(1000, func() {
			if _, err := c.Get(ctx, "hit.example"); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 1 {
			t.Errorf("%s: Get hit allocates %v times, want 1 (the value)", tc.name, allocs)
		}
	}
}

// observed is a cache made by NewCache over mem:// with SDK providers.
type observed struct {
	Cache
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	logs   *bytes.Buffer
}

func newObserved(t *testing.T, o Options) *observed {
	t.Helper()
	ob := &observed{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(), logs: &bytes.Buffer{}}
	o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(ob.reader))
	o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(ob.spans))
	o.Logger = slog.New(slog.NewTextHandler(ob.logs, nil))
	ob.Cache = NewCache("memtest", newMemStore(), &o)
	t.Cleanup(func() { ob.Close() })
	return ob
}

// metrics returns every data point collected: sums and gauges by
// "name{attributes}", histograms as their count under "name_count{…}".
func (ob *observed) metrics(t *testing.T) map[string]float64 {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := ob.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatal(err)
	}
	return metrictest.Flatten(rm)
}

var series = metrictest.Series

func calls(op, outcome string) string {
	return series(otelname.MetricCalls, otelname.AttrBackend, "memtest", otelname.AttrOperation, op, otelname.AttrOutcome, outcome)
}

// TestExplicitProviders: calls, durations and spans go to the providers in
// Options; spans carry the key and the outcome, errors are recorded, a miss
// is not an error, and no value appears anywhere.
func TestExplicitProviders(t *testing.T) {
	ctx := context.Background()
	ob := newObserved(t, Options{})
	secret := "-----BEGIN PRIVATE KEY-----\nsecret-value\n"
	ob.Put(ctx, "a.example+token", []byte(secret))
	ob.Get(ctx, "a.example+token")
	ob.Get(ctx, "a.example+token")
	ob.Get(ctx, "missing+token")
	ob.Get(ctx, "")
	ob.Put(ctx, "big+token", make([]byte, MaxValueSize+1))
	ob.Delete(ctx, "a.example+token")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ob.Get(cctx, "a.example+token")
	l, err := AcquireLease(ctx, ob.Cache, "n", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := AcquireLease(ctx, ob.Cache, "n", time.Minute); !errors.Is(err, ErrLeaseHeld) {
		t.Fatalf("second AcquireLease: %v", err)
	}
	l.Refresh(ctx)
	l.Release(ctx)
	for range List(ctx, ob.Cache, "") {
	}

	got := ob.metrics(t)
	for s, want := range map[string]float64{
		calls("put", "ok"):             1,
		calls("get", "hit"):            2,
		calls("get", "miss"):           1,
		calls("get", "invalid"):        1,
		calls("put", "too_large"):      1,
		calls("delete", "ok"):          1,
		calls("get", "canceled"):       1,
		calls("lease_acquire", "ok"):   1,
		calls("lease_acquire", "held"): 1,
		calls("lease_refresh", "ok"):   1,
		calls("lease_release", "ok"):   1,
		calls("list", "ok"):            1,
		series(otelname.MetricCallDuration+"_count", otelname.AttrBackend, "memtest", otelname.AttrOperation, "get"): 5,
		series(otelname.MetricCallDuration+"_count", otelname.AttrBackend, "memtest", otelname.AttrOperation, "put"): 2,
	} {
		if got[s] != want {
			t.Errorf("%s = %v, want %v", s, got[s], want)
		}
	}

	spans := ob.spans.Ended()
	if len(spans) != 13 {
		var names []string
		for _, s := range spans {
			names = append(names, s.Name())
		}
		t.Errorf("%d spans, want 13 (one per call): %v", len(spans), names)
	}
	var sawMiss, sawInvalid bool
	for _, s := range spans {
		attrs := map[string]string{}
		for _, kv := range s.Attributes() {
			attrs[string(kv.Key)] = kv.Value.Emit()
			if strings.Contains(kv.Value.Emit(), "secret-value") {
				t.Errorf("span %s holds the value in %s", s.Name(), kv.Key)
			}
		}
		if attrs[otelname.AttrBackend] != "memtest" || attrs[otelname.AttrOutcome] == "" || !strings.HasPrefix(s.Name(), "certcache.") {
			t.Errorf("span %s: attributes %v", s.Name(), attrs)
		}
		switch {
		case attrs[otelname.AttrOutcome] == "miss":
			sawMiss = true
			if s.Status().Code == codes.Error || attrs[otelname.AttrKey] != "missing+token" {
				t.Errorf("miss span: status %v, key %q; want no error and the key", s.Status(), attrs[otelname.AttrKey])
			}
		case attrs[otelname.AttrOutcome] == "invalid":
			sawInvalid = true
			if s.Status().Code != codes.Error || len(s.Events()) == 0 || s.Events()[0].Name != "exception" {
				t.Errorf("invalid-key span: status %v, events %v; want the error recorded", s.Status(), s.Events())
			}
		}
	}
	if !sawMiss || !sawInvalid {
		t.Errorf("spans: miss seen %v, invalid seen %v", sawMiss, sawInvalid)
	}
}

// TestExpiryGauge: the coordinated layer reports each certificate it reads
// or writes, follows a Put of a renewed certificate, forgets a deleted one,
// and keeps at most maxExpiryCertificates, dropping the least recently seen.
func TestExpiryGauge(t *testing.T) {
	ctx := context.Background()
	ob := newObserved(t, Options{})
	now := time.Now()
	value := certValue(t, "a.example", now.Add(-time.Hour), now.Add(48*time.Hour))
	renewed := certValue(t, "a.example", now, now.Add(90*24*time.Hour))
	expiry := func(key string) (float64, bool) {
		v, ok := ob.metrics(t)[series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, key)]
		return v, ok
	}
	if err := ob.Put(ctx, "a.example", value); err != nil {
		t.Fatal(err)
	}
	if v, ok := expiry("a.example"); !ok || v < 47*3600 || v > 48*3600 {
		t.Errorf("after Put: expiry %v (%v), want about 48h in seconds", v, ok)
	}
	ob.Put(ctx, "a.example", renewed)
	if v, _ := expiry("a.example"); v < 89*24*3600 {
		t.Errorf("after the renewal's Put: expiry %v, want about 90 days", v)
	}
	ob.Put(ctx, "b.example+token", value) // not a certificate key
	if _, ok := expiry("b.example+token"); ok {
		t.Error("a token key is reported")
	}
	ob.Delete(ctx, "a.example")
	if _, ok := expiry("a.example"); ok {
		t.Error("a deleted certificate is still reported")
	}

	co := ob.Cache.(*coordinated)
	first := "n0.example"
	for i := range maxExpiryCertificates + 1 {
		key := fmt.Sprintf("n%d.example", i)
		co.tel.certificate(key, value)
		if i == maxExpiryCertificates/2 {
			co.tel.certificate(first, value) // seen again: not the oldest any more
		}
	}
	got := ob.metrics(t)
	n := 0
	for k := range got {
		if strings.HasPrefix(k, otelname.MetricCertificateExpiry+"{") {
			n++
		}
	}
	if n != maxExpiryCertificates {
		t.Errorf("%d certificates reported, want the cap, %d", n, maxExpiryCertificates)
	}
	if _, ok := got[series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, first)]; !ok {
		t.Error("the certificate seen again was dropped")
	}
	if _, ok := got[series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, "n1.example")]; ok {
		t.Error("the least recently seen certificate was kept")
	}
}

// TestClosedCacheStopsReporting: Close unregisters the callbacks.
func TestClosedCacheStopsReporting(t *testing.T) {
	ob := newObserved(t, Options{})
	ob.Put(context.Background(), "a.example", certValue(t, "a.example", time.Now(), time.Now().Add(time.Hour)))
	if _, ok := ob.metrics(t)[series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, "a.example")]; !ok {
		t.Fatal("no expiry before Close")
	}
	ob.Close()
	if _, ok := ob.metrics(t)[series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, "a.example")]; ok {
		t.Error("expiry still reported after Close")
	}
}

// BenchmarkObservedGetHit is the cost of the instrumentation on a Get hit
// of mem://: without a provider, with an SDK MeterProvider (ManualReader),
// and with an SDK TracerProvider that samples every span as well.
func BenchmarkObservedGetHit(b *testing.B) {
	ctx := context.Background()
	value := certValue(b, "hit.example", time.Now(), time.Now().Add(90*24*time.Hour))
	for _, tc := range []struct {
		name string
		o    *Options
	}{
		{"none", nil},
		{"metrics", &Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}},
		{"metrics+traces", &Options{
			MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
			TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())),
		}},
	} {
		c := NewCache("mem", newMemStore(), tc.o)
		defer c.Close()
		c.Put(ctx, "hit.example", value)
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, "hit.example"); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
