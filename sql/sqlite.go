package sqlcache

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
	"strings"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
	"modernc.org/sqlite"
)

// SQLite compares TEXT with the BINARY collation unless told otherwise:
// byte for byte.
var sqliteDialect = &dialect{
	name:  "sqlite",
	quote: '"',
	create: `CREATE TABLE IF NOT EXISTS %[1]s (%[2]s TEXT NOT NULL PRIMARY KEY, ` +
		`%[3]s BLOB NOT NULL, updated_at TEXT NOT NULL)`,
	get: `SELECT %[3]s FROM %[1]s WHERE %[2]s = ?`,
	put: `INSERT INTO %[1]s (%[2]s, %[3]s, updated_at) VALUES (?, ?, CURRENT_TIMESTAMP) ` +
		`ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = excluded.%[3]s, updated_at = excluded.updated_at`,
	del: `DELETE FROM %[1]s WHERE %[2]s = ?`,
	// modernc.org/sqlite reports both as SQLITE_ERROR; only the message
	// tells them apart.
	noTable:    func(err error) bool { return strings.Contains(err.Error(), "no such table") },
	createRace: func(err error) bool { return strings.Contains(err.Error(), "already exists") },
	classify:   func(err error) error { return err },
}

// defaultBusyTimeout is how long a statement waits for another connection's
// lock before failing.
const defaultBusyTimeout = certcache.DefaultTimeout

// openSQLite opens sqlite:// URLs.
func openSQLite(_ context.Context, u *url.URL) (certcache.Driver, error) {
	q := urlquery.Parse(u.RawQuery)
	table := readTable(q)
	pool := readPool(q)
	busy := q.Duration("busy_timeout", defaultBusyTimeout)
	if err := q.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	path, err := sqlitePath(u)
	if err != nil {
		return nil, err
	}
	if err := checkTable(table); err != nil {
		return nil, err
	}
	// busy_timeout comes first: switching to WAL takes a lock that another
	// process may hold.
	dsn := fmt.Sprintf("%s?_pragma=busy_timeout(%d)&_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)",
		path, busy.Milliseconds())
	c, err := sqlite.NewConnector(dsn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", certcache.ErrInvalidURL, err)
	}
	db := sql.OpenDB(sqliteConnector{Connector: c, path: path}) // opens nothing yet
	pool.apply(db)
	return newDriver(sqliteDialect, dbConn{db}, table, true)
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
