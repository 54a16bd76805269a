package observetest

// The instruments with providers passed in Options, on mem://; no server
// needed. These tests lived in the root package, whose tests a user's go
// mod tidy loads: there they put the OpenTelemetry SDK into every user's
// go.sum.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/driver"
	"github.com/certcache/certcache/internal/integration/metrictest"
	"github.com/certcache/certcache/internal/otelname"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
)

// memDriver returns the driver of a private mem:// store, for NewCache.
func memDriver(t testing.TB) driver.Driver {
	t.Helper()
	c, err := certcache.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	u, ok := certcache.Uncoordinated(c).(interface{ Unwrap() driver.Driver })
	if !ok {
		t.Fatalf("mem:// beneath coordination is %T, which has no driver", certcache.Uncoordinated(c))
	}
	return u.Unwrap()
}

// observed is a cache made by NewCache over mem:// with SDK providers.
type observed struct {
	certcache.Cache
	reader *sdkmetric.ManualReader
	spans  *tracetest.SpanRecorder
	logs   *bytes.Buffer
}

func newObserved(t *testing.T, o certcache.Options) *observed {
	t.Helper()
	ob := &observed{reader: sdkmetric.NewManualReader(), spans: tracetest.NewSpanRecorder(), logs: &bytes.Buffer{}}
	o.MeterProvider = sdkmetric.NewMeterProvider(sdkmetric.WithReader(ob.reader))
	o.TracerProvider = sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(ob.spans))
	o.Logger = slog.New(slog.NewTextHandler(ob.logs, nil))
	ob.Cache = certcache.NewCache("memtest", memDriver(t), &o)
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

func memCalls(op, outcome string) string {
	return metrictest.Series(otelname.MetricCalls, otelname.AttrBackend, "memtest", otelname.AttrOperation, op, otelname.AttrOutcome, outcome)
}

