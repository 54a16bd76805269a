// Package sqlcache is certcache's SQL backend: one table in PostgreSQL
// (through pgx), MySQL or MariaDB (through github.com/go-sql-driver/mysql)
// or SQLite (through the pure-Go modernc.org/sqlite: no cgo). Importing it
// registers the postgres://, postgresql://, mysql:// and sqlite:// schemes
// with certcache.Open:
//
//	import _ "github.com/certcache/certcache/sql"
//
//	cache, err := certcache.Open(ctx, "postgres://app:PASSWORD@db.internal:5432/app?sslmode=verify-full")
//
// Users who already hold a *pgxpool.Pool call NewPool; users who hold a
// *sql.DB for MySQL or SQLite call NewDB.
//
// # URLs
//
//	postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?PARAMS]   (or postgresql://)
//	mysql://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?PARAMS]
//	sqlite:///ABSOLUTE/PATH.db[?PARAMS]
//	sqlite://RELATIVE/PATH.db[?PARAMS]
//
// Parameters of certcache (every scheme):
//
//	table    the table, created if missing; default autocert_cache. 1 to 63
//	         ASCII letters, digits, '_' and '-', starting with a letter or '_'.
//	timeout  the per-call timeout (handled by certcache.Open); default 10s
//
// PostgreSQL: every other parameter goes to pgxpool.ParseConfig: libpq's
// (sslmode, sslrootcert, sslcert, sslkey, connect_timeout,
// target_session_attrs, …), pgx's (default_query_exec_mode,
// statement_cache_capacity, …) and pgxpool's (pool_max_conns,
// pool_min_conns, pool_max_conn_lifetime, pool_max_conn_idle_time,
// pool_health_check_period, …), and these session settings:
// application_name, search_path (to put the table in another schema),
// statement_timeout, lock_timeout, idle_in_transaction_session_timeout,
// timezone, options. Environment variables (PGPASSWORD, PGSSLMODE, …) and
// ~/.pgpass apply as in libpq. The database must use the UTF8 encoding.
//
// MySQL and MariaDB: the URL becomes the driver's DSN
// USER:PASSWORD@tcp(HOST:PORT)/DATABASE?PARAMS (the port defaults to 3306;
// the user and password are handed to the driver as they are, so any
// character works once escaped in the URL), and every other parameter is
// the driver's own (tls, readTimeout, writeTimeout, charset,
// interpolateParams, …; see mysql.ParseDSN), or one of these session
// variables: time_zone, sql_mode, transaction_isolation, wait_timeout,
// innodb_lock_wait_timeout, lock_wait_timeout. The driver's own timeout
// (for dialing) cannot be set from the URL, where timeout is certcache's
// per-call timeout, which bounds dialing too. The server's
// max_allowed_packet must be at least 9 MiB (9437184, or simply 16M) so
// that values of certcache.MaxValueSize fit (17 MiB with
// interpolateParams=true, which escapes values into the statement);
// MariaDB's default (16M) and MySQL 8's (64M) are enough, older defaults
// (4M) are not.
//
// SQLite: the database file is created, with mode 0600, on first use. It is
// opened in WAL mode with a busy timeout, so several processes and handles
// share one file; it must be on a local file system (WAL needs shared
// memory). The parameter busy_timeout (a duration, default 10s) bounds the
// wait for another connection's lock; keep it within timeout, as SQLite may
// not notice the end of a call's context while it waits.
//
// MySQL and SQLite also take the database/sql pool settings max_open_conns
// (default certcache.DefaultMaxConns(), ten per CPU, so that a stuck server
// does not collect a connection per waiting caller; 0 means no bound),
// max_idle_conns (default 2), conn_max_lifetime and conn_max_idle_time
// (durations). PostgreSQL's pool is pgxpool's: pool_max_conns bounds it,
// with the same default, certcache.DefaultMaxConns(), rather than pgxpool's
// own max(4, NumCPU), under which a burst of callers would queue for
// connections the other backends give them (a pool handed to NewPool keeps
// its own setting). An unknown or repeated parameter is an error that names
// it.
//
// # Tables
//
// The table has three columns: "key", the primary key, compared byte for
// byte (PostgreSQL text COLLATE "C", MySQL VARBINARY(1024), SQLite TEXT,
// which is binary-collated); "value", binary (bytea, LONGBLOB, BLOB); and
// updated_at, the server's time of the last Put (timestamptz; DATETIME(6)
// in UTC; UTC text YYYY-MM-DD HH:MM:SS.SSS in SQLite, whose rows written
// before listing existed lack the milliseconds). Put is one upsert
// statement.
//
// Leases (certcache.AcquireLease) live in a second table, named after the
// first with "$leases" appended: autocert_cache$leases. No table name
// this package accepts contains a '$', so a lease table is never a cache
// table, of this namespace or another. A table name longer than 56 bytes
// gives its first 39 bytes, '$', 16 hex digits of its SHA-256 and
// "$leases", so that the name stays within PostgreSQL's 63 bytes.
//
// Both tables are created by the first call that finds them missing, with
// CREATE TABLE IF NOT EXISTS (two processes starting at once are fine); a
// user that may not create tables works on tables created for it
// beforehand:
//
//	-- PostgreSQL
//	CREATE TABLE autocert_cache ("key" text COLLATE "C" PRIMARY KEY,
//		"value" bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now());
//	CREATE TABLE "autocert_cache$leases" (name text COLLATE "C" PRIMARY KEY,
//		token text NOT NULL, expires_at timestamptz NOT NULL);
//	-- MySQL
//	CREATE TABLE autocert_cache (`key` VARBINARY(1024) NOT NULL PRIMARY KEY,
//		`value` LONGBLOB NOT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB;
//	CREATE TABLE `autocert_cache$leases` (name VARBINARY(1024) NOT NULL PRIMARY KEY,
//		token VARBINARY(255) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB;
//
// # Leases
//
// A lease is one row of the lease table, and every lease operation is one
// statement that judges expiry by the server's clock (PostgreSQL's now(),
// MySQL's UTC_TIMESTAMP(6), SQLite's 'now', which is the clock of the one
// machine whose processes share the file), so the nodes' own clocks never
// matter. Acquiring is an upsert that replaces the row only if it has
// expired or is the acquirer's; the row lock makes two acquirers take
// turns. Refreshing updates, and releasing deletes, only the holder's row.
// In MySQL, whose count of affected rows depends on the connection's
// clientFoundRows, acquiring reads the row back, in the same transaction,
// to learn whether it holds the lease. Expiry is exact to the microsecond (SQLite: the millisecond).
// The lease of a holder that died without releasing it stays as an expired
// row until its name is acquired again, or broken (certcache.BreakLease,
// certcache unlock), which deletes the row: without force only WHERE it
// has expired by the server's clock. certcache.ListLeases reads the table
// in one statement, with each lease's time left computed by the server.
//
// # Listing
//
// certcache.List reads the table in pages of 500 keys in key order, each
// page one statement that continues after the last key of the one before
// (no OFFSET), and holds no connection while the caller handles entries.
// A prefix becomes a key range, [prefix, successor), so '%', '_' and '\'
// in it are literal and the primary key's index serves it. Sizes are
// computed by the server (octet_length, LENGTH, length) without sending
// the values; ModTime is updated_at.
//
// # Changes
//
// On PostgreSQL the cache implements certcache.WatchDriver: Put and Delete
// pg_notify the channel "certcache:TABLE" (a digest of the name if it is
// long) with the key, in the statement that writes, and each Cache LISTENs
// on one connection of its own, so that waiters for a certificate another
// node orders wake when it is stored. Behind a pooler in transaction mode,
// which delivers no notification, waiters poll. MySQL and SQLite waiters
// poll.
//
// # Keys
//
// A key is stored as it is, in its own column: keys cannot collide or
// escape the table, and case, accents and trailing spaces are significant.
//
// # Errors
//
// Only a missing row is a miss. A table that cannot be created or read
// (no privilege, wrong database), a wrong password, a server that is down
// and every other failure are errors that are never autocert.ErrCacheMiss;
// connection failures match certcache.ErrUnavailable. Passwords never
// appear in errors.
package sqlcache

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
)

