package gs

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"cloud.google.com/go/storage"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

// Leases are empty objects beside the keys, named leaseMark + the lease
// name encoded as keys are. A key's name never begins with "." (keyname
// encodes a leading dot) and never holds a "/", so a lease's name is never
// a key's, in this namespace or a nested one, and List skips it. The
// object's metadata holds the holder's token and the TTL.
//
// Every change is conditional on the generation read: DoesNotExist to
// create, GenerationMatch to replace or delete, so of two nodes that judge
// the same expired lease only one takes it over. A conditional write that
// fails its condition may have landed all the same: the library retries
// an idempotent write whose answer was lost, and the retry finds the
// generation of its own first attempt. The lease is then read again, and
// is ours if it holds our token (heldBy).
//
// Expiry is judged by the store's clock: a version was written at its
// update time (see writtenAt), and the store's time now is that of a clock
// object written for the purpose (storeNow).
const leaseMark = ".lease-"

// clockSuffixLen is the length of "!" and the 16 hex digits that name a
// clock object after its lease. keyname never writes "!", so a clock
// object's name is never a lease's.
const clockSuffixLen = 1 + 16

// maxLeaseRounds bounds the read-then-write rounds of one AcquireLease or
// BreakLease: a round is lost only when another holder wrote or deleted
// the lease between our read and our write.
const maxLeaseRounds = 4

// The lease object's metadata.
const (
	tokenMeta = "certcache-token"
	ttlMeta   = "certcache-ttl-ms"
)

// How the store dates an object version; see writtenAt.
const (
	clockUnknown    int32 = iota
	clockUpdated          // the version's update time (GCS)
	clockGeneration       // its generation, read as Unix microseconds (fake-gcs-server)
)

// maxGenerationSkew bounds how far a clock object's generation, read as a
// time, may be from this machine's clock for generations to be taken for
// the store's clock. It only tells a timestamp from a counter: expiry is
// never judged against this machine's clock.
const maxGenerationSkew = 24 * time.Hour

// lease is a lease object as read.
type lease struct {
	attrs *storage.ObjectAttrs
	obj   string
	gen   int64
	token string
	ttl   time.Duration
}

// leaseName returns the object name of the lease called name.
func (d *driver) leaseName(name string) string {
	return d.prefix + leaseMark + keyname.Encode(name, d.segMax-len(leaseMark)-clockSuffixLen)
}

// AcquireLease creates the lease object if there is none, and otherwise
// replaces it if it has expired or token holds it. A lost race starts a
// new round, whose read tells who holds the lease now.
func (d *driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	obj := d.leaseName(name)
	for range maxLeaseRounds {
		_, err := d.writeLease(ctx, obj, token, ttl, storage.Conditions{DoesNotExist: true})
		if err == nil || !lostRace(err) {
			return err
		}
		l, err := d.readLease(ctx, obj)
		if err != nil {
			return err
		}
		if l == nil {
			continue // released since our attempt: create it again
		}
		if l.token != token {
			if err := d.held(ctx, l); err != nil {
				return err
			}
		}
		_, err = d.writeLease(ctx, obj, token, ttl, storage.Conditions{GenerationMatch: l.gen})
		if err == nil || !lostRace(err) {
			return err
		}
	}
	return fmt.Errorf("%w: written by other holders %d times while acquiring", certcache.ErrLeaseHeld, maxLeaseRounds)
}

// RefreshLease rewrites the lease object, if token holds it, on condition
// that it has not changed since it was read. The new version's update time
// is the store's time of the refresh: if the version it replaced had
// expired by then, the refresh is undone (the new version deleted) and the
// lease reported lost, as it would have been had the store been asked
// first, one request fewer on every refresh that is in time.
func (d *driver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	obj := d.leaseName(name)
	if err := d.knowClock(ctx, obj); err != nil {
		return err
	}
	l, err := d.readLease(ctx, obj)
	switch {
	case err != nil:
		return err
	case l == nil:
		return fmt.Errorf("%w: no lease is held", certcache.ErrLeaseLost)
	case l.token != token:
		return fmt.Errorf("%w: another holder has it", certcache.ErrLeaseLost)
	}
	attrs, err := d.writeLease(ctx, obj, token, ttl, storage.Conditions{GenerationMatch: l.gen})
	if lostRace(err) {
		if held, err := d.heldBy(ctx, obj, token); err != nil || held {
			return err
		}
		return fmt.Errorf("%w: it changed as we refreshed it", certcache.ErrLeaseLost)
	}
	if err != nil {
		return err
	}
	written, err := d.writtenAt(l.attrs)
	if err != nil {
		return err
	}
	now, err := d.writtenAt(attrs)
	if err != nil {
		return err
	}
	if l.ttl <= 0 || now.Sub(written) >= l.ttl {
		// Give back what the write took. Should the delete fail, the
		// object holds our token for one TTL more: a lease nobody uses,
		// which delays the next holder, never admits two.
		d.deleteLease(ctx, obj, attrs.Generation)
		return fmt.Errorf("%w: it expired %v after %s, by the store's clock", certcache.ErrLeaseLost,
			l.ttl, written.UTC().Format(time.RFC3339Nano))
	}
	return nil
}

