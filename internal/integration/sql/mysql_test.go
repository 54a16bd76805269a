package sqlcache_test

import (
	"context"
	"database/sql"
	"net/url"
	"testing"
	"time"

	ccmysql "github.com/certcache/certcache/sql/mysql"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/go-sql-driver/mysql"
)

func TestMariaDBConformance(t *testing.T) {
	base := testenv.MariaDBURL(t)
	nsURL := func(ns string) string { return withParam(base, "table="+ns+"&timeout=5s") }
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), nsURL(ns))
		},
		URL: nsURL,
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(),
				"mysql://certcache:"+testenv.MariaDBPassword+"@"+testenv.ClosedAddr(t)+"/certcache?timeout=2s")
		},
		BrokenIsUnavailable: true,
		Outage:              testenv.OutageOn(testenv.MariaDB, func(u string) string { return withParam(u, "table=outage&timeout=2s") }),
		Timeout:             5 * time.Second,
		Secrets:             []string{testenv.MariaDBPassword},
	})
}

// TestMariaDBMaxValue: a value of certcache.MaxValueSize bytes is stored
// (the server's max_allowed_packet allows it).
func TestMariaDBMaxValue(t *testing.T) {
	c := open(t, testenv.MariaDBURL(t))
	v := make([]byte, certcache.MaxValueSize)
	for i := range v {
		v[i] = byte(i * 7)
	}
	ctx := context.Background()
	if err := c.Put(ctx, "big.example", v); err != nil {
		t.Fatal(err)
	}
	got, err := c.Get(ctx, "big.example")
	if err != nil || string(got) != string(v) {
		t.Fatalf("Get = %d bytes, %v; want %d bytes", len(got), err, len(v))
	}
}

// TestMariaDBDenied: a table the user may not read, or not create, and a
// database that does not exist, give errors, never misses; a failed create
// is tried again by the next call.
func TestMariaDBDenied(t *testing.T) {
	srv, u := testenv.MariaDB(t)
	ctx := context.Background()
	owner := open(t, u)
	if err := owner.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	limited := testenv.MariaDBUserURL(srv, testenv.MariaDBLimitedUser, testenv.MariaDBLimitedPassword)
	t.Run("NoSelect", func(t *testing.T) {
		mustFail(t, open(t, limited), "denied", testenv.MariaDBLimitedPassword)
	})
	grant := func(t *testing.T, what string) {
		srv.Exec(t, "mariadb", "-h", "127.0.0.1", "-P", srv.Port(0), "-u", testenv.MariaDBUser,
			"-p"+testenv.MariaDBPassword, "-e", "GRANT "+what+" ON certcache.* TO 'limited'@'%'")
	}
	t.Run("NoCreate", func(t *testing.T) {
		// MySQL hides a missing table from a user without privileges on
		// it (NoSelect covers that); a user who may read and write but not
		// create sees the table missing, and the create fails.
		grant(t, "SELECT, INSERT, UPDATE, DELETE")
		// New privileges on a database reach new connections only.
		c := open(t, withParam(limited, "table=mine&max_idle_conns=0"))
		mustFail(t, c, "create table mine: Error 1142", testenv.MariaDBLimitedPassword)
		// Once the user may create, the same cache works: the failed
		// create was not remembered.
		grant(t, "CREATE")
		if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
			t.Fatalf("Put after GRANT CREATE: %v", err)
		}
		if _, err := certcache.AcquireLease(ctx, c, "example.com", time.Minute); err != nil {
			t.Fatalf("AcquireLease after GRANT CREATE: %v", err)
		}
	})
	t.Run("NoDatabase", func(t *testing.T) {
		wu, _ := url.Parse(u)
		wu.Path = "/nosuchdb"
		mustFail(t, open(t, wu.String()), "nosuchdb", testenv.MariaDBPassword)
	})
	t.Run("WrongPassword", func(t *testing.T) {
		mustFail(t, open(t, testenv.MariaDBUserURL(srv, testenv.MariaDBUser, "wrong-password")), "denied", "wrong-password")
	})
}

// TestMariaDBSpecialPassword: a password with URL and DSN syntax in it
// ('@', ':', '/', '?', '#', '%', '&', '=', parentheses, a space) works once
// escaped in the URL.
func TestMariaDBSpecialPassword(t *testing.T) {
	srv, _ := testenv.MariaDB(t)
	c := open(t, testenv.MariaDBUserURL(srv, testenv.MariaDBSpecialUser, testenv.MariaDBSpecialPassword)+"?table=special")
	if err := c.Put(context.Background(), "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func TestMariaDBConcurrentCreate(t *testing.T) {
	u := testenv.MariaDBURL(t)
	concurrentCreate(t, func(table string) certcache.Cache {
		db := rawMySQL(t, u)
		if err := db.Ping(); err != nil { // connected beforehand: the creates meet on the server
			t.Fatal(err)
		}
		c, err := ccmysql.New(db, &sqlcache.Options{Table: table})
		if err != nil {
			t.Fatal(err)
		}
		return c
	})
}

// rawMySQL opens a *sql.DB on the server of a mysql:// URL.
func rawMySQL(t testing.TB, u string) *sql.DB {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.DBName = "tcp", pu.Host, pu.Path[1:]
	cfg.User = pu.User.Username()
	cfg.Passwd, _ = pu.User.Password()
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		t.Fatal(err)
	}
	db := sql.OpenDB(conn)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestMariaDBNewDB covers the door for users who hold a *sql.DB.
func TestMariaDBNewDB(t *testing.T) {
	db := rawMySQL(t, testenv.MariaDBURL(t))
	c, err := ccmysql.New(db, &sqlcache.Options{Table: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	var v []byte
	if err := db.QueryRow("SELECT `value` FROM mine WHERE `key` = 'example.com'").Scan(&v); err != nil || string(v) != "cert" {
		t.Errorf("raw SELECT = %q, %v", v, err)
	}
	c.Close()
	if err := db.Ping(); err != nil {
		t.Errorf("db unusable after cache Close: %v", err)
	}
}

func BenchmarkMariaDB(b *testing.B) {
	u := testenv.MariaDBURL(b)
	c, err := certcache.Open(context.Background(), withParam(u, "table=bench"))
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })
	benchRaw(b, mariadbRaw(b, u, "bench"))
}

// mariadbRaw are the raw database/sql calls doing a Get's and a Put's work
// on table, with the same SQL, on the same server.
func mariadbRaw(t testing.TB, u, table string) rawOps {
	return dbOps(rawMySQL(t, u),
		"SELECT `value` FROM `"+table+"` WHERE `key` = ?",
		"INSERT INTO `"+table+"` (`key`, `value`, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6)) "+
			"ON DUPLICATE KEY UPDATE `value` = VALUES(`value`), updated_at = VALUES(updated_at)")
}
