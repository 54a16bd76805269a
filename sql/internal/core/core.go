// Package core is what the SQL dialects share: one table of values and one
// of leases, and the statements' shape; sql/postgres, sql/mysql and
// sql/sqlite supply their dialect and connection, so that each links only
// its own database driver.
package core

import (
	"database/sql"
	"fmt"
	"time"

	"github.com/certcache/certcache/internal/backendopts"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
	sqlcache "github.com/certcache/certcache/sql"
)

// NewDB is the New of a dialect whose connection is a database/sql DB.
func NewDB(d *Dialect, c DBConn, o *sqlcache.Options) (certcache.Cache, error) {
	if c.DB == nil {
		return nil, fmt.Errorf("certcache/%s: New: nil db", d.Name)
	}
	return NewCache(d, c, o)
}

// NewCache is the end of each dialect's New.
func NewCache(d *Dialect, c Conn, o *sqlcache.Options) (certcache.Cache, error) {
	var opts sqlcache.Options
	if o != nil {
		opts = *o
	}
	dr, err := NewDriver(d, c, opts.Table, false)
	if err != nil {
		return nil, fmt.Errorf("certcache/%s: %w", d.Name, err)
	}
	return certcache.NewCache(d.Name, dr, backendopts.Cache(opts.Cache, opts.Timeout)), nil
}

// ReadTable reads the table parameter; an empty one is an error.
func ReadTable(q *urlquery.Reader) string {
	if !q.Has("table") {
		return sqlcache.DefaultTable
	}
	t := q.String("table")
	if t == "" {
		q.Fail("table is empty (leave it out for the default %q)", sqlcache.DefaultTable)
	}
	return t
}

// PoolSettings are database/sql's pool limits, read from the URL.
type PoolSettings struct {
	maxOpen, maxIdle        int
	maxLifetime, maxIdleDur time.Duration
}

// ReadPool reads database/sql's pool limits from the URL.
func ReadPool(q *urlquery.Reader) PoolSettings {
	return PoolSettings{
		maxOpen:     q.Int("max_open_conns", backendopts.MaxConns()),
		maxIdle:     q.Int("max_idle_conns", 2),
		maxLifetime: q.Duration("conn_max_lifetime", 0),
		maxIdleDur:  q.Duration("conn_max_idle_time", 0),
	}
}

// Apply sets db's pool limits.
func (p PoolSettings) Apply(db *sql.DB) {
	db.SetMaxOpenConns(p.maxOpen)
	db.SetMaxIdleConns(p.maxIdle)
	db.SetConnMaxLifetime(p.maxLifetime)
	db.SetConnMaxIdleTime(p.maxIdleDur)
}
