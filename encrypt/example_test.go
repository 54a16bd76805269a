package encrypt_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"os"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/encrypt"
)

func Example() {
	ctx := context.Background()
	// In a deployment the key comes from a secret store; the URL only says
	// where it is. Here: a fresh key in an environment variable.
	key := make([]byte, encrypt.KeySize)
	rand.Read(key)
	os.Setenv("CERTCACHE_KEY", base64.StdEncoding.EncodeToString(key))

	// Any backend: encryption is turned on by the URL's parameters.
	cache, err := certcache.Open(ctx, "mem://?encryption_key=env:CERTCACHE_KEY")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	fmt.Println("opened")
	// Output: opened
}

func ExampleNew() {
	ctx := context.Background()
	inner, err := certcache.Open(ctx, "mem://example-new")
	if err != nil {
		fmt.Println(err)
		return
	}
	newKey, oldKey := make([]byte, encrypt.KeySize), make([]byte, encrypt.KeySize)
	rand.Read(newKey)
	rand.Read(oldKey)
	// Seal with newKey; values sealed with oldKey still open.
	kr, err := encrypt.NewKeyring(newKey, oldKey)
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := encrypt.New(inner, kr, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // closes inner too
	if err := cache.Put(ctx, "acme_account+key", []byte("-----BEGIN EC PRIVATE KEY-----\n…")); err != nil {
		fmt.Println(err)
		return
	}
	stored, _ := inner.Get(ctx, "acme_account+key")
	fmt.Printf("stored %d bytes starting %q\n", len(stored), stored[:5])
	// Output: stored 75 bytes starting "\x89CCE\x01"
}

func ExampleLoadKey() {
	_, err := encrypt.LoadKey("aGVsbG8gd29ybGQ=")
	fmt.Println(err)
	os.Setenv("CERTCACHE_EXAMPLE_KEY", "c2hvcnQ=")
	_, err = encrypt.LoadKey("env:CERTCACHE_EXAMPLE_KEY")
	fmt.Println(err)
	// Output:
	// bad encryption key: a key reference must be env:NAME or file:PATH, naming where the key is, not holding it (the value given is not shown)
	// bad encryption key: environment variable CERTCACHE_EXAMPLE_KEY: base64 of 5 bytes, want 32 (a 256-bit key: openssl rand -base64 32)
}
