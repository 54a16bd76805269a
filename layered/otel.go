package layered

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache/internal/otelname"

	"github.com/certcache/certcache/internal/lograte"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
)

// The memory front's OpenTelemetry metrics and its log of stale serves.
//
// A Stack with a Memory tier reports, through the meter provider of its
// authority (hook.TelemetryOf: certcache.Options.MeterProvider, or the
// global provider), the observable counters certcache.memory.hits, .misses,
// .stale_served, .evictions, the gauges .entries and .bytes, and with a
// preload certcache.memory.preload.listed, .loaded, .errors and .done
// (docs/telemetry.md lists them with their units). They read the Stack's counters (Stats) when the metrics are
// collected: a Get costs nothing more. A Stack without a Memory tier
// reports none. Close stops the reports.

// instrumentationScope names this package's meter.
const instrumentationScope = "github.com/certcache/certcache/layered"

// staleLogEvery bounds the stale-serve log of a Stack to one line per
// interval: in an outage every Get of a name not loaded yet is served
// stale, and one line with a count says as much as a line each.
const staleLogEvery = 10 * time.Second

// stackTelemetry is the instrumentation of one Stack.
type stackTelemetry struct {
	backend string
	logger  *slog.Logger // nil: slog.Default()
	reg     metric.Registration

	staleLog lograte.Limiter
}

// observe registers the callback that reports s's counters. It needs the
// tiers and the preload set up.
func (s *Stack) observe() {
	t := hook.TelemetryOf(s.auth)
	st := &stackTelemetry{backend: t.Backend, logger: t.Logger}
	for _, m := range s.mems {
		if m != nil && m.preload.logger != nil {
			st.logger = m.preload.logger // the front's own logger, as its preload logs
			break
		}
	}
	s.tel = st
	hasMem := false
	for _, m := range s.mems {
		hasMem = hasMem || m != nil
	}
	if !hasMem {
		return
	}
	meter := t.MeterProvider.Meter(instrumentationScope)
	counter := func(name, unit, desc string) metric.Int64ObservableCounter {
		c, err := meter.Int64ObservableCounter(name, metric.WithUnit(unit), metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
		}
		return c
	}
	gauge := func(name, desc string) metric.Int64ObservableGauge {
		g, err := meter.Int64ObservableGauge(name, metric.WithDescription(desc))
		if err != nil {
			otel.Handle(err)
		}
		return g
	}
	hits := counter(otelname.MetricMemoryHits, "{call}", "Gets a certcache memory front answered with a fresh copy.")
	misses := counter(otelname.MetricMemoryMisses, "{call}", "Gets for which the authority behind a memory front said the key does not exist.")
	stale := counter(otelname.MetricMemoryStaleServed, "{call}", "Gets answered with an expired or fallback copy because the authority failed.")
	evictions := counter(otelname.MetricMemoryEvictions, "{entry}", "Entries a memory front dropped to stay within its bounds.")
	entries, err1 := meter.Int64ObservableUpDownCounter(otelname.MetricMemoryEntries, metric.WithUnit("{entry}"),
		metric.WithDescription("Entries a memory front holds, expired ones included."))
	bytes, err2 := meter.Int64ObservableUpDownCounter(otelname.MetricMemoryBytes, metric.WithUnit("By"),
		metric.WithDescription("Bytes of keys and values a memory front holds."))
	if err := errors.Join(err1, err2); err != nil {
		otel.Handle(err)
	}
	insts := []metric.Observable{hits, misses, stale, evictions, entries, bytes}
	var listed, loaded, perrs metric.Int64ObservableCounter
	var done metric.Int64ObservableGauge
	if s.pre != nil {
		listed = counter(otelname.MetricPreloadListed, "{key}", "Certificate keys a preload found in the authority's listing.")
		loaded = counter(otelname.MetricPreloadLoaded, "{key}", "Copies a preload put in the memory front.")
		perrs = counter(otelname.MetricPreloadErrors, "{error}", "A preload's failed Gets and failed listing.")
		done = gauge(otelname.MetricPreloadDone, "1 once the preload has ended, 0 while it runs.")
		insts = append(insts, listed, loaded, perrs, done)
	}
	for _, i := range insts {
		if i == nil {
			return // an instrument could not be made; reported above
		}
	}
	opt := metric.WithAttributeSet(attribute.NewSet(attribute.String(otelname.AttrBackend, t.Backend)))
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		st := s.Stats()
		var memHits uint64
		for i, m := range s.mems {
			if m != nil {
				memHits += st.Hits[i]
			}
		}
		o.ObserveInt64(hits, int64(memHits), opt)
		o.ObserveInt64(misses, int64(st.Misses), opt)
		o.ObserveInt64(stale, int64(st.StaleServes), opt)
		o.ObserveInt64(evictions, int64(st.Evictions), opt)
		o.ObserveInt64(entries, int64(st.Entries), opt)
		o.ObserveInt64(bytes, st.Bytes, opt)
		if s.pre != nil {
			o.ObserveInt64(listed, int64(st.PreloadListed), opt)
			o.ObserveInt64(loaded, int64(st.PreloadLoaded), opt)
			o.ObserveInt64(perrs, int64(st.PreloadErrors), opt)
			var d int64
			if st.PreloadDone {
				d = 1
			}
			o.ObserveInt64(done, d, opt)
		}
		return nil
	}, insts...)
	if err != nil {
		otel.Handle(err)
		return
	}
	st.reg = reg
}

// close stops the reports.
func (t *stackTelemetry) close() {
	if t != nil && t.reg != nil {
		if err := t.reg.Unregister(); err != nil {
			otel.Handle(err)
		}
	}
}

// servedStale logs, at Warn, that Get served a stale copy of key from tier
// because the authority failed with err: at once for the first of an
// outage, then at most once per staleLogEvery with the count of the others.
// The value is never logged.
func (s *Stack) servedStale(ctx context.Context, key string, tier int, err error) {
	t := s.tel
	if t == nil {
		return
	}
	more, ok := t.staleLog.Allow(staleLogEvery)
	if !ok {
		return
	}
	log := t.logger
	if log == nil {
		log = slog.Default()
	}
	log.LogAttrs(ctx, slog.LevelWarn, "certcache/layered: served a stale copy: the authoritative tier failed",
		slog.String("backend", t.backend), slog.String("key", key), slog.Int("tier", tier),
		slog.Uint64("more_since_last_log", more), slog.Any("err", err))
}
