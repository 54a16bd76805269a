package redis_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	ccredis "github.com/certcache/certcache/redis"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

const testPassword = "s3cr3t-redis-pw"

func TestConformance(t *testing.T) {
	base := testenv.RedisURL(t)
	drivertest.Run(t, harness(func(ns string) string { return base + "?prefix=" + ns + "&timeout=5s" },
		drivertest.Harness{
			OpenBroken: func(t testing.TB) (certcache.Cache, error) {
				return certcache.Open(context.Background(),
					"redis://:"+testPassword+"@"+testenv.ClosedAddr(t)+"/0?timeout=2s&dial_timeout=1s")
			},
			BrokenIsUnavailable: true,
			Outage:              testenv.OutageOn(testenv.Redis, func(u string) string { return u + "?prefix=outage&timeout=2s" }),
			Timeout:             5 * time.Second,
			Secrets:             []string{testPassword},
		}))
	runRedisCases(t, base)
}

// harness completes h with Open and URL (so that lease contention runs in
// other processes too) for the namespace URLs nsURL returns.
func harness(nsURL func(ns string) string, h drivertest.Harness) drivertest.Harness {
	h.URL = nsURL
	h.Pushes = true
	h.Open = func(t testing.TB, ns string) (certcache.Cache, error) {
		return certcache.Open(context.Background(), nsURL(ns))
	}
	return h
}

// TestSentinel runs the suite and the Redis-specific cases through a
// sentinel-discovered master.
func TestSentinel(t *testing.T) {
	_, u := testenv.RedisSentinel(t)
	drivertest.Run(t, harness(func(ns string) string { return u + "&prefix=" + ns }, drivertest.Harness{}))
	runRedisCases(t, u)
}

// TestCluster runs the suite and the Redis-specific cases on a three-node
// cluster, whose keys (and leases) hash to different nodes and whose
// listings visit every master.
func TestCluster(t *testing.T) {
	_, u := testenv.RedisCluster(t)
	drivertest.Run(t, harness(func(ns string) string { return u + "&prefix=" + ns }, drivertest.Harness{}))
	runRedisCases(t, u)
}

// TestAuth: a server that wants a password refuses a wrong one with an
// error that is not a miss and does not show the password.
func TestAuth(t *testing.T) {
	srv, _ := testenv.Redis(t)
	srv.Exec(t, "redis-cli", "-p", srv.Port(0), "CONFIG", "SET", "requirepass", "right-password")
	ctx := context.Background()
	good, err := certcache.Open(ctx, "redis://:right-password@"+srv.Addr(0)+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer good.Close()
	if err := good.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatalf("Put with the right password: %v", err)
	}
	bad, err := certcache.Open(ctx, "redis://:"+testPassword+"@"+srv.Addr(0)+"/0")
	if err != nil {
		t.Fatal(err)
	}
	defer bad.Close()
	_, err = bad.Get(ctx, "example.com")
	if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("Get with a wrong password = %v, want a non-miss error", err)
	}
	if strings.Contains(err.Error(), testPassword) {
		t.Errorf("error reveals the password: %v", err)
	}
	if !strings.HasPrefix(err.Error(), `certcache/redis: get "example.com": `) {
		t.Errorf("error %q does not name backend, operation and key", err)
	}
}

