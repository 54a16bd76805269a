package certcache

import (
	"context"
	"errors"
	"hash/maphash"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/certcache/certcache/internal/certkey"
	"github.com/certcache/certcache/internal/hook"
	"github.com/certcache/certcache/internal/otelname"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/crypto/acme/autocert"
)

// The OpenTelemetry metrics and spans every Cache reports, and the
// log/slog events it writes.
//
// A Cache reports to Options.MeterProvider and Options.TracerProvider, or,
// when they are nil (and for every cache opened by URL), to the global
// providers of go.opentelemetry.io/otel as they are when the cache is made.
// The global providers forward to a provider that the application installs
// later (otel.SetMeterProvider, otel.SetTracerProvider), so the order does
// not matter. Until a provider is installed, the instrumentation costs a
// call a few checks of an atomic pointer and no allocation: no clock is
// read, no span is started, no certificate is parsed.
//
// Every instrument is made in one place, never in a backend: the portable
// layer (NewCache) counts and times the calls that reach the store and
// reads the circuit breaker; issuance coordination counts lease events and
// watches certificate expiry; the memory front of package layered reports
// its counters (see that package). Attribute values come from small fixed
// sets, except certcache.certificate, which is bounded by
// maxExpiryCertificates; no metric carries a cache key.
//
// Spans: one span per call of the portable layer, named "certcache.get",
// "certcache.put", "certcache.delete", "certcache.lease_acquire",
// "certcache.lease_refresh", "certcache.lease_release" and "certcache.list"
// (the whole listing), of kind client, with the attributes
// certcache.backend, certcache.operation and certcache.outcome, and
// certcache.key: the cache key (the prefix for a listing). Keys are not
// secrets — autocert's keys are domain names, "acme_account+key", and
// HTTP-01 tokens that the CA fetches over plain HTTP — and a person
// debugging one slow handshake needs the name; they are kept off metrics
// only because their number is unbounded. Values never appear anywhere. A
// failed call records its error on the span (errors never hold a secret)
// and sets the span's status to Error; a miss is not an error.
//
// Log events (Options.Logger, or slog.Default() at the time of logging):
//
//   - Warn "certcache: order lease taken over": this process took an
//     order lease whose holder let it run out without storing the
//     certificate (see certcache.lease.events, event taken_over).
//   - Warn "certcache: order lease lost": a refresh found that the
//     lease this process holds for an order had run out and been taken;
//     another node may order the same certificate.
//   - Warn "certcache/layered: served a stale copy" (package layered).
//   - Error "certcache/encrypt: a stored value failed to decrypt" (package
//     encrypt).
//
// No log line holds a value or a secret; keys (domain names) are logged.
//
// docs/telemetry.md lists every metric and attribute with its unit and
// meaning; internal/otelname holds their names. A Prometheus exporter
// writes the dots as underscores and adds the unit and _total:
// certcache.calls is certcache_calls_total, certcache.call.duration is
// certcache_call_duration_seconds, and the attribute certcache.backend is
// the label certcache_backend.

// instrumentationScope names the OpenTelemetry meter and tracer.
const instrumentationScope = "github.com/certcache/certcache"

// durationBuckets fit a memory hit (microseconds) to a call that times out
// (seconds).
var durationBuckets = []float64{
	0.000005, 0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
}

// The global providers as they are before anyone installs one: while
// otel.GetTracerProvider returns this, no span would be recorded.
var (
	defaultTracerProvider = otel.GetTracerProvider()
	defaultMeterProvider  = otel.GetMeterProvider()
)

// telemetryOf is hook.TelemetryOf.
func telemetryOf(c hook.Cache) hook.Telemetry {
	if p := findPortable(c); p != nil && p.tel != nil {
		return hook.Telemetry{Backend: p.backend, MeterProvider: p.tel.mp, TracerProvider: p.tel.tp, Logger: p.tel.logger}
	}
	return hook.Telemetry{MeterProvider: otel.GetMeterProvider(), TracerProvider: otel.GetTracerProvider()}
}

