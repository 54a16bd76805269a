package core

import (
	"context"
	"database/sql"
	sqldriver "database/sql/driver"
	"errors"
	"time"

	"github.com/certcache/certcache/internal/callctx"

	"golang.org/x/crypto/acme/autocert"
)

// DBConn runs statements on a database/sql DB.
type DBConn struct {
	DB *sql.DB
	// Bound, if set, bounds a Get's query by its deadline without a
	// context that can end, when the call's context ends only at that
	// deadline (see callctx.Ctx.Unwatched). database/sql starts a goroutine
	// for every query under a context that can end, and the drivers one
	// more (modernc SQLite) or a registration (the context package's):
	// about ten allocations, more than the rest of a Get.
	Bound ConnBound
}

// ConnBound bounds the statements that run on one connection by a
// deadline, by other means than a context.
type ConnBound interface {
	// Bound bounds by deadline what runs next on c. It returns the
	// Deadliner whose deadline must be cleared before c goes back to the
	// pool, nil if none, and ok false if it cannot bound c: the statement
	// then runs under the call's context.
	Bound(c *sql.Conn, deadline time.Time) (d Deadliner, ok bool)
}

// Deadliner is what ConnBound sets a deadline on: a net.Conn.
type Deadliner interface{ SetDeadline(time.Time) error }

func (c DBConn) Value(ctx context.Context, query string, args []any) ([]byte, error) {
	if c.Bound != nil {
		if cc, ok := ctx.(*callctx.Ctx); ok {
			if parent, deadline, ok := cc.Unwatched(); ok {
				return c.valueByDeadline(ctx, parent, deadline, query, args)
			}
		}
	}
	return value(ctx, c.DB, query, args)
}

// valueByDeadline is Value for a call that only its deadline can end: the
// wait for a connection, and a dial, end with ctx, and the query with the
// bound that c.Bound puts on the connection; the query runs under parent,
// which database/sql and the driver need not watch.
func (c DBConn) valueByDeadline(ctx, parent context.Context, deadline time.Time, query string, args []any) ([]byte, error) {
	conn, err := c.DB.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	d, ok := c.Bound.Bound(conn, deadline)
	if !ok {
		return value(ctx, conn, query, args)
	}
	v, err := value(parent, conn, query, args)
	if d != nil && d.SetDeadline(time.Time{}) != nil {
		// The deadline would fail the connection's next user: drop it.
		conn.Raw(func(any) error { return sqldriver.ErrBadConn })
	}
	return v, err
}

// rowQueryer is what a *sql.DB and a *sql.Conn share for Value.
type rowQueryer interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// value runs a query that returns one binary column; no row is
// autocert.ErrCacheMiss.
func value(ctx context.Context, q rowQueryer, query string, args []any) ([]byte, error) {
	d := GetValueDest()
	err := q.QueryRowContext(ctx, query, args...).Scan(d.Args()...) // Scan copies into d
	v := d.Take()
	if errors.Is(err, sql.ErrNoRows) {
		return nil, autocert.ErrCacheMiss
	}
	return v, err
}

func (c DBConn) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlExec(ctx, c.DB, query, args)
}

func (c DBConn) Query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error {
	return sqlQuery(ctx, c.DB, query, args, row)
}

// tx runs f in a transaction, which f's error rolls back.
func (c DBConn) Tx(ctx context.Context, f func(Stmts) error) error {
	tx, err := c.DB.BeginTx(ctx, nil)
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

func (t dbTx) Exec(ctx context.Context, query string, args ...any) (int64, error) {
	return sqlExec(ctx, t.tx, query, args)
}

func (t dbTx) Query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error {
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

func (c DBConn) Close() error { return c.DB.Close() }
