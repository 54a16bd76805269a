// Package driver defines the interfaces a certcache backend implements,
// as gocloud.dev/blob/driver does for Go CDK: a Driver that gets, puts and
// deletes, and the optional capabilities a store may have (leases,
// listing, lease administration, batched reads, pushed changes). A backend
// hands its Driver to certcache.NewCache, which adds what every backend
// shares (key checks, timeouts, the breaker, telemetry, issuance
// coordination) and finds the capabilities the driver implements, the way
// io.Copy finds io.WriterTo. Package drivertest proves each capability a
// driver has.
//
// Users of certcache never need this package: they open caches with
// certcache.Open or a backend's New.
package driver

import (
	"context"
	"iter"
	"time"
)

// Driver is what a backend implements; NewCache turns it into a Cache that
// keeps the package contract. The portable layer validates keys and sizes,
// applies the per-call timeout, refuses calls after Close and wraps errors,
// so a driver only moves bytes:
//
//   - Get returns autocert.ErrCacheMiss (wrapped or not) when the key does
//     not exist, and a slice the caller may keep and modify.
//   - Put must not retain data after it returns.
//   - Delete of a missing key returns nil.
//   - Errors need no backend or key prefix; the portable layer adds them.
//     A driver may wrap certcache.ErrUnavailable into errors that mean the server could
//     not be reached; network errors are classified without its help.
//   - Close releases what the driver opened itself.
//
// Keys reaching a driver are already valid (see the Cache contract); a
// driver that stores keys as names (files, objects) maps them with care so
// that none escapes its namespace or collides with another.
type Driver interface {
	Get(ctx context.Context, key string) ([]byte, error)
	Put(ctx context.Context, key string, data []byte) error
	Delete(ctx context.Context, key string) error
	Close() error
}

// LeaseDriver is the optional capability of a driver to keep leases: named
// mutual-exclusion claims with a time to live, shared by every process that
// opens the same store and namespace. The portable layer makes the token (a
// random string no other holder has) and validates name like a key; ttl is at
// least a second.
//
// Expiry is judged by the store's clock wherever the store has one (Redis
// PX, the SQL server's now(), the object store's own times), so that nodes
// whose clocks are skewed still agree. A lease's storage never collides with
// a cache key: leases never appear to Get, Put, Delete or List.
//
//   - AcquireLease takes the lease for token if it is free or has expired,
//     and returns an error wrapping certcache.ErrLeaseHeld otherwise. Acquiring a
//     lease that token already holds extends it, as RefreshLease does.
//   - RefreshLease extends the lease to ttl from now if token holds it and it
//     has not expired, and returns an error wrapping certcache.ErrLeaseLost otherwise.
//   - ReleaseLease frees the lease if token holds it, and does nothing
//     (returns nil) otherwise.
//
// A store that cannot be reached returns an error, never success: an
// acquisition that may or may not have landed is reported as failed.
type LeaseDriver interface {
	AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error
	RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error
	ReleaseLease(ctx context.Context, name, token string) error
}

// Entry describes one stored key in a listing.
type Entry struct {
	Key     string    // the key exactly as it was Put
	Size    int64     // the stored value's size in bytes (as stored: sealed values count their overhead)
	ModTime time.Time // when the value was last written, by the store's clock; zero if the store does not keep it
}

// ListDriver is the optional capability of a driver to list the keys of its
// namespace. List yields every key that begins with prefix ("" for all) —
// each exactly once, in no particular order — and never a lease or an
// internal key. It streams: a store of 100,000 keys is read in pages, never
// held in memory at once. It stops at the first error, which it yields with
// a zero Entry, and when ctx ends or the caller stops ranging.
type ListDriver interface {
	List(ctx context.Context, prefix string) iter.Seq2[Entry, error]
}

