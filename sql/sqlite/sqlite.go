// Package sqlite is certcache's SQLite backend, on the pure-Go
// modernc.org/sqlite (no cgo): one table of values and one of leases in a
// database file (see package sql for the tables, leases, listing and errors
// every SQL dialect shares). Importing it registers the sqlite:// scheme
// with certcache.Open:
//
//	import _ "github.com/certcache/certcache/sql/sqlite"
//
//	cache, err := certcache.Open(ctx, "sqlite:///var/lib/myapp/certs.db")
//
// Users who already hold a *sql.DB call New.
//
// # URLs
//
//	sqlite:///ABSOLUTE/PATH.db[?PARAMS]
//	sqlite://RELATIVE/PATH.db[?PARAMS]
//
// Parameters:
//
//	table         the table, created if missing; default autocert_cache (see package sql)
//	timeout       the per-call timeout (handled by certcache.Open); default 10s
//	busy_timeout  how long a statement waits for another connection's lock; default 10s
//
// The database file is created, with mode 0600, on first use. It is opened
// in WAL mode with a busy timeout, so several processes and handles share
// one file; it must be on a local file system (WAL needs shared memory).
// Keep busy_timeout within timeout, as SQLite may not notice the end of a
// call's context while it waits; a Get whose context cannot end (behind
// the memory front, say) does not watch it at all, as the lock is all its
// statement waits for. The database/sql pool settings
// max_open_conns (default ten per CPU; 0 means no bound),
// max_idle_conns (default 2), conn_max_lifetime and conn_max_idle_time
// (durations) apply too. An unknown or repeated parameter is an error that
// names it.
package sqlite

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	ccdriver "github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/certcache/certcache/sql/internal/core"
	modernc "modernc.org/sqlite"
)

// SQLite compares TEXT with the BINARY collation unless told otherwise:
// byte for byte.
var dialect = &core.Dialect{
	Name:  "sqlite",
	Quote: '"',
	Create: `CREATE TABLE IF NOT EXISTS %[1]s (%[2]s TEXT NOT NULL PRIMARY KEY, ` +
		`%[3]s BLOB NOT NULL, updated_at TEXT NOT NULL)`,
	Get: `SELECT %[3]s FROM %[1]s WHERE %[2]s = ?`,
	// updated_at is UTC text, YYYY-MM-DD HH:MM:SS.SSS (the milliseconds
	// since this package lists; CURRENT_TIMESTAMP's form, without them,
	// is in older rows).
	Put: `INSERT INTO %[1]s (%[2]s, %[3]s, updated_at) VALUES (?, ?, ` + sqliteNow + `) ` +
		`ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = excluded.%[3]s, updated_at = excluded.updated_at`,
	Del: `DELETE FROM %[1]s WHERE %[2]s = ?`,
	// expires_at is UTC text in sqliteNow's form, which sorts as it
	// compares. 'now' is the machine's clock, which every process sharing
	// the file reads, with one value for the whole statement.
	CreateLeases: `CREATE TABLE IF NOT EXISTS %[4]s (name TEXT NOT NULL PRIMARY KEY, ` +
		`token TEXT NOT NULL, expires_at TEXT NOT NULL)`,
	Acquire: `INSERT INTO %[4]s (name, token, expires_at) VALUES (?1, ?2, strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', ?3)) ` +
		`ON CONFLICT (name) DO UPDATE SET token = excluded.token, expires_at = excluded.expires_at ` +
		`WHERE %[4]s.expires_at <= ` + sqliteNow + ` OR %[4]s.token = excluded.token`,
	Refresh: `UPDATE %[4]s SET expires_at = strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now', ?1) ` +
		`WHERE name = ?2 AND token = ?3 AND expires_at > ` + sqliteNow,
	Release: `DELETE FROM %[4]s WHERE name = ?1 AND token = ?2`,
	// A modifier: "+60.000 seconds".
	TTL: func(d time.Duration) any { return fmt.Sprintf("%+.3f seconds", d.Seconds()) },
	// julianday is a day count in a float64: about 50 µs of precision
	// today, finer than the milliseconds expires_at keeps.
	LeaseLeft:    `CAST(round((julianday(expires_at) - julianday('now')) * 86400000000) AS INTEGER)`,
	BreakExpired: `DELETE FROM %[4]s WHERE name = ?1 AND expires_at <= ` + sqliteNow,
	List:         `SELECT %[2]s, length(%[3]s), updated_at FROM %[1]s WHERE %[5]s ORDER BY %[2]s LIMIT ` + strconv.Itoa(core.ListPage),
	Param:        func(n int) string { return "?" + strconv.Itoa(n) },
	Entry: func(scan func(...any) error) (certcache.Entry, error) {
		var e certcache.Entry
		var at string
		if err := scan(&e.Key, &e.Size, &at); err != nil {
			return certcache.Entry{}, err
		}
		// Parsing accepts the fraction the layout leaves out.
		t, err := time.Parse(time.DateTime, at)
		if err != nil {
			return certcache.Entry{}, fmt.Errorf("key %q: updated_at: %w", e.Key, err)
		}
		e.ModTime = t
		return e, nil
	},
	// modernc.org/sqlite reports both as SQLITE_ERROR; only the message
	// tells them apart.
	NoTable:    func(err error) bool { return strings.Contains(err.Error(), "no such table") },
	CreateRace: func(err error) bool { return strings.Contains(err.Error(), "already exists") },
	Classify:   func(err error) error { return err },
	Retry:      sqliteBusy,
}

