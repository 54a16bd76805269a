package redis

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	ccdriver "github.com/certcache/certcache/driver"

	goredis "github.com/redis/go-redis/v9"
)

// The cache implements driver.WatchDriver with a pub/sub channel of its
// namespace,
//
//	PREFIX ":\x00changes"
//
// on which every Put and Delete publishes the key it wrote, in the same
// round trip as the write (a pipeline on one connection, so the write is
// done when the message goes out). Each Cache subscribes once, on a
// connection of its own. Pub/sub needs no server setting, so it works where
// CONFIG SET is refused (managed Redis), unlike keyspace notifications; a
// cluster forwards PUBLISH to every node, and a sentinel client subscribes
// to the master it follows. On a cluster or a ring the write and the
// PUBLISH go one after the other (the channel hashes to its own node),
// which costs the Put a second round trip. A message published while the
// subscriber was disconnected is lost: certcache's waiters poll while the
// subscription is down and, more slowly, while it is up.

// idleCheck is how long the subscription waits for a message before it
// pings the server, so that a connection that died without a word is
// found.
const idleCheck = 15 * time.Second

// probeWithin bounds the wait for the subscription's own probe message.
const probeWithin = 5 * time.Second

var _ ccdriver.WatchDriver = (*driver)(nil)

func (d *driver) channel() string { return d.prefix + "\x00changes" }

// write runs one write of key (set adds it to a pipeline) and publishes
// key; only the write's error counts: a lost message costs a waiter a poll.
func (d *driver) write(ctx context.Context, key string, set func(goredis.Pipeliner) goredis.Cmder) error {
	_, single := d.client.(*goredis.Client) // a single server, or a sentinel's master
	var cmd goredis.Cmder
	d.client.Pipelined(ctx, func(p goredis.Pipeliner) error { //nolint:errcheck // cmd has the write's error
		cmd = set(p)
		if single {
			p.Publish(ctx, d.channel(), key)
		}
		return nil
	})
	if err := cmd.Err(); err != nil {
		return classify(err)
	}
	if !single {
		d.client.Publish(ctx, d.channel(), key)
	}
	return nil
}

// Watch implements driver.WatchDriver.
func (d *driver) Watch(ctx context.Context, ready func(), changed func(key string)) error {
	ps := d.client.Subscribe(ctx, d.channel())
	defer ps.Close()
	// A read in progress ignores ctx's end: closing the subscription ends it.
	defer context.AfterFunc(ctx, func() { ps.Close() })()
	if _, err := ps.Receive(ctx); err != nil { // the subscription's confirmation
		return classify(err)
	}
	if err := d.probe(ctx, ps, changed); err != nil {
		return err
	}
	ready()
	for {
		msg, err := ps.ReceiveTimeout(ctx, idleCheck)
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ne) && ne.Timeout():
			if err := ps.Ping(ctx); err != nil {
				return classify(err)
			}
			continue
		case err != nil:
			return classify(err)
		}
		if m, ok := msg.(*goredis.Message); ok && len(m.Payload) > 0 && m.Payload != ccdriver.WatchProbe {
			changed(m.Payload)
		}
	}
}

// probe publishes ccdriver.WatchProbe through the client, as a Put would,
// and waits for it on the subscription: a proxy that accepts SUBSCRIBE but
// delivers nothing (or a cluster that does not forward PUBLISH) must leave
// waiters polling, not waiting on a push that never comes.
func (d *driver) probe(ctx context.Context, ps *goredis.PubSub, changed func(string)) error {
	if err := d.client.Publish(ctx, d.channel(), ccdriver.WatchProbe).Err(); err != nil {
		return classify(err)
	}
	deadline := time.Now().Add(probeWithin)
	for {
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("a message published on the channel was not delivered within %v", probeWithin)
		}
		msg, err := ps.ReceiveTimeout(ctx, left)
		var ne net.Error
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case errors.As(err, &ne) && ne.Timeout():
			continue
		case err != nil:
			return classify(err)
		}
		if m, ok := msg.(*goredis.Message); ok {
			if m.Payload == ccdriver.WatchProbe {
				return nil
			}
			changed(m.Payload) // a write while the probe was under way
		}
	}
}
