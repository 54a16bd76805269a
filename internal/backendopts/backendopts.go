// Package backendopts holds what the backends' New functions share in
// reading their Options.
package backendopts

import (
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
