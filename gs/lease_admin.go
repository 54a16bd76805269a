package gs

import (
	"context"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"iter"
	"math"
	"strings"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

var _ ccdriver.LeaseAdminDriver = (*driver)(nil)

// ListLeases implements driver.LeaseAdminDriver: it lists the lease
// objects of the namespace, whose listed attributes hold the holder, the
// TTL and the version's time, and reads the store's time once, from a
// clock object, to tell each lease's time left. Clock objects and leases
// whose names were too long for an object name (stored under a shortened
// name that cannot be decoded) are left out.
func (d *driver) ListLeases(ctx context.Context, prefix string) iter.Seq2[certcache.LeaseInfo, error] {
	return func(yield func(certcache.LeaseInfo, error) bool) {
		base := d.prefix + leaseMark
		encoded := keyname.Encode(prefix, math.MaxInt)
		if keep := d.shortenedKeep(d.segMax - len(leaseMark) - clockSuffixLen); len(encoded) > keep {
			encoded = encoded[:keep]
		}
		var now time.Time // the store's, read at the first lease
		for attrs, err := range d.objects(ctx, base+encoded, "Generation", "Updated", "Metadata") {
			if err != nil {
				yield(certcache.LeaseInfo{}, err)
				return
			}
			name, ok := d.leaseOf(attrs.Name)
			if !ok || !strings.HasPrefix(name, prefix) {
				continue
			}
			l := leaseOfAttrs(attrs)
			if l.token == "" {
				continue // not a lease this package wrote
			}
			if now.IsZero() {
				if now, err = d.storeNow(ctx, attrs.Name); err != nil {
					yield(certcache.LeaseInfo{}, err)
					return
				}
			}
			written, err := d.writtenAt(attrs)
			if err != nil {
				yield(certcache.LeaseInfo{}, err)
				return
			}
			left := written.Add(l.ttl).Sub(now)
			if !yield(certcache.LeaseInfo{Name: name, Holder: l.token, Expires: time.Now().Add(left)}, nil) {
				return
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
	if err != nil || hashed || d.leaseName(name) != obj {
		return "", false
	}
	return name, true
}

// BreakLease implements driver.LeaseAdminDriver as ReleaseLease does,
// for any holder: it deletes the generation of the lease object it read,
// after judging expiry as AcquireLease does unless force is set.
func (d *driver) BreakLease(ctx context.Context, name string, force bool) error {
	obj := d.leaseName(name)
	for range maxLeaseRounds {
		l, err := d.readLease(ctx, obj)
		if err != nil || l == nil {
			return err
		}
		if !force {
			if err := d.held(ctx, l); err != nil {
				return err
			}
		}
		if err := d.deleteLease(ctx, obj, l.gen); !lostRace(err) {
			return err
		}
	}
	return fmt.Errorf("%w: written by other holders %d times while breaking it", certcache.ErrLeaseHeld, maxLeaseRounds)
}
