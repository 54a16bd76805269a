// Package postgres is certcache's PostgreSQL backend, on pgx: one table of
// values and one of leases (see package sql for the tables, leases,
// listing and errors every SQL dialect shares). Importing it registers the
// postgres:// and postgresql:// schemes with certcache.Open:
//
//	import _ "github.com/certcache/certcache/sql/postgres"
//
//	cache, err := certcache.Open(ctx, "postgres://app:PASSWORD@db.internal:5432/app?sslmode=verify-full")
//
// Users who already hold a *pgxpool.Pool call New.
//
// # URLs
//
//	postgres://[USER[:PASSWORD]@]HOST[:PORT]/DATABASE[?PARAMS]   (or postgresql://)
//
// Parameters of certcache:
//
//	table    the table, created if missing; default autocert_cache (see package sql)
//	timeout  the per-call timeout (handled by certcache.Open); default 10s
//
// Every other parameter goes to pgxpool.ParseConfig: libpq's (sslmode,
// sslrootcert, sslcert, sslkey, connect_timeout, target_session_attrs, …),
// pgx's (default_query_exec_mode, statement_cache_capacity, …) and
// pgxpool's (pool_max_conns, pool_min_conns, pool_max_conn_lifetime,
// pool_max_conn_idle_time, pool_health_check_period, …), and these session
// settings: application_name, search_path (to put the table in another
// schema), statement_timeout, lock_timeout,
// idle_in_transaction_session_timeout, timezone, options. Environment
// variables (PGPASSWORD, PGSSLMODE, …) and ~/.pgpass apply as in libpq. The
// database must use the UTF8 encoding. pool_max_conns defaults to
// ten per CPU rather than pgxpool's own max(4, NumCPU),
// under which a burst of callers would queue for connections the other
// backends give them (a pool handed to New keeps its own setting). An
// unknown or repeated parameter is an error that names it.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/backendopts"
	"github.com/certcache/certcache/internal/callctx"
	"github.com/certcache/certcache/internal/urlquery"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/certcache/certcache/sql/internal/core"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/acme/autocert"
)

// The key is text in the "C" collation, which compares bytes: no two
// distinct keys are ever equal. The database must use the UTF8 encoding.
var dialect = &core.Dialect{
	Name:  "postgres",
	Quote: '"',
	Create: `CREATE TABLE IF NOT EXISTS %[1]s (%[2]s text COLLATE "C" PRIMARY KEY, ` +
		`%[3]s bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
	Get: `SELECT %[3]s FROM %[1]s WHERE %[2]s = $1`,
	Put: `INSERT INTO %[1]s (%[2]s, %[3]s, updated_at) VALUES ($1, $2, now()) ` +
		`ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = EXCLUDED.%[3]s, updated_at = EXCLUDED.updated_at`,
	Del:      `DELETE FROM %[1]s WHERE %[2]s = $1`,
	GetAny:   `SELECT %[2]s, %[3]s FROM %[1]s WHERE %[2]s = ANY($1)`,
	Notifies: true,
	// now() is the time the statement's transaction began: one value for
	// the whole statement. RowsAffected counts the rows the statement
	// wrote, so 0 means the WHERE clause refused.
	CreateLeases: `CREATE TABLE IF NOT EXISTS %[4]s (name text COLLATE "C" PRIMARY KEY, ` +
		`token text NOT NULL, expires_at timestamptz NOT NULL)`,
	Acquire: `INSERT INTO %[4]s AS l (name, token, expires_at) VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond') ` +
		`ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at ` +
		`WHERE l.expires_at <= now() OR l.token = EXCLUDED.token`,
	Refresh: `UPDATE %[4]s SET expires_at = now() + $1::bigint * interval '1 microsecond' ` +
		`WHERE name = $2 AND token = $3 AND expires_at > now()`,
	Release:      `DELETE FROM %[4]s WHERE name = $1 AND token = $2`,
	TTL:          func(d time.Duration) any { return d.Microseconds() },
	LeaseLeft:    `(extract(epoch FROM expires_at - now()) * 1000000)::bigint`,
	BreakExpired: `DELETE FROM %[4]s WHERE name = $1 AND expires_at <= now()`,
	List:         `SELECT %[2]s, octet_length(%[3]s), updated_at FROM %[1]s WHERE %[5]s ORDER BY %[2]s LIMIT ` + strconv.Itoa(core.ListPage),
	Param:        func(n int) string { return "$" + strconv.Itoa(n) },
	Entry: func(scan func(...any) error) (certcache.Entry, error) {
		var e certcache.Entry
		err := scan(&e.Key, &e.Size, &e.ModTime)
		return e, err
	},
	NoTable: func(err error) bool { return pgCode(err) == "42P01" }, // undefined_table
	// Two sessions creating one table at once collide on the catalogs'
	// unique indexes (pg_type's, as unique_violation), or find the other's
	// row type (duplicate_object) or table (duplicate_table): the table
	// exists, or the statement run again says why not.
	CreateRace: func(err error) bool {
		c := pgCode(err)
		return c == "23505" || c == "42710" || c == "42P07"
	},
	// deadlock_detected and serialization_failure roll the statement back.
	Retry: func(err error) bool { c := pgCode(err); return c == "40P01" || c == "40001" },
	Classify: func(err error) error {
		c := pgCode(err)
		// Class 08 is connection exception; 57P01-03 are a server shutting
		// down, crashed or starting up.
		if strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" {
			return core.Unavailable(err)
		}
		return err
	},
}

