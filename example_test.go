package certcache_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// Serve HTTPS from a fleet: every instance opens the same URL, and
// TLSConfig makes a handshake for a name another instance is ordering wait
// for that certificate instead of failing.
func ExampleTLSConfig() {
	ctx := context.Background()
	cache, err := certcache.Open(ctx, "mem://fleet") // redis://…, s3://…, postgres://… in a real fleet
	if err != nil {
		panic(err)
	}
	defer cache.Close()
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		Cache:      cache,
		HostPolicy: autocert.HostWhitelist("example.com"),
	}
	srv := &http.Server{
		Addr:      ":443",
		TLSConfig: certcache.TLSConfig(m, cache),
	}
	_ = srv // srv.ListenAndServeTLS("", "") in a real server
	fmt.Println(srv.TLSConfig.NextProtos)
	// Output: [h2 http/1.1 acme-tls/1]
}

// Two instances miss the same new certificate: the first gets the miss and
// orders it; the second gets ErrIssuing at once, never a miss.
func ExampleErrIssuing() {
	ctx := context.Background()
	first, _ := certcache.Open(ctx, "mem://issuing")
	second, _ := certcache.Open(ctx, "mem://issuing")
	defer first.Close()
	defer second.Close()

	_, err := first.Get(ctx, "new.example.com")
	fmt.Println(err == autocert.ErrCacheMiss)
	_, err = second.Get(ctx, "new.example.com")
	fmt.Println(errors.Is(err, certcache.ErrIssuing))
	// Output:
	// true
	// true
}

// Leases coordinate any work across a fleet.
func ExampleAcquireLease() {
	ctx := context.Background()
	cache, _ := certcache.Open(ctx, "mem://leases")
	defer cache.Close()

	l, err := certcache.AcquireLease(ctx, cache, "nightly-report", time.Minute)
	if err != nil {
		panic(err)
	}
	_, err = certcache.AcquireLease(ctx, cache, "nightly-report", time.Minute)
	fmt.Println(errors.Is(err, certcache.ErrLeaseHeld))
	fmt.Println(l.Release(ctx))
	// Output:
	// true
	// <nil>
}

// List streams the keys of a store.
func ExampleList() {
	ctx := context.Background()
	cache, _ := certcache.Open(ctx, "mem://")
	defer cache.Close()
	cache.Put(ctx, "example.com", []byte("…"))

	for e, err := range certcache.List(ctx, cache, "") {
		if err != nil {
			panic(err)
		}
		fmt.Println(e.Key, e.Size)
	}
	// Output: example.com 3
}
