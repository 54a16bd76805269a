package azblob

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/streaming"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blockblob"
	"github.com/certcache/certcache"
)

// Leases are small blobs written with conditional requests, not Azure's
// own blob leases: a blob lease lasts 15 to 60 seconds or forever, so it
// cannot express the caller's TTL (a minute by default, and any length),
// and an infinite one left by a crashed holder needs someone to break it.
// A conditional Put Blob (If-None-Match: * to create, If-Match: ETAG to
// take over or extend) is the compare-and-swap a lease needs, and the
// blob's Last-Modified and the response's Date are the store's clock.
//
// A lease blob is named PREFIX/~lease/NAME, NAME encoded as keys are. A
// key's blob, PREFIX/ENCODED-KEY, never holds a "/" after the prefix, so no
// key names a lease; and "~" is refused in prefixes (checkPrefix), so no
// other cache's prefix reaches into "~lease/" either. List asks the service
// for the blobs directly under PREFIX/ (delimiter "/"), which leaves leases
// out.

// leaseDir is the reserved sub-prefix of leases; see above.
const leaseDir = "~lease/"

// The lease blob's metadata: the holder's token and the TTL in
// milliseconds. The time it was written is the blob's Last-Modified.
const (
	tokenMeta = "certcachetoken"
	ttlMeta   = "certcachettlms"
)

// maxLeaseRounds bounds the read-then-write rounds of one AcquireLease.
// A round is lost only when another holder wrote or deleted the lease
// between our read and our write; losing several in a row means the lease
// is fought over, and the caller hears that it is held.
const maxLeaseRounds = 4

// clockStep is the resolution of the store's times: Last-Modified and Date
// are HTTP dates, in whole seconds.
const clockStep = time.Second

// leaseBlob returns the blob name of the lease called name.
func (d *driver) leaseBlob(name string) string {
	return d.prefix + leaseDir + encodeName(name, d.maxName-len(leaseDir))
}

// leaseState is a lease blob as read.
type leaseState struct {
	etag    azcore.ETag
	token   string    // the holder's token, as stored (escaped)
	expires time.Time // by the store's clock; see readLease
	expired bool
}

// readLease reads the lease blob; nil if there is none.
func (d *driver) readLease(ctx context.Context, name string) (*leaseState, error) {
	var resp blob.GetPropertiesResponse
	err := d.inContainer(ctx, func() (err error) {
		resp, err = d.cc.NewBlobClient(name).GetProperties(ctx, nil)
		return err
	})
	if bloberror.HasCode(err, bloberror.BlobNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if resp.ETag == nil || resp.LastModified == nil || resp.Date == nil {
		return nil, fmt.Errorf("lease blob %q: the service's answer lacks ETag, Last-Modified or Date", name)
	}
	st := &leaseState{etag: *resp.ETag, token: meta(resp.Metadata, tokenMeta)}
	ms, err := strconv.ParseInt(meta(resp.Metadata, ttlMeta), 10, 64)
	if err != nil || ms <= 0 || st.token == "" {
		// Not written by this package, or damaged: it counts as expired,
		// so that it is taken over rather than block the name for good.
		st.expires, st.expired = *resp.LastModified, true
		return st, nil
	}
	// Last-Modified and Date are truncated to the second, so the lease was
	// written up to a second after Last-Modified and now may be up to a
	// second after Date. The lease has expired for certain only once Date
	// passes Last-Modified + ttl by a whole second; until then it is held.
	// A lease thus runs between ttl and ttl + 1 s, never less.
	st.expires = resp.LastModified.Add(time.Duration(ms)*time.Millisecond + clockStep)
	st.expired = !resp.Date.Before(st.expires)
	return st, nil
}

// writeLease writes the lease blob for token and ttl under cond: create
// only (If-None-Match: *) or replace only the version read (If-Match).
func (d *driver) writeLease(ctx context.Context, name, token string, ttl time.Duration, cond *blob.ModifiedAccessConditions) error {
	opts := &blockblob.UploadOptions{
		Metadata: map[string]*string{
			tokenMeta: ptr(escapeAll(token)),
			ttlMeta:   ptr(strconv.FormatInt(ttl.Milliseconds(), 10)),
		},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: cond},
	}
	return d.inContainer(ctx, func() error {
		_, err := d.cc.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), opts)
		return err
	})
}

