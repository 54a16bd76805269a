// Package certcache gives golang.org/x/crypto/acme/autocert a cache that a
// whole fleet shares: certificates, their keys, the ACME account key and
// HTTP-01 tokens live in one store behind one URL, and the fleet orders
// one certificate per name.
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
//	srv := &http.Server{TLSConfig: certcache.TLSConfig(m, cache), ...}
//
// The URL's scheme selects the backend, registered by importing its package;
// file:// (autocert.DirCache's layout) and mem:// are built in. Every URL
// takes the parameters of Options (timeout, get_timeout, breaker,
// breaker_probe, coordinate, lease_ttl, renew_before; see the README) and
// those of registered wrappers (layered's memory=…, encrypt's
// encryption_key=…); an unknown parameter is an error that names it.
//
// Every Cache, whatever its backend, keeps one contract, which package
// drivertest proves against a real server:
//
//   - Get returns the bare autocert.ErrCacheMiss (autocert compares it with
//     ==) only for a key that does not exist. Any other failure, a cancelled
//     context included, is an *Error: a failure taken for a miss would make
//     autocert order a certificate.
//   - Every call honours ctx and a per-call timeout; once a call finds the
//     store unable to answer, calls fail at once with ErrCircuitOpen until a
//     probe sees it answer again.
//   - Put stores a copy, Get returns a slice the caller owns, Delete of a
//     missing key returns nil. Keys are stored exactly and never escape the
//     cache's namespace; a key no backend can hold is refused with
//     ErrInvalidKey, a value over MaxValueSize with ErrTooLarge.
//   - No error message holds a password, key or token from the URL.
//
// A Cache coordinates issuance through leases in the store: of the nodes
// that miss a certificate (or find it expired, or due for renewal), one
// gets the miss and orders; the others get ErrIssuing, and the handshakes
// that TLSConfig or GetCertificate serve wait for the certificate instead
// of failing. coordinate=false (Options.DisableCoordination) turns it off.
package certcache
