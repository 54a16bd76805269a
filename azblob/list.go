package azblob

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

// defaultListPage is the number of blobs List asks for per request: the
// service's maximum is 5000, and a smaller page keeps the first entries
// coming sooner and a page's memory small.
const defaultListPage = 1000

// shortenedPlain is how much of a shortened name is the plain encoding:
// keyname cuts at most 2 bytes below max - 65 (a "~" and 64 hex digits) so
// as not to split an escape.
const shortenedPlain = 1 + 64 + 2

// List lists the blobs directly under the prefix, page by page, with the
// delimiter "/": the service folds everything deeper — leases under
// "~lease/", the blobs of a cache whose prefix extends ours — into one
// BlobPrefix entry each, so a listing never pages through another
// namespace. The service filters on the encoded form of prefix where the
// encoding of a key keeps it (see serverPrefix); every decoded key is
// checked against prefix again.
func (d *driver) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		pager := d.cc.NewListBlobsHierarchyPager("/", &container.ListBlobsHierarchyOptions{
			Prefix:     ptr(d.serverPrefix(prefix)),
			MaxResults: ptr(d.listPage),
			// Metadata holds the key of a blob whose name is shortened.
			Include: container.ListBlobsInclude{Metadata: true},
		})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				if d.create && hasCode(err, bloberror.ContainerNotFound) {
					return // created on first use: nothing is stored yet
				}
				yield(certcache.Entry{}, d.wrap(err))
				return
			}
			if page.Segment == nil {
				continue
			}
			for _, item := range page.Segment.BlobItems {
				if err := ctx.Err(); err != nil {
					yield(certcache.Entry{}, err)
					return
				}
				if item.Name == nil {
					continue
				}
				key, ok, err := d.keyOf(*item.Name, item.Metadata)
				if err != nil {
					yield(certcache.Entry{}, err)
					return
				}
				if !ok || !strings.HasPrefix(key, prefix) {
					continue
				}
				e := certcache.Entry{Key: key}
				if p := item.Properties; p != nil {
					if p.ContentLength != nil {
						e.Size = *p.ContentLength
					}
					if p.LastModified != nil {
						e.ModTime = *p.LastModified
					}
				}
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// serverPrefix returns the blob-name prefix that every blob of a key
// beginning with prefix starts with. The percent-encoding maps byte by
// byte, a leading dot included, so the encoding of prefix starts the
// encoding of every such key, with two exceptions handled here: the final
// dot of a key is escaped, so a prefix's final dot is left to the check
// after decoding; and a shortened name keeps only the start of the
// encoding, so the prefix is cut to what every shortened name keeps.
func (d *driver) serverPrefix(prefix string) string {
	enc := escapeAll(prefix)
	enc = strings.TrimSuffix(enc, ".")
	if keep := d.maxName - shortenedPlain; len(enc) > keep {
		enc = enc[:keep]
	}
	return d.prefix + enc
}

// keyOf returns the key that blob name holds. ok is false for a blob that
// Put did not write under its name (a foreign or hand-made blob): Get of
// any key would not read it, so it is not listed. A shortened name takes
// its key from metadata; one without it (written before keys were
// recorded) is an error, since the listing could not be complete.
func (d *driver) keyOf(name string, md map[string]*string) (key string, ok bool, err error) {
	rest, found := strings.CutPrefix(name, d.prefix)
	if !found || strings.IndexByte(rest, '/') >= 0 {
		return "", false, nil
	}
	key, hashed, err := keyname.Decode(rest)
	if err != nil {
		return "", false, nil
	}
	if hashed {
		recorded := meta(md, keyMeta)
		if recorded == "" {
			return "", false, fmt.Errorf("blob %q has a shortened name and no recorded key (%s metadata); Put its key again to record it", name, keyMeta)
		}
		if key, hashed, err = keyname.Decode(recorded); err != nil || hashed {
			return "", false, nil
		}
	}
	// Only the name Put gives key is key's blob: this also refuses a
	// recorded key that does not match the name.
	if d.blobName(key) != name {
		return "", false, nil
	}
	return key, true, nil
}
