package sqlcache

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// Dialect names the SQL of a *sql.DB handed to NewDB.
type Dialect string

// The dialects NewDB accepts. PostgreSQL users hand NewPool a pgxpool.
const (
	MySQL  Dialect = "mysql"  // MySQL or MariaDB, with github.com/go-sql-driver/mysql
	SQLite Dialect = "sqlite" // SQLite, with modernc.org/sqlite (or another SQLite driver)
)

// NewDB returns a Cache that stores values in a table of db, whose SQL is
// dialect's. Close does not close db: it belongs to the caller. For SQLite,
// open db in WAL mode with a busy timeout (the URL opener does) if several
// processes share the file.
func NewDB(db *sql.DB, dialect Dialect, o *Options) (certcache.Cache, error) {
	if db == nil {
		return nil, errors.New("certcache/sql: NewDB: nil db")
	}
	switch dialect {
	case MySQL:
		return newCache(mysqlDialect, dbConn{db}, o)
	case SQLite:
		return newCache(sqliteDialect, dbConn{db}, o)
	}
	return nil, fmt.Errorf("certcache/sql: NewDB: unknown dialect %q (want %q or %q)", dialect, MySQL, SQLite)
}

// dbConn runs statements on a database/sql DB.
type dbConn struct{ db *sql.DB }

func (c dbConn) value(ctx context.Context, query, key string) ([]byte, error) {
	var v []byte
	err := c.db.QueryRowContext(ctx, query, key).Scan(&v) // Scan copies into v
	if errors.Is(err, sql.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	return v, err
}

func (c dbConn) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlExec(ctx, c.db, query, args)
}

func (c dbConn) query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error {
	return sqlQuery(ctx, c.db, query, args, row)
}

// tx runs f in a transaction, which f's error rolls back.
func (c dbConn) tx(ctx context.Context, f func(stmts) error) error {
	tx, err := c.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := f(dbTx{tx}); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// dbTx runs statements in a database/sql transaction.
type dbTx struct{ tx *sql.Tx }

func (t dbTx) exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlExec(ctx, t.tx, query, args)
}

func (t dbTx) query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error {
	return sqlQuery(ctx, t.tx, query, args, row)
}

// sqlRunner is what a *sql.DB and a *sql.Tx share.
type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func sqlExec(ctx context.Context, r sqlRunner, query string, args []any) (int64, error) {
	res, err := r.ExecContext(ctx, query, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func sqlQuery(ctx context.Context, r sqlRunner, query string, args []any, row func(scan func(dest ...any) error) error) error {
	rows, err := r.QueryContext(ctx, query, args...)
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

func (c dbConn) close() error { return c.db.Close() }
