package redis

import (
	"context"
	"fmt"
	"time"

	"github.com/certcache/certcache"
	ccdriver "github.com/certcache/certcache/driver"
	goredis "github.com/redis/go-redis/v9"
)

// leaseSep separates the namespace from a lease's name in a lease key,
// PREFIX "\x00lease:" NAME. Prefixes and keys are valid UTF-8 without
// control characters (certcache.ValidateKey), so no cache key of any
// namespace contains a NUL byte: a lease key never equals a cache key, and
// the first NUL tells which namespace a lease key belongs to, so leases of
// different namespaces never collide either. A lease key does not begin with
// PREFIX ":", so its own namespace's SCAN MATCH never finds it; a listing of
// an enclosing namespace ("a" around "a:b") does, and skips it because the
// NUL makes it an invalid key.
const leaseSep = "\x00lease:"

var _ ccdriver.LeaseDriver = (*driver)(nil)

// Each script touches the lease key alone, which it receives as KEYS[1], so
// that Redis Cluster routes it to the one node that owns the key's slot.
// Redis runs a script atomically, and expiry is Redis's own PX: the store's
// clock decides, whatever the clocks of the holders say.
var (
	// acquireScript sets the lease if it is free (an expired key is gone as
	// far as SET NX is concerned), extends it if ARGV[1] already holds it,
	// and otherwise reports the holder's remaining time in milliseconds.
	acquireScript = goredis.NewScript(`
if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'PX', ARGV[2]) then
  return {1}
end
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {1}
end
return {0, redis.call('PTTL', KEYS[1])}
`)

	// refreshScript extends the lease only if ARGV[1] holds it: compare and
	// PEXPIRE in one step, so a lease that expired and was taken over is not
	// extended for its new holder.
	refreshScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
`)

	// releaseScript deletes the lease only if ARGV[1] holds it.
	releaseScript = goredis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
`)
)

// leaseKey returns the Redis key of the lease called name.
func (d *driver) leaseKey(name string) string {
	// d.prefix ends with the colon that begins the cache keys; the lease
	// separator takes its place.
	return d.prefix[:len(d.prefix)-1] + leaseSep + name
}

// AcquireLease implements driver.LeaseDriver.
func (d *driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	v, err := acquireScript.Run(ctx, d.client, []string{d.leaseKey(name)}, token, millis(ttl)).Int64Slice()
	if err != nil {
		return classify(err)
	}
	if len(v) > 0 && v[0] == 1 {
		return nil
	}
	if len(v) < 2 {
		return fmt.Errorf("acquire script answered %v", v)
	}
	switch pttl := v[1]; {
	case pttl >= 0:
		return fmt.Errorf("%w: expires in %v", certcache.ErrLeaseHeld, time.Duration(pttl)*time.Millisecond)
	default:
		// PTTL -1: the key has no expiry, so something other than this
		// package wrote it; it is held all the same.
		return fmt.Errorf("%w: the lease key has no expiry", certcache.ErrLeaseHeld)
	}
}

// RefreshLease implements driver.LeaseDriver.
func (d *driver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	n, err := refreshScript.Run(ctx, d.client, []string{d.leaseKey(name)}, token, millis(ttl)).Int64()
	if err != nil {
		return classify(err)
	}
	if n != 1 {
		return certcache.ErrLeaseLost
	}
	return nil
}

// ReleaseLease implements driver.LeaseDriver.
func (d *driver) ReleaseLease(ctx context.Context, name, token string) error {
	return classify(releaseScript.Run(ctx, d.client, []string{d.leaseKey(name)}, token).Err())
}

// millis is ttl in whole milliseconds for PX and PEXPIRE, which refuse 0.
func millis(ttl time.Duration) int64 {
	return max(ttl.Milliseconds(), 1)
}
