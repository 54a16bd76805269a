package main

import (
	"context"
	"fmt"
	"io"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// rmResult is what rm did with one key.
type rmResult struct {
	Key    string `json:"key"`
	Result string `json:"result"` // "removed", "missing" or "failed"
	Error  string `json:"error,omitempty"`
}

// runRm is the rm command.
func runRm(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("rm", "[-f] [-json] URL KEY...",
		"Deletes each KEY from the cache. Deleting a certificate makes autocert order a\n"+
			"new one on the next handshake for its domain (running servers keep the one\n"+
			"they hold in memory, and a memory front its copy for up to memory_ttl).\n"+
			"Exit status 1 if a key could not be deleted, or (without -f) did not exist.", stdout, stderr)
	force := fs.Bool("f", false, "a key that does not exist is not an error")
	asJSON := fs.Bool("json", false, "print a JSON array of results")
	pos, code, ok := parseArgs(fs, args, 2, -1)
	if !ok {
		return code
	}
	c, closer, err := openCache(ctx, pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "certcache rm: %v\n", err)
		return exitFail
	}
	defer closer.Close()
	// Whether a key exists is asked below any encryption: a value that
	// does not open (sealed under a lost key) can still be deleted.
	raw := innermost(c)
	code = exitOK
	var results []rmResult
	for _, key := range pos[1:] {
		r := rmResult{Key: key, Result: "removed"}
		_, err := raw.Get(ctx, key)
		switch {
		case err == autocert.ErrCacheMiss:
			r.Result = "missing"
			if !*force {
				fmt.Fprintf(stderr, "certcache rm: %q: no such key\n", key)
				code = exitFail
			}
		case err != nil:
			r.Result, r.Error = "failed", err.Error()
		default:
			if err := c.Delete(ctx, key); err != nil {
				r.Result, r.Error = "failed", err.Error()
			}
		}
		if r.Error != "" {
			fmt.Fprintf(stderr, "certcache rm: %s\n", r.Error)
			code = exitFail
		}
		if r.Result == "removed" && !*asJSON {
			fmt.Fprintf(stdout, "removed %s\n", key)
		}
		results = append(results, r)
	}
	if *asJSON {
		if err := writeJSON(stdout, results); err != nil {
			return exitFail
		}
	}
	return code
}

// innermost returns the cache below every wrapper that exposes what it
// wraps (encryption, a layered stack's authority): the one that holds the
// bytes as stored.
func innermost(c certcache.Cache) certcache.Cache {
	for range 16 {
		switch w := c.(type) {
		case interface{ Unwrap() certcache.Cache }:
			c = w.Unwrap()
		case interface{ Unwrap() []certcache.Cache }:
			tiers := w.Unwrap()
			if len(tiers) == 0 {
				return c
			}
			c = tiers[len(tiers)-1]
		default:
			return c
		}
	}
	return c
}
