package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/sql/sqlite"
	"golang.org/x/crypto/acme/autocert"
)

func Example() {
	// Importing the package registers sqlite://: a database file, created
	// if missing (pure Go, no cgo). Open does not create it yet.
	cache, err := certcache.Open(context.Background(), "sqlite:///var/lib/myapp/certs.db")
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
	db, err := sql.Open("sqlite", "file:example?mode=memory&cache=shared")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	cache, err := sqlite.New(db, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves db open
	ctx := context.Background()
	if err := cache.Put(ctx, "acme_account+key", []byte("account key")); err != nil {
		fmt.Println(err)
		return
	}
	v, err := cache.Get(ctx, "acme_account+key")
	fmt.Printf("%s %v\n", v, err)
	_, err = cache.Get(ctx, "missing.example")
	fmt.Println(err == autocert.ErrCacheMiss)
	// Output:
	// account key <nil>
	// true
}