// TestSDKProviderCostsNoAllocation: with an SDK MeterProvider, a Get hit
// allocates only the caller's copy of the value, as without one (the
// attribute sets are made in advance). The root package's
// TestNoProviderCostsNoAllocation checks the case without a provider.
func TestSDKProviderCostsNoAllocation(t *testing.T) {
	ctx := context.Background()
	value := certValue(t, "hit.example", time.Now(), time.Now().Add(90*24*time.Hour))
	// TracerProvider: no spans here, whatever this package's TestMain
	// installed globally.
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))
	c := certcache.NewCache("mem", memDriver(t), &certcache.Options{MeterProvider: mp, TracerProvider: tracenoop.NewTracerProvider()})
	defer c.Close()
	if err := c.Put(ctx, "hit.example", value); err != nil {
		t.Fatal(err)
	}
	allocs := testing.AllocsPerRun(1000, func() {
		if _, err := c.Get(ctx, "hit.example"); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 1 {
		t.Errorf("Get hit allocates %v times, want 1 (the value)", allocs)
	}
}

// TestExplicitProviders: calls, durations and spans go to the providers in
// Options; spans carry the key and the outcome, errors are recorded, a miss
// is not an error, and no value appears anywhere.
func TestExplicitProviders(t *testing.T) {
	ctx := context.Background()
	ob := newObserved(t, certcache.Options{})
	secret := "-----BEGIN PRIVATE KEY-----\nsecret-value\n"
	ob.Put(ctx, "a.example+token", []byte(secret))
	ob.Get(ctx, "a.example+token")
	ob.Get(ctx, "a.example+token")
	ob.Get(ctx, "missing+token")
	ob.Get(ctx, "")
	ob.Put(ctx, "big+token", make([]byte, certcache.MaxValueSize+1))
	ob.Delete(ctx, "a.example+token")
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	ob.Get(cctx, "a.example+token")
	l, err := certcache.AcquireLease(ctx, ob.Cache, "n", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := certcache.AcquireLease(ctx, ob.Cache, "n", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("second AcquireLease: %v", err)
	}
	l.Refresh(ctx)
	l.Release(ctx)
	for range certcache.List(ctx, ob.Cache, "") {
	}

	got := ob.metrics(t)
	for s, want := range map[string]float64{
		memCalls("put", "ok"):             1,
		memCalls("get", "hit"):            2,
		memCalls("get", "miss"):           1,
		memCalls("get", "invalid"):        1,
		memCalls("put", "too_large"):      1,
		memCalls("delete", "ok"):          1,
		memCalls("get", "canceled"):       1,
		memCalls("lease_acquire", "ok"):   1,
		memCalls("lease_acquire", "held"): 1,
		memCalls("lease_refresh", "ok"):   1,
		memCalls("lease_release", "ok"):   1,
		memCalls("list", "ok"):            1,
		metrictest.Series(otelname.MetricCallDuration+"_count", otelname.AttrBackend, "memtest", otelname.AttrOperation, "get"): 5,
		metrictest.Series(otelname.MetricCallDuration+"_count", otelname.AttrBackend, "memtest", otelname.AttrOperation, "put"): 2,
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

// expiryCap is the documented bound on the certificates one Cache reports
// (docs/telemetry.md).
const expiryCap = 1000

// TestExpiryGauge: the coordinated layer reports each certificate it reads
// or writes, follows a Put of a renewed certificate, forgets a deleted one,
// and keeps at most expiryCap, dropping the least recently seen.
func TestExpiryGauge(t *testing.T) {
	ctx := context.Background()
	ob := newObserved(t, certcache.Options{})
	now := time.Now()
	value := certValue(t, "a.example", now.Add(-time.Hour), now.Add(48*time.Hour))
	renewed := certValue(t, "a.example", now, now.Add(90*24*time.Hour))
	expirySeries := func(key string) string {
		return metrictest.Series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, key)
	}
	expiry := func(key string) (float64, bool) {
		v, ok := ob.metrics(t)[expirySeries(key)]
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

	// One certificate more than the cap, the first seen again halfway.
	first := "n0.example"
	for i := range expiryCap + 1 {
		if err := ob.Put(ctx, fmt.Sprintf("n%d.example", i), value); err != nil {
			t.Fatal(err)
		}
		if i == expiryCap/2 {
			if err := ob.Put(ctx, first, value); err != nil { // seen again: not the oldest any more
				t.Fatal(err)
			}
		}
	}
	got := ob.metrics(t)
	n := 0
	for k := range got {
		if strings.HasPrefix(k, otelname.MetricCertificateExpiry+"{") {
			n++
		}
	}
	if n != expiryCap {
		t.Errorf("%d certificates reported, want the cap, %d", n, expiryCap)
	}
	if _, ok := got[expirySeries(first)]; !ok {
		t.Error("the certificate seen again was dropped")
	}
	if _, ok := got[expirySeries("n1.example")]; ok {
		t.Error("the least recently seen certificate was kept")
	}
}

// TestClosedCacheStopsReporting: Close unregisters the callbacks.
func TestClosedCacheStopsReporting(t *testing.T) {
	ob := newObserved(t, certcache.Options{})
	ob.Put(context.Background(), "a.example", certValue(t, "a.example", time.Now(), time.Now().Add(time.Hour)))
	series := metrictest.Series(otelname.MetricCertificateExpiry, otelname.AttrBackend, "memtest", otelname.AttrCertificate, "a.example")
	if _, ok := ob.metrics(t)[series]; !ok {
		t.Fatal("no expiry before Close")
	}
	ob.Close()
	if _, ok := ob.metrics(t)[series]; ok {
		t.Error("expiry still reported after Close")
	}
}

// BenchmarkObservedGetHit is the cost of the instrumentation on a Get hit
// of mem:// with an SDK MeterProvider (ManualReader), and with an SDK
// TracerProvider that samples every span as well; the root package's
// BenchmarkMem is the same Get without a provider.
func BenchmarkObservedGetHit(b *testing.B) {
	ctx := context.Background()
	value := certValue(b, "hit.example", time.Now(), time.Now().Add(90*24*time.Hour))
	for _, tc := range []struct {
		name string
		o    *certcache.Options
	}{
		{"metrics", &certcache.Options{MeterProvider: sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader()))}},
		{"metrics+traces", &certcache.Options{
			MeterProvider:  sdkmetric.NewMeterProvider(sdkmetric.WithReader(sdkmetric.NewManualReader())),
			TracerProvider: sdktrace.NewTracerProvider(sdktrace.WithSampler(sdktrace.AlwaysSample())),
		}},
	} {
		c := certcache.NewCache("mem", memDriver(b), tc.o)
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
