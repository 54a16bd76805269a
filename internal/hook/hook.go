// Package hook is how the packages that wrap a cache (layered, encrypt)
// reach into the root package: to add their URL parameters, to put issuance
// coordination back on top of what they build, to report beside the store,
// and to read in batches. None of it is part of certcache's API; the root
// package sets the functions in its init, which runs before any package
// that imports it.
package hook

import (
	"context"
	"iter"
	"log/slog"
	"net/url"

	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/crypto/acme/autocert"
)

// Cache is certcache.Cache: the two interfaces have the same methods, so
// values pass between them freely.
type Cache interface {
	autocert.Cache
	Close() error
}

// Wrapper adds behaviour above every backend (a memory front, encryption at
// rest), turned on from the URL by its own query parameters.
type Wrapper struct {
	// Params are the query parameters the wrapper owns. Open removes them
	// from the URL before the backend sees it and calls Wrap when any of
	// them is present.
	Params []string

	// Rank orders wrappers: lower ranks wrap first, nearer the backend.
	// Encryption sits below a memory front, so the front holds opened
	// values and the store holds sealed ones.
	Rank int

	// Wrap wraps c. params holds only the wrapper's own parameters.
	Wrap func(ctx context.Context, c Cache, params url.Values) (Cache, error)
}

// Ranks of the wrappers.
const (
	RankEncryption = 100
	RankFront      = 200
)

// RegisterWrapper makes w available to certcache.Open on every backend. It
// panics if one of w's parameters is already taken.
var RegisterWrapper func(w Wrapper)

// CoordinateAs puts issuance coordination over c as as has it (the same
// leases, TTL and renewal threshold) and returns c itself if as has none.
// A wrapper that builds a new Cache over one taken from beneath its
// coordination (layered.New, encrypt.New) puts coordination back on top
// with it, where it sees values as autocert does. as must not be used
// after: c takes its place.
var CoordinateAs func(c, as Cache) Cache

// Telemetry is where a Cache reports.
type Telemetry struct {
	// Backend is the backend's name, the value of certcache.backend;
	// empty if the Cache was not made by Open or NewCache.
	Backend string
	// MeterProvider and TracerProvider are the providers of
	// Options.MeterProvider and Options.TracerProvider, or the global ones
	// as they were when the cache was made. Never nil.
	MeterProvider  metric.MeterProvider
	TracerProvider trace.TracerProvider
	// Logger is Options.Logger; nil means slog.Default() at the time of
	// logging.
	Logger *slog.Logger
}

// TelemetryOf returns where c reports, looking through wrappers to its
// backend. For a Cache not made by Open or NewCache it returns the global
// providers and an empty Backend.
var TelemetryOf func(c Cache) Telemetry

// ReadsInBatches reports whether certcache.GetMany reads c's keys in
// batches, a few round trips for many keys, rather than one key at a time.
var ReadsInBatches func(c Cache) bool

// ListKeys yields the keys certcache.List yields for c and prefix, without
// their sizes and times where the backend lists keys alone in fewer round
// trips (driver.KeyListDriver).
var ListKeys func(ctx context.Context, c Cache, prefix string) iter.Seq2[string, error]

// KeyWatch tells a waiter when a key may have changed: at once where the
// store pushes changes, at a poll interval otherwise.
type KeyWatch interface {
	// Wait returns nil when the key may have changed since the watch began
	// or the last Wait (a push for it, the push going down or coming
	// back) or when it is time to poll, and ctx's error if ctx ends first.
	Wait(ctx context.Context) error
	// Pushing reports whether the store's push reaches this process now.
	Pushing() bool
	// Stop ends the watch.
	Stop()
}

// WatchKey returns a KeyWatch of key on c's store, looking through
// wrappers to the backend: one subscription per Cache however many keys
// are watched, which Close ends.
var WatchKey func(c Cache, key string) KeyWatch

// ManyGetter is a Cache that reads many keys at once: every Cache NewCache
// returns, and wrappers that change values on the way (encryption) over one.
// certcache.GetMany calls it where it finds it.
type ManyGetter interface {
	// GetMany returns the value of each of keys, in order: values[i] is
	// keys[i]'s value, or nil if keys[i] does not exist (a stored empty
	// value is an empty, non-nil slice). Each slice is the caller's own,
	// also for a key given twice. Any failure — an invalid key, the
	// store, the context — is an error with no values.
	GetMany(ctx context.Context, keys []string) ([][]byte, error)
}