func pgCode(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// pgRuntimeParams are the PostgreSQL server settings a URL may set for the
// session. Any other parameter that neither certcache, pgx nor pgxpool
// knows is refused, so that a misspelling fails at Open rather than as an
// "unrecognized configuration parameter" on the first call.
var pgRuntimeParams = map[string]bool{
	"application_name": true, "search_path": true, "statement_timeout": true, "lock_timeout": true,
	"idle_in_transaction_session_timeout": true, "timezone": true, "options": true,
}

func init() {
	certcache.Register("postgres", certcache.Backend{Name: dialect.Name, Open: open})
	certcache.Register("postgresql", certcache.Backend{Name: dialect.Name, Open: open})
}

// New returns a Cache that stores values in a table of the PostgreSQL
// database pool connects to. Close does not close pool: it belongs to the
// caller.
func New(pool *pgxpool.Pool, o *sqlcache.Options) (certcache.Cache, error) {
	if pool == nil {
		return nil, errors.New("certcache/postgres: New: nil pool")
	}
	return core.NewCache(dialect, pgConn{pool}, o)
}

// pgConn runs statements on a pgxpool, which prepares and caches them.
type pgConn struct{ pool *pgxpool.Pool }

func (c pgConn) Value(ctx context.Context, query string, args []any) ([]byte, error) {
	if cc, ok := ctx.(*callctx.Ctx); ok {
		if parent, deadline, ok := cc.Unwatched(); ok {
			return c.valueByDeadline(ctx, parent, deadline, query, args)
		}
	}
	d := core.GetValueDest()
	err := c.pool.QueryRow(ctx, query, args...).Scan(d.Args()...) // pgx copies bytea into d
	v := d.Take()
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	return v, err
}

// valueByDeadline is Value for a call whose deadline is the only way it
// can end (see callctx.Ctx.Unwatched): the wait for a connection, and a
// dial, end with ctx, and the query with the connection's socket deadline.
// pgx then runs the query under parent, which it need not watch: watching
// ctx would cost seven allocations (pgconn's ctxwatch registers with
// context.AfterFunc), as many as the rest of a Get. A query cut by the
// deadline closes its connection (pgconn closes on any read or write
// error), which the pool then drops; any other connection goes back with
// no deadline.
func (c pgConn) valueByDeadline(ctx, parent context.Context, deadline time.Time, query string, args []any) ([]byte, error) {
	pc, err := c.pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	defer pc.Release()
	conn := pc.Conn()
	nc := conn.PgConn().Conn()
	queryCtx := parent
	if nc.SetDeadline(deadline) != nil {
		// A connection without deadlines (a custom DialFunc's): pgx
		// watches ctx, as in Value.
		queryCtx = ctx
	}
	d := core.GetValueDest()
	err = conn.QueryRow(queryCtx, query, args...).Scan(d.Args()...) // pgx copies bytea into d
	v := d.Take()
	if queryCtx == parent && !conn.IsClosed() && nc.SetDeadline(time.Time{}) != nil {
		_ = conn.Close(ctx) // its deadline would fail its next user; Release drops it
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	return v, err
}

func (c pgConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (c pgConn) Query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error {
	rows, err := c.pool.Query(ctx, query, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := row(rows.Scan); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (c pgConn) Close() error {
	c.pool.Close()
	return nil
}

// open opens postgres:// and postgresql:// URLs.
func open(_ context.Context, u *url.URL) (driver.Driver, error) {
	q := urlquery.Parse(u.RawQuery)
	table := core.ReadTable(q)
	if err := q.ReadErr(); err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	rest := q.Remaining()
	pu := *u
	pu.RawQuery = rest.Encode()
	cfg, err := pgxpool.ParseConfig(pu.String())
	if err != nil {
		// pgconn's ParseConfigError shows the connection string with its
		// password redacted.
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	var unknown []string
	for k := range rest {
		if _, runtime := cfg.ConnConfig.RuntimeParams[k]; runtime && !pgRuntimeParams[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, fmt.Errorf("%w: unknown parameter %s", certcache.ErrInvalidURL, strings.Join(unknown, ", "))
	}
	if err := core.CheckTable(table); err != nil {
		return nil, err
	}
	if _, set := rest["pool_max_conns"]; !set {
		// pgxpool's own default, max(4, NumCPU), is far below the other
		// backends' bound; a burst of callers would queue for connections
		// that MySQL or SQLite would have given them.
		cfg.MaxConns = int32(min(backendopts.MaxConns(), math.MaxInt32))
	}
	// NewWithConfig dials nothing unless pool_min_conns asks for idle
	// connections, and then in the background.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	return core.NewDriver(dialect, pgConn{pool}, table, true)
}