// providers returns the providers o asks for, or the global ones.
func providers(o *Options) (mp metric.MeterProvider, tp trace.TracerProvider, logger *slog.Logger) {
	if o != nil {
		mp, tp, logger = o.MeterProvider, o.TracerProvider, o.Logger
	}
	if mp == nil {
		mp = otel.GetMeterProvider()
	}
	if tp == nil {
		tp = otel.GetTracerProvider()
	}
	return mp, tp, logger
}

// tracingOn reports whether spans started with tp may be recorded: tp is
// not a no-op, and if it is the global provider's delegate, a provider has
// been installed since. The global tracer would otherwise cost a context
// and a span per call for nothing.
func tracingOn(tp trace.TracerProvider) bool {
	if tp == defaultTracerProvider {
		tp = otel.GetTracerProvider() // one atomic load
		if tp == defaultTracerProvider {
			return false
		}
	}
	_, noop := tp.(tracenoop.TracerProvider)
	return !noop
}

// meteringOn is tracingOn for metrics.
func meteringOn(mp metric.MeterProvider) bool {
	if mp == defaultMeterProvider {
		mp = otel.GetMeterProvider()
		if mp == defaultMeterProvider {
			return false
		}
	}
	_, noop := mp.(metricnoop.MeterProvider)
	return !noop
}

// otelError reports an error of the OpenTelemetry API (an instrument that
// could not be made) where OpenTelemetry reports its own.
func otelError(err error) {
	if err != nil {
		otel.Handle(err)
	}
}

// callOp is an operation of the portable layer.
type callOp uint8

const (
	opGet callOp = iota
	opPut
	opDelete
	opLeaseAcquire
	opLeaseRefresh
	opLeaseRelease
	opList
	numOps
)

var opNames = [numOps]string{"get", "put", "delete", "lease_acquire", "lease_refresh", "lease_release", "list"}

// outcome is the value of the certcache.outcome attribute.
type outcome uint8

const (
	outHit outcome = iota
	outMiss
	outOK
	outUnavailable
	outTimeout
	outDenied
	outInvalid
	outTooLarge
	outClosed
	outCircuitOpen
	outHeld
	outLost
	outUnsupported
	outCanceled
	outOther
	numOutcomes
)

var outcomeNames = [numOutcomes]string{
	"hit", "miss", "ok", "unavailable", "timeout", "denied", "invalid", "too_large",
	"closed", "circuit_open", "held", "lost", "unsupported", "canceled", "other",
}

// noAnswer marks the error of a call cut short by its per-call timeout, so
// that it counts as a timeout rather than as unavailability in general. Its
// message is its cause's.
type noAnswer struct{ error }

func (e noAnswer) Unwrap() error { return e.error }

// Is makes errors.Is(err, errNoAnswer) find the mark; errors.As would cost
// an allocation per call, the healthy ones included.
func (e noAnswer) Is(target error) bool { return target == errNoAnswer }

var errNoAnswer = errors.New("no answer within the timeout")

// outcomeOf classifies the result of a call of op.
func outcomeOf(op callOp, err error) outcome {
	switch {
	case err == nil && op == opGet:
		return outHit
	case err == nil:
		return outOK
	case err == autocert.ErrCacheMiss: //nolint:errorlint // the contract's bare sentinel
		return outMiss
	case errors.Is(err, ErrCircuitOpen):
		return outCircuitOpen
	case errors.Is(err, ErrClosed):
		return outClosed
	case errors.Is(err, ErrInvalidKey):
		return outInvalid
	case errors.Is(err, ErrTooLarge):
		return outTooLarge
	case errors.Is(err, ErrLeaseHeld):
		return outHeld
	case errors.Is(err, ErrLeaseLost):
		return outLost
	case errors.Is(err, ErrUnsupported):
		return outUnsupported
	case errors.Is(err, context.Canceled):
		return outCanceled
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, errNoAnswer):
		return outTimeout
	case denied(err):
		return outDenied
	case errors.Is(err, ErrUnavailable):
		return outUnavailable
	}
	return outOther
}

