// Package certcachecaddy is the Caddy storage module caddy.storage.certcache:
// Caddy keeps its certificates, keys, ACME accounts, challenge tokens and
// locks in any certcache store, chosen by URL — Redis (single, Sentinel,
// Cluster), PostgreSQL, MySQL/MariaDB, SQLite, S3 and S3-compatible
// stores, Azure Blob Storage, a directory — with certcache's guarantees: a
// store that fails is never taken for a missing certificate, and locks held
// by a Caddy that died free themselves. See
// github.com/certcache/certcache/certmagicstore for the details.
//
// # Building Caddy with it
//
// With xcaddy:
//
//	xcaddy build --with github.com/certcache/certcache/caddy
//
// or with a main package of your own (cmd/caddy in this module is one):
//
//	package main
//
//	import (
//		caddycmd "github.com/caddyserver/caddy/v2/cmd"
//		_ "github.com/caddyserver/caddy/v2/modules/standard"
//		_ "github.com/certcache/certcache/caddy"
//	)
//
//	func main() { caddycmd.Main() }
//
// Every certcache backend is linked in.
//
// # Caddyfile
//
// In the global options:
//
//	{
//		storage certcache {env.CERT_CACHE_URL}
//	}
//
// or, with options:
//
//	{
//		storage certcache {
//			url      redis://cache.internal:6379/0?prefix=caddy
//			lock_ttl 30s
//		}
//	}
//
// # JSON
//
//	"storage": {"module": "certcache", "url": "{env.CERT_CACHE_URL}", "lock_ttl": "30s"}
//
// The URL may hold Caddy's global placeholders — {env.NAME}, {file.PATH} —
// replaced when the module is provisioned, so that a password need not be
// written in the configuration. Caddyfile's {$NAME} is replaced earlier,
// when the Caddyfile is adapted, and ends up in the JSON.
//
// # Several Caddy instances
//
// Every Caddy that names the same URL shares its certificates: the first
// to need one orders it while the others wait for its lock, then load it.
// CertMagic's keys live under "certmagic/" in the store, so one URL also
// serves an autocert fleet beside Caddy.
package certcachecaddy

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
	"github.com/caddyserver/certmagic"
	"github.com/certcache/certcache/certmagicstore"

	// Every backend and wrapper, so that any certcache URL works.
	_ "github.com/certcache/certcache/azblob"
	_ "github.com/certcache/certcache/dynamodb"
	_ "github.com/certcache/certcache/encrypt"
	_ "github.com/certcache/certcache/gs"
	_ "github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
)

func init() {
	caddy.RegisterModule(Storage{})
}

// Storage is the module caddy.storage.certcache.
type Storage struct {
	// URL is the certcache URL of the store, e.g.
	// "redis://cache.internal:6379/0?prefix=caddy" or "{env.CERT_CACHE_URL}".
	// Required. Global placeholders are replaced at provisioning.
	URL string `json:"url,omitempty"`

	// LockTTL is how long a lock held by a Caddy that died keeps the others
	// waiting; a live holder refreshes it every third. Default 30s
	// (certmagicstore.DefaultLockTTL).
	LockTTL caddy.Duration `json:"lock_ttl,omitempty"`

	storage *certmagicstore.Storage
	key     poolKey
}

// poolKey identifies an open store in the pool: a configuration reload
// keeps using the store the old configuration opened (the old one's
// certificate maintenance may still be writing to it) instead of opening
// another and closing the first under it.
type poolKey struct {
	url     string
	lockTTL time.Duration
}

// pool holds the stores that loaded configurations use.
var pool = caddy.NewUsagePool()

// opened is a store in the pool.
type opened struct{ *certmagicstore.Storage }

// Destruct closes the store when no configuration uses it any more.
func (o opened) Destruct() error { return o.Close() }

// CaddyModule returns the Caddy module information.
func (Storage) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "caddy.storage.certcache",
		New: func() caddy.Module { return new(Storage) },
	}
}

// Provision replaces the placeholders in the URL and opens the store (or
// takes the one a previous configuration opened on the same URL). Like
// certcache.Open it does not contact the store: Caddy starts while the
// store is down, and the first use reports it.
func (s *Storage) Provision(ctx caddy.Context) error {
	if s.URL == "" {
		return errors.New("certcache: url is required")
	}
	u := caddy.NewReplacer().ReplaceKnown(s.URL, "")
	if u == "" {
		// s.URL is the template, not the secret-bearing value: safe to show.
		return fmt.Errorf("certcache: url %q is empty once its placeholders are replaced (is the environment variable set?)", s.URL)
	}
	s.key = poolKey{url: u, lockTTL: time.Duration(s.LockTTL)}
	logger := ctx.Slogger()
	v, _, err := pool.LoadOrNew(s.key, func() (caddy.Destructor, error) {
		// Not ctx: the store outlives this configuration when the next
		// one takes it over.
		st, err := certmagicstore.Open(context.Background(), u, &certmagicstore.Options{
			LockTTL: time.Duration(s.LockTTL),
			Logger:  logger,
		})
		if err != nil {
			return nil, err
		}
		return opened{st}, nil
	})
	if err != nil {
		return fmt.Errorf("certcache: %w", err)
	}
	s.storage = v.(opened).Storage
	return nil
}

// Cleanup lets go of the store; the last configuration to use it closes it.
func (s *Storage) Cleanup() error {
	if s.storage == nil {
		return nil
	}
	s.storage = nil
	_, err := pool.Delete(s.key)
	return err
}

// CertMagicStorage returns the store as CertMagic's storage.
func (s *Storage) CertMagicStorage() (certmagic.Storage, error) {
	if s.storage == nil {
		return nil, errors.New("certcache: storage module used before it was provisioned")
	}
	return s.storage, nil
}

// UnmarshalCaddyfile sets up the module from Caddyfile tokens:
//
//	storage certcache [<url>] {
//		url      <url>
//		lock_ttl <duration>
//	}
func (s *Storage) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module's name
	if d.NextArg() {
		s.URL = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	for d.NextBlock(0) {
		switch d.Val() {
		case "url":
			if s.URL != "" {
				return d.Err("url given twice")
			}
			if !d.NextArg() {
				return d.ArgErr()
			}
			s.URL = d.Val()
		case "lock_ttl":
			if !d.NextArg() {
				return d.ArgErr()
			}
			ttl, err := caddy.ParseDuration(d.Val())
			if err != nil || ttl <= 0 {
				return d.Errf("lock_ttl %q: want a positive duration such as 30s", d.Val())
			}
			s.LockTTL = caddy.Duration(ttl)
		default:
			return d.Errf("unknown option %q (want url or lock_ttl)", d.Val())
		}
		if d.NextArg() {
			return d.ArgErr()
		}
	}
	if s.URL == "" {
		return d.Err("certcache: a URL is required: storage certcache <url>")
	}
	return nil
}

// Interface guards.
var (
	_ caddy.Provisioner      = (*Storage)(nil)
	_ caddy.CleanerUpper     = (*Storage)(nil)
	_ caddy.StorageConverter = (*Storage)(nil)
	_ caddyfile.Unmarshaler  = (*Storage)(nil)
)
