package redis_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/certcache/certcache"
	ccredis "github.com/certcache/certcache/redis"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

func Example() {
	ctx := context.Background()
	// Importing the package registers redis://, rediss://, redis+sentinel://
	// and redis+cluster://; Open does not contact the server.
	cache, err := certcache.Open(ctx, "redis://:password@localhost:6379/0?prefix=myapp&timeout=5s")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// Serve with certcache.TLSConfig, so that a handshake for a name another
	// instance is ordering waits for it instead of failing.
	m := &autocert.Manager{Prompt: autocert.AcceptTOS, Cache: cache, HostPolicy: autocert.HostWhitelist("example.com")}
	srv := &http.Server{Addr: ":443", TLSConfig: certcache.TLSConfig(m, cache)}
	_ = srv // srv.ListenAndServeTLS("", "")
	fmt.Println("opened")
	// Output: opened
}

func ExampleNew() {
	client := goredis.NewClient(&goredis.Options{Addr: "localhost:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	cache, err := ccredis.New(client, &ccredis.Options{Prefix: "myapp"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves client open
	fmt.Println("ready")
	// Output: ready
}
