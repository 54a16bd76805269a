// Package mysql is certcache's MySQL and MariaDB backend, on
// github.com/go-sql-driver/mysql: one table of values and one of leases (see
// package sql for the tables, leases, listing and errors every SQL dialect
// shares). Importing it registers the mysql:// scheme with certcache.Open:
//
//	import _ "github.com/certcache/certcache/sql/mysql"
//
//	cache, err := certcache.Open(ctx, "mysql://app:PASSWORD@db.internal:3306/app?tls=true")
//
// Users who already hold a *sql.DB call New.
//
// # URLs
//
//	mysql://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?PARAMS]
//
// Parameters of certcache:
//
//	table    the table, created if missing; default autocert_cache (see package sql)
//	timeout  the per-call timeout (handled by certcache.Open); default 10s
//
// The URL becomes the driver's DSN USER:PASSWORD@tcp(HOST:PORT)/DATABASE?PARAMS
// (the port defaults to 3306; the user and password are handed to the
// driver as they are, so any character works once escaped in the URL), and
// every other parameter is the driver's own (tls, readTimeout, writeTimeout,
// charset, interpolateParams, …; see mysql.ParseDSN), or one of these
// session variables: time_zone, sql_mode, transaction_isolation,
// wait_timeout, innodb_lock_wait_timeout, lock_wait_timeout. The driver's
// own timeout (for dialing) cannot be set from the URL, where timeout is
// certcache's per-call timeout, which bounds dialing too. The server's
// max_allowed_packet must be at least 9 MiB (9437184, or simply 16M) so that
// values of certcache.MaxValueSize fit (17 MiB with interpolateParams=true,
// which escapes values into the statement); MariaDB's default (16M) and
// MySQL 8's (64M) are enough, older defaults (4M) are not.
//
// The URL opener dials the server itself (a dial registered with
// mysql.RegisterDialContext is not used), so that a Get whose context
// cannot end (behind the memory front, say) is bounded by its
// connection's socket deadline, which costs nothing per call, rather than
// by a context that database/sql and the driver must watch. With
// readTimeout or writeTimeout, which make the driver set deadlines of its
// own, such a Get watches its context as every other call does.
//
// The database/sql pool settings max_open_conns (default
// ten per CPU, so that a stuck server does not
// collect a connection per waiting caller; 0 means no bound),
// max_idle_conns (default 2), conn_max_lifetime and conn_max_idle_time
// (durations) apply too. An unknown or repeated parameter is an error that
// names it.
package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	ccdriver "github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/certcache/certcache/sql/internal/core"
	gomysql "github.com/go-sql-driver/mysql"
)

