package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache"
)

// PostgreSQL implements driver.WatchDriver with LISTEN/NOTIFY. Put and
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

// Listener is a Conn that can listen on a notification channel: the
// PostgreSQL dialect's. Listen sends itself driver.WatchProbe on channel
// through the pool, as a Put would, and calls ready once it has arrived (a
// pooler in transaction mode accepts LISTEN and delivers nothing, and
// waiters must then poll rather than wait on a push that never comes);
// then it calls notified with each payload until ctx ends or the connection
// fails, and returns why.
type Listener interface {
	Listen(ctx context.Context, channel string, ready func(), notified func(payload string)) error
}

// Watch implements driver.WatchDriver where the dialect notifies and
// the Conn listens: PostgreSQL's.
func (dr *Driver) Watch(ctx context.Context, ready func(), changed func(key string)) error {
	l, ok := dr.Conn.(Listener)
	if !ok || !dr.d.Notifies {
		return fmt.Errorf("%w: %s cannot push changes", certcache.ErrUnsupported, dr.d.Name)
	}
	err := l.Listen(ctx, notifyChannel(dr.table), ready, func(payload string) {
		if payload != driver.WatchProbe {
			changed(payload)
		}
	})
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return dr.d.Classify(err)
}