// denied recognises a refusal of credentials or permissions in the ways
// the SDKs of this module's backends say it, without importing them.
func denied(err error) bool {
	if errors.Is(err, fs.ErrPermission) {
		return true
	}
	var ae interface{ ErrorCode() string } // smithy-go: DynamoDB answers these with 400
	if errors.As(err, &ae) {
		switch ae.ErrorCode() {
		case "AccessDeniedException", "UnrecognizedClientException", "InvalidSignatureException",
			"MissingAuthenticationTokenException", "ExpiredTokenException":
			return true
		}
	}
	var hs interface{ HTTPStatusCode() int } // smithy-go (S3)
	if errors.As(err, &hs) {
		c := hs.HTTPStatusCode()
		return c == 401 || c == 403
	}
	var sq interface{ SQLState() string } // pgconn.PgError
	if errors.As(err, &sq) {
		s := sq.SQLState()
		return strings.HasPrefix(s, "28") || s == "42501"
	}
	var re interface {
		error
		RedisError()
	}
	if errors.As(err, &re) {
		m := re.Error()
		return strings.HasPrefix(m, "NOAUTH") || strings.HasPrefix(m, "WRONGPASS") || strings.HasPrefix(m, "NOPERM")
	}
	return false
}

// callAttrs are the precomputed measurement options of one backend: an
// attribute set costs a sort and an allocation to make, so each is made
// once per process.
type callAttrs struct {
	add  [numOps][numOutcomes][]metric.AddOption
	rec  [numOps][]metric.RecordOption
	span [numOps][]trace.SpanStartOption
	set  attribute.Set // certcache.backend alone
}

var callAttrsByBackend sync.Map // backend name → *callAttrs

func attrsFor(backend string) *callAttrs {
	if a, ok := callAttrsByBackend.Load(backend); ok {
		return a.(*callAttrs)
	}
	a := &callAttrs{set: attribute.NewSet(attribute.String(otelname.AttrBackend, backend))}
	for op := range numOps {
		b, o := attribute.String(otelname.AttrBackend, backend), attribute.String(otelname.AttrOperation, opNames[op])
		a.rec[op] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(b, o))}
		a.span[op] = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindClient), trace.WithAttributes(b, o)}
		for oc := range numOutcomes {
			a.add[op][oc] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(b, o, attribute.String(otelname.AttrOutcome, outcomeNames[oc])))}
		}
	}
	got, _ := callAttrsByBackend.LoadOrStore(backend, a)
	return got.(*callAttrs)
}

var spanNames = func() (n [numOps]string) {
	for op := range numOps {
		n[op] = "certcache." + opNames[op]
	}
	return n
}()

// telemetry is the instrumentation of one portable layer.
type telemetry struct {
	mp     metric.MeterProvider
	tp     trace.TracerProvider
	logger *slog.Logger // nil: slog.Default()

	calls    metric.Int64Counter
	duration metric.Float64Histogram
	tracer   trace.Tracer
	attrs    *callAttrs
	reg      metric.Registration // the breaker's callback; nil without one
}

// newTelemetry instruments c; c.brk must be set.
func newTelemetry(c *portable, o *Options) *telemetry {
	t := &telemetry{attrs: attrsFor(c.backend)}
	t.mp, t.tp, t.logger = providers(o)
	meter := t.mp.Meter(instrumentationScope)
	t.tracer = t.tp.Tracer(instrumentationScope)
	var err error
	t.calls, err = meter.Int64Counter(otelname.MetricCalls, metric.WithUnit("{call}"),
		metric.WithDescription("Calls that reached a certcache store, by backend, operation and outcome."))
	if err != nil {
		otelError(err)
		t.calls = metricnoop.Int64Counter{}
	}
	t.duration, err = meter.Float64Histogram(otelname.MetricCallDuration, metric.WithUnit("s"),
		metric.WithDescription("Duration of calls to a certcache store."),
		metric.WithExplicitBucketBoundaries(durationBuckets...))
	if err != nil {
		otelError(err)
		t.duration = metricnoop.Float64Histogram{}
	}
	if c.brk != nil {
		t.reg = observeBreaker(meter, c.brk, t.attrs.set)
	}
	return t
}

