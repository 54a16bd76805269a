package certcache

import "time"

// The defaults every backend shares, and the limits of the contract.
const (
	// DefaultBreakerProbeInterval is how often, while the breaker is open, a
	// background probe asks the store whether it answers again, when neither
	// Options.BreakerProbeInterval nor the URL's breaker_probe says otherwise.
	// A store that refuses connections costs four small reads a second and is
	// used again within this interval of coming back; one that does not answer
	// at all has at most two probes waiting on it.
	DefaultBreakerProbeInterval = 250 * time.Millisecond

	// DefaultTimeout bounds each Put and Delete (and lease call) when neither
	// Options.Timeout nor the URL's timeout parameter says otherwise; Get has the
	// shorter DefaultGetTimeout. autocert itself allows a whole certificate order
	// five minutes; a cache call should fail long before that so the client sees
	// an error, not a hang.
	//
	// Put is generous because of where autocert calls it: after an order, to
	// share the new certificate with every other node, outside the lock every
	// handshake takes (only the handshakes for that one name wait for it). A Put
	// cut short by a slow store costs a certificate order on each other node and
	// a share of Let's Encrypt's rate limits; ten seconds more for one client is
	// the cheaper loss.
	DefaultTimeout = 10 * time.Second

	// DefaultGetTimeout bounds each Get when neither Options.GetTimeout,
	// Options.Timeout nor the URL's get_timeout or timeout parameter says
	// otherwise.
	//
	// Get is short because autocert calls it, for a name it has not loaded yet,
	// while it holds the mutex that every TLS handshake on the node takes first
	// (Manager.stateMu), cached names included: while a Get waits, the whole
	// node's TLS waits. The circuit breaker limits a store that hangs to one
	// such wait per outage, and this is its length. Three seconds is well above
	// what a healthy store takes even at its tail (Redis and SQL answer in
	// milliseconds; an object store's slow request with an SDK retry, or a new
	// TLS connection to a distant region, in well under two seconds) and short
	// enough that the one stall is a hiccup a client retries through rather
	// than a stall it gives up on. A Get cut short is an error, never a miss: at
	// worst a new name's first handshake fails and is retried; autocert orders
	// nothing.
	DefaultGetTimeout = 3 * time.Second

	// DefaultLeaseTTL is the time to live of the leases that coordinate
	// issuance when neither Options.LeaseTTL nor the URL's lease_ttl says
	// otherwise. It matches autocert's own pause after a failed order
	// (createCertRetryAfter, one minute): a fleet whose order failed, or whose
	// ordering node died, tries again after about the time one node alone would
	// have. A holder refreshes its lease every third of the TTL while its order
	// runs, so a slow order keeps it.
	DefaultLeaseTTL = time.Minute

	// MaxKeyLen is the longest key, in bytes, that every backend stores.
	// autocert's longest keys (a 253-byte domain name with "+token", or an
	// HTTP-01 token with "+http-01") are far shorter.
	MaxKeyLen = 1024

	// MaxValueSize is the largest value, in bytes, that every backend stores. A
	// certificate chain with its key is a few KiB; the limit keeps a runaway
	// caller from sending a value that some backends (MySQL's max_allowed_packet,
	// for one) would reject halfway. A wrapper that adds bytes to what it stores
	// lowers the limit by that much (encryption at rest: encrypt.Overhead).
	MaxValueSize = 8 << 20

	// MaxExpiryCertificates bounds the certificate names whose expiry one Cache
	// reports. When a certificate not yet reported is read or written with
	// that many reported, the one read or written least recently is dropped
	// from the gauge: a process that keeps serving the same names keeps
	// reporting all of them, and names it stopped serving go first. A Delete
	// drops its name at once.
	MaxExpiryCertificates = 1000
)
