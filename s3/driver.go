package s3

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"net/http"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
	"github.com/certcache/certcache/internal/readall"
	"golang.org/x/crypto/acme/autocert"
)

const (
	// maxNameLen is S3's limit on an object name, in bytes.
	maxNameLen = 1024
	// maxSegmentLen is the longest encoded key: MinIO and other servers on
	// a file system refuse a path segment longer than 255 bytes.
	maxSegmentLen = 255
	// maxPrefixLen bounds a prefix, leaving room for the encoded key.
	maxPrefixLen = 512
)

// driver is the driver.Driver over an S3 client.
type driver struct {
	client *s3.Client
	bucket string
	prefix string // "" or ending in "/"
	segMax int    // the longest object name under prefix for a key or a lease
	sse    types.ServerSideEncryption
	kmsKey *string

	// closeIdle closes the idle connections of a client built from a URL;
	// nil for a client the user handed to New, which is theirs.
	closeIdle func()

	// fast is Get's path around the SDK's middleware (fastget.go), made
	// on first use; nil if the client needs the SDK's stack.
	fastOnce sync.Once
	fast     *fastGetter
}

var _ ccdriver.Driver = (*driver)(nil)

func newDriver(client *s3.Client, bucket string, o Options) (*driver, error) {
	if bucket == "" {
		return nil, fmt.Errorf("%w: no bucket", certcache.ErrInvalidURL)
	}
	prefix, err := cleanPrefix(o.Prefix)
	if err != nil {
		return nil, err
	}
	d := &driver{client: client, bucket: bucket, prefix: prefix, sse: o.SSE,
		segMax: min(maxSegmentLen, maxNameLen-len(prefix))}
	switch o.SSE {
	case "", types.ServerSideEncryptionAes256, types.ServerSideEncryptionAwsKms:
	default:
		return nil, fmt.Errorf("%w: sse=%q: want AES256 or aws:kms", certcache.ErrInvalidURL, o.SSE)
	}
	if o.SSEKMSKeyID != "" {
		if o.SSE != types.ServerSideEncryptionAwsKms {
			return nil, fmt.Errorf("%w: sse_kms_key_id needs sse=aws:kms", certcache.ErrInvalidURL)
		}
		d.kmsKey = aws.String(o.SSEKMSKeyID)
	}
	return d, nil
}

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
		switch {
		case seg == "":
			return "", bad("empty path segment")
		case seg == "." || seg == "..":
			return "", bad("path segment " + seg)
		case len(seg) > maxSegmentLen:
			return "", bad(fmt.Sprintf("path segment of %d bytes, limit %d", len(seg), maxSegmentLen))
		}
	}
	return p + "/", nil
}

// name returns the object name of key.
func (d *driver) name(key string) *string {
	return aws.String(d.prefix + keyname.Encode(key, d.segMax))
}

func (d *driver) Get(ctx context.Context, key string) ([]byte, error) {
	name := d.name(key)
	d.fastOnce.Do(func() { d.fast = newFastGetter(context.WithoutCancel(ctx), d.client, d.bucket) })
	if d.fast != nil {
		data, miss, fallback, err := d.fast.get(ctx, *name)
		switch {
		case miss:
			return nil, autocert.ErrCacheMiss
		case err != nil:
			return nil, fmt.Errorf("GetObject: %w", err)
		case !fallback:
			return data, nil
		}
	}
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: name})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, autocert.ErrCacheMiss
		}
		if apiCode(err) == "AccessDenied" {
			err = fmt.Errorf("%w (S3 also answers AccessDenied for a missing object when the caller lacks s3:ListBucket)", err)
		}
		return nil, d.classify(err)
	}
	defer out.Body.Close()
	data, err := readall.Sized(out.Body, aws.ToInt64(out.ContentLength))
	if err != nil {
		return nil, d.classify(fmt.Errorf("reading object: %w", err))
	}
	return data, nil
}

func (d *driver) Put(ctx context.Context, key string, data []byte) error {
	name := d.name(key)
	var meta map[string]string
	if strings.Contains((*name)[len(d.prefix):], "~") {
		// A shortened name has lost the end of the key; List reads it back
		// from here.
		meta = map[string]string{keyMeta: encodeKeyMeta(key)}
	}
	_, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:               &d.bucket,
		Key:                  name,
		Body:                 bytes.NewReader(data),
		ContentLength:        aws.Int64(int64(len(data))),
		ServerSideEncryption: d.sse,
		SSEKMSKeyId:          d.kmsKey,
		Metadata:             meta,
	})
	return d.classify(err)
}

func (d *driver) Delete(ctx context.Context, key string) error {
	_, err := d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: d.name(key)})
	if isNoSuchKey(err) {
		// S3 answers 204 for a missing object; some compatible servers 404.
		return nil
	}
	return d.classify(err)
}

// Close closes the idle connections of a client built from a URL, so that
// a closed cache leaves no sockets or goroutines behind (the transport
// would otherwise keep them for its 90 s idle timeout).
func (d *driver) Close() error {
	if d.closeIdle != nil {
		d.closeIdle()
	}
	return nil
}

// isNoSuchKey reports whether err says the object does not exist. Only the
// NoSuchKey code counts: a bare 404 may come from a wrong endpoint, and a
// missing bucket (NoSuchBucket) is a failure, not an empty cache.
func isNoSuchKey(err error) bool {
	var nsk *types.NoSuchKey
	return errors.As(err, &nsk) || apiCode(err) == "NoSuchKey"
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// classify marks 503 answers (SlowDown, a server starting or stopping) as
// unavailability, and names the bucket when it is missing; network errors
// are classified by certcache itself.
func (d *driver) classify(err error) error {
	var re *awshttp.ResponseError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &re) && re.HTTPStatusCode() == http.StatusServiceUnavailable:
		return fmt.Errorf("%w: %w", certcache.ErrUnavailable, err)
	case apiCode(err) == "NoSuchBucket":
		return fmt.Errorf("bucket %q: %w", d.bucket, err)
	}
	return err
}
