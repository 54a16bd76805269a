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
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/certcache/certcache"
)

// Leases are small blobs written with conditional requests, not Azure's
// own blob leases: a blob lease lasts 15 to 60 seconds or forever, so it
// cannot express the caller's TTL (a minute by default, and any length),
// and an infinite one left by a crashed holder needs someone to break it.
// A conditional Put Blob (If-None-Match: * to create, If-Match: ETAG to
// take over or extend) is the compare-and-swap a lease needs.
//
// A lease blob is named PREFIX/~lease/NAME, NAME encoded as keys are. A
// key's blob, PREFIX/ENCODED-KEY, never holds a "/" after the prefix, so no
// key names a lease; and "~" is refused in prefixes (checkPrefix), so no
// other cache's prefix reaches into "~lease/" either. List asks the service
// for the blobs directly under PREFIX/ (delimiter "/"), which leaves leases
// out.
//
// # Expiry by the store's clock
//
// A lease has expired once the store's clock is its TTL past the write
// that took or extended it. The blob's Last-Modified and an answer's Date
// are that clock, but in whole seconds, which leaves a lease's age
// uncertain by up to a second either way. Outside the two seconds around
// the expiry they decide. Inside, the store's clock is read to the
// sub-second from snapshot times: every lease write is followed by a
// snapshot of the version written, whose time is at most a round trip after
// the write, and the judge takes a snapshot of its own, whose time is now.
// Their difference is the age to within that round trip, and never more
// than the true age, so a lease lasts at least its TTL and rarely a few
// milliseconds more. Without the writer's snapshot (the writer died between
// its two requests), the judge counts the lease from the end of its
// Last-Modified second: at least the TTL, at most a second more.

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

// clockStep is the resolution of Last-Modified and Date: HTTP dates, in
// whole seconds.
const clockStep = time.Second

// leaseBlob returns the blob name of the lease called name.
func (d *driver) leaseBlob(name string) string {
	return d.prefix + leaseDir + encodeName(name, d.maxName-len(leaseDir))
}

// leaseState is a lease blob as read.
type leaseState struct {
	blob     string
	etag     azcore.ETag
	token    string        // the holder's token, as stored (escaped)
	ttl      time.Duration // zero for a blob this package did not write
	modified time.Time     // Last-Modified, whole seconds
	now      time.Time     // the answer's Date, whole seconds
}

// readLease reads the lease blob; nil if there is none.
func (d *driver) readLease(ctx context.Context, name string) (*leaseState, error) {
	var resp blob.GetPropertiesResponse
	err := d.inContainer(ctx, func() (err error) {
		resp, err = d.cc.NewBlobClient(name).GetProperties(ctx, nil)
		return err
	})
	if hasCode(err, bloberror.BlobNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if resp.ETag == nil || resp.LastModified == nil || resp.Date == nil {
		return nil, fmt.Errorf("lease blob %q: the service's answer lacks ETag, Last-Modified or Date to judge expiry by", name)
	}
	st := &leaseState{blob: name, etag: *resp.ETag, token: meta(resp.Metadata, tokenMeta), modified: *resp.LastModified, now: *resp.Date}
	if ms, err := strconv.ParseInt(meta(resp.Metadata, ttlMeta), 10, 64); err == nil && ms > 0 {
		st.ttl = time.Duration(ms) * time.Millisecond
	}
	return st, nil
}

// holds reports whether token is the one st was written for.
func (st *leaseState) holds(token string) bool { return st.token == escapeAll(token) }

// held reports whether st, another holder's lease, still runs, by the
// store's clock: an error wrapping ErrLeaseHeld if so, and changed if the
// lease changed since it was read (read it again).
func (d *driver) held(ctx context.Context, st *leaseState) (changed bool, err error) {
	expired, changed, err := d.expired(ctx, st)
	switch {
	case err != nil:
		return false, d.wrap(err)
	case changed:
		return true, nil
	case !expired:
		return false, fmt.Errorf("%w: it runs for %v from %s, by the store's clock", certcache.ErrLeaseHeld,
			st.ttl, st.modified.UTC().Format(time.RFC3339))
	}
	return false, nil
}

// expired judges st by the store's clock (see the comment at the top).
// changed reports that the lease blob changed since it was read, so that
// it must be read again.
func (d *driver) expired(ctx context.Context, st *leaseState) (expired, changed bool, err error) {
	if st.ttl <= 0 || st.token == "" {
		// Not written by this package, or damaged: it counts as expired,
		// so that it is taken over rather than block the name for good.
		return true, false, nil
	}
	// The write was in [modified, modified+1s) and now is in [now, now+1s).
	age := st.now.Sub(st.modified)
	switch {
	case age-clockStep >= st.ttl:
		return true, false, nil
	case age+clockStep <= st.ttl:
		return false, false, nil
	}
	now, err := d.snapshot(ctx, st.blob, st.etag)
	if lostRace(err) {
		return false, true, nil
	}
	if err != nil {
		return false, false, err
	}
	defer d.dropSnapshot(ctx, st.blob, now)
	written, err := d.writeTime(ctx, st)
	if err != nil {
		return false, false, err
	}
	return !parseSnapshot(now).Before(written.Add(st.ttl)), false, nil
}

// writeTime returns when st's version was written, by the store's clock,
// never earlier: the time of its earliest snapshot (taken by its writer
// right after the write), else the end of its Last-Modified second.
func (d *driver) writeTime(ctx context.Context, st *leaseState) (time.Time, error) {
	written := st.modified.Add(clockStep)
	// Snapshots list right after their blob's name and before any longer
	// name, oldest first.
	pager := d.cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
		Prefix:  &st.blob,
		Include: container.ListBlobsInclude{Snapshots: true},
	})
	for pager.More() {
		page, err := pager.NextPage(ctx)
		if err != nil {
			return time.Time{}, err
		}
		if page.Segment == nil {
			continue
		}
		for _, item := range page.Segment.BlobItems {
			if item.Name == nil || *item.Name != st.blob {
				return written, nil // past the blob's own entries
			}
			if item.Snapshot == nil || item.Properties == nil || item.Properties.ETag == nil || !sameETag(*item.Properties.ETag, st.etag) {
				continue
			}
			if t := parseSnapshot(*item.Snapshot); !t.IsZero() && t.Before(written) {
				written = t
			}
		}
	}
	return written, nil
}

