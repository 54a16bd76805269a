package redis_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

// runRedisCases runs the Redis-specific lease and listing cases (what the
// conformance suite cannot see: the keys in Redis itself) against the
// server, sentinel or cluster at u.
func runRedisCases(t *testing.T, u string) {
	raw := rawClient(t, u)
	for _, tc := range []struct {
		name string
		fn   func(t *testing.T, u string, raw goredis.UniversalClient)
	}{
		{"LeaseStorage", testLeaseStorage},
		{"LeaseNamespaces", testLeaseNamespaces},
		{"LeaseWithoutExpiry", testLeaseWithoutExpiry},
		{"ListGlobPrefixes", testListGlobPrefixes},
		{"ListSkipsForeign", testListSkipsForeign},
		{"ListStops", testListStops},
		{"ListTenThousand", testListTenThousand},
		{"GetManyHashTag", testGetManyHashTag},
	} {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, u, raw) })
	}
}

// rawClient returns a go-redis client for the redis, redis+sentinel or
// redis+cluster URL u, to look at what the cache stored.
func rawClient(t testing.TB, u string) goredis.UniversalClient {
	t.Helper()
	scheme, rest, _ := strings.Cut(u, "://")
	var c goredis.UniversalClient
	switch scheme {
	case "redis":
		o, err := goredis.ParseURL(u)
		if err != nil {
			t.Fatal(err)
		}
		c = goredis.NewClient(o)
	case "redis+sentinel":
		o, err := goredis.ParseFailoverURL("redis://" + rest)
		if err != nil {
			t.Fatal(err)
		}
		c = goredis.NewFailoverClient(o)
	case "redis+cluster":
		o, err := goredis.ParseClusterURL("redis://" + rest)
		if err != nil {
			t.Fatal(err)
		}
		c = goredis.NewClusterClient(o)
	default:
		t.Fatalf("rawClient: scheme %q", scheme)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// withParam adds one query parameter to u.
func withParam(u, name, value string) string {
	sep := "?"
	if strings.Contains(u, "?") {
		sep = "&"
	}
	return u + sep + name + "=" + url.QueryEscape(value)
}

// openNS opens a cache on u in a namespace no other test uses, beginning
// with tag, and returns it with the namespace.
func openNS(t testing.TB, u, tag string) (certcache.Cache, string) {
	t.Helper()
	var b [4]byte
	rand.Read(b[:])
	ns := fmt.Sprintf("%s%x", tag, b)
	return openPrefix(t, u, ns), ns
}

// openPrefix opens a cache on u with the namespace prefix ns.
func openPrefix(t testing.TB, u, ns string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), withParam(withParam(u, "prefix", ns), "timeout", "10s"))
	if err != nil {
		t.Fatalf("Open(prefix %q): %v", ns, err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// leaseKey is where the package documents a lease to live.
func leaseKey(ns, name string) string { return ns + "\x00lease:" + name }

// hostileNames are lease names (and keys) with everything a key layout can
// trip on: separators, glob characters, a cluster hash tag, escapes, the
// longest name allowed.
var hostileNames = []string{
	"example.com",
	"a/b/../c",
	"x:y:z",
	"*?[a-z]\\",
	"{tag}example.com",
	"%00%2F",
	"日本語.example",
	strings.Repeat("n", certcache.MaxKeyLen),
}

// testLeaseStorage: a lease is the documented key, holding the token with
// the server's expiry; it is invisible to Get and List, and the cache key
// of the same name is a separate thing.
func testLeaseStorage(t *testing.T, u string, raw goredis.UniversalClient) {
	ctx := context.Background()
	c, ns := openNS(t, u, "ls")
	for _, name := range hostileNames {
		t.Run(label(name), func(t *testing.T) {
			l, err := certcache.AcquireLease(ctx, c, name, 5*time.Second)
			if err != nil {
				t.Fatalf("AcquireLease: %v", err)
			}
			key := leaseKey(ns, name)
			if got, err := raw.Get(ctx, key).Result(); err != nil || got != l.Token() {
				t.Fatalf("raw GET of the lease key = %q, %v; want the token %q", got, err, l.Token())
			}
			if pttl, err := raw.PTTL(ctx, key).Result(); err != nil || pttl <= 0 || pttl > 5*time.Second {
				t.Errorf("PTTL of the lease key = %v, %v; want in (0, 5s]", pttl, err)
			}
			if _, err := c.Get(ctx, name); err != autocert.ErrCacheMiss { //nolint:errorlint
				t.Errorf("Get(%q) while only a lease of that name exists = %v, want a miss", name, err)
			}
			mustPutRaw(t, c, name, []byte("value"))
			if _, err := certcache.AcquireLease(ctx, c, name, 5*time.Second); !errors.Is(err, certcache.ErrLeaseHeld) {
				t.Errorf("second AcquireLease after a Put of the same name = %v, want ErrLeaseHeld", err)
			}
			if got := listKeys(t, c, ""); len(got) != 1 || got[0] != name {
				t.Errorf("List = %q, want only the cache key %q", got, name)
			}
			if err := l.Release(ctx); err != nil {
				t.Fatalf("Release: %v", err)
			}
			if n, err := raw.Exists(ctx, key).Result(); err != nil || n != 0 {
				t.Errorf("EXISTS lease key after Release = %d, %v; want 0", n, err)
			}
			if got, err := certcache.Uncoordinated(c).Get(ctx, name); err != nil || string(got) != "value" {
				t.Errorf("Get(%q) after releasing the lease = %q, %v; want the value", name, got, err)
			}
			if err := c.Delete(ctx, name); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// testLeaseNamespaces: the same lease name in two namespaces, one nested
// in the other, is two leases; the nested namespace's lease does not show
// in the outer namespace's listing.
func testLeaseNamespaces(t *testing.T, u string, raw goredis.UniversalClient) {
	ctx := context.Background()
	outer, ns := openNS(t, u, "ln")
	inner := openPrefix(t, u, ns+":sub")
	for _, c := range []certcache.Cache{outer, inner} {
		l, err := certcache.AcquireLease(ctx, c, "example.com", 5*time.Second)
		if err != nil {
			t.Fatalf("AcquireLease in one of two namespaces: %v", err)
		}
		defer l.Release(ctx)
	}
	mustPutRaw(t, inner, "k", []byte("v"))
	if got := listKeys(t, outer, ""); len(got) != 1 || got[0] != "sub:k" {
		t.Errorf("outer List = %q, want only the nested namespace's key \"sub:k\"", got)
	}
}

// testLeaseWithoutExpiry: a lease key something else wrote without an
// expiry is held, and the error says so.
func testLeaseWithoutExpiry(t *testing.T, u string, raw goredis.UniversalClient) {
	ctx := context.Background()
	c, ns := openNS(t, u, "lx")
	if err := raw.Set(ctx, leaseKey(ns, "stuck"), "someone", 0).Err(); err != nil {
		t.Fatal(err)
	}
	_, err := certcache.AcquireLease(ctx, c, "stuck", 5*time.Second)
	if !errors.Is(err, certcache.ErrLeaseHeld) || !strings.Contains(err.Error(), "no expiry") {
		t.Errorf("AcquireLease over a key without expiry = %v, want ErrLeaseHeld naming the missing expiry", err)
	}
}

// label makes a subtest name of a hostile name.
func label(s string) string {
	if len(s) > 24 {
		return fmt.Sprintf("%.20s…%d", s, len(s))
	}
	return s
}

func mustPutRaw(t testing.TB, c certcache.Cache, key string, v []byte) {
	t.Helper()
	if err := c.Put(context.Background(), key, v); err != nil {
		t.Fatalf("Put(%q): %v", key, err)
	}
}