// heldBy reports whether token holds the lease object, unexpired by the
// store's clock. It settles a conditional write of token's lease that
// failed its condition: when the answer to a write that landed is lost,
// the library sends it again, and the retry fails because of the
// generation that its first attempt made.
func (d *driver) heldBy(ctx context.Context, obj, token string) (bool, error) {
	l, err := d.readLease(ctx, obj)
	if err != nil || l == nil || l.token != token {
		return false, err
	}
	expired, err := d.expired(ctx, l)
	return err == nil && !expired, err
}

// ReleaseLease deletes the lease object, if token holds it, on condition
// that it is still the generation read: a holder who took over an expired
// lease in between keeps it.
func (d *driver) ReleaseLease(ctx context.Context, name, token string) error {
	obj := d.leaseName(name)
	l, err := d.readLease(ctx, obj)
	if err != nil || l == nil || l.token != token {
		return err
	}
	err = d.deleteLease(ctx, obj, l.gen)
	if lostRace(err) {
		// No longer ours. Or deleted: the library's retry of our delete,
		// after a lost answer, found it gone.
		return nil
	}
	return err
}

// writeLease writes the lease object for token and ttl under cond, and
// returns the new version's attributes.
func (d *driver) writeLease(ctx context.Context, obj, token string, ttl time.Duration, cond storage.Conditions) (*storage.ObjectAttrs, error) {
	w := d.bkt.Object(obj).If(cond).NewWriter(ctx)
	w.ChunkSize = 0
	w.Metadata = map[string]string{tokenMeta: token, ttlMeta: strconv.FormatInt(ttl.Milliseconds(), 10)}
	if err := w.Close(); err != nil {
		return nil, d.classifyWrite(err)
	}
	return w.Attrs(), nil
}

// deleteLease deletes generation gen of the lease object and nothing
// else. The generation is named twice: as the version to delete, which
// fake-gcs-server honours, and as a precondition, which GCS honours and
// that emulator ignores on deletes. Either alone keeps a newer version,
// another holder's, from being deleted.
func (d *driver) deleteLease(ctx context.Context, obj string, gen int64) error {
	return d.classify(d.bkt.Object(obj).Generation(gen).If(storage.Conditions{GenerationMatch: gen}).Delete(ctx))
}

// readLease reads the lease object's attributes; nil if there is none.
func (d *driver) readLease(ctx context.Context, obj string) (*lease, error) {
	attrs, err := d.bkt.Object(obj).Attrs(ctx)
	if errors.Is(err, storage.ErrObjectNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, d.classify(err)
	}
	return leaseOfAttrs(attrs), nil
}

// leaseOfAttrs reads a lease from an object's attributes. An object that
// holds no valid lease (damaged, or not written by this package) counts
// as expired, so that it is taken over rather than block the name.
func leaseOfAttrs(attrs *storage.ObjectAttrs) *lease {
	l := &lease{attrs: attrs, obj: attrs.Name, gen: attrs.Generation, token: attrs.Metadata[tokenMeta]}
	if ms, err := strconv.ParseInt(attrs.Metadata[ttlMeta], 10, 64); err == nil && ms > 0 {
		l.ttl = time.Duration(ms) * time.Millisecond
	}
	return l
}