// TestNewWithClient covers the door for users who hold a client: the cache
// uses its prefix, and Close leaves the client open.
func TestNewWithClient(t *testing.T) {
	_, u := testenv.Redis(t)
	o, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(o)
	defer client.Close()
	ctx := context.Background()
	c, err := ccredis.New(client, &ccredis.Options{Prefix: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	if got, err := client.Get(ctx, "mine:example.com").Result(); err != nil || got != "cert" {
		t.Errorf("raw GET mine:example.com = %q, %v; want the stored value", got, err)
	}
	c.Close()
	if err := client.Ping(ctx).Err(); err != nil {
		t.Errorf("client unusable after cache Close: %v", err)
	}
	if _, err := ccredis.New(nil, nil); err == nil {
		t.Error("New(nil) succeeded")
	}
}

// TestDefaultPrefix: without ?prefix=, keys live under "certcache:".
func TestDefaultPrefix(t *testing.T) {
	_, u := testenv.Redis(t)
	ctx := context.Background()
	c, err := certcache.Open(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(ctx, "acme_account+key", []byte("k")); err != nil {
		t.Fatal(err)
	}
	o, _ := goredis.ParseURL(u)
	client := goredis.NewClient(o)
	defer client.Close()
	if n, err := client.Exists(ctx, ccredis.DefaultPrefix+":acme_account+key").Result(); err != nil || n != 1 {
		t.Errorf("EXISTS certcache:acme_account+key = %d, %v", n, err)
	}
}

func TestOpenErrors(t *testing.T) {
	drivertest.RunOpenErrors(t, []drivertest.OpenCase{
		{"redis://h:6379/0?prefx=a", "unknown parameter prefx"},
		{"redis://h:6379/0?prefix=a&prefix=b", "prefix given 2 times"},
		{"redis://h:6379/0?prefix=", "prefix is empty"},
		{"redis://h:6379/0?prefix=a%0Ab", "control character"},
		{"redis://h:6379/0?bogus=1&other=2", "unknown parameter bogus, other"},
		{"redis://h:6379/0?dial_timeout=x", "dial_timeout"},
		{"redis://h:6379/x", "invalid database number"},
		{"redis://h:6379/0?tls_ca_file=/nonexistent", "needs a rediss scheme"},
		{"rediss://h:6379/0?tls_ca_file=/nonexistent/ca.pem", "tls_ca_file"},
		{"redis://h:6379/0?maint_notifications=on", "maint_notifications must be disabled, auto or enabled"},
		{"redis+sentinel://h:26379?master_name=m&maint_notifications=auto", "maint_notifications needs redis:// or redis+cluster://"},
		{"redis+sentinel://:" + testPassword + "@h:26379/0", "needs master_name"},
		{"redis+cluster://h:1?addr=nonsense", "addr"},
		{"redis://:" + testPassword + "@h:6379/0?password=" + testPassword + "&x=" + testPassword, "unknown parameter"},
	}, testPassword)
}

// TestOpenDoesNotDial: Open succeeds with the server down, so an instance
// can start during an outage; the first call reports it.
func TestOpenDoesNotDial(t *testing.T) {
	for _, u := range []string{
		"redis://" + testenv.ClosedAddr(t) + "/0?timeout=1s",
		"redis+sentinel://" + testenv.ClosedAddr(t) + "?master_name=m&timeout=1s",
		"redis+cluster://" + testenv.ClosedAddr(t) + "?timeout=1s",
	} {
		c, err := certcache.Open(context.Background(), u)
		if err != nil {
			t.Fatalf("Open(%q) with the server down: %v", u, err)
		}
		_, err = c.Get(context.Background(), "example.com")
		if err == nil || err == autocert.ErrCacheMiss { //nolint:errorlint
			t.Errorf("%s: Get with the server down = %v, want an error", u, err)
		}
		c.Close()
	}
}

func BenchmarkRedis(b *testing.B) {
	u := testenv.RedisURL(b)
	c, err := certcache.Open(context.Background(), u+"?prefix=bench")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })

	// The raw go-redis calls doing the same work on the same server.
	o, err := goredis.ParseURL(u)
	if err != nil {
		b.Fatal(err)
	}
	client := goredis.NewClient(o)
	defer client.Close()
	ctx := context.Background()
	v := drivertest.CertValue()
	if err := client.Set(ctx, "raw:bench.example", v, 0).Err(); err != nil {
		b.Fatal(err)
	}
	b.Run("raw", func(b *testing.B) {
		b.Run("GetHit", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if _, err := client.Get(ctx, "raw:bench.example").Bytes(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetMiss", func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if err := client.Get(ctx, "raw:missing.example").Err(); err != goredis.Nil { //nolint:errorlint
					b.Fatal(err)
				}
			}
		})
		b.Run("Put", func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(v)))
			for b.Loop() {
				if err := client.Set(ctx, "raw:bench-put.example", v, 0).Err(); err != nil {
					b.Fatal(err)
				}
			}
		})
	})
}

// TestNewOptions: New hands Options.Cache, beside Timeout, to the portable
// layer.
func TestNewOptions(t *testing.T) {
	client := goredis.NewClient(&goredis.Options{Addr: testenv.ClosedAddr(t)})
	defer client.Close()
	drivertest.RunNewOptions(t, func(o certcache.Options) (certcache.Cache, error) {
		return ccredis.New(client, &ccredis.Options{Prefix: "opts", Timeout: time.Second, Cache: o})
	})
}