// The key is VARBINARY(1024): compared byte for byte, with no collation to
// fold case or accents and no PAD SPACE to ignore trailing spaces, and
// within InnoDB's 3072-byte index limit.
var dialect = &core.Dialect{
	Name:  "mysql",
	Quote: '`',
	Create: "CREATE TABLE IF NOT EXISTS %[1]s (%[2]s VARBINARY(1024) NOT NULL PRIMARY KEY, " +
		"%[3]s LONGBLOB NOT NULL, updated_at DATETIME(6) NOT NULL) ENGINE=InnoDB",
	Get: "SELECT %[3]s FROM %[1]s WHERE %[2]s = ?",
	Put: "INSERT INTO %[1]s (%[2]s, %[3]s, updated_at) VALUES (?, ?, UTC_TIMESTAMP(6)) " +
		"ON DUPLICATE KEY UPDATE %[3]s = VALUES(%[3]s), updated_at = VALUES(updated_at)",
	Del: "DELETE FROM %[1]s WHERE %[2]s = ?",
	// Times are UTC_TIMESTAMP(6), the server's clock in UTC whatever the
	// session's time_zone, and one value for the whole statement.
	CreateLeases: "CREATE TABLE IF NOT EXISTS %[4]s (name VARBINARY(1024) NOT NULL PRIMARY KEY, " +
		"token VARBINARY(255) NOT NULL, expires_at DATETIME(6) NOT NULL) ENGINE=InnoDB",
	// Both IFs test the same condition, and token is assigned first: MySQL
	// assigns left to right, so the second IF sees the new token (ours if
	// the first IF took the lease, another holder's if not, and the
	// condition again holds exactly when the first did), and MariaDB with
	// SIMULTANEOUS_ASSIGNMENT sees the old row, as the first IF did. Either
	// way both columns change together or not at all.
	Acquire: "INSERT INTO %[4]s (name, token, expires_at) VALUES (?, ?, UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND) " +
		"ON DUPLICATE KEY UPDATE " +
		"token = IF(expires_at <= UTC_TIMESTAMP(6) OR token = VALUES(token), VALUES(token), token), " +
		"expires_at = IF(expires_at <= UTC_TIMESTAMP(6) OR token = VALUES(token), VALUES(expires_at), expires_at)",
	Refresh: "UPDATE %[4]s SET expires_at = UTC_TIMESTAMP(6) + INTERVAL ? MICROSECOND " +
		"WHERE name = ? AND token = ? AND expires_at > UTC_TIMESTAMP(6)",
	Release: "DELETE FROM %[4]s WHERE name = ? AND token = ?",
	// The rows-affected count of an upsert is 1 both for a new row and,
	// with clientFoundRows (a URL may set it, and a NewDB user's DSN), for
	// a row the IFs left alone: acquire asks, in the same transaction,
	// whether it holds the lease.
	Holds:        "SELECT COUNT(*) FROM %[4]s WHERE name = ? AND token = ? AND expires_at > UTC_TIMESTAMP(6)",
	TTL:          func(d time.Duration) any { return d.Microseconds() },
	LeaseLeft:    "TIMESTAMPDIFF(MICROSECOND, UTC_TIMESTAMP(6), expires_at)",
	BreakExpired: "DELETE FROM %[4]s WHERE name = ? AND expires_at <= UTC_TIMESTAMP(6)",
	// updated_at is a DATETIME in UTC; its distance from the epoch in
	// microseconds needs neither parseTime nor the session's time_zone.
	List: "SELECT %[2]s, LENGTH(%[3]s), TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', updated_at) " +
		"FROM %[1]s WHERE %[5]s ORDER BY %[2]s LIMIT " + strconv.Itoa(core.ListPage),
	Param: func(int) string { return "?" },
	Entry: func(scan func(...any) error) (certcache.Entry, error) {
		var e certcache.Entry
		var us int64
		if err := scan(&e.Key, &e.Size, &us); err != nil {
			return certcache.Entry{}, err
		}
		e.ModTime = time.UnixMicro(us).UTC()
		return e, nil
	},
	NoTable:    func(err error) bool { return mysqlErrno(err) == 1146 }, // ER_NO_SUCH_TABLE
	CreateRace: func(err error) bool { return mysqlErrno(err) == 1050 }, // ER_TABLE_EXISTS_ERROR
	Retry:      func(err error) bool { return mysqlErrno(err) == 1213 }, // ER_LOCK_DEADLOCK
	Classify: func(err error) error {
		switch mysqlErrno(err) {
		case 1040, 1053, 1927: // too many connections, server shutdown, connection killed
			return core.Unavailable(err)
		}
		if errors.Is(err, gomysql.ErrInvalidConn) || errors.Is(err, driver.ErrBadConn) {
			return core.Unavailable(err)
		}
		return err
	},
}

func mysqlErrno(err error) uint16 {
	var me *gomysql.MySQLError
	if errors.As(err, &me) {
		return me.Number
	}
	return 0
}

// mysqlRawParams are the driver's parameters whose values it reads without
// unescaping them; all others are unescaped, so we escape them.
var mysqlRawParams = map[string]bool{
	"allowAllFiles": true, "allowCleartextPasswords": true, "allowFallbackToPlaintext": true,
	"allowNativePasswords": true, "allowOldPasswords": true, "checkConnLiveness": true,
	"clientFoundRows": true, "charset": true, "collation": true, "columnsWithAlias": true,
	"compress": true, "interpolateParams": true, "multiStatements": true, "parseTime": true,
	"timeTruncate": true, "readTimeout": true, "rejectReadOnly": true, "timeout": true,
	"writeTimeout": true, "maxAllowedPacket": true,
}

