package sqlcache

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// dialect is what differs between the SQL servers: the statements, and how
// their errors read. Everything else is shared by tableDriver.
type dialect struct {
	name  string // backend name in errors: certcache/<name>: …
	quote byte   // identifier quote character

	// Statement templates; %[1]s is the quoted table, %[2]s the quoted key
	// column, %[3]s the quoted value column.
	create, get, put, del string

	// noTable reports an error that says the table does not exist.
	noTable func(error) bool
	// createRace reports an error from a concurrent CREATE TABLE IF NOT
	// EXISTS that another session won: the table exists now.
	createRace func(error) bool
	// classify marks errors that mean the server is unreachable.
	classify func(error) error
	// retry reports an error after which the statement, rolled back by the
	// server (a deadlock victim), may simply run again. Nil: none.
	retry func(error) bool
}

// maxRetries bounds how often do runs a statement that the server rolled
// back as a deadlock victim; every statement here is idempotent.
const maxRetries = 5

// queries are a dialect's statements for one table.
type queries struct {
	create, get, put, del string
}

func (d *dialect) queries(table string) queries {
	t := quoteIdent(table, d.quote)
	k, v := quoteIdent("key", d.quote), quoteIdent("value", d.quote)
	f := func(s string) string { return fmt.Sprintf(s, t, k, v) }
	return queries{create: f(d.create), get: f(d.get), put: f(d.put), del: f(d.del)}
}

// conn runs statements: a pgxpool.Pool or a database/sql DB.
type conn interface {
	// value runs a query with one argument that returns one binary column,
	// copied; no row is autocert.ErrCacheMiss.
	value(ctx context.Context, query, key string) ([]byte, error)
	exec(ctx context.Context, query string, args ...any) error
	close() error
}

// tableDriver is the certcache.Driver for every dialect.
type tableDriver struct {
	d     *dialect
	c     conn
	q     queries
	table string
	own   bool // Close closes c
}

var _ certcache.Driver = (*tableDriver)(nil)

func newDriver(d *dialect, c conn, table string, own bool) (*tableDriver, error) {
	if table == "" {
		table = DefaultTable
	}
	if err := checkTable(table); err != nil {
		return nil, err
	}
	return &tableDriver{d: d, c: c, q: d.queries(table), table: table, own: own}, nil
}

// do runs op. The table is created lazily: when op finds no table, do
// creates it and runs op once more. Nothing remembers that the table
// exists, so a failed create is tried again by the next call, and a user
// that may read and write but not create works on a table made for it.
func (dr *tableDriver) do(ctx context.Context, op func() error) error {
	err := dr.run(ctx, op)
	if err != nil && dr.d.noTable(err) {
		if cerr := dr.c.exec(ctx, dr.q.create); cerr != nil && !dr.d.createRace(cerr) {
			return dr.d.classify(fmt.Errorf("create table %s: %w", dr.table, cerr))
		}
		err = dr.run(ctx, op)
	}
	if err == nil || err == autocert.ErrCacheMiss { //nolint:errorlint // our own bare sentinel
		return err
	}
	return dr.d.classify(err)
}

// run runs op, again after a deadlock: InnoDB picks a victim among
// concurrent upserts and deletes of one key even in autocommit mode.
func (dr *tableDriver) run(ctx context.Context, op func() error) error {
	for i := 1; ; i++ {
		err := op()
		if err == nil || dr.d.retry == nil || !dr.d.retry(err) || i == maxRetries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i) * time.Millisecond):
		}
	}
}

func (dr *tableDriver) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := dr.do(ctx, func() (err error) {
		v, err = dr.c.value(ctx, dr.q.get, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	if v == nil {
		v = []byte{}
	}
	return v, nil
}

func (dr *tableDriver) Put(ctx context.Context, key string, data []byte) error {
	if data == nil {
		data = []byte{} // nil would be NULL
	}
	return dr.do(ctx, func() error { return dr.c.exec(ctx, dr.q.put, key, data) })
}

func (dr *tableDriver) Delete(ctx context.Context, key string) error {
	return dr.do(ctx, func() error { return dr.c.exec(ctx, dr.q.del, key) })
}

func (dr *tableDriver) Close() error {
	if !dr.own {
		return nil
	}
	return dr.c.close()
}

// unavailable marks err as certcache.ErrUnavailable.
func unavailable(err error) error {
	if errors.Is(err, certcache.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
}
