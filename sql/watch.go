package sqlcache

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"time"

	"github.com/certcache/certcache"
)

// PostgreSQL implements certcache.WatchDriver with LISTEN/NOTIFY. Put and
// Delete notify the channel of the table, with the key as the payload, in
// the statement that writes (pg_notify over the write's RETURNING): the
// notification goes out when, and only if, the write commits. Each Cache
// listens once, on a connection it takes out of the pool for good (it is
// not counted against pool_max_conns); a notification sent while that
// connection was down is lost, and certcache's waiters poll meanwhile.
// MySQL and SQLite cannot push: their Watch reports certcache.ErrUnsupported
// and waiters poll.

// notifyChannel is the channel of table's changes: "certcache:TABLE", or
// for a name too long for a PostgreSQL identifier (63 bytes), the
// table's SHA-256 in hex, shortened.
func notifyChannel(table string) string {
	if ch := "certcache:" + table; len(ch) <= 63 {
		return ch
	}
	sum := sha256.Sum256([]byte(table))
	return "certcache:" + hex.EncodeToString(sum[:])[:40]
}

// notifying makes q's put and del notify table's channel of the key ($1)
// they wrote. The channel is a literal: table names are letters, digits,
// '_' and '-'.
func notifying(q queries, table string) queries {
	notify := fmt.Sprintf(" RETURNING 1) SELECT pg_notify('%s', $1) FROM w", notifyChannel(table))
	q.put = "WITH w AS (" + q.put + notify
	q.del = "WITH w AS (" + q.del + notify
	return q
}

// Watch implements certcache.WatchDriver for PostgreSQL.
func (dr *tableDriver) Watch(ctx context.Context, ready func(), changed func(key string)) error {
	pc, ok := dr.c.(pgConn)
	if !ok || !dr.d.notifies {
		return fmt.Errorf("%w: %s cannot push changes", certcache.ErrUnsupported, dr.d.name)
	}
	pooled, err := pc.pool.Acquire(ctx)
	if err != nil {
		return dr.d.classify(err)
	}
	conn := pooled.Hijack() // held as long as the subscription: not the pool's
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	channel := notifyChannel(dr.table)
	if _, err := conn.Exec(ctx, "LISTEN "+quoteIdent(channel, '"')); err != nil {
		return dr.d.classify(err)
	}
	// A notification sent from the pool, as a Put sends it, must arrive: a
	// pooler in transaction mode accepts LISTEN and delivers nothing, and
	// waiters must then poll rather than wait on a push that never comes.
	if _, err := pc.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, certcache.WatchProbe); err != nil {
		return dr.d.classify(err)
	}
	pctx, cancel := context.WithTimeout(ctx, probeWithin)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(pctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("a notification sent to %s was not delivered within %v: %w", channel, probeWithin, dr.d.classify(err))
		}
		if n.Channel == channel && n.Payload == certcache.WatchProbe {
			break
		}
		if n.Channel == channel {
			changed(n.Payload) // a write while the probe was under way
		}
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return dr.d.classify(err)
		}
		if n.Channel == channel && n.Payload != certcache.WatchProbe {
			changed(n.Payload)
		}
	}
}

// probeWithin bounds the wait for Watch's own probe notification.
const probeWithin = 5 * time.Second