// mysqlSessionVars are the session variables a URL may set; the driver
// sends any other unknown parameter as SET name=value on connect, which
// would turn a misspelling into a failure of the first call.
var mysqlSessionVars = map[string]bool{
	"time_zone": true, "sql_mode": true, "transaction_isolation": true, "wait_timeout": true,
	"innodb_lock_wait_timeout": true, "lock_wait_timeout": true,
}

func init() {
	certcache.Register("mysql", certcache.Backend{Name: dialect.Name, Open: open})
}

// New returns a Cache that stores values in a table of the MySQL or
// MariaDB database db connects to (with github.com/go-sql-driver/mysql).
// Close does not close db: it belongs to the caller.
func New(db *sql.DB, o *sqlcache.Options) (certcache.Cache, error) {
	return core.NewDB(dialect, core.DBConn{DB: db}, o)
}

// open opens mysql:// URLs.
func open(_ context.Context, u *url.URL) (ccdriver.Driver, error) {
	q := urlquery.Parse(u.RawQuery)
	table := core.ReadTable(q)
	pool := core.ReadPool(q)
	if err := q.ReadErr(); err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	cfg, err := mysqlConfig(u, q.Remaining())
	if err != nil {
		return nil, err
	}
	if err := core.CheckTable(table); err != nil {
		return nil, err
	}
	b := &socketBound{perRead: cfg.ReadTimeout > 0 || cfg.WriteTimeout > 0}
	cfg.DialFunc = b.dial
	b.inner, err = gomysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", certcache.ErrInvalidURL, err)
	}
	db := sql.OpenDB(b) // dials nothing yet
	pool.Apply(db)
	return core.NewDriver(dialect, core.DBConn{DB: db, Bound: b}, table, true)
}

// mysqlConfig turns mysql://USER:PASSWORD@HOST:PORT/DB?PARAMS into the
// driver's Config. Only the address, database and parameters go through
// mysql.ParseDSN, as tcp(HOST:PORT)/DB?PARAMS; the user and password are
// set on the Config directly, so no character in a password can confuse
// the DSN syntax, and no DSN error can quote it.
func mysqlConfig(u *url.URL, params url.Values) (*gomysql.Config, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{certcache.ErrInvalidURL}, args...)...)
	}
	if u.Opaque != "" {
		return nil, bad("want mysql://USER:PASSWORD@HOST:PORT/DATABASE")
	}
	if strings.ContainsAny(u.Host, "()/@") {
		return nil, bad("malformed host %q", u.Host)
	}
	db := strings.TrimPrefix(u.Path, "/")
	if strings.Contains(db, "/") {
		return nil, bad("database name %q holds a '/'", db)
	}
	if _, ok := params["strict"]; ok {
		return nil, bad("parameter strict was removed from the MySQL driver")
	}
	names := make([]string, 0, len(params))
	for k := range params {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	b.WriteString("tcp(" + u.Host + ")/" + url.PathEscape(db))
	for i, k := range names {
		if len(params[k]) != 1 {
			return nil, bad("parameter %s given %d times", k, len(params[k]))
		}
		v := params[k][0]
		if mysqlRawParams[k] {
			if strings.ContainsAny(v, "&=") {
				return nil, bad("parameter %s=%q: malformed", k, v)
			}
		} else {
			v = url.QueryEscape(v)
		}
		if i == 0 {
			b.WriteByte('?')
		} else {
			b.WriteByte('&')
		}
		b.WriteString(url.QueryEscape(k) + "=" + v)
	}
	cfg, err := gomysql.ParseDSN(b.String())
	if err != nil {
		return nil, bad("%v", err)
	}
	var unknown []string
	for k := range cfg.Params {
		if !mysqlSessionVars[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, bad("unknown parameter %s", strings.Join(unknown, ", "))
	}
	if u.User != nil {
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
	}
	return cfg, nil
}