// sqliteBusy reports SQLITE_BUSY (5, and its extended codes) that reached
// the caller in spite of busy_timeout: SQLite answers it without waiting
// where waiting could deadlock or while another connection recovers the
// WAL or switches the file to WAL mode, which three processes opening a new
// file at once can meet. The statement did nothing and may run again.
func sqliteBusy(err error) bool {
	var se interface{ Code() int }
	return errors.As(err, &se) && se.Code()&0xff == 5
}

// sqliteNow is the time of the statement in UTC, to the millisecond (%% for
// the templates' fmt.Sprintf).
const sqliteNow = `strftime('%%Y-%%m-%%d %%H:%%M:%%f', 'now')`

// defaultBusyTimeout is how long a statement waits for another connection's
// lock before failing.
const defaultBusyTimeout = certcache.DefaultTimeout

func init() {
	certcache.Register("sqlite", certcache.Backend{Name: dialect.Name, Open: open})
}

// New returns a Cache that stores values in a table of the SQLite database
// db (with modernc.org/sqlite or another SQLite driver). Close does not
// close db: it belongs to the caller. Open db in WAL mode with a busy
// timeout (the URL opener does) if several processes share the file.
func New(db *sql.DB, o *sqlcache.Options) (certcache.Cache, error) {
	return core.NewDB(dialect, core.DBConn{DB: db, Bound: busyBound{}}, o)
}

// busyBound lets a Get whose context ends only at its deadline run its
// query under a context that cannot end (see core.DBConn.Bound). The
// statement of a Get waits for nothing but a lock, which busy_timeout
// bounds, and SQLite does not notice a context's end while it waits for
// one: watching the context (modernc starts a goroutine per statement to
// interrupt it) would bound nothing more.
type busyBound struct{}

func (busyBound) Bound(*sql.Conn, time.Time) (core.Deadliner, bool) { return nil, true }

// open opens sqlite:// URLs.
func open(_ context.Context, u *url.URL) (ccdriver.Driver, error) {
	q := urlquery.Parse(u.RawQuery)
	table := core.ReadTable(q)
	pool := core.ReadPool(q)
	busy := q.Duration("busy_timeout", defaultBusyTimeout)
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	path, err := sqlitePath(u)
	if err != nil {
		return nil, err
	}
	if err := core.CheckTable(table); err != nil {
		return nil, err
	}
	// busy_timeout comes first: switching to WAL takes a lock that another
	// process may hold.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)",
		path, busy.Milliseconds())
	c, err := modernc.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", certcache.ErrInvalidURL, err)
	}
	db := sql.OpenDB(sqliteConnector{Connector: c, path: path}) // opens nothing yet
	pool.Apply(db)
	return core.NewDriver(dialect, core.DBConn{DB: db, Bound: busyBound{}}, table, true)
}

// sqlitePath returns the file a sqlite:// URL names: sqlite:///abs/path.db
// is absolute, sqlite://rel/path.db relative to the working directory.
func sqlitePath(u *url.URL) (string, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{certcache.ErrInvalidURL}, args...)...)
	}
	if u.Opaque != "" || u.User != nil {
		return "", bad("want sqlite:///ABSOLUTE/PATH.db or sqlite://RELATIVE/PATH.db")
	}
	p := u.Host + u.Path
	switch {
	case p == "" || strings.HasSuffix(p, "/"):
		return "", bad("sqlite URL names no file")
	case strings.ContainsAny(p, "?\x00"):
		return "", bad("sqlite file name %q holds '?' or NUL", p)
	case strings.HasPrefix(p, ":memory:"):
		return "", bad("an in-memory SQLite database is private to one connection; use mem:// instead")
	}
	if !filepath.IsAbs(p) {
		p = "./" + p // never read as a file: URI
	}
	return p, nil
}

// sqliteConnector creates the database file with mode 0600 before SQLite
// opens it (SQLite would create it with 0644 less the umask); its WAL and
// shared-memory files take the same mode.
type sqliteConnector struct {
	driver.Connector
	path string
}

func (c sqliteConnector) Connect(ctx context.Context) (driver.Conn, error) {
	f, err := os.OpenFile(c.path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, err
	}
	return c.Connector.Connect(ctx)
}