// held reports whether l, another holder's lease, still runs, by the
// store's clock: an error wrapping ErrLeaseHeld if so.
func (d *driver) held(ctx context.Context, l *lease) error {
	expired, err := d.expired(ctx, l)
	switch {
	case err != nil:
		return err
	case !expired:
		return fmt.Errorf("%w: it runs for %v from its last write, by the store's clock", certcache.ErrLeaseHeld, l.ttl)
	}
	return nil
}

// expired judges l by the store's clock.
func (d *driver) expired(ctx context.Context, l *lease) (bool, error) {
	if l.ttl <= 0 || l.token == "" {
		return true, nil // not a lease this package wrote: see leaseOfAttrs
	}
	now, err := d.storeNow(ctx, l.obj)
	if err != nil {
		return false, err
	}
	written, err := d.writtenAt(l.attrs)
	if err != nil {
		return false, err
	}
	return now.Sub(written) >= l.ttl, nil
}

// storeNow returns the store's time now: the time of a clock object it
// writes beside obj and deletes. The first one also tells how the store
// dates versions (see learnClock).
func (d *driver) storeNow(ctx context.Context, obj string) (time.Time, error) {
	var id [8]byte
	rand.Read(id[:])
	clock := obj + "!" + hex.EncodeToString(id[:])
	w := d.bkt.Object(clock).If(storage.Conditions{DoesNotExist: true}).NewWriter(ctx)
	w.ChunkSize = 0
	if err := w.Close(); err != nil {
		return time.Time{}, d.classifyWrite(fmt.Errorf("writing clock object %q: %w", clock, err))
	}
	attrs := w.Attrs()
	// A clock object left behind by a failed delete (or a call whose time
	// ran out) is harmless: its name is no key's and no lease's, and List
	// and ListLeases skip it.
	defer d.bkt.Object(clock).Generation(attrs.Generation).Delete(ctx)
	if d.clock.Load() == clockUnknown {
		if err := d.learnClock(ctx, attrs); err != nil {
			return time.Time{}, err
		}
	}
	return d.writtenAt(attrs)
}

// knowClock makes sure the store's way of dating versions is known before
// a lease is written, by writing a first clock object beside obj.
func (d *driver) knowClock(ctx context.Context, obj string) error {
	if d.clock.Load() != clockUnknown {
		return nil
	}
	_, err := d.storeNow(ctx, obj)
	return err
}

// learnClock tells how the store dates versions, from a clock object just
// written. GCS keeps each version's update time, to the millisecond, and
// reports the same one on every read. fake-gcs-server keeps none: it
// reports no time, or the time of each answer, so two reads differ; it
// makes generations from its clock in microseconds, which then date the
// versions, once the clock object's generation is seen to read as a time
// (near this machine's: a counter would not).
func (d *driver) learnClock(ctx context.Context, created *storage.ObjectAttrs) error {
	mode := clockGeneration
	if !created.Updated.IsZero() {
		again, err := d.bkt.Object(created.Name).Attrs(ctx)
		if err != nil {
			return d.classify(fmt.Errorf("reading clock object %q: %w", created.Name, err))
		}
		if again.Updated.Equal(created.Updated) {
			mode = clockUpdated
		}
	}
	if mode == clockGeneration {
		if skew := time.Since(time.UnixMicro(created.Generation)).Abs(); skew > maxGenerationSkew {
			return fmt.Errorf("the store keeps no update time for objects, and its generations (%d) are no clock: leases cannot be judged by the store's clock", created.Generation)
		}
	}
	d.clock.Store(mode)
	return nil
}

// writtenAt returns when the version attrs describes was written, by the
// store's clock, as learnClock found the store dates versions.
func (d *driver) writtenAt(attrs *storage.ObjectAttrs) (time.Time, error) {
	switch d.clock.Load() {
	case clockUpdated:
		if attrs.Updated.IsZero() {
			return time.Time{}, fmt.Errorf("object %q: the store reported no update time to judge expiry by", attrs.Name)
		}
		return attrs.Updated, nil
	case clockGeneration:
		return time.UnixMicro(attrs.Generation), nil
	}
	return time.Time{}, errors.New("the store's clock is not known yet") // knowClock comes first
}

// lostRace reports whether a conditional write or delete failed because
// the object is not as read: 412 (it exists, or has another generation),
// or gone (404 on a delete).
func lostRace(err error) bool {
	return isStatus(err, http.StatusPreconditionFailed) || errors.Is(err, storage.ErrObjectNotExist)
}
