package gs

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	ccdriver "github.com/certcache/certcache/driver"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/callctx"
	"github.com/certcache/certcache/internal/keymemo"
	"github.com/certcache/certcache/internal/keyname"
	"github.com/certcache/certcache/internal/readall"
	"golang.org/x/crypto/acme/autocert"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/iterator"
)

const (
	// maxNameLen is GCS's limit on an object name, in bytes.
	maxNameLen = 1024
	// maxPrefixLen bounds a prefix, leaving room for the encoded key.
	maxPrefixLen = 512
)

// keyMeta is the metadata in which Put records the whole key of an object
// whose name was shortened, in unpadded base64url, for List.
const keyMeta = "certcache-key"

// driver is the driver.Driver over a GCS client and one bucket.
type driver struct {
	client *storage.Client
	bkt    *storage.BucketHandle
	bucket string
	prefix string // "" or ending in "/"
	segMax int    // the longest object name under prefix for a key

	// clock is how the store dates object versions (lease.go), learnt
	// from the first clock object: clockUnknown until then.
	clock atomic.Int32

	// closeClient closes a client built from a URL and its idle
	// connections; nil for a client the user handed to New.
	closeClient func() error

	// handles holds each key's object handle for Get: building one per
	// call costs the name and the handle's copy of the retry settings.
	handles keymemo.Memo[*storage.ObjectHandle]

	// bucketSeen is when a call last proved that the bucket exists (a
	// read or a write that succeeded, a listing), in callctx.Now's
	// nanoseconds; 0 if none has.
	bucketSeen atomic.Int64
}

// bucketTrust is how long after a call proved the bucket exists a 404 on
// a read is taken for a missing object without asking (see
// bucketExists). A bucket deleted within it makes a Get of a missing key
// a miss rather than an error; coordination's lease, an object in the same
// bucket, then fails, so no certificate is ordered on that miss.
const bucketTrust = time.Minute

// provedBucket records that a call has just proved the bucket exists. It
// writes only when the record is a tenth of bucketTrust old, so that hits
// on many goroutines do not all write one word.
func (d *driver) provedBucket() {
	if now := callctx.Now().UnixNano(); now-d.bucketSeen.Load() >= int64(bucketTrust/10) {
		d.bucketSeen.Store(now)
	}
}

// bucketTrusted reports whether a call proved the bucket exists within
// bucketTrust.
func (d *driver) bucketTrusted() bool {
	seen := d.bucketSeen.Load()
	return seen != 0 && callctx.Now().UnixNano()-seen < int64(bucketTrust)
}

var (
	_ ccdriver.Driver      = (*driver)(nil)
	_ ccdriver.LeaseDriver = (*driver)(nil)
	_ ccdriver.ListDriver  = (*driver)(nil)
)

func newDriver(client *storage.Client, bucket, prefix string) (*driver, error) {
	if err := checkBucket(bucket); err != nil {
		return nil, err
	}
	p, err := cleanPrefix(prefix)
	if err != nil {
		return nil, err
	}
	d := &driver{client: client, bucket: bucket, prefix: p, segMax: maxNameLen - len(p)}
	if client != nil {
		d.bkt = client.Bucket(bucket)
	}
	return d, nil
}

// checkBucket enforces GCS's bucket naming rules, so that a typo is
// reported by Open rather than by the first call.
func checkBucket(name string) error {
	bad := func(why string) error {
		return fmt.Errorf("%w: bucket %q: %s", certcache.ErrInvalidURL, name, why)
	}
	switch {
	case name == "":
		return fmt.Errorf("%w: no bucket (want gs://BUCKET/PREFIX)", certcache.ErrInvalidURL)
	case len(name) < 3 || len(name) > 222:
		return bad("want 3 to 63 characters (222 with dots)")
	case !strings.Contains(name, ".") && len(name) > 63:
		return bad("want at most 63 characters without dots")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return bad("want lowercase letters, digits, -, _ and .")
		}
	}
	if first, last := name[0], name[len(name)-1]; !alnum(first) || !alnum(last) {
		return bad("must start and end with a letter or digit")
	}
	return nil
}

func alnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

