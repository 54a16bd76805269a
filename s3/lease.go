package s3

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

// Leases are small objects beside the keys, named leaseMark + the lease
// name encoded as keys are. A key's name never begins with "." (keyname
// encodes a leading dot) and never holds a "/", so a lease's name is never
// a key's, in this namespace or a nested one, and List skips it.
//
// The object's body records the holder's token and the TTL (and a random
// identifier of the write, see leaseBody); its LastModified is when it was last acquired or refreshed, by the store's
// clock, and it has expired once the store's clock is TTL past that. Every
// change is a conditional write, PutObject with If-None-Match: * to create
// and If-Match: ETag to replace, so of two nodes that judge the same
// expired lease only one takes it over. A write that fails its condition
// may have landed all the same: the SDK retries a write whose answer was
// lost, and the retry finds the ETag of its own first attempt. The lease
// is then read again, and is ours if it holds our token.
//
// The store's time comes from the answer that read the lease: its Date and
// Last-Modified headers. They are HTTP dates, whole seconds, which leave
// the lease's age uncertain by up to a second either way. Outside the two
// seconds around its expiry they decide; inside, the store is asked for its
// time to the millisecond (see storeAge), so that a lease lasts its TTL and
// not up to two seconds more or less. On a store whose listings give whole
// seconds too, a lease lasts between TTL and TTL + 2 s: never less.
const leaseMark = ".lease-"

// maxLeaseBody bounds the read of a lease object: a token and a TTL.
const maxLeaseBody = 4 << 10

// dateResolution is the resolution of HTTP dates.
const dateResolution = time.Second

// clockSuffixLen is the length of "!" and the 16 hex digits that name a
// clock object after its lease (see storeAge). keyname never writes "!",
// so a clock object's name is never a lease's.
const clockSuffixLen = 1 + 16

var _ ccdriver.LeaseDriver = (*driver)(nil)

// leaseBody is what a lease object holds; Token and TTLms are zero in a
// lease that was released.
type leaseBody struct {
	Token string `json:"token"`
	TTLms int64  `json:"ttl_ms"`
	// Write is random for every write, so that no two writes share an
	// ETag: S3 and MinIO give an unencrypted object the MD5 of its body as
	// its ETag, and If-Match would not tell a version from a later write
	// of the same bytes (a refresh), which would then go unnoticed.
	Write string `json:"write,omitempty"`
}

// lease is a lease object as read.
type lease struct {
	leaseBody
	obj      *string
	etag     *string
	modified time.Time // Last-Modified, whole seconds
	now      time.Time // the Date of the answer, whole seconds
}

func (l *lease) ttl() time.Duration { return time.Duration(l.TTLms) * time.Millisecond }

// leaseName returns the object name of the lease called name.
func (d *driver) leaseName(name string) *string {
	return aws.String(d.prefix + leaseMark + keyname.Encode(name, d.segMax-len(leaseMark)-clockSuffixLen))
}

// AcquireLease creates the lease object if there is none, and otherwise
// replaces it if it has expired or token holds it. A few rounds cover a
// lease released or taken between our reading and our writing, and a
// write that failed its condition only because an SDK retry of it found
// its own first attempt.
func (d *driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	if token == "" {
		return errors.New("empty lease token") // "" marks a released lease
	}
	obj := d.leaseName(name)
	for range 3 {
		err := d.writeLease(ctx, obj, token, ttl, nil)
		if err == nil || !isConditionFailed(err) {
			return err
		}
		l, err := d.readLease(ctx, obj)
		if err != nil {
			return err
		}
		if l == nil {
			continue // released since our attempt: create it again
		}
		if l.Token != token && l.Token != "" { // "": released
			if changed, err := d.held(ctx, l); changed {
				continue
			} else if err != nil {
				return err
			}
		}
		err = d.writeLease(ctx, obj, token, ttl, l.etag)
		switch {
		case err == nil:
			return nil
		case isNoSuchKey(err):
			continue // released since we read it
		case isConditionFailed(err):
			// Taken by another holder as we tried, or our own write
			// landed and the SDK's retry of it, after a lost answer,
			// found the ETag it made: the next round's read tells.
			continue
		}
		return err
	}
	return fmt.Errorf("%w: the lease object changed on every attempt", certcache.ErrLeaseHeld)
}

