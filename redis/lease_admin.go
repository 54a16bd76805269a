package redis

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"time"

	"github.com/certcache/certcache"
	ccdriver "github.com/certcache/certcache/driver"
	goredis "github.com/redis/go-redis/v9"
)

var _ ccdriver.LeaseAdminDriver = (*driver)(nil)

// ListLeases implements driver.LeaseAdminDriver with SCAN … MATCH on
// the lease keys of the namespace (PREFIX "\x00lease:" NAME), on every node
// as List does, and a pipelined GET and PTTL per page. Redis deletes a
// lease when it expires, so no expired lease is listed.
func (d *driver) ListLeases(ctx context.Context, prefix string) iter.Seq2[certcache.LeaseInfo, error] {
	return func(yield func(certcache.LeaseInfo, error) bool) {
		nodes, err := d.scanNodes(ctx)
		if err != nil {
			yield(certcache.LeaseInfo{}, classify(err))
			return
		}
		base := d.leaseKey("")
		match := globEscape(base+prefix) + "*"
		for _, n := range nodes {
			var cursor uint64
			for {
				if err := ctx.Err(); err != nil {
					yield(certcache.LeaseInfo{}, err)
					return
				}
				keys, next, err := n.ScanType(ctx, cursor, match, scanCount, "string").Result()
				if err != nil {
					yield(certcache.LeaseInfo{}, classify(err))
					return
				}
				ls, err := d.leaseInfos(ctx, base, keys)
				if err != nil {
					yield(certcache.LeaseInfo{}, classify(err))
					return
				}
				for _, l := range ls {
					if !yield(l, nil) {
						return
					}
				}
				if next == 0 {
					break
				}
				cursor = next
			}
		}
	}
}

// leaseInfos reads the holder and remaining time of the lease keys of one
// SCAN page. A key gone since the SCAN is left out.
func (d *driver) leaseInfos(ctx context.Context, base string, keys []string) ([]certcache.LeaseInfo, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	gets := make([]*goredis.StringCmd, len(keys))
	ttls := make([]*goredis.DurationCmd, len(keys))
	if _, err := d.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			gets[i] = p.Get(ctx, k)
			ttls[i] = p.PTTL(ctx, k)
		}
		return nil
	}); err != nil && !errors.Is(err, goredis.Nil) {
		return nil, err
	}
	now := time.Now()
	var ls []certcache.LeaseInfo
	for i, k := range keys {
		holder, err := gets[i].Result()
		if err != nil {
			continue // deleted or expired since the SCAN
		}
		l := certcache.LeaseInfo{Name: k[len(base):], Holder: holder}
		switch ttl := ttls[i].Val(); {
		case ttl >= 0:
			l.Expires = now.Add(ttl)
		case ttl == -2:
			continue // expired between GET and PTTL
		}
		ls = append(ls, l)
	}
	return ls, nil
}

// BreakLease implements driver.LeaseAdminDriver. Redis deletes a lease
// when it expires, so a lease that exists has not expired: without force,
// BreakLease deletes nothing and reports the lease held; with force it
// deletes the lease key.
func (d *driver) BreakLease(ctx context.Context, name string, force bool) error {
	key := d.leaseKey(name)
	if force {
		return classify(d.client.Del(ctx, key).Err())
	}
	ttl, err := d.client.PTTL(ctx, key).Result()
	if err != nil {
		return classify(err)
	}
	switch {
	case ttl == -2:
		return nil // no such lease: expired or released
	case ttl < 0:
		return fmt.Errorf("%w: the lease key has no expiry", certcache.ErrLeaseHeld)
	}
	return fmt.Errorf("%w: it expires in %v, by the server's clock", certcache.ErrLeaseHeld, ttl)
}
