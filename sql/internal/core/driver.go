package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keymemo"
	sqlcache "github.com/certcache/certcache/sql"
	"golang.org/x/crypto/acme/autocert"
)

// dialect is what differs between the SQL servers: the statements, and how
// their errors read. Everything else is shared by Driver.
type Dialect struct {
	Name  string // backend name in errors: certcache/<name>: …
	Quote byte   // identifier quote character

	// Statement templates; %[1]s is the quoted table, %[2]s the quoted key
	// column, %[3]s the quoted value column, %[4]s the quoted lease table
	// (see leaseTable).
	Create, Get, Put, Del string

	// GetAny, if set, selects the key and value of every key in one array
	// argument ($1), for GetMany; without it GetMany writes IN lists.
	GetAny string

	// Leases (see lease.go): createLeases makes the lease table; acquire
	// takes (name, token, ttl), refresh (ttl, name, token), release (name,
	// token), holds (name, token), and ttl turns a duration into the ttl
	// argument. holds, if set, is a query counting the unexpired leases of
	// (name, token): the dialect's rows-affected count cannot tell whether
	// acquire took the lease, so the driver asks.
	CreateLeases, Acquire, Refresh, Release, Holds string
	TTL                                            func(time.Duration) any

	// Lease administration (see lease_admin.go): leaseLeft is an
	// expression of the microseconds a row's lease has left by the
	// server's clock, negative once it has expired; breakExpired deletes
	// the row (name) only if it has expired.
	LeaseLeft, BreakExpired string

	// Listing (see list.go): list selects key, size and modification time
	// with %[5]s as the WHERE condition; param(n) is the n-th (1-based)
	// placeholder; entry scans one row.
	List  string
	Param func(n int) string
	Entry func(scan func(dest ...any) error) (certcache.Entry, error)

	// Notifies: Put and Delete notify a channel that Watch listens on
	// (see watch.go).
	Notifies bool

	// noTable reports an error that says the table does not exist.
	NoTable func(error) bool
	// createRace reports an error from a concurrent CREATE TABLE IF NOT
	// EXISTS that another session won: the table exists now.
	CreateRace func(error) bool
	// classify marks errors that mean the server is unreachable.
	Classify func(error) error
	// retry reports an error after which the statement, rolled back by the
	// server (a deadlock victim), may simply run again. Nil: none.
	Retry func(error) bool
}

// MaxRetries bounds how often do runs a statement that the server rolled
// back as a deadlock victim; every statement here is idempotent.
const MaxRetries = 5

// queries are a dialect's statements for one table and its lease table.
type queries struct {
	create, get, put, del, getAny string

	createLeases, acquire, refresh, release, holds string

	// listLeases selects name, token and time left of every lease;
	// leaseLeft (name) those of one; breakLease (name) deletes one;
	// breakExpired (name) deletes one only if it has expired.
	listLeases, leaseLeft, breakLease, breakExpired string

	// list[first][bounded]: list[1] reads the first page, from the start
	// of the range on (>=), list[0] the next, after the last key seen (>);
	// list[…][1] also stops before the range's end.
	list [2][2]string
}

func (d *Dialect) queries(table string) queries {
	t := quoteIdent(table, d.Quote)
	k, v := quoteIdent("key", d.Quote), quoteIdent("value", d.Quote)
	l := quoteIdent(leaseTable(table), d.Quote)
	f := func(s string) string {
		if s == "" {
			return ""
		}
		return fmt.Sprintf(s, t, k, v, l)
	}
	q := queries{
		create: f(d.Create), get: f(d.Get), put: f(d.Put), del: f(d.Del), getAny: f(d.GetAny),
		createLeases: f(d.CreateLeases), acquire: f(d.Acquire), refresh: f(d.Refresh),
		release: f(d.Release), holds: f(d.Holds), breakExpired: f(d.BreakExpired),
	}
	if d.LeaseLeft != "" {
		cols := "SELECT name, token, " + d.LeaseLeft + " FROM " + l
		q.listLeases = cols + " ORDER BY name"
		q.leaseLeft = cols + " WHERE name = " + d.Param(1)
		q.breakLease = "DELETE FROM " + l + " WHERE name = " + d.Param(1)
	}
	for first, op := range []string{" > ", " >= "} {
		for bounded, hi := range []string{"", " AND " + k + " < " + d.Param(2)} {
			q.list[first][bounded] = fmt.Sprintf(d.List, t, k, v, l, k+op+d.Param(1)+hi)
		}
	}
	return q
}

// Stmts runs statements: a conn, or a transaction on one.
type Stmts interface {
	// exec runs a statement and returns the number of rows it affected.
	Exec(ctx context.Context, query string, args ...any) (int64, error)
	// query runs a query and calls row for each row it returns, with a
	// function that scans the row; the rows are closed when query returns.
	Query(ctx context.Context, query string, args []any, row func(scan func(dest ...any) error) error) error
}

