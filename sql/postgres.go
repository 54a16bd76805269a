package sqlcache

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

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/crypto/acme/autocert"
)

// The key is text in the "C" collation, which compares bytes: no two
// distinct keys are ever equal. The database must use the UTF8 encoding.
var postgres = &dialect{
	name:  "postgres",
	quote: '"',
	create: `CREATE TABLE IF NOT EXISTS %[1]s (%[2]s text COLLATE "C" PRIMARY KEY, ` +
		`%[3]s bytea NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())`,
	get: `SELECT %[3]s FROM %[1]s WHERE %[2]s = $1`,
	put: `INSERT INTO %[1]s (%[2]s, %[3]s, updated_at) VALUES ($1, $2, now()) ` +
		`ON CONFLICT (%[2]s) DO UPDATE SET %[3]s = EXCLUDED.%[3]s, updated_at = EXCLUDED.updated_at`,
	del:      `DELETE FROM %[1]s WHERE %[2]s = $1`,
	notifies: true,
	// now() is the time the statement's transaction began: one value for
	// the whole statement. RowsAffected counts the rows the statement
	// wrote, so 0 means the WHERE clause refused.
	createLeases: `CREATE TABLE IF NOT EXISTS %[4]s (name text COLLATE "C" PRIMARY KEY, ` +
		`token text NOT NULL, expires_at timestamptz NOT NULL)`,
	acquire: `INSERT INTO %[4]s AS l (name, token, expires_at) VALUES ($1, $2, now() + $3::bigint * interval '1 microsecond') ` +
		`ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, expires_at = EXCLUDED.expires_at ` +
		`WHERE l.expires_at <= now() OR l.token = EXCLUDED.token`,
	refresh: `UPDATE %[4]s SET expires_at = now() + $1::bigint * interval '1 microsecond' ` +
		`WHERE name = $2 AND token = $3 AND expires_at > now()`,
	release:      `DELETE FROM %[4]s WHERE name = $1 AND token = $2`,
	ttl:          func(d time.Duration) any { return d.Microseconds() },
	leaseLeft:    `(extract(epoch FROM expires_at - now()) * 1000000)::bigint`,
	breakExpired: `DELETE FROM %[4]s WHERE name = $1 AND expires_at <= now()`,
	list:         `SELECT %[2]s, octet_length(%[3]s), updated_at FROM %[1]s WHERE %[5]s ORDER BY %[2]s LIMIT ` + strconv.Itoa(listPage),
	param:        func(n int) string { return "$" + strconv.Itoa(n) },
	entry: func(scan func(...any) error) (certcache.Entry, error) {
		var e certcache.Entry
		err := scan(&e.Key, &e.Size, &e.ModTime)
		return e, err
	},
	noTable: func(err error) bool { return pgCode(err) == "42P01" }, // undefined_table
	// Two sessions creating one table at once collide on the catalogs'
	// unique indexes (pg_type's, as unique_violation), or find the other's
	// row type (duplicate_object) or table (duplicate_table): the table
	// exists, or the statement run again says why not.
	createRace: func(err error) bool {
		c := pgCode(err)
		return c == "23505" || c == "42710" || c == "42P07"
	},
	// deadlock_detected and serialization_failure roll the statement back.
	retry: func(err error) bool { c := pgCode(err); return c == "40P01" || c == "40001" },
	classify: func(err error) error {
		c := pgCode(err)
		// Class 08 is connection exception; 57P01-03 are a server shutting
		// down, crashed or starting up.
		if strings.HasPrefix(c, "08") || c == "57P01" || c == "57P02" || c == "57P03" {
			return unavailable(err)
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

// NewPool returns a Cache that stores values in a table of the PostgreSQL
// database pool connects to. Close does not close pool: it belongs to the
// caller.
func NewPool(pool *pgxpool.Pool, o *Options) (certcache.Cache, error) {
	if pool == nil {
		return nil, errors.New("certcache/postgres: NewPool: nil pool")
	}
	return newCache(postgres, pgConn{pool}, o)
}

// pgConn runs statements on a pgxpool, which prepares and caches them.
type pgConn struct{ pool *pgxpool.Pool }

func (c pgConn) value(ctx context.Context, query, key string) ([]byte, error) {
	var v []byte
	err := c.pool.QueryRow(ctx, query, key).Scan(&v) // pgx copies bytea into v
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	return v, err
}

func (c pgConn) exec(ctx context.Context, query string, args ...any) (int64, error) {
	tag, err := c.pool.Exec(ctx, query, args...)
	return tag.RowsAffected(), err
}

func (c pgConn) query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error {
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

func (c pgConn) close() error {
	c.pool.Close()
	return nil
}

// openPostgres opens postgres:// and postgresql:// URLs.
func openPostgres(_ context.Context, u *url.URL) (certcache.Driver, error) {
	q := urlquery.Parse(u.RawQuery)
	table := readTable(q)
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
	if err := checkTable(table); err != nil {
		return nil, err
	}
	if _, set := rest["pool_max_conns"]; !set {
		// pgxpool's own default, max(4, NumCPU), is far below the other
		// backends' bound; a burst of callers would queue for connections
		// that MySQL or SQLite would have given them.
		cfg.MaxConns = int32(min(certcache.DefaultMaxConns(), math.MaxInt32))
	}
	// NewWithConfig dials nothing unless pool_min_conns asks for idle
	// connections, and then in the background.
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	return newDriver(postgres, pgConn{pool}, table, true)
}
