package certcache

import (
	"log/slog"
	"time"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/acme/autocert"
)

// Cache is an autocert.Cache that holds resources until it is closed.
type Cache interface {
	autocert.Cache

	// Close releases the cache's resources, not its data; later calls fail
	// with ErrClosed. A client handed to a backend's New stays the caller's.
	Close() error
}

// Options configure the portable layer that NewCache puts around a
// driver.Driver; each field has a URL parameter of the same meaning. The
// zero value (or nil) gives the defaults.
type Options struct {
	// Timeout bounds each Put, Delete and lease call, and each Get unless
	// GetTimeout is set. Default DefaultTimeout (DefaultGetTimeout for Get).
	Timeout time.Duration

	// GetTimeout bounds each Get. Default Timeout, else DefaultGetTimeout.
	GetTimeout time.Duration

	// DisableBreaker makes every call wait for the store up to its timeout,
	// even while it is known to be down (see ErrCircuitOpen).
	DisableBreaker bool

	// BreakerProbeInterval is how often an open breaker probes the store.
	// Default DefaultBreakerProbeInterval.
	BreakerProbeInterval time.Duration

	// DisableCoordination lets every node that misses a certificate order
	// it (see ErrIssuing).
	DisableCoordination bool

	// LeaseTTL is the time to live of order leases. Default DefaultLeaseTTL.
	LeaseTTL time.Duration

	// RenewBefore is the Managers' RenewBefore, for renewal coordination
	// (TLSConfig and GetCertificate tell the cache theirs). Default:
	// autocert's, a third of a certificate's life. A Manager that renews
	// earlier than the cache knows renews uncoordinated.
	RenewBefore time.Duration

	// MeterProvider and TracerProvider receive the cache's OpenTelemetry
	// metrics and spans (docs/telemetry.md). Default: the global providers,
	// which a cache opened by URL always uses.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider

	// Logger receives the cache's log events (a lease taken over or lost),
	// which never hold a value or a secret. Default: slog.Default().
	Logger *slog.Logger
}
