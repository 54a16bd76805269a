// Package otelname holds the names of certcache's OpenTelemetry metrics and
// attributes, for the packages that report them (the root package and
// layered) and their tests. docs/telemetry.md documents them for users;
// TestDocumented keeps the two in step.
package otelname

const (
	// MetricCalls counts the calls that reach the portable layer of a
	// store: Get, Put, Delete, lease calls and listings (unit {call}).
	// Attributes: certcache.backend, certcache.operation, certcache.outcome.
	// A Get answered by a memory front never reaches the store and is
	// counted by MetricMemoryHits instead; a Get that issuance coordination
	// answers with ErrIssuing is counted here as the miss the store
	// answered, and by MetricLeaseEvents (event issuing).
	MetricCalls = "certcache.calls"

	// MetricCallDuration is a histogram of the time those calls take, in
	// seconds (unit s), with buckets from 5µs to 10s. Attributes:
	// certcache.backend, certcache.operation.
	MetricCallDuration = "certcache.call.duration"

	// MetricBreakerOpened counts the times the circuit breaker opened
	// (unit {event}). Attribute: certcache.backend. See BreakerStats.
	MetricBreakerOpened = "certcache.breaker.opened"
	// MetricBreakerClosed counts the times a probe found the store
	// answering and closed the breaker (unit {event}).
	MetricBreakerClosed = "certcache.breaker.closed"
	// MetricBreakerFastFailed counts the calls refused at once with
	// ErrCircuitOpen while the breaker was open (unit {call}).
	MetricBreakerFastFailed = "certcache.breaker.fast_failed"
	// MetricBreakerProbes counts the probes sent while the breaker was open
	// (unit {probe}).
	MetricBreakerProbes = "certcache.breaker.probes"
	// MetricBreakerOpen is a gauge: 1 while the breaker is open, else 0
	// (no unit, so that Prometheus adds no suffix).
	MetricBreakerOpen = "certcache.breaker.open"

	// MetricLeaseEvents counts what issuance coordination did with order
	// leases (unit {event}). Attributes: certcache.backend and
	// certcache.event, one of:
	//
	//	acquired    this process acquired an order lease (to order, renew,
	//	            or make the account key; also when the value turned out
	//	            to have landed and the lease was let go at once)
	//	issuing     a Get was answered with ErrIssuing: the order lease is
	//	            held by another holder, by an order of this process, or
	//	            an order failed less than a lease TTL ago
	//	waited      a renewal or account-key Get found the lease held
	//	            elsewhere and waited for the holder's value (see
	//	            MetricLeaseWait)
	//	taken_over  this process acquired an order lease within two lease
	//	            TTLs of having found it held by another holder, and the
	//	            value was still missing (or still due for renewal): the
	//	            holder let its lease run out without storing the
	//	            certificate — it died, or its order failed. Logged at Warn.
	//	lost        a refresh of an order lease this process holds failed
	//	            with ErrLeaseLost: it ran out (the store was unreachable
	//	            for a lease TTL, or the process stalled) and may have been
	//	            taken by another node. Logged at Warn.
	MetricLeaseEvents = "certcache.lease.events"

	// MetricLeaseWait is a histogram of how long renewal and account-key
	// Gets waited for another holder's value, from the first time they
	// found the lease held to their return, in seconds (unit s).
	// Attributes: certcache.backend, certcache.wait ("renewal" or
	// "account_key").
	MetricLeaseWait = "certcache.lease.wait.duration"

	// MetricCertificateExpiry is a gauge of the seconds until the leaf
	// certificate of each certificate key this process has read (a Get
	// hit) or written (a Put) expires — negative once it has (unit s).
	// Attributes: certcache.backend, certcache.certificate (the cache key:
	// "example.com", or "example.com+rsa" for autocert's RSA fallback). It
	// is kept by issuance coordination, which sees values as autocert does
	// (after decryption), so a cache opened with coordinate=false reports
	// none. At most 1,000 names are reported, the least recently read or written dropped first.
	MetricCertificateExpiry = "certcache.certificate.expiry"

	// The memory front's metrics are reported by package layered; the
	// names are listed here so that every metric is in one place. Their
	// attribute is certcache.backend, the authority's backend.

	// MetricMemoryHits counts the Gets a memory front answered with a
	// fresh copy (unit {call}).
	MetricMemoryHits = "certcache.memory.hits"
	// MetricMemoryMisses counts the Gets for which the authority said the
	// key does not exist (unit {call}).
	MetricMemoryMisses = "certcache.memory.misses"
	// MetricMemoryStaleServed counts the Gets answered with an expired or
	// fallback copy because the authority failed (unit {call}).
	MetricMemoryStaleServed = "certcache.memory.stale_served"
	// MetricMemoryEvictions counts the entries the memory front dropped to
	// stay within its bounds (unit {entry}).
	MetricMemoryEvictions = "certcache.memory.evictions"
	// MetricMemoryEntries is the number of entries the memory front holds,
	// expired ones included (unit {entry}).
	MetricMemoryEntries = "certcache.memory.entries"
	// MetricMemoryBytes is the bytes of keys and values the memory front
	// holds (unit By).
	MetricMemoryBytes = "certcache.memory.bytes"
	// MetricPreloadListed counts the certificate keys a preload found in
	// the authority's listing (unit {key}).
	MetricPreloadListed = "certcache.memory.preload.listed"
	// MetricPreloadLoaded counts the copies a preload put in memory (unit
	// {key}).
	MetricPreloadLoaded = "certcache.memory.preload.loaded"
	// MetricPreloadErrors counts a preload's failed Gets and failed
	// listing (unit {error}).
	MetricPreloadErrors = "certcache.memory.preload.errors"
	// MetricPreloadDone is a gauge: 1 once the preload has ended, in
	// whatever way, 0 while it runs (no unit). Absent without a preload.
	MetricPreloadDone = "certcache.memory.preload.done"
)

