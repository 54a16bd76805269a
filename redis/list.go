package redis

import (
	"context"
	"iter"
	"strings"
	"sync"

	"github.com/certcache/certcache"
	ccdriver "github.com/certcache/certcache/driver"
	goredis "github.com/redis/go-redis/v9"
)

// scanCount is SCAN's COUNT: about how many keys of the keyspace each page
// examines, whatever the namespace (a listing walks the whole keyspace of
// each node, other namespaces' keys included). Each page is a round trip,
// and a memory front's preload behind 10 ms of latency spends most of its
// time in the listing: a thousand took twelve pages for a keyspace of
// 11,000 keys, five thousand three, this one. A page's reply and its STRLEN
// pipeline stay under a megabyte of keys, and Redis examines 16,384 keys in
// about a millisecond.
const scanCount = 16384

var _ ccdriver.ListDriver = (*driver)(nil)

// scanner is what List needs of a node: *goredis.Client has it.
type scanner interface {
	ScanType(ctx context.Context, cursor uint64, match string, count int64, keyType string) *goredis.ScanCmd
	Pipelined(ctx context.Context, fn func(goredis.Pipeliner) error) ([]goredis.Cmder, error)
}

// List implements driver.ListDriver with SCAN ... MATCH PREFIX:* TYPE
// string on every node that holds keys (each master of a cluster, each shard
// of a ring), one node after the other so that one page is in memory at a
// time. Sizes come from a pipelined STRLEN per page. Redis keeps no write
// time, so ModTime is zero.
func (d *driver) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		nodes, err := d.scanNodes(ctx)
		if err != nil {
			yield(certcache.Entry{}, classify(err))
			return
		}
		match := globEscape(d.prefix+prefix) + "*"
		for _, n := range nodes {
			if !d.listNode(ctx, n, match, yield) {
				return
			}
		}
	}
}

var _ ccdriver.KeyListDriver = (*driver)(nil)

// ListKeys implements driver.KeyListDriver: List without the STRLEN
// pipelines, one round trip per SCAN page. A key deleted while the listing
// runs may be listed still (SCAN guarantees only the keys that exist from
// its start to its end); a Get of it is then a miss.
func (d *driver) ListKeys(ctx context.Context, prefix string) iter.Seq2[string, error] {
	return func(yield func(string, error) bool) {
		nodes, err := d.scanNodes(ctx)
		if err != nil {
			yield("", classify(err))
			return
		}
		match := globEscape(d.prefix+prefix) + "*"
		for _, n := range nodes {
			for cursor, last := uint64(0), false; !last; {
				if err := ctx.Err(); err != nil {
					yield("", err)
					return
				}
				// A single command, as GetMany's MGET: a preload then reads
				// on the connection its listing opened, of the pool of
				// single commands (go-redis gives pipelines a pool of their
				// own, with buffers of 256 KiB a connection, not 64).
				keys, next, err := n.ScanType(ctx, cursor, match, scanCount, "string").Result()
				if err != nil {
					yield("", classify(err))
					return
				}
				cursor, last = next, next == 0
				for _, k := range d.ours(keys) {
					if err := ctx.Err(); err != nil {
						yield("", err)
						return
					}
					if !yield(k[len(d.prefix):], nil) {
						return
					}
				}
			}
		}
	}
}

// scanNodes returns the nodes whose keyspaces together hold every key: the
// masters of a cluster (replicas hold copies), the shards of a ring, or the
// client itself.
func (d *driver) scanNodes(ctx context.Context) ([]scanner, error) {
	var each func(context.Context, func(context.Context, *goredis.Client) error) error
	switch c := d.client.(type) {
	case *goredis.ClusterClient:
		each = c.ForEachMaster
	case *goredis.Ring:
		each = c.ForEachShard
	default:
		return []scanner{d.client}, nil
	}
	// ForEachMaster and ForEachShard call fn concurrently; fn only collects
	// the node clients, which List then scans in turn.
	var (
		mu    sync.Mutex
		nodes []scanner
	)
	err := each(ctx, func(_ context.Context, c *goredis.Client) error {
		mu.Lock()
		nodes = append(nodes, c)
		mu.Unlock()
		return nil
	})
	return nodes, err
}

