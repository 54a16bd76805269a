// Package certcache gives golang.org/x/crypto/acme/autocert a shared,
// trustworthy certificate cache.
//
// autocert's only cache, DirCache, lives on one machine's disk. When an
// application runs on several instances, each instance then orders its own
// certificates (burning Let's Encrypt rate limits), renewals race, and an
// HTTP-01 challenge routed to another instance fails. certcache stores what
// autocert caches — certificates with their private keys, the ACME account
// key and HTTP-01 tokens — in a store every instance shares, behind one URL:
//
//	import (
//		"github.com/certcache/certcache"
//		_ "github.com/certcache/certcache/redis" // registers redis:// and rediss://
//	)
//
//	cache, err := certcache.Open(ctx, "redis://cache.internal:6379/0?prefix=myapp")
//	if err != nil { ... }
//	defer cache.Close()
//	m := &autocert.Manager{Prompt: autocert.AcceptTOS, Cache: cache, HostPolicy: ...}
//
// # URLs
//
// The URL scheme selects the backend. A backend registers its schemes when
// its package is imported, as database/sql drivers do; file:// and mem://
// are built in:
//
//	file:///var/lib/myapp/certs  a directory, laid out as autocert.DirCache does
//	file://certs                 a directory relative to the working directory
//	mem://                       process memory, private to this Open
//	mem://shared                 process memory shared by every Open of "mem://shared"
//
// Every URL also accepts these parameters, handled here once for all
// backends:
//
//	timeout        the per-call timeout, a Go duration ("5s"), of every call;
//	               default DefaultTimeout, and DefaultGetTimeout for Get
//	get_timeout    the timeout of Get alone, which autocert calls under the
//	               lock every handshake takes; default timeout if given,
//	               else DefaultGetTimeout
//	breaker        true or false: fail calls at once while the store is
//	               known to be down (see ErrCircuitOpen); default true
//	breaker_probe  how often the open breaker probes the store, a Go
//	               duration; default DefaultBreakerProbeInterval
//	coordinate     true or false: one order per certificate for the whole
//	               fleet (see below); default true on every backend
//	lease_ttl      the time to live of the order leases, a Go duration of
//	               at least 1s; default DefaultLeaseTTL
//	renew_before   the Managers' RenewBefore, a Go duration, for renewal
//	               coordination (Options.RenewBefore); not needed with
//	               TLSConfig or GetCertificate, which tell the cache
//
// Packages that wrap every backend (a memory front, encryption at rest) may
// register further parameters (package layered adds memory=…, package encrypt encryption_key=…). A parameter no one
// understands is an error that names it.
//
// # The contract
//
// Every Cache returned by this package, whatever the backend, keeps this
// contract; drivertest proves it for each backend against a real
// server:
//
//   - Get returns exactly autocert.ErrCacheMiss — the bare sentinel, never
//     wrapped, because autocert compares it with == — only when the key does
//     not exist. Any other failure (server down, timeout, permission, a
//     cancelled context) is a descriptive *Error, never the sentinel: a
//     failure reported as a miss makes autocert order a new certificate.
//     With issuance coordination (the default), a missing certificate is a
//     miss for one caller in the fleet and ErrIssuing for the others while
//     that caller orders it.
//   - Put stores a copy of data: the caller may reuse its slice at once. Get
//     returns a slice the caller owns.
//   - Delete of a missing key returns nil.
//   - Every call honours ctx and is bounded by a per-call timeout (Options.Timeout
//     or the URL's timeout parameter; Get's own with GetTimeout or
//     get_timeout). mem://, which answers from process memory and never
//     blocks, checks ctx and needs no timer.
//   - Once a call has found the store unable to answer (ErrUnavailable),
//     calls fail at once with ErrCircuitOpen, never a miss, until a
//     background probe sees the store answer again: a store that hangs costs
//     the handshakes of a node one Get timeout per outage, not one per new
//     name (see DefaultGetTimeout). breaker=false turns this off.
//   - Keys are stored exactly: distinct keys never collide and no key escapes
//     the cache's namespace (prefix, directory, table). A key the cache cannot
//     store (empty, longer than MaxKeyLen bytes, not UTF-8, or holding control
//     characters) is refused with ErrInvalidKey. autocert's own keys are all
//     short printable ASCII.
//   - Values up to MaxValueSize bytes are stored; larger ones are refused with
//     ErrTooLarge before anything is sent.
//   - No error message contains a password, key or token from the URL.
//
// # One order per certificate for the whole fleet
//
// autocert orders a certificate on every node whose Get misses, so N nodes
// that get a new name at once order N certificates, and Let's Encrypt
// allows five duplicates per week. A Cache from Open (and from a backend's
// New) coordinates issuance through leases in the store (see ErrIssuing
// for how): exactly one caller in the fleet gets the miss and orders; the
// others get ErrIssuing at once, never a wait under autocert's lock. Serve
// TLS with TLSConfig (or GetCertificate) so that those handshakes wait for
// the certificate instead of failing:
//
//	srv := &http.Server{TLSConfig: certcache.TLSConfig(m, cache), …}
//
// Renewals and the ACME account key are coordinated the same way, so a
// fleet renews each certificate once and registers one account. A failed
// order holds the name for one lease TTL (DefaultLeaseTTL, a minute, as
// autocert's own pause after a failure) across the fleet. coordinate=false
// turns it off.
//
// # Optional capabilities
//
// Every backend also keeps leases (AcquireLease) and lists its keys (List);
// see driver.LeaseDriver and driver.ListDriver. GetMany reads many keys at once: a few
// hundred per round trip where the driver has driver.GetManyDriver (Redis, SQL),
// parallel Gets elsewhere. The certcache command lists, inspects and
// copies stores with them.
//
// Errors carry the backend, operation and key ("certcache/redis: get
// "example.com": …") and wrap their cause, so errors.Is and errors.As see
// through them; see ErrUnavailable and the other sentinels to tell them apart.
package certcache

