package postgres_test

import (
	"context"
	"fmt"

	"github.com/certcache/certcache"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/certcache/certcache/sql/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
)

func Example() {
	// Importing the package registers postgres:// and postgresql://. Open does
	// not contact the server.
	cache, err := certcache.Open(context.Background(), "postgres://app:password@localhost:5432/app?sslmode=verify-full&table=autocert_cache")
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
	pool, err := pgxpool.New(context.Background(), "postgres://app:password@localhost:5432/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer pool.Close()
	cache, err := postgres.New(pool, &sqlcache.Options{Table: "myapp_certs"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves pool open
	fmt.Println("ready")
	// Output: ready
}
