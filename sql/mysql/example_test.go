package mysql_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/certcache/certcache"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/certcache/certcache/sql/mysql"
)

func Example() {
	// Importing the package registers mysql://, for MySQL and MariaDB. Open
	// does not contact the server.
	cache, err := certcache.Open(context.Background(), "mysql://app:password@localhost:3306/app?tls=true&table=autocert_cache")
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
	db, err := sql.Open("mysql", "app:password@tcp(localhost:3306)/app")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer db.Close()
	cache, err := mysql.New(db, &sqlcache.Options{Table: "myapp_certs"})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // leaves db open
	fmt.Println("ready")
	// Output: ready
}
