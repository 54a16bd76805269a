package postgres_test

import (
	"context"
	"fmt"
	"net/http"

	"github.com/certcache/certcache"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/certcache/certcache/sql/postgres"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/acme/autocert"
)

func Example() {
	ctx := context.Background()
	// Importing the package registers postgres:// and postgresql://; Open
	// does not contact the server.
	cache, err := certcache.Open(ctx, "postgres://app:password@localhost:5432/app?sslmode=disable&table=autocert_cache&timeout=5s")
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
