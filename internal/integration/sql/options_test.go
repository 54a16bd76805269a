package sqlcache_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/certcache/certcache/sql/postgres"
	"github.com/certcache/certcache/sql/sqlite"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	sqlcache "github.com/certcache/certcache/sql"
)

// TestNewOptions: NewDB and NewPool hand Options.Cache, beside Timeout, to
// the portable layer.
func TestNewOptions(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "opts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	pool, err := pgxpool.New(context.Background(), "postgres://certcache@"+testenv.ClosedAddr(t)+"/certcache") // dials nothing yet
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	for name, newCache := range map[string]func(o *sqlcache.Options) (certcache.Cache, error){
		"NewDB":   func(o *sqlcache.Options) (certcache.Cache, error) { return sqlite.New(db, o) },
		"NewPool": func(o *sqlcache.Options) (certcache.Cache, error) { return postgres.New(pool, o) },
	} {
		t.Run(name, func(t *testing.T) {
			drivertest.RunNewOptions(t, func(o certcache.Options) (certcache.Cache, error) {
				return newCache(&sqlcache.Options{Table: "opts", Timeout: time.Second, Cache: o})
			})
		})
	}
}
