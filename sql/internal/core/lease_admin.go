package core

import (
	"context"
	"fmt"
	"iter"
	"strings"
	"time"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
)

var _ driver.LeaseAdminDriver = (*Driver)(nil)

// The lease table is read and changed by the server's clock, as the lease
// statements judge it: a lease's time left is computed by the server, and
// an unforced break deletes the row only WHERE it has expired. Neither
// creates the lease table: where there is none, no lease was ever taken.

// ListLeases implements driver.LeaseAdminDriver in one statement:
// a table holds a row per lease name ever taken and not released, few
// enough to read at once.
func (dr *Driver) ListLeases(ctx context.Context, prefix string) iter.Seq2[certcache.LeaseInfo, error] {
	return func(yield func(certcache.LeaseInfo, error) bool) {
		var ls []certcache.LeaseInfo
		err := dr.leaseAdmin(ctx, func() error {
			ls = ls[:0]
			return dr.Conn.Query(ctx, dr.q.listLeases, nil, func(scan func(...any) error) error {
				l, err := scanLease(scan)
				if err == nil && strings.HasPrefix(l.Name, prefix) {
					ls = append(ls, l)
				}
				return err
			})
		})
		if err != nil {
			yield(certcache.LeaseInfo{}, err)
			return
		}
		for _, l := range ls {
			if err := ctx.Err(); err != nil {
				yield(certcache.LeaseInfo{}, err)
				return
			}
			if !yield(l, nil) {
				return
			}
		}
	}
}

// scanLease scans a row of name, token and microseconds left.
func scanLease(scan func(...any) error) (certcache.LeaseInfo, error) {
	var (
		l  certcache.LeaseInfo
		us int64
	)
	if err := scan(&l.Name, &l.Holder, &us); err != nil {
		return certcache.LeaseInfo{}, err
	}
	l.Expires = time.Now().Add(time.Duration(us) * time.Microsecond)
	return l, nil
}

// BreakLease implements driver.LeaseAdminDriver. Without force, the
// delete's WHERE clause refuses an unexpired lease; when it deleted
// nothing, the row is read to tell a live lease from none, and a lease
// that expired in between is deleted in another round.
func (dr *Driver) BreakLease(ctx context.Context, name string, force bool) error {
	if force {
		return dr.leaseAdmin(ctx, func() error {
			_, err := dr.Conn.Exec(ctx, dr.q.breakLease, name)
			return err
		})
	}
	for range 3 {
		var (
			found bool
			left  time.Duration
		)
		err := dr.leaseAdmin(ctx, func() error {
			found = false
			n, err := dr.Conn.Exec(ctx, dr.q.breakExpired, name)
			if err != nil || n > 0 {
				return err
			}
			return dr.Conn.Query(ctx, dr.q.leaseLeft, []any{name}, func(scan func(...any) error) error {
				l, err := scanLease(scan)
				found, left = err == nil, time.Until(l.Expires)
				return err
			})
		})
		switch {
		case err != nil:
			return err
		case !found:
			return nil // deleted, or there was none
		case left > 0:
			return fmt.Errorf("%w: it expires in %v, by the server's clock", certcache.ErrLeaseHeld, left.Round(time.Millisecond))
		}
	}
	return nil // expired, and left for the next acquirer to take
}

// leaseAdmin runs op on the lease table, like doLeases but without
// creating the table: a missing one holds no leases.
func (dr *Driver) leaseAdmin(ctx context.Context, op func() error) error {
	err := dr.run(ctx, op)
	if err == nil || dr.d.NoTable(err) {
		return nil
	}
	return dr.d.Classify(err)
}