// The attributes of the metrics and spans.
const (
	// AttrBackend is the backend's name: "redis", "s3", "file", "mem", …
	AttrBackend = "certcache.backend"

	// AttrOperation is the call: get, put, delete, lease_acquire,
	// lease_refresh, lease_release or list.
	AttrOperation = "certcache.operation"

	// AttrOutcome is how the call ended: hit or miss (get), ok, or the
	// class of its error:
	//
	//	unavailable   the store could not be reached (ErrUnavailable)
	//	timeout       no answer within the per-call timeout or the caller's
	//	              deadline
	//	denied        the store refused the credentials or the request: a
	//	              file permission, HTTP 401/403 (S3), SQLSTATE class 28
	//	              or 42501 (PostgreSQL), Redis NOAUTH, WRONGPASS or
	//	              NOPERM; a refusal the layer cannot read is "other"
	//	invalid       the key was refused before anything was sent
	//	              (ErrInvalidKey)
	//	too_large     the value was refused before anything was sent
	//	              (ErrTooLarge)
	//	closed        the cache was closed (ErrClosed)
	//	circuit_open  refused at once by the open breaker (ErrCircuitOpen)
	//	held          lease_acquire found the lease held (ErrLeaseHeld)
	//	lost          lease_refresh found the lease lost (ErrLeaseLost)
	//	unsupported   the backend lacks the capability (ErrUnsupported)
	//	canceled      the caller cancelled its context
	//	other         anything else
	//
	// Whether a Get was answered with ErrIssuing is not an outcome of the
	// store's call (the store answered a miss); see MetricLeaseEvents.
	AttrOutcome = "certcache.outcome"

	// AttrKey is the cache key (the prefix of a listing); on spans only.
	AttrKey = "certcache.key"

	// AttrEvent is the lease event of MetricLeaseEvents.
	AttrEvent = "certcache.event"

	// AttrWait is what a waiting Get waited for, on MetricLeaseWait.
	AttrWait = "certcache.wait"

	// AttrCertificate is the certificate key of MetricCertificateExpiry.
	AttrCertificate = "certcache.certificate"
)
