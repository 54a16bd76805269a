package core

import (
	"context"
	"fmt"
	"strings"

	"github.com/certcache/certcache/driver"
)

var _ driver.GetManyDriver = (*Driver)(nil)

// inListChunk bounds the placeholders of one IN list (MySQL, SQLite):
// SQLite before 3.32 allowed 999 parameters per statement.
const inListChunk = 500

// GetMany implements driver.GetManyDriver with one statement per chunk
// of keys: "key" = ANY($1) with a text array on PostgreSQL (one prepared
// statement for any number of keys), "key" IN (?, …) in chunks of
// inListChunk on MySQL and SQLite. Both are served by the primary key's
// index.
func (dr *Driver) GetMany(ctx context.Context, keys []string, found func(i int, value []byte)) error {
	for lo := 0; lo < len(keys); lo += inListChunk {
		chunk := keys[lo:min(lo+inListChunk, len(keys))]
		query, args := dr.manyQuery(chunk)
		at := make(map[string]int, len(chunk))
		for i, k := range chunk {
			at[k] = lo + i
		}
		var hits []hit // reported once the statement has succeeded
		err := dr.do(ctx, func() error {
			hits = hits[:0]
			return dr.Conn.Query(ctx, query, args, func(scan func(...any) error) error {
				var (
					k string
					v []byte
				)
				if err := scan(&k, &v); err != nil {
					return err
				}
				if i, ok := at[k]; ok {
					hits = append(hits, hit{i, v})
				}
				return nil
			})
		})
		if err != nil {
			return err
		}
		for _, h := range hits {
			found(h.i, h.v)
		}
	}
	return nil
}

// hit is a row GetMany read: keys[i] holds v.
type hit struct {
	i int
	v []byte
}

// manyQuery returns the statement and arguments that select the key and
// value of each of keys.
func (dr *Driver) manyQuery(keys []string) (string, []any) {
	if dr.q.getAny != "" {
		return dr.q.getAny, []any{keys}
	}
	t := quoteIdent(dr.table, dr.d.Quote)
	k, v := quoteIdent("key", dr.d.Quote), quoteIdent("value", dr.d.Quote)
	var b strings.Builder
	fmt.Fprintf(&b, "SELECT %s, %s FROM %s WHERE %s IN (", k, v, t, k)
	args := make([]any, len(keys))
	for i, key := range keys {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(dr.d.Param(i + 1))
		args[i] = key
	}
	b.WriteByte(')')
	return b.String(), args
}
