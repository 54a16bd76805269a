package redis_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"testing"

	"github.com/certcache/certcache"
	goredis "github.com/redis/go-redis/v9"
)

// testGetManyHashTag reads keys through GetMany under a prefix with a hash
// tag, which puts every key of the namespace in one cluster slot (one MGET
// there), beside keys this package did not write: a hash in the
// namespace reads as missing, as List does not list it.
func testGetManyHashTag(t *testing.T, u string, raw goredis.UniversalClient) {
	ctx := context.Background()
	var b [4]byte
	rand.Read(b[:])
	ns := fmt.Sprintf("{gm%x}", b)
	c := openPrefix(t, u, ns)
	keys := make([]string, 0, 700)
	want := map[string][]byte{}
	for i := range 700 {
		k := fmt.Sprintf("host-%03d.example", i)
		keys = append(keys, k)
		if i%7 == 3 {
			continue
		}
		want[k] = fmt.Appendf(nil, "value %d", i)
		if err := raw.Set(ctx, ns+":"+k, want[k], 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := raw.HSet(ctx, ns+":a-hash", "f", "v").Err(); err != nil {
		t.Fatal(err)
	}
	keys = append(keys, "a-hash")
	values, err := certcache.GetMany(ctx, c, keys)
	if err != nil {
		t.Fatal(err)
	}
	for i, k := range keys {
		w, ok := want[k]
		if got := values[i]; (got != nil) != ok || !bytes.Equal(got, w) {
			t.Fatalf("GetMany: %s = %q (nil: %v), want %q (stored: %v)", k, got, got == nil, w, ok)
		}
	}
}
