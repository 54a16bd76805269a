package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/certcache/certcache/driver"

	"github.com/jackc/pgx/v5"
)

// Listen implements core.Listener on a connection taken out of the pool
// for as long as it listens (it is not counted against pool_max_conns).
func (c pgConn) Listen(ctx context.Context, channel string, ready func(), notified func(payload string)) error {
	pooled, err := c.pool.Acquire(ctx)
	if err != nil {
		return err
	}
	conn := pooled.Hijack() // held as long as the subscription: not the pool's
	defer func() {
		cctx, cancel := context.WithTimeout(context.Background(), time.Second)
		conn.Close(cctx)
		cancel()
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{channel}.Sanitize()); err != nil {
		return err
	}
	if _, err := c.pool.Exec(ctx, "SELECT pg_notify($1, $2)", channel, driver.WatchProbe); err != nil {
		return err
	}
	pctx, cancel := context.WithTimeout(ctx, probeWithin)
	defer cancel()
	for {
		n, err := conn.WaitForNotification(pctx)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("a notification sent to %s was not delivered within %v: %w", channel, probeWithin, err)
		}
		if n.Channel != channel {
			continue
		}
		if n.Payload == driver.WatchProbe {
			break
		}
		notified(n.Payload) // a write while the probe was under way
	}
	ready()
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return err
		}
		if n.Channel == channel {
			notified(n.Payload)
		}
	}
}

// probeWithin bounds the wait for Listen's own probe notification.
const probeWithin = 5 * time.Second
