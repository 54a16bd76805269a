package redis

import (
	"context"
	ccdriver "github.com/certcache/certcache/driver"
	"iter"
	"strings"
	"sync"

	"github.com/certcache/certcache"
	goredis "github.com/redis/go-redis/v9"
)

// scanCount is SCAN's COUNT: about how many keys of the keyspace each page
// examines, whatever the namespace (a listing walks the whole keyspace of
// each node, other namespaces' keys included). Five thousand keep a page's
// reply and its STRLEN pipeline to a few hundred kilobytes of keys, while a
// keyspace of 10,000 keys takes about three pages per node, each two round
// trips: a memory front's preload behind 10 ms of latency spent most of
// its time in the listing with a thousand (twelve pages for 11,000 keys).
const scanCount = 5000

var _ ccdriver.ListDriver = (*driver)(nil)

// scanner is what List needs of a node: *goredis.Client has it.
type scanner interface {
	ScanType(ctx context.Context, cursor uint64, match string, count int64, keyType string) *goredis.ScanCmd
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
func (d *driver) listNode(ctx context.Context, n scanner, match string, yield func(certcache.Entry, error) bool) bool {
	var (
		cursor  uint64
		entries []certcache.Entry // reused from page to page
	)
	for {
		if err := ctx.Err(); err != nil {
			yield(certcache.Entry{}, err)
			return false
		}
		// TYPE string: the values this package writes are strings; a hash
		// or a set someone else put in the namespace is not a cache entry
		// (Get could not read it either).
		keys, next, err := n.ScanType(ctx, cursor, match, scanCount, "string").Result()
		if err != nil {
			yield(certcache.Entry{}, classify(err))
			return false
		}
		entries, err = d.sizes(ctx, keys, entries[:0])
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
		if next == 0 {
			return true
		}
		cursor = next
	}
}

// sizes turns one SCAN page into entries, appended to dst: it drops what is
// not a cache key of this namespace and asks for every value's length in one
// pipeline. Keys deleted since the SCAN are dropped too.
func (d *driver) sizes(ctx context.Context, keys []string, dst []certcache.Entry) ([]certcache.Entry, error) {
	kept := keys[:0]
	for _, k := range keys {
		// The MATCH pattern already holds the namespace prefix; what does
		// not pass as a key is a lease of an enclosed namespace ("a:b\x00
		// lease:…" seen from "a") or something a cache could not Get.
		if strings.HasPrefix(k, d.prefix) && certcache.ValidateKey(k[len(d.prefix):]) == nil {
			kept = append(kept, k)
		}
	}
	if len(kept) == 0 {
		return dst, nil
	}
	lens := make([]*goredis.IntCmd, len(kept))
	// The driver's client routes each STRLEN to the node that owns the key
	// now, following a cluster's redirections.
	if _, err := d.client.Pipelined(ctx, func(p goredis.Pipeliner) error {
		for i, k := range kept {
			lens[i] = p.StrLen(ctx, k)
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
