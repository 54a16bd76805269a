// Command caddy is Caddy with its standard modules and certcache's storage
// module, caddy.storage.certcache, as xcaddy would build it:
//
//	go build -o caddy github.com/certcache/certcache/caddy/cmd/caddy
//
// Then, in the Caddyfile's global options:
//
//	{
//		storage certcache {env.CERT_CACHE_URL}
//	}
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	// Caddy's standard modules, as in Caddy's own cmd/caddy.
	_ "github.com/caddyserver/caddy/v2/modules/standard"

	// The certcache storage module, with every certcache backend.
	_ "github.com/certcache/certcache/caddy"
)

func main() {
	caddycmd.Main()
}
