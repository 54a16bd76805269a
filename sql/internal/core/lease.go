package core

import (
	"context"
	"time"

	"github.com/certcache/certcache"
)

// Leases live in a table of their own beside the cache table (see
// leaseTable), created lazily like it, with one row per lease: its name,
// the holder's token and the time it expires by the server's clock. Every
// operation is one statement whose WHERE clause (MySQL: IF) compares
// expires_at with the server's now, so the nodes' own clocks never matter
// (MySQL reads the row back after it, see holds):
//
//   - acquire is an upsert that replaces the row only if it has expired or
//     already belongs to the token; the server's row lock makes two
//     acquirers of one expired lease take turns, and the second finds the
//     first's unexpired row.
//   - refresh updates the row only if it belongs to the token and has not
//     expired.
//   - release deletes the row only if it belongs to the token.

// AcquireLease takes the lease called name for token, if it is free, has
// expired or is token's already; otherwise it returns
// certcache.ErrLeaseHeld.
func (dr *Driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	var took bool
	err := dr.doLeases(ctx, func() error {
		return dr.leaseStmt(ctx, func(s Stmts) error {
			n, err := s.Exec(ctx, dr.q.acquire, name, token, dr.d.TTL(ttl))
			if err != nil || dr.q.holds == "" {
				took = n > 0
				return err
			}
			took, err = dr.holds(ctx, s, name, token)
			return err
		})
	})
	if err != nil {
		return err
	}
	if !took {
		return certcache.ErrLeaseHeld
	}
	return nil
}

// RefreshLease extends token's unexpired lease called name to ttl from
// now; otherwise it returns certcache.ErrLeaseLost.
func (dr *Driver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	var kept bool
	err := dr.doLeases(ctx, func() error {
		return dr.leaseStmt(ctx, func(s Stmts) error {
			n, err := s.Exec(ctx, dr.q.refresh, dr.d.TTL(ttl), name, token)
			kept = n > 0
			if err != nil || kept || dr.q.holds == "" {
				return err
			}
			// MySQL counts only changed rows unless the connection set
			// clientFoundRows: a refresh within the microsecond of the
			// one before changes nothing and counts 0.
			kept, err = dr.holds(ctx, s, name, token)
			return err
		})
	})
	if err != nil {
		return err
	}
	if !kept {
		return certcache.ErrLeaseLost
	}
	return nil
}

// ReleaseLease deletes the lease called name if token holds it.
func (dr *Driver) ReleaseLease(ctx context.Context, name, token string) error {
	return dr.doLeases(ctx, func() error {
		_, err := dr.Conn.Exec(ctx, dr.q.release, name, token)
		return err
	})
}

// leaseStmt runs f on the conn, or, for a dialect that reads the lease back
// (holds), in a transaction: the write's row lock then lasts until the read
// is done, and the read goes where the write went, whatever a proxy in
// between would do with a lone SELECT (send it to a replica that has not
// seen the write).
func (dr *Driver) leaseStmt(ctx context.Context, f func(Stmts) error) error {
	if t, ok := dr.Conn.(TxConn); ok && dr.q.holds != "" {
		return t.Tx(ctx, f)
	}
	return f(dr.Conn)
}

// holds reports whether token holds the unexpired lease called name, for
// dialects whose rows-affected count cannot say.
func (dr *Driver) holds(ctx context.Context, s Stmts, name, token string) (bool, error) {
	var n int64
	err := s.Query(ctx, dr.q.holds, []any{name, token}, func(scan func(...any) error) error {
		return scan(&n)
	})
	return n > 0, err
}
