package s3

import (
	"context"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

var _ ccdriver.LeaseAdminDriver = (*driver)(nil)

// ListLeases implements driver.LeaseAdminDriver: it lists the lease
// objects of the namespace and reads each, as AcquireLease does, for its
// holder and the store's times. Expiry is the lease's Last-Modified plus
// its TTL, against the Date of the answer that read it: whole seconds, so
// the time left is known to a second either way. Released leases, clock
// objects, and leases whose names were too long for an object name
// (stored under a shortened name that cannot be decoded) are left out.
func (d *driver) ListLeases(ctx context.Context, prefix string) iter.Seq2[certcache.LeaseInfo, error] {
	return func(yield func(certcache.LeaseInfo, error) bool) {
		base := d.prefix + leaseMark
		encoded := keyname.Encode(prefix, math.MaxInt)
		if keep := d.shortenedKeep(); len(encoded) > keep {
			encoded = encoded[:keep]
		}
		pages := s3.NewListObjectsV2Paginator(d.client, &s3.ListObjectsV2Input{
			Bucket:    &d.bucket,
			Prefix:    aws.String(base + encoded),
			Delimiter: aws.String("/"),
			MaxKeys:   aws.Int32(listPageSize),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(certcache.LeaseInfo{}, d.classify(err))
				return
			}
			for _, obj := range page.Contents {
				name, ok := d.leaseOf(aws.ToString(obj.Key))
				if !ok || !strings.HasPrefix(name, prefix) {
					continue
				}
				l, err := d.readLease(ctx, obj.Key)
				if err != nil {
					yield(certcache.LeaseInfo{}, err)
					return
				}
				if l == nil || l.Token == "" {
					continue // deleted since the listing, or released
				}
				left := l.modified.Add(l.ttl()).Sub(l.now)
				if !yield(certcache.LeaseInfo{Name: name, Holder: l.Token, Expires: time.Now().Add(left)}, nil) {
					return
				}
			}
		}
	}
}

// leaseOf returns the name of the lease stored as object obj, and false
// for an object that is not a lease object AcquireLease would write.
func (d *driver) leaseOf(obj string) (string, bool) {
	enc, ok := strings.CutPrefix(obj, d.prefix+leaseMark)
	if !ok {
		return "", false
	}
	name, hashed, err := keyname.Decode(enc)
	if err != nil || hashed || *d.leaseName(name) != obj {
		return "", false
	}
	return name, true
}

// BreakLease implements driver.LeaseAdminDriver as ReleaseLease does,
// for any holder: it marks the lease object free with a write conditional
// on the version read, after judging expiry as AcquireLease does unless
// force is set. A few rounds cover a lease changed between our reading and
// our writing.
func (d *driver) BreakLease(ctx context.Context, name string, force bool) error {
	obj := d.leaseName(name)
	for range 3 {
		l, err := d.readLease(ctx, obj)
		if err != nil || l == nil || l.Token == "" {
			return err
		}
		if !force {
			if changed, err := d.held(ctx, l); changed {
				continue
			} else if err != nil {
				return err
			}
		}
		err = d.writeLease(ctx, obj, "", 0, l.etag)
		if !isConditionFailed(err) && !isNoSuchKey(err) {
			return err
		}
	}
	return fmt.Errorf("%w: the lease object changed on every attempt", certcache.ErrLeaseHeld)
}
