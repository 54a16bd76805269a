package sqlcache_test

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strings"
	"testing"

	ccmysql "github.com/certcache/certcache/sql/mysql"
	"github.com/certcache/certcache/sql/postgres"
	"github.com/certcache/certcache/sql/sqlite"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	sqlcache "github.com/certcache/certcache/sql"
)

const testPassword = "s3cr3t-open-pw"

func TestOpenErrors(t *testing.T) {
	pw := "u:" + testPassword + "@"
	drivertest.RunOpenErrors(t, []drivertest.OpenCase{
		{"postgres://" + pw + "h/db?tabel=x", "unknown parameter tabel"},
		{"postgresql://" + pw + "h/db?bogus=1&other=2", "unknown parameter bogus, other"},
		{"postgres://h/db?table=a&table=b", "table given 2 times"},
		{"postgres://h/db?table=", "table is empty"},
		{"postgres://" + pw + "h/db?sslmode=bogus", "sslmode"},
		{"postgres://" + pw + "h/db?pool_max_conns=x", "pool_max_conns"},
		{"postgres://" + pw + "h/db?max_open_conns=3", "unknown parameter max_open_conns"},
		{"mysql://" + pw + "h/db?tabel=x", "unknown parameter tabel"},
		{"mysql://" + pw + "h/db?bogus=1&other=2", "unknown parameter bogus, other"},
		{"mysql://" + pw + "h/db?readTimeout=x", "invalid duration"},
		{"mysql://" + pw + "h/db?parseTime=maybe", "invalid bool value"},
		{"mysql://" + pw + "h/db?strict=true", "strict"},
		{"mysql://" + pw + "h/db?max_open_conns=-1", "max_open_conns"},
		{"mysql://" + pw + "h/db?conn_max_lifetime=x", "conn_max_lifetime"},
		{"mysql://" + pw + "h/a/b", "holds a '/'"},
		{"mysql://" + pw + "h/db?charset=utf8%26x", "malformed"},
		{"sqlite:///tmp/x.db?tabel=x", "unknown parameter tabel"},
		{"sqlite:///tmp/x.db?_pragma=journal_mode(DELETE)", "unknown parameter _pragma"},
		{"sqlite:///tmp/x.db?busy_timeout=x", "busy_timeout"},
		{"sqlite://", "names no file"},
		{"sqlite:///tmp/", "names no file"},
		{"sqlite://" + pw + "x.db", "want sqlite:///ABSOLUTE"},
		{"sqlite:///tmp/x%3Fy.db", "holds '?'"},
	}, testPassword)
}

// TestOpenAccepts: the drivers' own parameters pass through, and Open
// contacts no server (none listens on h).
func TestOpenAccepts(t *testing.T) {
	drivertest.RunOpenAccepts(t, []string{
		"postgres://u:p@h/db?sslmode=require&pool_max_conns=4&connect_timeout=3&search_path=certs&application_name=x&statement_cache_capacity=64",
		"postgresql://h:5433/db?table=T_1-x&target_session_attrs=read-write",
		"mysql://u:p@h:3307/db?tls=skip-verify&readTimeout=3s&charset=utf8mb4&interpolateParams=true&sql_mode=ANSI&loc=Europe%2FParis",
		"mysql://u:p@[::1]:3306/db?max_open_conns=8&max_idle_conns=4&conn_max_lifetime=1m&conn_max_idle_time=30s",
		"mysql://h/db",
		"sqlite:///nonexistent-dir/x.db?busy_timeout=2s&max_open_conns=4",
		"sqlite://rel/x.db?table=certs",
	})
}

// TestTableNames: a table name is checked before it reaches SQL: quotes,
// dots, semicolons, spaces, non-ASCII and over-long names are refused.
func TestTableNames(t *testing.T) {
	for _, name := range []string{
		`a"b`, "a`b", "a'b", "a.b", "public.t", "a;b", "t; DROP TABLE x", "a b", "a\\b", "1abc", "-x",
		"é", "a\x00b", strings.Repeat("t", 64),
	} {
		for _, scheme := range []string{"postgres://h/db", "mysql://h/db", "sqlite:///tmp/x.db"} {
			u := scheme + "?table=" + url.QueryEscape(name)
			c, err := certcache.Open(context.Background(), u)
			if err == nil {
				c.Close()
				t.Errorf("Open(%q) accepted table %q", u, name)
			} else if !errors.Is(err, certcache.ErrInvalidURL) {
				t.Errorf("Open(%q) = %v, want ErrInvalidURL", u, err)
			}
		}
		if _, err := sqlite.New(&sql.DB{}, &sqlcache.Options{Table: name}); err == nil {
			t.Errorf("NewDB accepted table %q", name)
		}
	}
	for _, name := range []string{"t", "_t", "autocert_cache", "Certs-2", strings.Repeat("t", 63)} {
		c, err := certcache.Open(context.Background(), "postgres://h/db?table="+name)
		if err != nil {
			t.Errorf("table %q refused: %v", name, err)
			continue
		}
		c.Close()
	}
}

func TestNewNilErrors(t *testing.T) {
	for name, newCache := range map[string]func() (certcache.Cache, error){
		"postgres": func() (certcache.Cache, error) { return postgres.New(nil, nil) },
		"mysql":    func() (certcache.Cache, error) { return ccmysql.New(nil, nil) },
		"sqlite":   func() (certcache.Cache, error) { return sqlite.New(nil, nil) },
	} {
		if _, err := newCache(); err == nil || !strings.Contains(err.Error(), "certcache/"+name+": New: nil") {
			t.Errorf("%s.New(nil) = %v, want an error naming the backend", name, err)
		}
	}
}