import (
	"log/slog"
	"runtime"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/acme/autocert"
)

// Cache is an autocert.Cache that holds resources (connections, files) until
// it is closed.
type Cache interface {
	autocert.Cache

	// Close releases the cache's resources. Calls after Close fail with
	// ErrClosed. Close does not delete stored data; calling it twice is
	// harmless. A client handed to a backend's New is not closed: it belongs
	// to the caller.
	Close() error
}

// DefaultMaxConns is the bound on connections to one server that a backend
// building its own client sets when its URL does not say (max_conns, or the
// SDK's own pool parameter): ten per CPU, as go-redis's pool. Without a
// bound, a stuck server would collect one connection per waiting handshake;
// with it, callers queue for a connection within their timeout.
func DefaultMaxConns() int { return 10 * runtime.GOMAXPROCS(0) }

// Options configure the portable layer that NewCache puts around a driver.Driver.
// The zero value (or nil) gives the defaults.
type Options struct {
	// Timeout bounds each Put, Delete and lease call, on top of the
	// caller's context, and each Get unless GetTimeout is set. If zero,
	// DefaultTimeout (and DefaultGetTimeout for Get).
	Timeout time.Duration

	// GetTimeout bounds each Get, which autocert calls while holding the
	// lock every handshake on the node takes (see DefaultGetTimeout). If
	// zero, Timeout if that is set, else DefaultGetTimeout.
	GetTimeout time.Duration

	// DisableBreaker turns the circuit breaker off: every call then waits
	// for the store up to its timeout, even while the store is known to be
	// down. By default a call that finds the store unable to answer
	// (ErrUnavailable) opens the breaker; calls then fail at once with
	// ErrCircuitOpen until a background probe sees the store answer again.
	// See BreakerStatsOf.
	DisableBreaker bool

	// BreakerProbeInterval is how often, while the breaker is open, a
	// background probe asks the store whether it answers again. If zero,
	// DefaultBreakerProbeInterval.
	BreakerProbeInterval time.Duration

	// DisableCoordination turns issuance coordination off (see ErrIssuing):
	// every node that misses a certificate then orders it. Coordination is
	// on by default for every backend with leases.
	DisableCoordination bool

	// LeaseTTL is the time to live of the order leases that coordinate
	// issuance. If zero, DefaultLeaseTTL.
	LeaseTTL time.Duration

	// RenewBefore is the autocert.Manager's RenewBefore, for renewal
	// coordination: a renewal that finds a certificate due by it takes
	// the order lease, and one that finds it not due is answered at once.
	// GetCertificate and TLSConfig tell the cache their Manager's
	// RenewBefore themselves. If zero and no Manager was told, autocert's
	// default: the last third of a certificate's life. A Manager that
	// renews earlier than the cache knows renews uncoordinated.
	RenewBefore time.Duration

	// MeterProvider receives the cache's OpenTelemetry metrics (see
	// docs/telemetry.md). If nil, the global provider
	// (otel.GetMeterProvider), which forwards to one installed later; a
	// cache opened by URL always reports there.
	MeterProvider metric.MeterProvider

	// TracerProvider receives a span per call, with the backend, the
	// operation, its outcome and the key. If nil, the global provider, as for MeterProvider.
	TracerProvider trace.TracerProvider

	// Logger receives the cache's log events (a lease taken over from a
	// holder that died, a lease lost). If nil, slog.Default() at the time
	// of logging. No event holds a value or a secret.
	Logger *slog.Logger
}
