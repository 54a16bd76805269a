package gs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"iter"
	"math"
	"strings"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
	"google.golang.org/api/iterator"
)

// listPageSize is the number of objects asked for per page: GCS's
// maximum, so that a large namespace takes few round trips while a page
// stays small in memory.
const listPageSize = 1000

// shortenedKeep is how many bytes of a key's encoding a shortened name
// always keeps: keyname.Encode replaces what follows with "~" and a SHA-256
// in hex (65 bytes) and may back off 2 more bytes so as not to cut an
// escape. keyname.MinMax exceeds 67, so this bound is safe.
func (d *driver) shortenedKeep(segMax int) int { return segMax - keyname.MinMax }

// objects iterates over the objects directly under prefix (delimiter "/":
// anything deeper belongs to a nested prefix, which GCS folds into one
// entry that is skipped), reading only the fields named.
func (d *driver) objects(ctx context.Context, prefix string, fields ...string) func(yield func(*storage.ObjectAttrs, error) bool) {
	return func(yield func(*storage.ObjectAttrs, error) bool) {
		q := &storage.Query{Prefix: prefix, Delimiter: "/", Projection: storage.ProjectionNoACL}
		if err := q.SetAttrSelection(append([]string{"Name"}, fields...)); err != nil {
			yield(nil, err)
			return
		}
		it := d.bkt.Objects(ctx, q)
		it.PageInfo().MaxSize = listPageSize
		for {
			attrs, err := it.Next()
			if errors.Is(err, iterator.Done) {
				return
			}
			if err != nil {
				yield(nil, d.classify(err))
				return
			}
			if attrs.Name == "" {
				continue // a nested prefix
			}
			if !yield(attrs, nil) {
				return
			}
		}
	}
}

// List lists the namespace page by page. The user's prefix is encoded as
// keys are, which keyname.Encode does byte by byte, so the encoded prefix
// is a prefix of the encoding of every key that begins with it; only
// shortened names may keep less of it, so a long prefix is cut to what
// they keep, and the decoded keys are checked against the whole prefix.
func (d *driver) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		encoded := keyname.Encode(prefix, math.MaxInt)
		if keep := d.shortenedKeep(d.segMax); len(encoded) > keep {
			encoded = encoded[:keep]
		}
		for attrs, err := range d.objects(ctx, d.prefix+encoded, "Size", "Updated", "Metadata") {
			if err == nil {
				err = ctx.Err() // a page is long: stop within it
			}
			if err != nil {
				yield(certcache.Entry{}, err)
				return
			}
			key, ok, err := d.keyOf(attrs)
			if err != nil {
				yield(certcache.Entry{}, err)
				return
			}
			if !ok || !strings.HasPrefix(key, prefix) {
				continue
			}
			// An emulator that keeps no update time reports none (zero):
			// the Entry's documented "not kept".
			if !yield(certcache.Entry{Key: key, Size: attrs.Size, ModTime: attrs.Updated}, nil) {
				return
			}
		}
	}
}

// keyOf returns the key stored under the listed object, and false for an
// object that holds no key: a lease or clock object (its name begins with
// "."), or an object someone else put under the prefix. The name of a key
// is checked to be exactly what Put would write, so List reports only
// keys that Get can read.
func (d *driver) keyOf(attrs *storage.ObjectAttrs) (string, bool, error) {
	seg, ok := strings.CutPrefix(attrs.Name, d.prefix)
	if !ok || strings.HasPrefix(seg, ".") {
		return "", false, nil
	}
	key, hashed, err := keyname.Decode(seg)
	if err != nil {
		return "", false, nil
	}
	if hashed {
		v, ok := attrs.Metadata[keyMeta]
		if !ok {
			return "", false, fmt.Errorf("object %q has a shortened name but no %s metadata to tell its key (Put the key again)", attrs.Name, keyMeta)
		}
		b, err := base64.RawURLEncoding.DecodeString(v)
		if err != nil {
			return "", false, fmt.Errorf("object %q: %s metadata: %w", attrs.Name, keyMeta, err)
		}
		key = string(b)
	}
	if keyname.Encode(key, d.segMax) != seg {
		return "", false, nil
	}
	return key, true, nil
}