// RefreshLease rewrites the lease object, if token holds it and it has not
// expired, on condition that it has not changed since it was read.
func (d *driver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	obj := d.leaseName(name)
	l, err := d.readLease(ctx, obj)
	switch {
	case err != nil:
		return err
	case l == nil || l.Token == "":
		return fmt.Errorf("%w: no lease is held", certcache.ErrLeaseLost)
	case l.Token != token:
		return fmt.Errorf("%w: another holder has it", certcache.ErrLeaseLost)
	}
	expired, changed, err := d.expired(ctx, l)
	switch {
	case err != nil:
		return err
	case changed:
		return fmt.Errorf("%w: it changed as we refreshed it", certcache.ErrLeaseLost)
	case expired:
		return fmt.Errorf("%w: it expired by the store's clock", certcache.ErrLeaseLost)
	}
	err = d.writeLease(ctx, obj, token, ttl, l.etag)
	switch {
	case isConditionFailed(err):
		if held, rerr := d.heldBy(ctx, obj, token); rerr != nil || held {
			return rerr
		}
		fallthrough
	case isNoSuchKey(err):
		return fmt.Errorf("%w: it changed as we refreshed it: %w", certcache.ErrLeaseLost, err)
	}
	return err
}

// heldBy reports whether token holds the lease object, unexpired by the
// store's clock. It settles a conditional write of token's lease that
// failed its condition: when the answer to a write that landed is lost,
// the SDK sends it again, and the retry fails because of the ETag that its
// first attempt made.
func (d *driver) heldBy(ctx context.Context, obj *string, token string) (bool, error) {
	l, err := d.readLease(ctx, obj)
	if err != nil || l == nil || l.Token != token {
		return false, err
	}
	expired, changed, err := d.expired(ctx, l)
	return err == nil && !expired && !changed, err
}

// ReleaseLease marks the lease object free, if token holds it, with a
// conditional write (If-Match on the ETag read): an object with no token.
// It does not delete the object, because MinIO ignores If-Match on
// DeleteObject (S3 honours it), and an unconditional delete could remove a
// lease that expired, was read as ours, and was taken over just before.
// A released lease thus leaves an object of a few dozen bytes per name.
func (d *driver) ReleaseLease(ctx context.Context, name, token string) error {
	obj := d.leaseName(name)
	l, err := d.readLease(ctx, obj)
	if err != nil || l == nil || l.Token != token {
		return err
	}
	err = d.writeLease(ctx, obj, "", 0, l.etag)
	if isConditionFailed(err) || isNoSuchKey(err) {
		// Taken over or gone: not ours to release any more. Or released:
		// the SDK's retry of our write, after a lost answer, found the
		// ETag that its first attempt made.
		return nil
	}
	return err
}

// writeLease puts the lease object for token, or a released one for token
// "": only if there is none when etag is nil, only if it is unchanged
// otherwise.
func (d *driver) writeLease(ctx context.Context, obj *string, token string, ttl time.Duration, etag *string) error {
	var id [8]byte
	rand.Read(id[:])
	body, err := json.Marshal(leaseBody{Token: token, TTLms: ttl.Milliseconds(), Write: hex.EncodeToString(id[:])})
	if err != nil {
		return err
	}
	in := &s3.PutObjectInput{
		Bucket:               &d.bucket,
		Key:                  obj,
		Body:                 bytes.NewReader(body),
		ContentLength:        aws.Int64(int64(len(body))),
		ContentType:          aws.String("application/json"),
		ServerSideEncryption: d.sse,
		SSEKMSKeyId:          d.kmsKey,
	}
	if etag == nil {
		in.IfNoneMatch = aws.String("*")
	} else {
		in.IfMatch = etag
	}
	_, err = d.client.PutObject(ctx, in)
	return d.classify(err)
}

// readLease reads the lease object, with the store's time of the reading.
// It returns nil if there is none.
func (d *driver) readLease(ctx context.Context, obj *string) (*lease, error) {
	out, err := d.client.GetObject(ctx, &s3.GetObjectInput{Bucket: &d.bucket, Key: obj})
	if err != nil {
		if isNoSuchKey(err) {
			return nil, nil
		}
		return nil, d.classify(err)
	}
	defer out.Body.Close()
	data, err := io.ReadAll(io.LimitReader(out.Body, maxLeaseBody))
	if err != nil {
		return nil, d.classify(fmt.Errorf("reading lease object %q: %w", *obj, err))
	}
	l := &lease{obj: obj, etag: out.ETag, modified: aws.ToTime(out.LastModified)}
	if err := json.Unmarshal(data, &l.leaseBody); err != nil || (l.Token == "") != (l.TTLms == 0) || l.TTLms < 0 {
		return nil, fmt.Errorf("lease object %q is not a lease: %.64q", *obj, data)
	}
	now, ok := awsmiddleware.GetServerTime(out.ResultMetadata)
	if !ok || now.IsZero() {
		return nil, fmt.Errorf("reading lease object %q: the answer has no Date header to judge expiry by the store's clock", *obj)
	}
	if l.modified.IsZero() || l.etag == nil {
		return nil, fmt.Errorf("reading lease object %q: the answer has no Last-Modified or ETag", *obj)
	}
	l.now = now
	return l, nil
}