// close stops the callbacks, so that a closed cache stops reporting.
func (t *telemetry) close() {
	if t != nil && t.reg != nil {
		otelError(t.reg.Unregister())
	}
}

// on reports whether a call must be observed: a meter or tracer would
// record it. The healthy path without a provider costs these two checks.
func (t *telemetry) on(ctx context.Context) bool {
	return t != nil && (t.calls.Enabled(ctx) || tracingOn(t.tp))
}

// callObs is one observed call, from begin to end.
type callObs struct {
	t     *telemetry
	op    callOp
	start time.Time
	span  trace.Span // nil when not tracing
}

// begin starts observing a call of op on key; the context it returns
// carries the call's span, if any, for the driver's own instrumentation.
func (t *telemetry) begin(ctx context.Context, op callOp, key string) (context.Context, callObs) {
	ob := callObs{t: t, op: op, start: time.Now()}
	if tracingOn(t.tp) {
		opts := append(t.attrs.span[op][:len(t.attrs.span[op]):len(t.attrs.span[op])], trace.WithAttributes(attribute.String(otelname.AttrKey, key)))
		ctx, ob.span = t.tracer.Start(ctx, spanNames[op], opts...)
	}
	return ctx, ob
}

// end records the call's outcome and duration and ends its span.
func (ob *callObs) end(ctx context.Context, err error) {
	oc := outcomeOf(ob.op, err)
	t := ob.t
	t.calls.Add(ctx, 1, t.attrs.add[ob.op][oc]...)
	t.duration.Record(ctx, time.Since(ob.start).Seconds(), t.attrs.rec[ob.op]...)
	if ob.span == nil {
		return
	}
	ob.span.SetAttributes(attribute.String(otelname.AttrOutcome, outcomeNames[oc]))
	if oc > outOK {
		ob.span.RecordError(err)
		ob.span.SetStatus(codes.Error, err.Error())
	}
	ob.span.End()
}

// observeBreaker registers the callback that reports b's counters.
func observeBreaker(meter metric.Meter, b *breaker, set attribute.Set) metric.Registration {
	opened, err1 := meter.Int64ObservableCounter(otelname.MetricBreakerOpened, metric.WithUnit("{event}"),
		metric.WithDescription("Times the circuit breaker opened because the store could not answer."))
	closed, err2 := meter.Int64ObservableCounter(otelname.MetricBreakerClosed, metric.WithUnit("{event}"),
		metric.WithDescription("Times a probe found the store answering and closed the circuit breaker."))
	fast, err3 := meter.Int64ObservableCounter(otelname.MetricBreakerFastFailed, metric.WithUnit("{call}"),
		metric.WithDescription("Calls refused at once because the circuit breaker was open."))
	probes, err4 := meter.Int64ObservableCounter(otelname.MetricBreakerProbes, metric.WithUnit("{probe}"),
		metric.WithDescription("Probes sent to the store while the circuit breaker was open."))
	open, err5 := meter.Int64ObservableGauge(otelname.MetricBreakerOpen,
		metric.WithDescription("1 while the circuit breaker is open, else 0."))
	if err := errors.Join(err1, err2, err3, err4, err5); err != nil {
		otelError(err)
		return nil
	}
	opt := metric.WithAttributeSet(set)
	reg, err := meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		o.ObserveInt64(opened, int64(b.opened.Load()), opt)
		o.ObserveInt64(closed, int64(b.closed.Load()), opt)
		o.ObserveInt64(fast, int64(b.fastFailed.Load()), opt)
		o.ObserveInt64(probes, int64(b.probes.Load()), opt)
		var isOpen int64
		if b.st.Load().open {
			isOpen = 1
		}
		o.ObserveInt64(open, isOpen, opt)
		return nil
	}, opened, closed, fast, probes, open)
	if err != nil {
		otelError(err)
		return nil
	}
	return reg
}

