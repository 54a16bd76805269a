package certcache

import "time"

// The defaults every backend shares (Options and URL parameters override
// them), and the limits of the contract; the
// reasons for each are in docs/design/defaults.md.
const (
	// DefaultGetTimeout bounds each Get: short, because autocert calls Get
	// under a lock that every handshake of the node takes.
	DefaultGetTimeout = 3 * time.Second

	DefaultTimeout              = 10 * time.Second       // bounds each Put, Delete and lease call
	DefaultBreakerProbeInterval = 250 * time.Millisecond // how often an open breaker probes the store
	DefaultLeaseTTL             = time.Minute            // order leases: autocert's pause after a failed order

	MaxKeyLen = 1024 // the longest key, in bytes, every backend stores

	// MaxValueSize is the largest value, in bytes, every backend stores; a
	// wrapper that adds bytes lowers it by as many (encrypt.Overhead).
	MaxValueSize = 8 << 20
)

// maxExpiryCertificates bounds the certificate names whose expiry one Cache
// reports; the least recently seen goes first (docs/design/defaults.md).
const maxExpiryCertificates = 1000