// KeyListDriver is the optional capability of a driver to list keys
// alone, where List's sizes or times cost more round trips (Redis asks for
// each page's sizes with a second command). ListKeys yields the keys List
// would yield, on List's terms. A memory front's preload lists with it.
type KeyListDriver interface {
	ListKeys(ctx context.Context, prefix string) iter.Seq2[string, error]
}

// GetManyDriver is the optional capability of a driver to read many keys in
// one round trip (Redis MGET, a SQL IN list), where Get takes one per key.
// NewCache finds it as it finds LeaseDriver; GetMany uses it.
//
// GetMany reads keys and calls found(i, value) for each keys[i] that exists,
// at most once per index, in any order, from one goroutine at a time, before
// it returns; value is found's to keep. A key that does not exist is not
// reported. The portable layer hands it at most getManyChunk distinct valid
// keys per call, under the per-call timeout. A store that fails returns an
// error, never a partial answer: what found was told before is then
// discarded, so that no missing report can stand for a failure.
type GetManyDriver interface {
	GetMany(ctx context.Context, keys []string, found func(i int, value []byte)) error
}

// LeaseInfo describes one lease in a listing of leases.
type LeaseInfo struct {
	Name   string // the lease's name
	Holder string // the holder's token
	// Expires is when the lease runs out, as the store judges it (its
	// remaining time by the store's clock, added to this machine's clock
	// at the listing): before now for a lease that has expired but is
	// still stored. Zero if the lease never expires (a Redis key without
	// an expiry, written by something other than certcache).
	Expires time.Time
}

// LeaseAdminDriver is the optional capability of a driver to show and
// break the leases of its namespace, for an operator facing a stuck lock
// (certcache leases, certcache unlock). Expiry is judged as AcquireLease
// judges it, by the store's clock.
//
//   - ListLeases yields every lease whose name begins with prefix ("" for
//     all) and that its holder has not released, expired ones included
//     where the store keeps them, each once and in no particular order. It
//     never yields a cache key. It stops at the first error, which it
//     yields with a zero LeaseInfo, and when ctx ends or the caller stops.
//   - BreakLease frees the lease called name whoever holds it. Without
//     force it frees only a lease that has expired, and returns an error
//     wrapping certcache.ErrLeaseHeld for one that has not. Breaking a lease that
//     does not exist (or was released) does nothing and returns nil.
type LeaseAdminDriver interface {
	ListLeases(ctx context.Context, prefix string) iter.Seq2[LeaseInfo, error]
	BreakLease(ctx context.Context, name string, force bool) error
}

// WatchDriver is the optional capability of a driver to tell when keys
// change: a store that pushes (Redis pub/sub, PostgreSQL LISTEN/NOTIFY,
// inotify, process memory). Waiters for a key another node is writing (the
// certificate of an order, the account key) wake on the push instead of
// polling; see WatchKey.
//
// Watch subscribes to the changes of the driver's namespace and calls ready
// once the subscription is in place: every Put or Delete of a key that
// completes after ready, through any Cache on the same store in any
// process, calls changed with that key soon after it completes. changed
// with "" means that any key may have changed. Watch returns when ctx ends
// (with ctx's error) or when the subscription fails (with why); the
// portable layer subscribes again, and meanwhile waiters poll. An error
// matching certcache.ErrUnsupported means that this store cannot push (a driver
// shared by several kinds of store): waiters poll, and Watch is not called
// again. A notification may be lost (a connection that drops between a
// write and its delivery): waiters still poll, more slowly, while the push
// is up.
//
// The portable layer calls Watch from one goroutine per Cache, started by
// the first waiter and ended by Close; changed and ready must not block.
type WatchDriver interface {
	Watch(ctx context.Context, ready func(), changed func(key string)) error
}

// WatchProbe is a payload no key can be (keys hold no control
// characters): a driver's Watch may send it through the store, as a Put
// sends a key, and wait for it before it calls ready, so that a push that
// subscribes but never delivers (a proxy, a pooler) leaves waiters polling.
// Drivers pass it to no waiter.
const WatchProbe = "\x01certcache-watch-probe"