// Lease events of certcache.lease.events.
type leaseEvent uint8

const (
	evAcquired leaseEvent = iota
	evIssuing
	evWaited
	evTakenOver
	evLost
	numLeaseEvents
)

var leaseEventNames = [numLeaseEvents]string{"acquired", "issuing", "waited", "taken_over", "lost"}

// takeoverWindow is how long after finding an order lease held an
// acquisition of it counts as a takeover, in lease TTLs: the holder's lease
// ends at most one TTL after it was last seen held, and a waiter or the next
// handshake comes for it soon after.
const takeoverWindow = 2

// expirySeed seeds the hashes that tell a certificate already parsed from
// a new one.
var expirySeed = maphash.MakeSeed()

// coordTelemetry is the instrumentation of issuance coordination.
type coordTelemetry struct {
	backend string
	mp      metric.MeterProvider
	logger  *slog.Logger // nil: slog.Default()

	events    metric.Int64Counter
	waits     metric.Float64Histogram
	eventOpts [numLeaseEvents][]metric.AddOption
	waitOpts  [2][]metric.RecordOption // renewal, account key
	reg       metric.Registration

	mu    sync.Mutex
	certs map[string]*certExpiry // certificate key → its expiry
}

type certExpiry struct {
	notAfter time.Time
	seen     time.Time // when the key was last read or written
	sum      uint64    // maphash of the value last parsed
	opt      metric.ObserveOption
}

func newCoordTelemetry(p *portable, o *Options) *coordTelemetry {
	t := &coordTelemetry{backend: p.backend, certs: map[string]*certExpiry{}}
	t.mp, _, t.logger = providers(o)
	b := attribute.String(otelname.AttrBackend, p.backend)
	for ev := range numLeaseEvents {
		t.eventOpts[ev] = []metric.AddOption{metric.WithAttributeSet(attribute.NewSet(b, attribute.String(otelname.AttrEvent, leaseEventNames[ev])))}
	}
	t.waitOpts[0] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(b, attribute.String(otelname.AttrWait, "renewal")))}
	t.waitOpts[1] = []metric.RecordOption{metric.WithAttributeSet(attribute.NewSet(b, attribute.String(otelname.AttrWait, "account_key")))}
	meter := t.mp.Meter(instrumentationScope)
	var err error
	t.events, err = meter.Int64Counter(otelname.MetricLeaseEvents, metric.WithUnit("{event}"),
		metric.WithDescription("Order lease events of issuance coordination: acquired, issuing, waited, taken_over, lost."))
	if err != nil {
		otelError(err)
		t.events = metricnoop.Int64Counter{}
	}
	t.waits, err = meter.Float64Histogram(otelname.MetricLeaseWait, metric.WithUnit("s"),
		metric.WithDescription("Time renewal and account-key Gets waited for another holder's value."),
		metric.WithExplicitBucketBoundaries(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600))
	if err != nil {
		otelError(err)
		t.waits = metricnoop.Float64Histogram{}
	}
	expiry, err := meter.Float64ObservableGauge(otelname.MetricCertificateExpiry, metric.WithUnit("s"),
		metric.WithDescription("Seconds until the certificate expires (negative once it has), for each certificate this process read or wrote."))
	if err != nil {
		otelError(err)
		return t
	}
	t.reg, err = meter.RegisterCallback(func(_ context.Context, o metric.Observer) error {
		now := time.Now()
		t.mu.Lock()
		defer t.mu.Unlock()
		for _, e := range t.certs {
			o.ObserveFloat64(expiry, e.notAfter.Sub(now).Seconds(), e.opt)
		}
		return nil
	}, expiry)
	otelError(err)
	return t
}

