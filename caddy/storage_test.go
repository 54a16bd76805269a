package certcachecaddy_test

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig"
	_ "github.com/caddyserver/caddy/v2/caddyconfig/httpcaddyfile" // the caddyfile adapter
	"github.com/certcache/certcache"
	certcachecaddy "github.com/certcache/certcache/caddy"
	"github.com/certcache/certcache/certmagicstore"
)

// adaptStorage adapts a Caddyfile whose global options are opts and
// returns its "storage" JSON.
func adaptStorage(t *testing.T, opts string) (map[string]any, error) {
	t.Helper()
	body := "{\n" + opts + "\n}\n\nexample.com {\n\trespond ok\n}\n"
	out, _, err := caddyconfig.GetAdapter("caddyfile").Adapt([]byte(body), nil)
	if err != nil {
		return nil, err
	}
	var cfg struct {
		Storage map[string]any `json:"storage"`
	}
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg.Storage, nil
}

func TestCaddyfile(t *testing.T) {
	for _, tc := range []struct {
		name, opts string
		want       map[string]any
		wantErr    string
	}{
		{"URL", "storage certcache redis://cache:6379/0?prefix=caddy",
			map[string]any{"module": "certcache", "url": "redis://cache:6379/0?prefix=caddy"}, ""},
		{"Placeholder", "storage certcache {env.CERT_CACHE_URL}",
			map[string]any{"module": "certcache", "url": "{env.CERT_CACHE_URL}"}, ""},
		{"Block", "storage certcache {\n\turl s3://bucket/caddy\n\tlock_ttl 45s\n}",
			map[string]any{"module": "certcache", "url": "s3://bucket/caddy", "lock_ttl": float64(45 * time.Second)}, ""},
		{"URLAndBlock", "storage certcache mem://x {\n\tlock_ttl 1m\n}",
			map[string]any{"module": "certcache", "url": "mem://x", "lock_ttl": float64(time.Minute)}, ""},
		{"NoURL", "storage certcache", nil, "a URL is required"},
		{"TwoURLs", "storage certcache mem://x {\n\turl mem://y\n}", nil, "url given twice"},
		{"ExtraArg", "storage certcache mem://x mem://y", nil, "wrong argument count"},
		{"BadTTL", "storage certcache mem://x {\n\tlock_ttl soon\n}", nil, "lock_ttl"},
		{"UnknownOption", "storage certcache mem://x {\n\tprefix x\n}", nil, "unknown option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := adaptStorage(t, tc.opts)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("adapt = %v, %v; want an error containing %q", got, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tc.want) {
				t.Errorf("storage = %v, want %v", got, tc.want)
			}
			for k, v := range tc.want {
				if got[k] != v {
					t.Errorf("storage[%q] = %v (%T), want %v", k, got[k], got[k], v)
				}
			}
		})
	}
}

// provision loads the module from JSON as Caddy does.
func provision(t *testing.T, raw string) (*certcachecaddy.Storage, error) {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	var s certcachecaddy.Storage
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		t.Fatal(err)
	}
	if err := s.Provision(ctx); err != nil {
		return nil, err
	}
	return &s, nil
}

func TestPlaceholders(t *testing.T) {
	t.Setenv("CERTCACHE_CADDY_TEST_URL", "mem://placeholder-test?timeout=5s")
	s, err := provision(t, `{"url": "{env.CERTCACHE_CADDY_TEST_URL}"}`)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Cleanup()
	cm, err := s.CertMagicStorage()
	if err != nil {
		t.Fatal(err)
	}
	if got := cm.(*certmagicstore.Storage).String(); got != "certcache:mem://placeholder-test" {
		t.Errorf("storage = %s, want the URL from the environment", got)
	}

	t.Setenv("CERTCACHE_CADDY_TEST_URL", "")
	if _, err := provision(t, `{"url": "{env.CERTCACHE_CADDY_TEST_URL}"}`); err == nil || !strings.Contains(err.Error(), "{env.CERTCACHE_CADDY_TEST_URL}") {
		t.Errorf("Provision with the variable unset = %v, want an error naming the placeholder", err)
	}
	if _, err := provision(t, `{}`); err == nil {
		t.Errorf("Provision without a URL succeeded")
	}
	_, err = provision(t, `{"url": "redis://:s3cr3t@cache:6379/0?nosuch=1"}`)
	if !errors.Is(err, certcache.ErrInvalidURL) || strings.Contains(err.Error(), "s3cr3t") {
		t.Errorf("Provision with a bad URL = %v; want certcache.ErrInvalidURL without the password", err)
	}
}

// TestReload: a configuration that replaces another on the same URL takes
// over its open store; the store closes when the last one lets go.
func TestReload(t *testing.T) {
	const cfg = `{"url": "mem://reload-test", "lock_ttl": 5000000000}`
	old, err := provision(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	oldStorage, _ := old.CertMagicStorage()
	next, err := provision(t, cfg)
	if err != nil {
		t.Fatal(err)
	}
	nextStorage, _ := next.CertMagicStorage()
	if oldStorage != nextStorage {
		t.Errorf("the new configuration opened a second store on the same URL")
	}
	ctx := context.Background()
	if err := old.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := oldStorage.Store(ctx, "k", []byte("v")); err != nil {
		t.Errorf("Store after the old configuration's Cleanup: %v (the store closed under the new one)", err)
	}
	if err := next.Cleanup(); err != nil {
		t.Fatal(err)
	}
	if err := nextStorage.Store(ctx, "k", []byte("v")); !errors.Is(err, certcache.ErrClosed) {
		t.Errorf("Store after the last Cleanup = %v, want certcache.ErrClosed", err)
	}
}

// TestEveryScheme: the module links in every backend, so each scheme
// provisions (Open contacts no server).
func TestEveryScheme(t *testing.T) {
	for _, u := range []string{
		"s3://bucket/caddy?region=eu-west-1",
		"dynamodb://certcache/caddy?region=eu-west-1",
	} {
		s, err := provision(t, `{"url": "`+u+`"}`)
		if err != nil {
			t.Errorf("Provision(%s): %v", u, err)
			continue
		}
		s.Cleanup()
	}
}
