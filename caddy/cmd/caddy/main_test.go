package main

import (
	"testing"

	"github.com/caddyserver/caddy/v2"
)

// TestModules: this Caddy has the certcache storage module and Caddy's
// standard modules beside it.
func TestModules(t *testing.T) {
	for _, id := range []string{"caddy.storage.certcache", "caddy.storage.file_system", "http.handlers.reverse_proxy", "tls.issuance.acme"} {
		if _, err := caddy.GetModule(id); err != nil {
			t.Errorf("module %s: %v", id, err)
		}
	}
}