// listNode yields the entries of one node's keyspace that match, page by
// page. It returns false when the listing must stop: the consumer stopped,
// or an error was yielded.
//
// On a single server (n is the driver's client), one pipeline asks for the
// sizes of a page and for the next page at once: P pages take P+1 round
// trips, on one connection. On a cluster's master or a ring's shard, SCAN
// goes to the node and the STRLENs through the driver's client, which
// routes each to the node that owns the key now, following a cluster's
// redirections: two round trips per page.
func (d *driver) listNode(ctx context.Context, n scanner, match string, yield func(certcache.Entry, error) bool) bool {
	var (
		together = n == scanner(d.client)
		page     []string // the keys whose sizes are asked next
		cursor   uint64
		last     bool              // page is the last one
		entries  []certcache.Entry // reused from page to page
	)
	for len(page) > 0 || !last {
		if err := ctx.Err(); err != nil {
			yield(certcache.Entry{}, err)
			return false
		}
		// TYPE string: the values this package writes are strings; a hash
		// or a set someone else put in the namespace is not a cache entry
		// (Get could not read it either).
		var scan *goredis.ScanCmd
		scanNext := func(p goredis.Pipeliner) {
			if !last {
				scan = p.ScanType(ctx, cursor, match, scanCount, "string")
			}
		}
		var err error
		if together {
			entries, err = d.sizes(ctx, page, entries[:0], scanNext)
		} else {
			entries, err = d.sizes(ctx, page, entries[:0], nil)
			if err == nil && !last {
				_, err = n.Pipelined(ctx, func(p goredis.Pipeliner) error { scanNext(p); return nil })
			}
		}
		if err == nil && scan != nil {
			err = scan.Err()
		}
		if err != nil {
			yield(certcache.Entry{}, classify(err))
			return false
		}
		for _, e := range entries {
			if err := ctx.Err(); err != nil {
				yield(certcache.Entry{}, err)
				return false
			}
			if !yield(e, nil) {
				return false
			}
		}
		page = nil
		if scan != nil {
			page, cursor = scan.Val()
			last = cursor == 0
		}
	}
	return true
}

// sizes turns the keys of one SCAN page into entries, appended to dst: it
// drops what is not a cache key of this namespace and asks for every
// value's length in one pipeline, to which also adds its own commands (the
// next SCAN). Keys deleted since the SCAN are dropped too.
func (d *driver) sizes(ctx context.Context, keys []string, dst []certcache.Entry, also func(goredis.Pipeliner)) ([]certcache.Entry, error) {
	kept := d.ours(keys)
	if len(kept) == 0 && also == nil {
		return dst, nil
	}
	lens := make([]*goredis.IntCmd, len(kept))
	// The driver's client routes each STRLEN to the node that owns the key
	// now, following a cluster's redirections.
	if _, err := d.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range kept {
			lens[i] = p.StrLen(ctx, k)
		}
		if also != nil {
			also(p)
		}
		return nil
	}); err != nil && !onlyWrongType(lens) {
		return dst, err
	}
	// STRLEN of a missing key is 0, as is that of an empty value: tell them
	// apart for the few keys of length 0, so that a key deleted since the
	// SCAN is not listed as an empty value.
	var empty []string
	for i, c := range lens {
		if c.Err() == nil && c.Val() == 0 {
			empty = append(empty, kept[i])
		}
	}
	gone, err := d.missing(ctx, empty)
	if err != nil {
		return dst, err
	}
	for i, c := range lens {
		if c.Err() != nil || (c.Val() == 0 && gone[kept[i]]) {
			continue // a key turned into another type since the SCAN, or deleted
		}
		dst = append(dst, certcache.Entry{Key: kept[i][len(d.prefix):], Size: c.Val()})
	}
	return dst, nil
}

// ours returns the keys of a SCAN page that are cache keys of this
// namespace, in keys' own array.
func (d *driver) ours(keys []string) []string {
	kept := keys[:0]
	for _, k := range keys {
		// The MATCH pattern already holds the namespace prefix; what does
		// not pass as a key is a lease of an enclosed namespace ("a:b\x00
		// lease:…" seen from "a") or something a cache could not Get.
		if strings.HasPrefix(k, d.prefix) && certcache.ValidateKey(k[len(d.prefix):]) == nil {
			kept = append(kept, k)
		}
	}
	return kept
}

// onlyWrongType reports whether the commands that failed all failed with
// WRONGTYPE: keys that changed type between SCAN and STRLEN, which are no
// longer cache entries rather than a failure of the listing.
func onlyWrongType(cmds []*goredis.IntCmd) bool {
	found := false
	for _, c := range cmds {
		if err := c.Err(); err != nil {
			if !strings.HasPrefix(err.Error(), "WRONGTYPE") {
				return false
			}
			found = true
		}
	}
	return found
}

// missing returns which of keys do not exist.
func (d *driver) missing(ctx context.Context, keys []string) (map[string]bool, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	exists := make([]*goredis.IntCmd, len(keys))
	if _, err := d.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range keys {
			exists[i] = p.Exists(ctx, k)
		}
		return nil
	}); err != nil {
		return nil, err
	}
	gone := make(map[string]bool)
	for i, c := range exists {
		if c.Val() == 0 {
			gone[keys[i]] = true
		}
	}
	return gone, nil
}

// globEscape quotes s for a SCAN MATCH pattern, in which *, ?, [, ] and \
// are special; Redis's matcher takes a backslash to mean "the next byte
// literally". Namespace prefixes and listing prefixes may hold any of them.
func globEscape(s string) string {
	if !strings.ContainsAny(s, `*?[]\`) {
		return s
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '*', '?', '[', ']', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		default:
			b.WriteByte(c)
		}
	}
	return b.String()
}
