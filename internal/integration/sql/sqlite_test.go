package sqlcache_test

import (
	"bytes"
	"context"
	"database/sql"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certcache/certcache/sql/sqlite"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	sqlcache "github.com/certcache/certcache/sql"
	_ "modernc.org/sqlite"
)

func TestSQLiteConformance(t *testing.T) {
	dir := t.TempDir()
	// Every namespace is a table in one file, which the contenders of
	// LeaseExclusion open from other processes.
	nsURL := func(ns string) string { return "sqlite://" + dir + "/cache.db?table=" + ns + "&timeout=20s" }
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), nsURL(ns))
		},
		URL: nsURL,
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

// TestSQLiteTwoProcesses: this test binary, run again as a child process,
// writes and reads the same file as the parent for a few seconds; neither
// may fail ("database is locked" would).
func TestSQLiteTwoProcesses(t *testing.T) {
	const env = "CERTCACHE_SQLITE_CHILD_URL"
	if u := os.Getenv(env); u != "" {
		hammer(t, 3*time.Second, open(t, u))
		return
	}
	u := "sqlite://" + filepath.Join(t.TempDir(), "shared.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestSQLiteTwoProcesses$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), env+"="+u)
	done := make(chan error, 1)
	var out []byte
	go func() {
		var err error
		out, err = cmd.CombinedOutput()
		done <- err
	}()
	hammer(t, 3*time.Second, open(t, u))
	if err := <-done; err != nil {
		t.Errorf("child process: %v\n%s", err, out)
	}
	t.Logf("child: %s", bytes.TrimSpace(out))
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
	c, err := sqlite.New(db, &sqlcache.Options{Table: "mine"})
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

func BenchmarkSQLite(b *testing.B) {
	path := filepath.Join(b.TempDir(), "bench.db")
	c, err := certcache.Open(context.Background(), "sqlite://"+path+"?table=bench")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.Run("certcache", func(b *testing.B) { drivertest.RunBenchmarks(b, c) })
	benchRaw(b, sqliteRaw(b, path, "bench"))
}

// sqliteRaw are the raw database/sql calls doing a Get's and a Put's work
// on table in the database file path, with the same SQL, and a handle with
// the same pragmas as the URL opener's.
func sqliteRaw(t testing.TB, path, table string) rawOps {
	t.Helper()
	db, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return dbOps(db,
		`SELECT "value" FROM "`+table+`" WHERE "key" = ?`,
		`INSERT INTO "`+table+`" ("key", "value", updated_at) VALUES (?, ?, strftime('%Y-%m-%d %H:%M:%f', 'now')) `+
			`ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value", updated_at = excluded.updated_at`)
}

// TestSQLiteListOlderRows: rows written before listing existed, whose
// updated_at is CURRENT_TIMESTAMP's YYYY-MM-DD HH:MM:SS, list with their
// time beside rows written now, with milliseconds; the table needs no
// change, and the lease table appears beside it on first use.
func TestSQLiteListOlderRows(t *testing.T) {
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	before := time.Now().Truncate(time.Second)
	for _, stmt := range []string{
		// The table and upsert of the version before listing.
		`CREATE TABLE IF NOT EXISTS "autocert_cache" ("key" TEXT NOT NULL PRIMARY KEY, "value" BLOB NOT NULL, updated_at TEXT NOT NULL)`,
		`INSERT INTO "autocert_cache" ("key", "value", updated_at) VALUES ('old.example', x'0102', CURRENT_TIMESTAMP) ` +
			`ON CONFLICT ("key") DO UPDATE SET "value" = excluded."value", updated_at = excluded.updated_at`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	c := open(t, "sqlite://"+path)
	ctx := context.Background()
	if err := c.Put(ctx, "new.example", []byte("abc")); err != nil {
		t.Fatal(err)
	}
	after := time.Now()
	got := map[string]certcache.Entry{}
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil {
			t.Fatal(err)
		}
		got[e.Key] = e
	}
	for key, size := range map[string]int64{"old.example": 2, "new.example": 3} {
		e, ok := got[key]
		switch {
		case !ok:
			t.Errorf("%q not listed", key)
		case e.Size != size:
			t.Errorf("%q: Size %d, want %d", key, e.Size, size)
		case e.ModTime.Before(before) || e.ModTime.After(after):
			t.Errorf("%q: ModTime %v, written between %v and %v", key, e.ModTime, before, after)
		}
	}
	if len(got) != 2 {
		t.Errorf("listed %d keys, want 2", len(got))
	}
	if _, err := certcache.AcquireLease(ctx, c, "old.example", time.Minute); err != nil {
		t.Fatal(err)
	}
	var n int
	// Beside the exclusion probe's lease (certcache+…), taken before the first.
	if err := db.QueryRow(`SELECT count(*) FROM "autocert_cache$leases" WHERE name NOT LIKE 'certcache+%'`).Scan(&n); err != nil || n != 1 {
		t.Errorf("lease table holds %d rows, %v; want 1", n, err)
	}
}
