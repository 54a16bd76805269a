package redis_test

import (
	"context"
	"fmt"

	"github.com/certcache/certcache"
	ccredis "github.com/certcache/certcache/redis"
	goredis "github.com/redis/go-redis/v9"
)

func Example() {
	// Importing the package registers redis://, rediss://, redis+sentinel://
	// and redis+cluster://. Open does not contact the server.
	cache, err := certcache.Open(context.Background(), "redis://:password@localhost:6379/0?prefix=myapp")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	// cache is an autocert.Manager's Cache; serve with certcache.TLSConfig.
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