func init() {
	certcache.Register("postgres", certcache.Backend{Name: postgres.name, Open: openPostgres})
	certcache.Register("postgresql", certcache.Backend{Name: postgres.name, Open: openPostgres})
	certcache.Register("mysql", certcache.Backend{Name: mysqlDialect.name, Open: openMySQL})
	certcache.Register("sqlite", certcache.Backend{Name: sqliteDialect.name, Open: openSQLite})
}

// Options configure a SQL cache. The zero value (or nil) gives the
// defaults.
type Options struct {
	// Table is the table's name (see the package documentation for the
	// names allowed). If empty, DefaultTable.
	Table string

	// Timeout bounds each call. If zero, certcache.DefaultTimeout.
	Timeout time.Duration

	// Cache configures what every backend shares: the Get timeout, the
	// circuit breaker, issuance coordination and its lease TTL, and the
	// OpenTelemetry providers and logger (see certcache.Options). The zero
	// value gives the defaults, as a URL without those parameters does.
	// Timeout above, when set, overrides Cache.Timeout.
	Cache certcache.Options
}

// newCache is the end of NewPool and NewDB.
func newCache(d *dialect, c conn, o *Options) (certcache.Cache, error) {
	var opts Options
	if o != nil {
		opts = *o
	}
	dr, err := newDriver(d, c, opts.Table, false)
	if err != nil {
		return nil, fmt.Errorf("certcache/%s: %w", d.name, err)
	}
	co := opts.Cache // a copy: the caller's Options are never changed
	if opts.Timeout > 0 {
		co.Timeout = opts.Timeout
	}
	return certcache.NewCache(d.name, dr, &co), nil
}

// readTable reads the table parameter; an empty one is an error.
func readTable(q *urlquery.Reader) string {
	if !q.Has("table") {
		return DefaultTable
	}
	t := q.String("table")
	if t == "" {
		q.Fail("table is empty (leave it out for the default %q)", DefaultTable)
	}
	return t
}

// poolSettings are database/sql's pool limits, read from the URL.
type poolSettings struct {
	maxOpen, maxIdle        int
	maxLifetime, maxIdleDur time.Duration
}

func readPool(q *urlquery.Reader) poolSettings {
	return poolSettings{
		maxOpen:     q.Int("max_open_conns", certcache.DefaultMaxConns()),
		maxIdle:     q.Int("max_idle_conns", 2),
		maxLifetime: q.Duration("conn_max_lifetime", 0),
		maxIdleDur:  q.Duration("conn_max_idle_time", 0),
	}
}

func (p poolSettings) apply(db *sql.DB) {
	db.SetMaxOpenConns(p.maxOpen)
	db.SetMaxIdleConns(p.maxIdle)
	db.SetConnMaxLifetime(p.maxLifetime)
	db.SetConnMaxIdleTime(p.maxIdleDur)
}
