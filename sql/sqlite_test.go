package sqlcache_test

import (
	"context"
	"database/sql"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/conformance"
	sqlcache "github.com/certcache/certcache/sql"
	_ "modernc.org/sqlite"
)

func TestSQLiteConformance(t *testing.T) {
	dir := t.TempDir()
	conformance.Run(t, conformance.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "sqlite://"+dir+"/cache.db?table="+ns+"&timeout=20s")
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "sqlite://"+dir+"/no/such/dir/cache.db?timeout=2s")
		},
		Timeout: 20 * time.Second,
	})
}

// TestSQLiteFileMode: a new database file and its WAL are private to the
// owner.
func TestSQLiteFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "new.db")
	c := open(t, "sqlite://"+path)
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatalf("Open created the file (err %v); it must wait for the first call", err)
	}
	if err := c.Put(context.Background(), "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{path, path + "-wal"} {
		fi, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if m := fi.Mode().Perm(); m != 0o600 {
			t.Errorf("%s has mode %o, want 600", p, m)
		}
	}
}

// TestSQLiteRelativePath: sqlite://rel.db is relative to the working
// directory.
func TestSQLiteRelativePath(t *testing.T) {
	t.Chdir(t.TempDir())
	c := open(t, "sqlite://sub.db")
	if err := c.Put(context.Background(), "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("sub.db"); err != nil {
		t.Fatal(err)
	}
}

// TestSQLiteTwoHandles: two independent handles (two Opens, each with its
// own *sql.DB and connections) write and read one file at once for a few
// seconds without "database is locked".
func TestSQLiteTwoHandles(t *testing.T) {
	u := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	hammer(t, 3*time.Second, open(t, u), open(t, u))
}

func TestSQLiteConcurrentCreate(t *testing.T) {
	u := "sqlite://" + filepath.Join(t.TempDir(), "race.db")
	concurrentCreate(t, func(table string) certcache.Cache { return open(t, u+"?table="+table) })
}

// TestSQLiteNewDB covers the door for users who hold a *sql.DB.
func TestSQLiteNewDB(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "mine.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	c, err := sqlcache.NewDB(db, sqlcache.SQLite, &sqlcache.Options{Table: "mine"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.Put(ctx, "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	var v []byte
	if err := db.QueryRow(`SELECT "value" FROM mine WHERE "key" = 'example.com'`).Scan(&v); err != nil || string(v) != "cert" {
		t.Errorf("raw SELECT = %q, %v", v, err)
	}
	c.Close()
	if err := db.Ping(); err != nil {
		t.Errorf("db unusable after cache Close: %v", err)
	}
}