func (t *coordTelemetry) close() {
	if t != nil && t.reg != nil {
		otelError(t.reg.Unregister())
	}
}

func (t *coordTelemetry) log() *slog.Logger {
	if t.logger != nil {
		return t.logger
	}
	return slog.Default()
}

// event counts a lease event.
func (t *coordTelemetry) event(ctx context.Context, ev leaseEvent) {
	if t != nil {
		t.events.Add(ctx, 1, t.eventOpts[ev]...)
	}
}

// takenOver counts and logs the takeover of key's order lease.
func (t *coordTelemetry) takenOver(ctx context.Context, key string) {
	if t == nil {
		return
	}
	t.event(ctx, evTakenOver)
	t.log().LogAttrs(ctx, slog.LevelWarn, "certcache: order lease taken over: its holder let it run out without storing the certificate (it died, or its order failed); ordering here",
		slog.String("backend", t.backend), slog.String("key", key))
}

// lost counts and logs the loss of key's order lease.
func (t *coordTelemetry) lost(key string, err error) {
	if t == nil {
		return
	}
	ctx := context.Background()
	t.event(ctx, evLost)
	t.log().LogAttrs(ctx, slog.LevelWarn, "certcache: order lease lost: it ran out before the order ended; another node may order the same certificate",
		slog.String("backend", t.backend), slog.String("key", key), slog.Any("err", err))
}

// waited records a wait for another holder's value of key that began at
// began; a zero began means the caller did not wait.
func (t *coordTelemetry) waited(ctx context.Context, key string, began time.Time) {
	if t == nil || began.IsZero() {
		return
	}
	ctx = context.WithoutCancel(ctx)
	t.event(ctx, evWaited)
	i := 0
	if certkey.KindOf(key) == certkey.Account {
		i = 1
	}
	t.waits.Record(ctx, time.Since(began).Seconds(), t.waitOpts[i]...)
}

// certificate notes the expiry of the certificate in data, read or
// written under key; other keys are ignored. Without a meter provider it
// does nothing, so a Get hit costs one check. A value is parsed only when
// it differs from the one last parsed for key (a hash of a few KiB costs
// far less than parsing them), so a renewal stored by another node is seen
// at the first read that returns it.
func (t *coordTelemetry) certificate(key string, data []byte) {
	if t == nil || !meteringOn(t.mp) || certkey.KindOf(key) != certkey.Cert {
		return
	}
	now := time.Now()
	sum := maphash.Bytes(expirySeed, data)
	t.mu.Lock()
	e := t.certs[key]
	if e != nil && e.sum == sum {
		e.seen = now
		t.mu.Unlock()
		return
	}
	t.mu.Unlock()
	leaf, ok := certkey.Leaf(data) // outside the lock: parsing takes tens of microseconds
	t.mu.Lock()
	defer t.mu.Unlock()
	if !ok {
		delete(t.certs, key) // not a certificate (any more): nothing to report
		return
	}
	e = t.certs[key]
	if e == nil {
		if len(t.certs) >= maxExpiryCertificates {
			t.dropOldest()
		}
		e = &certExpiry{opt: metric.WithAttributeSet(attribute.NewSet(
			attribute.String(otelname.AttrBackend, t.backend), attribute.String(otelname.AttrCertificate, key)))}
		t.certs[key] = e
	}
	e.notAfter, e.seen, e.sum = leaf.NotAfter, now, sum
}

// forget stops reporting key (deleted).
func (t *coordTelemetry) forget(key string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.certs, key)
	t.mu.Unlock()
}

// dropOldest drops the certificate read or written least recently. It
// scans: it runs only when a new name comes with the gauge full.
func (t *coordTelemetry) dropOldest() {
	var oldest string
	var at time.Time
	for k, e := range t.certs {
		if oldest == "" || e.seen.Before(at) {
			oldest, at = k, e.seen
		}
	}
	delete(t.certs, oldest)
}