// cleanPrefix checks a prefix and returns it with one trailing slash, or "".
func cleanPrefix(p string) (string, error) {
	p = strings.TrimSuffix(p, "/")
	if p == "" {
		return "", nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: prefix %q: %s", certcache.ErrInvalidURL, p, why)
	}
	if len(p) > maxPrefixLen {
		return "", bad(fmt.Sprintf("%d bytes, limit %d", len(p), maxPrefixLen))
	}
	if err := certcache.ValidateKey(p); err != nil {
		return "", bad(err.Error())
	}
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "":
			return "", bad("empty path segment")
		case ".", "..":
			return "", bad("path segment " + seg)
		}
	}
	return p + "/", nil
}

// name returns the object name of key.
func (d *driver) name(key string) string { return d.prefix + keyname.Encode(key, d.segMax) }

// object returns the handle of key's object.
func (d *driver) object(key string) *storage.ObjectHandle { return d.bkt.Object(d.name(key)) }

func (d *driver) Get(ctx context.Context, key string) ([]byte, error) {
	obj := d.handles.Get(key, d.object)
	r, err := obj.NewReader(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		if !d.bucketTrusted() {
			if err := d.bucketExists(ctx, obj.ObjectName()); err != nil {
				return nil, err
			}
		}
		return nil, autocert.ErrCacheMiss
	}
	if err != nil {
		return nil, d.classify(err)
	}
	d.provedBucket()
	defer r.Close()
	data, err := readall.Sized(r, r.Attrs.Size)
	if err != nil {
		return nil, d.classify(fmt.Errorf("reading object: %w", err))
	}
	return data, nil
}

func (d *driver) Put(ctx context.Context, key string, data []byte) error {
	name := d.name(key)
	w := d.bkt.Object(name).NewWriter(ctx)
	// One request: the value is in memory, so the upload needs no
	// resumable session, and readers see the old value or the new one.
	w.ChunkSize = 0
	w.ContentType = "application/octet-stream"
	w.CRC32C, w.SendCRC32C = crc32.Checksum(data, crc32.MakeTable(crc32.Castagnoli)), true
	if strings.Contains(name[len(d.prefix):], "~") {
		// A shortened name has lost the end of the key; List reads it
		// back from here.
		w.Metadata = map[string]string{keyMeta: base64.RawURLEncoding.EncodeToString([]byte(key))}
	}
	if err := closeWriter(w, data); err != nil {
		return d.classifyWrite(err)
	}
	d.provedBucket()
	return nil
}

// closeWriter writes data and closes w, returning the first error.
func closeWriter(w *storage.Writer, data []byte) error {
	if _, err := w.Write(data); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

func (d *driver) Delete(ctx context.Context, key string) error {
	name := d.name(key)
	err := d.bkt.Object(name).Delete(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		// A missing object, or a missing bucket, which the 404 does not
		// tell apart.
		return d.bucketExists(ctx, name)
	}
	return d.classify(err)
}

// Close closes a client built from a URL, so that a closed cache leaves no
// connections or goroutines behind.
func (d *driver) Close() error {
	if d.closeClient != nil {
		return d.closeClient()
	}
	return nil
}

// bucketExists settles a 404 for the object called name: GCS answers 404
// for a missing object and for a missing bucket alike, and only the first
// is a miss. It lists name (storage.objects.list, as the policy grants),
// which fails with ErrBucketNotExist for a missing bucket.
func (d *driver) bucketExists(ctx context.Context, name string) error {
	it := d.bkt.Objects(ctx, &storage.Query{Prefix: name})
	it.PageInfo().MaxSize = 1
	if _, err := it.Next(); err != nil && !errors.Is(err, iterator.Done) {
		return d.classify(err)
	}
	d.provedBucket()
	return nil
}

// classify names the bucket when it is missing, says what a refusal
// means, and marks 503, 504 and 429 answers as unavailability; network
// errors are classified by certcache itself.
func (d *driver) classify(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, storage.ErrBucketNotExist) {
		return fmt.Errorf("bucket %q does not exist: %w", d.bucket, err)
	}
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		switch ge.Code {
		case http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
			return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%w (the credentials were refused, or lack storage.objects.get, create, delete or list on bucket %q)", err, d.bucket)
		}
	}
	return err
}

// classifyWrite is classify for an upload, whose 404 can only mean that
// the bucket is missing.
func (d *driver) classifyWrite(err error) error {
	if isStatus(err, http.StatusNotFound) {
		return fmt.Errorf("bucket %q does not exist: %w", d.bucket, err)
	}
	return d.classify(err)
}

// isStatus reports whether err is an error answer with HTTP status code.
func isStatus(err error, code int) bool {
	var ge *googleapi.Error
	return errors.As(err, &ge) && ge.Code == code
}