// sameETag compares ETags with or without their quotes: headers quote
// them, listings do not.
func sameETag(a, b azcore.ETag) bool {
	return strings.Trim(string(a), `"`) == strings.Trim(string(b), `"`)
}

// snapshot snapshots version etag of blob bn and returns the snapshot's
// time as the service wrote it (its identifier).
func (d *driver) snapshot(ctx context.Context, bn string, etag azcore.ETag) (string, error) {
	r, err := d.cc.NewBlobClient(bn).CreateSnapshot(ctx, &blob.CreateSnapshotOptions{
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: ifMatch(etag)},
	})
	if err != nil {
		return "", err
	}
	if r.Snapshot == nil {
		return "", fmt.Errorf("lease blob %q: snapshot without a time", bn)
	}
	return *r.Snapshot, nil
}

// dropSnapshot deletes a snapshot, best effort: one left behind costs a
// few bytes and is deleted with its lease.
func (d *driver) dropSnapshot(ctx context.Context, bn, snap string) {
	if bc, err := d.cc.NewBlobClient(bn).WithSnapshot(snap); err == nil {
		bc.Delete(ctx, nil)
	}
}

// parseSnapshot parses a snapshot time, "2026-11-30T10:47:47.6210000Z";
// the zero time if it is not one.
func parseSnapshot(s string) time.Time {
	t, _ := time.Parse(time.RFC3339Nano, s)
	return t
}

// writeLease writes the lease blob for token and ttl under cond: create
// only (If-None-Match: *) or replace only the version read (If-Match). It
// then snapshots the version written, to date it finely (see the comment
// at the top), and deletes the snapshot this driver took of the version
// before, if any. The lease is taken once the write succeeds: a failed
// snapshot only makes the lease count up to a second longer.
func (d *driver) writeLease(ctx context.Context, name, token string, ttl time.Duration, cond *blob.ModifiedAccessConditions) error {
	opts := &blockblob.UploadOptions{
		Metadata: map[string]*string{
			tokenMeta: ptr(escapeAll(token)),
			ttlMeta:   ptr(strconv.FormatInt(ttl.Milliseconds(), 10)),
		},
		AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: cond},
	}
	var resp blockblob.UploadResponse
	err := d.inContainer(ctx, func() (err error) {
		resp, err = d.cc.NewBlockBlobClient(name).Upload(ctx, streaming.NopCloser(bytes.NewReader(nil)), opts)
		return err
	})
	if err != nil {
		return err
	}
	if resp.ETag != nil {
		d.dateLease(ctx, name, *resp.ETag)
	}
	return nil
}

