package encrypt_test

import (
	"context"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/encrypt"
	"github.com/certcache/certcache/internal/integration/testenv"
	_ "github.com/certcache/certcache/redis"
	goredis "github.com/redis/go-redis/v9"
)

const redisPassword = "s3cr3t-redis-pw"

// TestConformanceRedis runs the suite through the wrapper over a real Redis
// server, turned on from the URL alone.
func TestConformanceRedis(t *testing.T) {
	key := newKey(t)
	ref := b64File(t, key)
	base := testenv.RedisURL(t)
	drivertest.Run(t, drivertest.Harness{
		SealedSizes: true, // listed sizes count the sealing overhead (encrypt.Overhead)
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), base+"?prefix="+ns+"&timeout=5s&encryption_key="+ref)
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(),
				"redis://:"+redisPassword+"@"+testenv.ClosedAddr(t)+"/0?timeout=2s&dial_timeout=1s&encryption_key="+ref)
		},
		BrokenIsUnavailable: true,
		Outage:              testenv.OutageOn(testenv.Redis, func(u string) string { return u + "?prefix=outage&timeout=2s&encryption_key=" + ref }),
		Timeout:             5 * time.Second,
		Secrets:             append(keySecrets(key), redisPassword),
	})
}

// TestRedisAtRest reads the Redis keys with go-redis directly after Puts
// through the wrapper: no PEM, only sealed values under the right key id;
// and a plaintext value written by an old peer is read in migration mode.
func TestRedisAtRest(t *testing.T) {
	ctx := context.Background()
	key := newKey(t)
	ref := b64File(t, key)
	_, u := testenv.Redis(t)
	c, err := certcache.Open(ctx, u+"?prefix=atrest&encryption_key="+ref+"&encryption_migrate=true")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	o, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	client := goredis.NewClient(o)
	defer client.Close()

	v := drivertest.CertValue()
	for _, name := range []string{"example.com", "acme_account+key"} {
		if err := c.Put(ctx, name, v); err != nil {
			t.Fatal(err)
		}
		stored, err := client.Get(ctx, "atrest:"+name).Bytes()
		if err != nil {
			t.Fatalf("raw GET atrest:%s: %v", name, err)
		}
		checkSealed(t, stored, v, encrypt.KeyID(key))
	}
	// No key in the namespace holds PEM text.
	keys, err := client.Keys(ctx, "atrest:*").Result()
	if err != nil || len(keys) != 2 {
		t.Fatalf("KEYS atrest:* = %v, %v", keys, err)
	}
	// Migration: a plaintext value left by a peer without encryption.
	if err := client.Set(ctx, "atrest:old.example.com", v, 0).Err(); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Get(ctx, "old.example.com"); err != nil || string(got) != string(v) {
		t.Fatalf("migration Get of a plaintext value: %v", err)
	}
	if err := c.Put(ctx, "old.example.com", v); err != nil {
		t.Fatal(err)
	}
	stored, _ := client.Get(ctx, "atrest:old.example.com").Bytes()
	checkSealed(t, stored, v, encrypt.KeyID(key))
	// Tampering on the server is caught.
	stored[len(stored)/2] ^= 1
	client.Set(ctx, "atrest:old.example.com", stored, 0)
	_, err = c.Get(ctx, "old.example.com")
	wantDecryptErr(t, "value altered in Redis", err, keySecrets(key))
}
