package certcache

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache/internal/hook"
	"golang.org/x/crypto/acme/autocert"
)

// getManyChunk bounds the keys of one driver GetMany call: one statement
// or command of a few MiB at most (a certificate with its key is 1–5 KiB),
// far below the limits of the stores (SQLite's 32,766 parameters, MySQL's
// max_allowed_packet, Redis's 512 MiB replies), and one per-call timeout
// for a thousand values: a memory front's preload of a thousand names
// reads them in one round trip.
const getManyChunk = 1000

// getManyParallel bounds the Gets in flight for one GetMany of a cache
// whose driver has no driver.GetManyDriver (file, S3, Azure). A memory front's
// preload runs up to four GetMany at once: sixteen Gets, its concurrency
// before batches, below the connection pools (ten per CPU) so that
// handshakes still find a connection.
const getManyParallel = 4

// GetMany reads keys from c in as few round trips as its backend allows:
// values[i] is keys[i]'s value, or nil if it does not exist. It is for bulk
// reads (a preload, cp) and takes no order lease; a failure is an error,
// never a key reported missing.
func GetMany(ctx context.Context, c Cache, keys []string) ([][]byte, error) {
	c = Uncoordinated(c)
	if mg, ok := c.(hook.ManyGetter); ok {
		return mg.GetMany(ctx, keys)
	}
	return getEach(ctx, c, keys, getManyParallel)
}

// readsInBatches (hook.ReadsInBatches) reports whether GetMany reads c's keys in batches, a few
// hundred per round trip: whether the driver beneath c (looking through
// wrappers, as List does) has driver.GetManyDriver. A caller that reads keys one
// batch at a time can then size its batches: over a backend without it,
// GetMany of one key is a Get.
func readsInBatches(c hook.Cache) bool {
	p := findPortable(c)
	if p == nil {
		return false
	}
	_, ok := p.d.(driver.GetManyDriver)
	return ok
}

// getEach reads keys with c.Get, parallel at a time, and stops at the
// first failure.
func getEach(ctx context.Context, c autocert.Cache, keys []string, parallel int) ([][]byte, error) {
	values := make([][]byte, len(keys))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg       sync.WaitGroup
		next     atomic.Int64
		mu       sync.Mutex
		firstErr error
	)
	for range min(parallel, len(keys)) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(len(keys)) && ctx.Err() == nil; i = next.Add(1) - 1 {
				v, err := c.Get(ctx, keys[i])
				if err == autocert.ErrCacheMiss { //nolint:errorlint // the contract's bare sentinel
					continue
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					cancel() // the others' errors are ours: firstErr is the cause
					return
				}
				if v == nil {
					v = []byte{}
				}
				values[i] = v
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	if err := ctx.Err(); err != nil {
		// The caller's context ended: keys not yet read are not missing.
		return nil, newError("", "get many", "", err)
	}
	return values, nil
}

var _ hook.ManyGetter = (*portable)(nil)

// GetMany implements hook.ManyGetter: with the driver's driver.GetManyDriver, chunk by
// chunk, each under the per-call timeout and the breaker; without it, with
// parallel Gets.
func (c *portable) GetMany(ctx context.Context, keys []string) ([][]byte, error) {
	if c.closed.Load() {
		return nil, newError(c.backend, "get many", "", ErrClosed)
	}
	for _, k := range keys {
		if err := ValidateKey(k); err != nil {
			return nil, newError(c.backend, "get many", k, err)
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, newError(c.backend, "get many", "", err)
	}
	gd, ok := c.d.(driver.GetManyDriver)
	if !ok {
		parallel := getManyParallel
		if c.neverBlocks {
			parallel = 1 // memory answers at once: goroutines only cost
		}
		values, err := getEach(ctx, c, keys, parallel)
		var e *Error
		if errors.As(err, &e) && e.Backend == "" {
			e.Backend = c.backend
		}
		return values, err
	}
	// Each distinct key is asked for once; duplicates share its value.
	first := make(map[string]int, len(keys))
	distinct := make([]string, 0, len(keys))
	for _, k := range keys {
		if _, dup := first[k]; !dup {
			first[k] = len(distinct)
			distinct = append(distinct, k)
		}
	}
	found := make([][]byte, len(distinct))
	for lo := 0; lo < len(distinct); lo += getManyChunk {
		chunk := distinct[lo:min(lo+getManyChunk, len(distinct))]
		if err := c.getChunk(ctx, gd, chunk, found[lo:lo+len(chunk)]); err != nil {
			return nil, err
		}
	}
	values := make([][]byte, len(keys))
	given := make([]bool, len(distinct))
	for i, k := range keys {
		j := first[k]
		values[i] = found[j]
		if given[j] && values[i] != nil {
			values[i] = bytes.Clone(values[i]) // each slice is the caller's own
		}
		given[j] = true
	}
	return values, nil
}

// getChunk reads chunk with gd into values (values[i] for chunk[i]).
func (c *portable) getChunk(ctx context.Context, gd driver.GetManyDriver, chunk []string, values [][]byte) error {
	st, err := c.brk.admit("get many", "")
	if err != nil {
		return err
	}
	cctx, cancel := c.callContext(ctx)
	defer cancel()
	err = gd.GetMany(cctx, chunk, func(i int, v []byte) {
		if i < 0 || i >= len(values) || values[i] != nil {
			return // a driver's mistake must not corrupt another key
		}
		if v == nil {
			v = []byte{} // found: a hit, even empty
		}
		values[i] = v
	})
	if err == nil && ctx.Err() != nil {
		// An answer seen after the caller gave up is not trusted: a key
		// not reported may only not have been read.
		err = ctx.Err()
	}
	if err != nil {
		clear(values)
		if errors.Is(err, autocert.ErrCacheMiss) {
			// A driver has no business reporting a miss for a batch;
			// never let it reach a caller that compares with ==.
			err = fmt.Errorf("batch read reported a miss: %v", err)
		}
		return c.brk.failed(ctx, st, c.fail(ctx, cctx, "get many", "", err))
	}
	return nil
}
