package azblob

import (
	"context"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"iter"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/blob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/bloberror"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

var _ ccdriver.LeaseAdminDriver = (*driver)(nil)

// ListLeases implements driver.LeaseAdminDriver: it lists the lease
// blobs under PREFIX/~lease/ and reads each, as AcquireLease does, for its
// holder and the store's times. Expiry is the blob's Last-Modified plus its
// TTL against the Date of the answer that read it: whole seconds, so the
// time left is known to a second either way. Leases whose names were too
// long for a blob name (stored under a shortened name) are left out.
func (d *driver) ListLeases(ctx context.Context, prefix string) iter.Seq2[certcache.LeaseInfo, error] {
	return func(yield func(certcache.LeaseInfo, error) bool) {
		enc := strings.TrimSuffix(escapeAll(prefix), ".")
		if keep := d.maxName - len(leaseDir) - shortenedPlain; len(enc) > keep {
			enc = enc[:keep]
		}
		pager := d.cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{
			Prefix:     ptr(d.prefix + leaseDir + enc),
			MaxResults: ptr(d.listPage),
		})
		for pager.More() {
			page, err := pager.NextPage(ctx)
			if err != nil {
				if hasCode(err, bloberror.ContainerNotFound) {
					return // no lease was ever taken
				}
				yield(certcache.LeaseInfo{}, d.wrap(err))
				return
			}
			if page.Segment == nil {
				continue
			}
			for _, item := range page.Segment.BlobItems {
				if item.Name == nil {
					continue
				}
				name, ok := d.leaseOf(*item.Name)
				if !ok || !strings.HasPrefix(name, prefix) {
					continue
				}
				st, err := d.readLease(ctx, *item.Name)
				if err != nil {
					yield(certcache.LeaseInfo{}, d.wrap(err))
					return
				}
				if st == nil || st.token == "" {
					continue // deleted since the listing, or not a lease
				}
				holder, _, err := keyname.Decode(st.token)
				if err != nil {
					holder = st.token
				}
				// A blob without a TTL counts as expired (see expired).
				left := st.modified.Add(st.ttl).Sub(st.now)
				if st.ttl <= 0 {
					left = st.modified.Sub(st.now)
				}
				if !yield(certcache.LeaseInfo{Name: name, Holder: holder, Expires: time.Now().Add(left)}, nil) {
					return
				}
			}
		}
	}
}

// leaseOf returns the name of the lease stored as blob bn, and false for a
// blob that is not a lease blob AcquireLease would write.
func (d *driver) leaseOf(bn string) (string, bool) {
	enc, ok := strings.CutPrefix(bn, d.prefix+leaseDir)
	if !ok {
		return "", false
	}
	name, hashed, err := keyname.Decode(enc)
	if err != nil || hashed || d.leaseBlob(name) != bn {
		return "", false
	}
	return name, true
}

// BreakLease implements driver.LeaseAdminDriver as ReleaseLease does,
// for any holder: it deletes the lease blob, with its snapshots, on the
// condition that nobody wrote it since it was read, after judging expiry
// as AcquireLease does unless force is set.
func (d *driver) BreakLease(ctx context.Context, name string, force bool) error {
	bn := d.leaseBlob(name)
	for range maxLeaseRounds {
		st, err := d.readLease(ctx, bn)
		if hasCode(err, bloberror.ContainerNotFound) {
			return nil // no lease was ever taken
		}
		if err != nil {
			return d.wrap(err)
		}
		if st == nil {
			return nil
		}
		if !force {
			if changed, err := d.held(ctx, st); changed {
				continue
			} else if err != nil {
				return err
			}
		}
		_, err = d.cc.NewBlobClient(bn).Delete(ctx, &blob.DeleteOptions{
			DeleteSnapshots:  ptr(blob.DeleteSnapshotsOptionTypeInclude),
			AccessConditions: &blob.AccessConditions{ModifiedAccessConditions: ifMatch(st.etag)},
		})
		if err == nil {
			d.snapshots.Delete(bn)
			return nil
		}
		if !lostRace(err) {
			return d.wrap(err)
		}
	}
	return fmt.Errorf("%w: written by other holders %d times while breaking it", certcache.ErrLeaseHeld, maxLeaseRounds)
}
