package encrypt

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/urlquery"
)

// URL parameters; certcache's knownParams lists the same names.
const (
	paramKey     = "encryption_key"
	paramKeys    = "encryption_keys"
	paramMigrate = "encryption_migrate"
)

func init() {
	hook.RegisterWrapper(hook.Wrapper{
		Params: []string{paramKey, paramKeys, paramMigrate},
		Rank:   hook.RankEncryption,
		Wrap:   wrapURL,
	})
}

// wrapURL is the hook.Wrapper Wrap func. certcache.Open redacts the
// values of parameters named like keys from its errors; the values here are
// references, and the messages below never quote them anyway.
func wrapURL(_ context.Context, c hook.Cache, params url.Values) (hook.Cache, error) {
	kr, o, err := parseParams(params)
	if err != nil {
		return nil, err
	}
	return New(c, kr, o)
}

// parseParams reads the encryption parameters; errors wrap
// certcache.ErrInvalidURL.
func parseParams(params url.Values) (*Keyring, *Options, error) {
	bad := func(err error) error { return fmt.Errorf("%w: %w", certcache.ErrInvalidURL, err) }
	q := urlquery.New(params)
	if !q.Has(paramKey) {
		return nil, nil, bad(fmt.Errorf("%w: %s and %s need %s=env:NAME or file:PATH (the primary key)",
			urlquery.ErrParam, paramKeys, paramMigrate, paramKey))
	}
	primary := q.String(paramKey)
	var older []string
	for _, v := range q.Strings(paramKeys) {
		for _, ref := range strings.Split(v, ",") {
			if ref == "" {
				q.Fail("%s has an empty entry", paramKeys)
				continue
			}
			older = append(older, ref)
		}
	}
	o := &Options{Migrate: q.Bool(paramMigrate, false)}
	if err := q.Err(); err != nil {
		return nil, nil, bad(err)
	}
	if primary == "" {
		return nil, nil, bad(fmt.Errorf("%w: %s is empty; want env:NAME or file:PATH", urlquery.ErrParam, paramKey))
	}
	k, err := LoadKey(primary)
	if err != nil {
		return nil, nil, bad(fmt.Errorf("%s: %w", paramKey, err))
	}
	raws := [][]byte{k}
	defer func() {
		for _, r := range raws {
			clear(r)
		}
	}()
	for _, ref := range older {
		k, err := LoadKey(ref)
		if err != nil {
			return nil, nil, bad(fmt.Errorf("%s: %w", paramKeys, err))
		}
		raws = append(raws, k)
	}
	kr, err := NewKeyring(raws[0], raws[1:]...)
	if err != nil {
		return nil, nil, bad(err)
	}
	return kr, o, nil
}
