// Package sqlcache holds what certcache's SQL backends share: their
// Options, and the tables, leases, listing and errors described below. Each
// dialect is a package of its own, so that a server links only the database
// driver it uses:
//
//	import _ "github.com/certcache/certcache/sql/postgres" // postgres://, postgresql://, on pgx
//	import _ "github.com/certcache/certcache/sql/mysql"    // mysql://, MySQL and MariaDB
//	import _ "github.com/certcache/certcache/sql/sqlite"   // sqlite://, on the pure-Go modernc.org/sqlite
//
// Each package's documentation gives its URL and parameters, and its New
// takes the connection a user already holds (a *pgxpool.Pool, a *sql.DB).
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
// certcache.List reads the table in pages of 2,000 keys in key order, each
// page one statement that continues after the last key of the one before
// (no OFFSET), and holds no connection while the caller handles entries.
// A prefix becomes a key range, [prefix, successor), so '%', '_' and '\'
// in it are literal and the primary key's index serves it. Sizes are
// computed by the server (octet_length, LENGTH, length) without sending
// the values; ModTime is updated_at.
//
// # Changes
//
// On PostgreSQL the cache implements driver.WatchDriver: Put and Delete
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
	"time"

	"github.com/certcache/certcache"
)

// DefaultTable is the table a cache uses when none is given.
const DefaultTable = "autocert_cache"

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
