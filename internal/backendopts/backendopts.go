// Package backendopts holds what the backends share in reading their
// Options and URLs.
package backendopts

import (
	"runtime"
	"time"

	"github.com/certcache/certcache"
)

// Cache returns the certcache.Options a backend's New hands NewCache: a
// copy of co (the caller's Options are never changed) whose Timeout is
// timeout when that is set, as a backend's Options.Timeout overrides
// Options.Cache.Timeout.
func Cache(co certcache.Options, timeout time.Duration) *certcache.Options {
	if timeout > 0 {
		co.Timeout = timeout
	}
	return &co
}

// MaxConns is the bound on connections to one server that a backend
// building its own client sets when its URL does not say (max_conns, or the
// SDK's own pool parameter): ten per CPU, as go-redis's pool. Without a
// bound, a stuck server would collect one connection per waiting handshake;
// with it, callers queue for a connection within their timeout.
func MaxConns() int { return 10 * runtime.GOMAXPROCS(0) }