// held reports whether l, another holder's lease, still runs, by the
// store's clock: an error wrapping ErrLeaseHeld if so, and changed if the
// lease changed since it was read (read it again).
func (d *driver) held(ctx context.Context, l *lease) (changed bool, err error) {
	expired, changed, err := d.expired(ctx, l)
	switch {
	case err != nil || changed:
		return changed, err
	case !expired:
		return false, fmt.Errorf("%w: it expires within %v, by the store's clock", certcache.ErrLeaseHeld,
			l.modified.Add(l.ttl()+dateResolution).Sub(l.now).Round(time.Second))
	}
	return false, nil
}

// expired judges whether l has expired by the store's clock. Both header
// dates are truncated to the second, so the lease's true age lies strictly
// between their difference minus a second and plus a second; only when the
// TTL falls in that interval does it ask the store for finer times
// (storeAge). changed reports that the lease object changed meanwhile, and
// must be read again.
func (d *driver) expired(ctx context.Context, l *lease) (expired, changed bool, err error) {
	age, ttl := l.now.Sub(l.modified), l.ttl()
	switch {
	case age-dateResolution >= ttl:
		return true, false, nil
	case age+dateResolution <= ttl:
		return false, false, nil
	}
	age, exact, changed, err := d.storeAge(ctx, l)
	if err != nil || changed {
		return false, changed, err
	}
	if !exact {
		age -= dateResolution // whole seconds again: judge as above
	}
	return age >= ttl, false, nil
}

// storeAge measures the lease's age by the store's clock to the
// millisecond, for stores whose listings give times that fine (MinIO
// does): it writes a clock object of its own beside the lease, lists both
// to read their LastModified, and deletes the clock object. The age is
// measured to a moment after the lease was read and before it may be
// replaced, so a lease judged expired is expired when it is replaced.
// exact is false when both times are whole seconds, as a store that keeps
// no finer time gives them.
func (d *driver) storeAge(ctx context.Context, l *lease) (age time.Duration, exact, changed bool, err error) {
	var id [8]byte
	rand.Read(id[:])
	clock := aws.String(*l.obj + "!" + hex.EncodeToString(id[:]))
	if _, err := d.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket: &d.bucket, Key: clock, Body: bytes.NewReader(nil), ContentLength: aws.Int64(0),
		ServerSideEncryption: d.sse, SSEKMSKeyId: d.kmsKey,
	}); err != nil {
		return 0, false, false, d.classify(fmt.Errorf("writing clock object %q: %w", *clock, err))
	}
	// A clock object left behind by a failed delete is harmless: its name
	// is no key's and no lease's, and List skips it.
	defer d.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &d.bucket, Key: clock})
	now, err := d.listedTime(ctx, clock)
	if err != nil || now == nil {
		return 0, false, false, cmp.Or(err, fmt.Errorf("clock object %q is not listed", *clock))
	}
	lo, err := d.listedTime(ctx, l.obj)
	if err != nil {
		return 0, false, false, err
	}
	if lo == nil || strings.Trim(aws.ToString(lo.ETag), `"`) != strings.Trim(aws.ToString(l.etag), `"`) {
		return 0, false, true, nil
	}
	t0, t1 := aws.ToTime(lo.LastModified), aws.ToTime(now.LastModified)
	return t1.Sub(t0), t0.Nanosecond() != 0 || t1.Nanosecond() != 0, false, nil
}

// listedTime lists the object called obj: the first name a listing from
// obj as a prefix returns is obj itself if it exists, every other match
// being longer. It returns nil if there is no such object.
func (d *driver) listedTime(ctx context.Context, obj *string) (*types.Object, error) {
	out, err := d.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: &d.bucket, Prefix: obj, MaxKeys: aws.Int32(1)})
	if err != nil {
		return nil, d.classify(fmt.Errorf("listing %q: %w", *obj, err))
	}
	if len(out.Contents) == 0 || aws.ToString(out.Contents[0].Key) != *obj {
		return nil, nil
	}
	return &out.Contents[0], nil
}

// isConditionFailed reports whether a conditional request failed: 412
// PreconditionFailed (the object exists, or changed), or 409
// ConditionalRequestConflict (a concurrent conditional write won).
func isConditionFailed(err error) bool {
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		switch re.HTTPStatusCode() {
		case http.StatusPreconditionFailed, http.StatusConflict:
			return true
		}
	}
	switch apiCode(err) {
	case "PreconditionFailed", "ConditionalRequestConflict":
		return true
	}
	return false
}
