package core

import (
	"context"
	"iter"
	"strings"
	"unicode/utf8"

	"github.com/certcache/certcache"
)

// ListPage is how many keys one listing statement reads. A page holds at
// most ListPage keys of certcache.MaxKeyLen bytes (2 MiB) and is read
// whole before it is yielded, so that no connection stays checked out while
// the caller handles entries (a caller that calls Get between entries would
// otherwise need a second connection per listing). Each page is a round
// trip: a memory front's preload of 1,000 names lists them in one, and
// reads them on the connection the listing leaves idle.
const ListPage = 2000

// List yields the keys of the table that begin with prefix, in key order,
// page by page: each page is one statement that continues after the last
// key of the one before (keyset pagination: no OFFSET, so a page costs the
// same however deep in the table it starts, and keys written or deleted
// meanwhile never shift a page). Size is the stored value's length,
// computed by the server without sending the value; ModTime is the
// updated_at column every version of this package has written.
//
// The prefix becomes a key range, [prefix, successor): no LIKE pattern, so
// '%', '_' and '\' in it mean themselves, and the primary key's index
// serves the range.
func (dr *Driver) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		lo, hi, ok := keyRange(prefix)
		if !ok {
			return // no key can begin with prefix
		}
		bounded := 0
		if hi != "" {
			bounded = 1
		}
		page := make([]certcache.Entry, 0, ListPage)
		after, first := lo, 1
		for {
			if err := ctx.Err(); err != nil {
				yield(certcache.Entry{}, err)
				return
			}
			args := []any{after}
			if hi != "" {
				args = append(args, hi)
			}
			err := dr.do(ctx, func() error {
				page = page[:0]
				return dr.Conn.Query(ctx, dr.q.list[first][bounded], args, func(scan func(...any) error) error {
					e, err := dr.d.Entry(scan)
					if err == nil {
						page = append(page, e)
					}
					return err
				})
			})
			if err != nil {
				yield(certcache.Entry{}, err)
				return
			}
			for _, e := range page {
				// The range may be wider than prefix (see keyRange).
				if strings.HasPrefix(e.Key, prefix) && !yield(e, nil) {
					return
				}
			}
			if len(page) < ListPage {
				return
			}
			after, first = page[len(page)-1].Key, 0
		}
	}
}

// keyRange returns the range [lo, hi) of keys that holds every valid key
// (certcache.ValidateKey) beginning with prefix; hi == "" means no upper
// bound. ok is false if no valid key can begin with prefix.
//
// Keys are compared byte by byte (PostgreSQL's "C" collation, MySQL's
// VARBINARY, SQLite's BINARY), which for UTF-8 is code point order. The
// bounds are valid UTF-8, as PostgreSQL's text parameters must be: a prefix
// that ends inside a character is cut before it, and the range is then
// wider than the prefix, so List also checks each key. hi is lo with its
// last character replaced by the next one (a character that has none,
// U+10FFFF, is dropped and the one before it is advanced).
func keyRange(prefix string) (lo, hi string, ok bool) {
	lo = prefix
	for i := 0; i < len(prefix); {
		r, size := utf8.DecodeRuneInString(prefix[i:])
		if r == utf8.RuneError && size == 1 {
			if utf8.FullRuneInString(prefix[i:]) {
				return "", "", false // a byte no valid key has
			}
			lo = prefix[:i] // a character cut short at the end
			break
		}
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return "", "", false // a control character, refused in keys
		}
		i += size
	}
	for s := lo; s != ""; {
		r, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
		if r == utf8.MaxRune {
			continue
		}
		r++
		if r == 0xd800 { // surrogates are not characters
			r = 0xe000
		}
		return lo, s + string(r), true
	}
	return lo, "", true
}