// conn runs statements: a pgxpool.Pool or a database/sql DB.
type Conn interface {
	Stmts
	// Value runs a query whose arguments are args (which it must not
	// change: they are shared by calls) and that returns one binary
	// column, copied; no row is autocert.ErrCacheMiss.
	Value(ctx context.Context, query string, args []any) ([]byte, error)
	Close() error
}

// TxConn is a conn that runs f in a transaction, which f's error rolls
// back: a database/sql DB, for MySQL's leases.
type TxConn interface {
	Tx(ctx context.Context, f func(Stmts) error) error
}

// Driver is the driver.Driver for every dialect.
type Driver struct {
	d      *Dialect
	Conn   Conn
	q      queries
	table  string
	leases string // the lease table's name
	own    bool   // Close closes c

	keyArgs keymemo.Memo[[]any] // Get's arguments, per key
}

var (
	_ driver.Driver      = (*Driver)(nil)
	_ driver.LeaseDriver = (*Driver)(nil)
	_ driver.ListDriver  = (*Driver)(nil)
	_ driver.WatchDriver = (*Driver)(nil) // PostgreSQL's only (see watch.go)
)

func NewDriver(d *Dialect, c Conn, table string, own bool) (*Driver, error) {
	if table == "" {
		table = sqlcache.DefaultTable
	}
	if err := CheckTable(table); err != nil {
		return nil, err
	}
	q := d.queries(table)
	if d.Notifies {
		q = notifying(q, table)
	}
	return &Driver{d: d, Conn: c, q: q, table: table, leases: leaseTable(table), own: own}, nil
}

// do runs op on the cache table; doLeases runs op on the lease table.
func (dr *Driver) do(ctx context.Context, op func() error) error {
	return dr.doOn(ctx, dr.table, dr.q.create, op)
}

func (dr *Driver) doLeases(ctx context.Context, op func() error) error {
	return dr.doOn(ctx, dr.leases, dr.q.createLeases, op)
}

// doOn runs op, which uses table. The table is created lazily: when op
// finds no table, doOn creates it with create and runs op once more.
// Nothing remembers that the table exists, so a failed create is tried
// again by the next call, and a user that may read and write but not
// create works on a table made for it.
func (dr *Driver) doOn(ctx context.Context, table, create string, op func() error) error {
	err := dr.run(ctx, op)
	if err == autocert.ErrCacheMiss { //nolint:errorlint // our own bare sentinel
		// A miss is an answer: asking the dialect what kind of error it is
		// costs allocations (errors.As) on the path autocert takes most.
		return err
	}
	if err != nil && dr.d.NoTable(err) {
		if _, cerr := dr.Conn.Exec(ctx, create); cerr != nil && !dr.d.CreateRace(cerr) {
			return dr.d.Classify(fmt.Errorf("create table %s: %w", table, cerr))
		}
		err = dr.run(ctx, op)
	}
	if err == nil || err == autocert.ErrCacheMiss { //nolint:errorlint // our own bare sentinel
		return err
	}
	return dr.d.Classify(err)
}

// run runs op, again after a deadlock: InnoDB picks a victim among
// concurrent upserts and deletes of one key even in autocommit mode.
func (dr *Driver) run(ctx context.Context, op func() error) error {
	for i := 1; ; i++ {
		err := op()
		//nolint:errorlint // our own bare sentinel: a miss is not retried
		if err == nil || err == autocert.ErrCacheMiss || dr.d.Retry == nil || !dr.d.Retry(err) || i == MaxRetries || ctx.Err() != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return err
		case <-time.After(time.Duration(i) * time.Millisecond):
		}
	}
}

func (dr *Driver) Get(ctx context.Context, key string) ([]byte, error) {
	var v []byte
	err := dr.do(ctx, func() (err error) {
		v, err = dr.Conn.Value(ctx, dr.q.get, dr.keyArgs.Get(key, keyArg))
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

// keyArg is the argument list of a statement on one key.
func keyArg(key string) []any { return []any{key} }

func (dr *Driver) Put(ctx context.Context, key string, data []byte) error {
	if data == nil {
		data = []byte{} // nil would be NULL
	}
	return dr.do(ctx, func() error { _, err := dr.Conn.Exec(ctx, dr.q.put, key, data); return err })
}

func (dr *Driver) Delete(ctx context.Context, key string) error {
	return dr.do(ctx, func() error { _, err := dr.Conn.Exec(ctx, dr.q.del, key); return err })
}

func (dr *Driver) Close() error {
	if !dr.own {
		return nil
	}
	return dr.Conn.Close()
}

// unavailable marks err as certcache.ErrUnavailable.
func Unavailable(err error) error {
	if errors.Is(err, certcache.ErrUnavailable) {
		return err
	}
	return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
}
