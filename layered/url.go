package layered

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
)

// The URL parameters of the memory front.
const (
	paramMemory     = "memory"
	paramTTL        = "memory_ttl"
	paramMaxEntries = "memory_max_entries"
	paramMaxBytes   = "memory_max_bytes"
	paramPreload    = "memory_preload"
)

func init() {
	hook.RegisterWrapper(hook.Wrapper{
		Params: []string{paramMemory, paramTTL, paramMaxEntries, paramMaxBytes, paramPreload},
		Rank:   hook.RankFront,
		Wrap:   wrapURL,
	})
}

// wrapURL puts a Memory tier in front of c as params say.
func wrapURL(_ context.Context, c hook.Cache, params url.Values) (hook.Cache, error) {
	o, on, err := parseParams(params)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err)
	}
	if !on {
		return c, nil
	}
	return New(NewMemory(o), c)
}

// parseParams reads the memory parameters. on reports whether the front is
// wanted.
func parseParams(params url.Values) (o *MemoryOptions, on bool, err error) {
	q := urlquery.New(params)
	explicit := q.Has(paramMemory)
	on = q.Bool(paramMemory, true)
	o = &MemoryOptions{}
	others := false
	if q.Has(paramTTL) {
		others = true
		o.TTL = q.Duration(paramTTL, 0)
		if o.TTL == 0 && q.ReadErr() == nil {
			q.Fail("%s=0: want a positive duration such as 1m", paramTTL)
		}
	}
	if q.Has(paramMaxEntries) {
		others = true
		o.MaxEntries = q.Int(paramMaxEntries, 0)
		if o.MaxEntries == 0 && q.ReadErr() == nil {
			q.Fail("%s=0: want a positive number of entries", paramMaxEntries)
		}
	}
	if q.Has(paramMaxBytes) {
		others = true
		s := q.String(paramMaxBytes)
		if q.ReadErr() == nil {
			n, perr := parseBytes(s)
			if perr != nil {
				q.Fail("%s=%q: %v", paramMaxBytes, s, perr)
			}
			o.MaxBytes = n
		}
	}
	if q.Has(paramPreload) {
		others = true
		o.Preload = q.Bool(paramPreload, false)
	}
	if err := q.Err(); err != nil {
		return nil, false, err
	}
	if explicit && !on && others {
		return nil, false, fmt.Errorf("%w: memory=false with other memory_ parameters", urlquery.ErrParam)
	}
	return o, on, nil
}

// byteUnits are the units memory_max_bytes accepts, longest first.
var byteUnits = []struct {
	name string
	mult int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1e3}, {"MB", 1e6}, {"GB", 1e9},
	{"B", 1},
}

// parseBytes parses a positive size: "1048576", "64MiB", "500KB".
func parseBytes(s string) (int64, error) {
	num, mult := s, int64(1)
	for _, u := range byteUnits {
		if len(s) > len(u.name) && strings.EqualFold(s[len(s)-len(u.name):], u.name) {
			num, mult = strings.TrimSpace(s[:len(s)-len(u.name)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("want a positive size such as 67108864 or 64MiB")
	}
	return n * mult, nil
}
