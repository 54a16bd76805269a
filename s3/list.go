package s3

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"iter"
	"math"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

// keyMeta is the user metadata (x-amz-meta-certcache-key) in which Put
// records the whole key of an object whose name was shortened, so that List
// can report the key exactly. Its value is the key in unpadded base64url: a
// 1024-byte key fits in S3's 2 KB of user metadata, which percent-encoding
// would not.
const keyMeta = "certcache-key"

// listPageSize is the number of objects asked for per ListObjectsV2 page:
// S3's maximum, so that a large namespace takes few round trips while a page
// stays small in memory (about 1000 names of at most 1 KB).
const listPageSize = 1000

// shortenedKeep is how many bytes of a key's encoding a shortened name
// always keeps: keyname.Encode replaces what follows with "~" and a SHA-256
// in hex (65 bytes) and may back off 2 more bytes so as not to cut an
// escape. keyname.MinMax exceeds 67, so this bound is safe.
func (d *driver) shortenedKeep() int { return d.segMax - keyname.MinMax }

func encodeKeyMeta(key string) string { return base64.RawURLEncoding.EncodeToString([]byte(key)) }

var _ ccdriver.ListDriver = (*driver)(nil)

// List lists the namespace one ListObjectsV2 page at a time. The delimiter
// "/" keeps it inside the namespace: a key's name never holds a "/", so
// anything deeper belongs to a nested prefix, which S3 folds into a common
// prefix that List ignores. The user's prefix is encoded as keys are, which
// keyname.Encode does byte by byte, so the encoded prefix is a prefix of the
// encoding of every key that begins with it; only shortened names may keep
// less of it, so a long prefix is cut to what they keep, and the decoded
// keys are checked against the whole prefix.
func (d *driver) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		encoded := keyname.Encode(prefix, math.MaxInt)
		if keep := d.shortenedKeep(); len(encoded) > keep {
			encoded = encoded[:keep]
		}
		pages := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{
			Bucket:    &d.bucket,
			Prefix:    aws.String(d.prefix + encoded),
			Delimiter: aws.String("/"),
			MaxKeys:   aws.Int32(listPageSize),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(certcache.Entry{}, d.classify(err))
				return
			}
			for _, obj := range page.Contents {
				if err := ctx.Err(); err != nil {
					yield(certcache.Entry{}, err) // a page is long: stop within it
					return
				}
				key, ok, err := d.keyOf(ctx, aws.ToString(obj.Key))
				if err != nil {
					yield(certcache.Entry{}, err)
					return
				}
				if !ok || !strings.HasPrefix(key, prefix) {
					continue
				}
				e := certcache.Entry{Key: key, Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}
				if !yield(e, nil) {
					return
				}
			}
		}
	}
}

// keyOf returns the key stored under the object name, and false for an
// object that holds no key: a lease (its name begins with "."), an object
// someone else put under the prefix, or one deleted since it was listed.
// The name of a key is checked to be exactly what Put would write, so List
// reports only keys that Get can read.
func (d *driver) keyOf(ctx context.Context, name string) (string, bool, error) {
	seg, ok := strings.CutPrefix(name, d.prefix)
	if !ok || strings.HasPrefix(seg, ".") {
		return "", false, nil
	}
	key, hashed, err := keyname.Decode(seg)
	if err != nil {
		return "", false, nil
	}
	if hashed {
		var found bool
		if key, found, err = d.shortenedKey(ctx, name); err != nil || !found {
			return "", false, err
		}
	}
	if keyname.Encode(key, d.segMax) != seg {
		return "", false, nil
	}
	return key, true, nil
}

// shortenedKey reads the whole key of an object with a shortened name from
// its metadata: one HEAD request per such object, which only keys longer
// than about 190 encoded bytes need.
func (d *driver) shortenedKey(ctx context.Context, name string) (string, bool, error) {
	head, err := d.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &d.bucket, Key: &name})
	if err != nil {
		var nf *types.NotFound
		if errors.As(err, &nf) || isNoSuchKey(err) {
			return "", false, nil // deleted since the listing
		}
		return "", false, d.classify(fmt.Errorf("reading the key of object %q: %w", name, err))
	}
	v, ok := head.Metadata[keyMeta]
	if !ok {
		return "", false, fmt.Errorf("object %q has a shortened name but no %s metadata to tell its key (written before certcache recorded it? Put the key again)", name, keyMeta)
	}
	key, err := base64.RawURLEncoding.DecodeString(v)
	if err != nil {
		return "", false, fmt.Errorf("object %q: %s metadata: %w", name, keyMeta, err)
	}
	return string(key), true, nil
}