// dateLease snapshots version etag of lease blob name, just written, and
// deletes the snapshot this driver took of the version before, if any.
func (d *driver) dateLease(ctx context.Context, name string, etag azcore.ETag) {
	if snap, err := d.snapshot(ctx, name, etag); err == nil {
		if prev, ok := d.snapshots.Swap(name, snap); ok {
			d.dropSnapshot(ctx, name, prev.(string))
		}
	}
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
// whose read tells whether the winner now holds the lease; so does a write
// that failed only because an SDK retry of it, after a lost answer, found
// its own first attempt (the round finds token holding the lease).
func (d *driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	bn := d.leaseBlob(name)
	for range maxLeaseRounds {
		err := d.writeLease(ctx, bn, token, ttl, createOnly())
		if err == nil {
			return nil
		}
		if !lostRace(err) {
			return d.wrap(err)
		}
		st, err := d.readLease(ctx, bn)
		if err != nil {
			return d.wrap(err)
		}
		if st == nil {
			continue // released since our write: create it again
		}
		if !st.holds(token) {
			if changed, err := d.held(ctx, st); changed {
				continue
			} else if err != nil {
				return err
			}
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
	case !st.holds(token):
		return fmt.Errorf("%w: another holder holds it", certcache.ErrLeaseLost)
	}
	expired, changed, err := d.expired(ctx, st)
	switch {
	case err != nil:
		return d.wrap(err)
	case changed:
		return fmt.Errorf("%w: another holder wrote it", certcache.ErrLeaseLost)
	case expired:
		return fmt.Errorf("%w: it expired %v after %s, by the store's clock", certcache.ErrLeaseLost,
			st.ttl, st.modified.UTC().Format(time.RFC3339))
	}
	err = d.writeLease(ctx, bn, token, ttl, ifMatch(st.etag))
	if lostRace(err) {
		if held, err := d.heldBy(ctx, bn, token); err != nil || held {
			return d.wrap(err)
		}
		return fmt.Errorf("%w: another holder wrote it", certcache.ErrLeaseLost)
	}
	return d.wrap(err)
}

// heldBy reports whether token holds the lease blob, unexpired by the
// store's clock. It settles a conditional write of token's lease that
// failed its condition: when the answer to a write that landed is lost,
// the SDK sends it again, and the retry fails because of the ETag that its
// first attempt made. It then dates the version found, as writeLease would
// have.
func (d *driver) heldBy(ctx context.Context, bn, token string) (bool, error) {
	st, err := d.readLease(ctx, bn)
	if err != nil || st == nil || !st.holds(token) {
		return false, err
	}
	expired, changed, err := d.expired(ctx, st)
	if err != nil || expired || changed {
		return false, err
	}
	d.dateLease(ctx, bn, st.etag)
	return true, nil
}

// ReleaseLease deletes the lease blob, with its snapshots, if token holds
// it, on the condition that nobody wrote it since it was read: a holder
// who took over an expired lease in between keeps it.
func (d *driver) ReleaseLease(ctx context.Context, name, token string) error {
	bn := d.leaseBlob(name)
	st, err := d.readLease(ctx, bn)
	if err != nil {
		return d.wrap(err)
	}
	if st == nil || !st.holds(token) {
		return nil
	}
	err = d.inContainer(ctx, func() error {
		_, err := d.cc.NewBlobClient(bn).Delete(ctx, &blob.DeleteOptions{
			DeleteSnapshots:  ptr(blob.DeleteSnapshotsOptionTypeInclude),
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: ifMatch(st.etag)},
		})
		return err
	})
	if lostRace(err) {
		// No longer ours. Or deleted: the SDK's retry of our delete, after
		// a lost answer, found the blob gone.
		return nil
	}
	if err == nil {
		d.snapshots.Delete(bn)
	}
	return d.wrap(err)
}

// lostRace reports whether a conditional write or delete failed because the
// blob is not as read: created by someone else (BlobAlreadyExists, or 412
// for If-None-Match), rewritten (ConditionNotMet, 412) or deleted
// (BlobNotFound).
func lostRace(err error) bool {
	if err == nil || hasCode(err, bloberror.ContainerNotFound) {
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