func createOnly() *blob.ModifiedAccessConditions {
	return &blob.ModifiedAccessConditions{IfNoneMatch: ptr(azcore.ETagAny)}
}

func ifMatch(etag azcore.ETag) *blob.ModifiedAccessConditions {
	return &blob.ModifiedAccessConditions{IfMatch: &etag}
}

// AcquireLease creates the lease blob if there is none; otherwise it reads
// it and, if token holds it or it has expired, replaces it on the
// condition that nobody wrote it since. A lost race starts a new round,
// whose read tells whether the winner now holds the lease.
func (d *driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	bn := d.leaseBlob(name)
	var st *leaseState
	for range maxLeaseRounds {
		err := d.writeLease(ctx, bn, token, ttl, createOnly())
		if err == nil {
			return nil
		}
		if !lostRace(err) {
			return d.wrap(err)
		}
		if st, err = d.readLease(ctx, bn); err != nil {
			return d.wrap(err)
		}
		if st == nil {
			continue // released since our write: create it again
		}
		if st.token != escapeAll(token) && !st.expired {
			return fmt.Errorf("%w (until %s by the store's clock)", certcache.ErrLeaseHeld, st.expires.UTC().Format(time.RFC3339))
		}
		err = d.writeLease(ctx, bn, token, ttl, ifMatch(st.etag))
		if err == nil {
			return nil
		}
		if !lostRace(err) {
			return d.wrap(err)
		}
	}
	return fmt.Errorf("%w: written by other holders %d times while acquiring", certcache.ErrLeaseHeld, maxLeaseRounds)
}

// RefreshLease rewrites the lease blob if token holds it and it has not
// expired, on the condition that nobody wrote it since it was read.
func (d *driver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	bn := d.leaseBlob(name)
	st, err := d.readLease(ctx, bn)
	switch {
	case err != nil:
		return d.wrap(err)
	case st == nil:
		return fmt.Errorf("%w: no lease is held", certcache.ErrLeaseLost)
	case st.token != escapeAll(token):
		return fmt.Errorf("%w: another holder holds it", certcache.ErrLeaseLost)
	case st.expired:
		return fmt.Errorf("%w: it expired at %s by the store's clock", certcache.ErrLeaseLost, st.expires.UTC().Format(time.RFC3339))
	}
	err = d.writeLease(ctx, bn, token, ttl, ifMatch(st.etag))
	if lostRace(err) {
		return fmt.Errorf("%w: another holder wrote it", certcache.ErrLeaseLost)
	}
	return d.wrap(err)
}

// ReleaseLease deletes the lease blob if token holds it, on the condition
// that nobody wrote it since it was read: a holder who took over an expired
// lease in between keeps it.
func (d *driver) ReleaseLease(ctx context.Context, name, token string) error {
	bn := d.leaseBlob(name)
	st, err := d.readLease(ctx, bn)
	if err != nil {
		return d.wrap(err)
	}
	if st == nil || st.token != escapeAll(token) {
		return nil
	}
	err = d.inContainer(ctx, func() error {
		_, err := d.cc.NewBlobClient(bn).Delete(ctx, &blob.DeleteOptions{
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: ifMatch(st.etag)},
		})
		return err
	})
	if lostRace(err) {
		return nil // no longer ours
	}
	return d.wrap(err)
}

// lostRace reports whether a conditional write or delete failed because the
// blob is not as read: created by someone else (BlobAlreadyExists, or 412
// for If-None-Match), rewritten (ConditionNotMet, 412) or deleted
// (BlobNotFound).
func lostRace(err error) bool {
	if err == nil || bloberror.HasCode(err, bloberror.ContainerNotFound) {
		return false
	}
	return bloberror.HasCode(err, bloberror.ConditionNotMet, bloberror.BlobAlreadyExists, bloberror.BlobNotFound) ||
		isStatus(err, http.StatusPreconditionFailed)
}

// meta looks up a metadata value; the SDK hands back HTTP's canonical
// case ("Certcachetoken"), so the name is compared without case.
func meta(m map[string]*string, name string) string {
	for k, v := range m {
		if v != nil && strings.EqualFold(k, name) {
			return *v
		}
	}
	return ""
}
