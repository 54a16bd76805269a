package core

import (
	"context"
	"database/sql"
	"errors"

	"golang.org/x/crypto/acme/autocert"
)

// DBConn runs statements on a database/sql DB.
type DBConn struct{ DB *sql.DB }

func (c DBConn) Value(ctx context.Context, query string, args []any) ([]byte, error) {
	d := GetValueDest()
	err := c.DB.QueryRowContext(ctx, query, args...).Scan(d.Args()...) // Scan copies into d
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
