package sqlcache_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/certcache/certcache/sql/postgres"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

func TestPostgresConformance(t *testing.T) {
	base := testenv.PostgresURL(t)
	// Every new PostgreSQL session is a forked server process that checks a
	// SCRAM password: on a loaded two-core machine, the 32 sessions that
	// LeaseExclusion opens at once (8 of them from new processes) took
	// more than 5s to connect. MySQL's sessions are threads, and cheap.
	nsURL := func(ns string) string { return withParam(base, "table="+ns+"&timeout=20s") }
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), nsURL(ns))
		},
		URL: nsURL,
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(),
				"postgres://certcache:"+testenv.PostgresPassword+"@"+testenv.ClosedAddr(t)+"/certcache?timeout=2s&connect_timeout=1")
		},
		BrokenIsUnavailable: true,
		Outage:              testenv.OutageOn(testenv.Postgres, func(u string) string { return withParam(u, "table=outage&timeout=2s") }),
		Timeout:             20 * time.Second,
		Secrets:             []string{testenv.PostgresPassword},
		Pushes:              true,
	})
}

// TestPostgresDenied: a table the user may not read, or not create, and a
// database that does not exist, give errors, never misses; a failed create
// is tried again by the next call.
func TestPostgresDenied(t *testing.T) {
	srv, u := testenv.Postgres(t)
	ctx := context.Background()
	owner := open(t, u) // creates autocert_cache, owned by certcache
	if err := owner.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	limited := testenv.PostgresUserURL(srv, testenv.PostgresLimitedUser, testenv.PostgresLimitedPassword)
	t.Run("NoSelect", func(t *testing.T) {
		mustFail(t, open(t, limited), "permission denied", testenv.PostgresLimitedPassword)
	})
	t.Run("NoCreate", func(t *testing.T) {
		c := open(t, withParam(limited, "table=mine"))
		mustFail(t, c, "create table mine", testenv.PostgresLimitedPassword)
		// Once the user may create, the same cache works: the failed
		// create was not remembered.
		srv.Exec(t, "/usr/local/pgbin/psql", "-h", "/tmp", "-p", srv.Port(0), "-U", "postgres", "-d", "certcache",
			"-c", "GRANT CREATE ON SCHEMA public TO limited")
		if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
			t.Fatalf("Put after GRANT CREATE: %v", err)
		}
		if _, err := certcache.AcquireLease(ctx, c, "example.com", time.Minute); err != nil {
			t.Fatalf("AcquireLease after GRANT CREATE: %v", err)
		}
	})
	t.Run("NoDatabase", func(t *testing.T) {
		wrong := testenv.PostgresUserURL(srv, testenv.PostgresUser, testenv.PostgresPassword)
		wu, _ := url.Parse(wrong)
		wu.Path = "/nosuchdb"
		mustFail(t, open(t, wu.String()), "nosuchdb", testenv.PostgresPassword)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		mustFail(t, open(t, testenv.PostgresUserURL(srv, testenv.PostgresUser, "wrong-password")), "password", "wrong-password")
	})
}

// TestPostgresSpecialPassword: a password with URL and DSN syntax in it
// works once escaped in the URL, and no error shows it.
func TestPostgresSpecialPassword(t *testing.T) {
	srv, _ := testenv.Postgres(t)
	c := open(t, testenv.PostgresUserURL(srv, testenv.PostgresSpecialUser, testenv.PostgresSpecialPassword)+"&table=special")
	if err := c.Put(context.Background(), "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func TestPostgresConcurrentCreate(t *testing.T) {
	u := testenv.PostgresURL(t)
	// Each cache has a pool of its own, connected beforehand, so that the
	// creates meet on the server rather than queue behind logins.
	concurrentCreate(t, func(table string) certcache.Cache {
		pool, err := pgxpool.New(context.Background(), u)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		if err := pool.Ping(context.Background()); err != nil {
			t.Fatal(err)
		}
		c, err := postgres.New(pool, &sqlcache.Options{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// TestPostgresNewPool covers the door for users who hold a pool: the cache
// uses its table, and Close leaves the pool open.
func TestPostgresNewPool(t *testing.T) {
	u := testenv.PostgresURL(t)
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	c, err := postgres.New(pool, &sqlcache.Options{Table: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	var v []byte
	if err := pool.QueryRow(ctx, `SELECT "value" FROM mine WHERE "key" = 'example.com'`).Scan(&v); err != nil || string(v) != "cert" {
		t.Errorf("raw SELECT = %q, %v", v, err)
	}
	c.Close()
	if err := pool.Ping(ctx); err != nil {
		t.Errorf("pool unusable after cache Close: %v", err)
	}
	if _, err := postgres.New(nil, nil); err == nil {
		t.Error("NewPool(nil) succeeded")
	}
	if _, err := postgres.New(pool, &sqlcache.Options{Table: "a.b"}); err == nil {
		t.Error("NewPool with table a.b succeeded")
	}
}

func BenchmarkPostgres(b *testing.B) {
	u := testenv.PostgresURL(b)
	c, err := certcache.Open(context.Background(), withParam(u, "table=bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })

	benchRaw(b, postgresRaw(b, u, "bench"))
}

// postgresRaw are the raw pgxpool calls doing a Get's and a Put's work on
// table, with the same SQL, on the same server.
func postgresRaw(t testing.TB, u, table string) rawOps {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	get := `SELECT "value" FROM "` + table + `" WHERE "key" = $1`
	put := `INSERT INTO "` + table + `" ("key", "value", updated_at) VALUES ($1, $2, now()) ` +
		`ON CONFLICT ("key") DO UPDATE SET "value" = EXCLUDED."value", updated_at = EXCLUDED.updated_at`
	return rawOps{
		get: func(ctx context.Context, key string) ([]byte, error) {
			var v []byte
			err := pool.QueryRow(ctx, get, key).Scan(&v)
			if errors.Is(err, pgx.ErrNoRows) {
				return nil, nil
			}
			return v, err
		},
		put: func(ctx context.Context, key string, v []byte) error {
			_, err := pool.Exec(ctx, put, key, v)
			return err
		},
	}
}
