package dynamodb

import (
	"context"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"iter"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/keyname"
)

var (
	_ ccdriver.ListDriver       = (*driver)(nil)
	_ ccdriver.LeaseAdminDriver = (*driver)(nil)
)

// query yields the items of this namespace whose sort keys begin with mark
// and the encoding of prefix, a page at a time (DynamoDB's pages are at
// most 1 MB), reading only the attributes named. keyname encodes byte by
// byte, so the encoded prefix begins the encoding of every name that
// begins with prefix; a shortened sort key keeps less of it, so a long
// prefix is cut to what they keep, and callers check decoded names against
// the whole prefix.
func (d *driver) query(ctx context.Context, mark, prefix string, attrs ...string) iter.Seq2[map[string]types.AttributeValue, error] {
	return func(yield func(map[string]types.AttributeValue, error) bool) {
		enc := keyname.Encode(prefix, math.MaxInt)
		if keep := maxEncoded - keyname.MinMax; len(enc) > keep {
			enc = enc[:keep]
		}
		names := map[string]string{"#pk": attrPK, "#sk": attrSK}
		proj := []string{"#sk"}
		for i, a := range attrs {
			ph := "#a" + strconv.Itoa(i)
			names[ph] = a
			proj = append(proj, ph)
		}
		pages := dynamodb.NewQueryPaginator(d.client, &dynamodb.QueryInput{
			TableName:                 &d.table,
			ConsistentRead:            aws.Bool(true),
			KeyConditionExpression:    aws.String("#pk = :pk AND begins_with(#sk, :prefix)"),
			ProjectionExpression:      aws.String(strings.Join(proj, ", ")),
			ExpressionAttributeNames:  names,
			ExpressionAttributeValues: map[string]types.AttributeValue{":pk": d.pk, ":prefix": s(mark + enc)},
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(nil, d.classify(err))
				return
			}
			for _, item := range page.Items {
				if err := ctx.Err(); err != nil {
					yield(nil, err)
					return
				}
				if !yield(item, nil) {
					return
				}
			}
		}
	}
}

// nameOf returns the key or lease name an item of kind mark stores, and
// false for an item whose sort key is not exactly what this backend writes
// for that name.
func nameOf(mark string, item map[string]types.AttributeValue, whole string) (string, bool) {
	sk, _ := item[attrSK].(*types.AttributeValueMemberS)
	if sk == nil {
		return "", false
	}
	enc, ok := strings.CutPrefix(sk.Value, mark)
	if !ok {
		return "", false
	}
	name, hashed, err := keyname.Decode(enc)
	if err != nil {
		return "", false
	}
	if hashed {
		w, _ := item[whole].(*types.AttributeValueMemberS)
		if w == nil {
			return "", false
		}
		name = w.Value
	}
	return name, encoded(name) == enc
}

// List lists the value items of the namespace with Query: never a chunk
// or a lease, whose sort keys begin otherwise. DynamoDB keeps no time of a
// write, so entries have no ModTime.
func (d *driver) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		for item, err := range d.query(ctx, markKey, prefix, attrSize, attrKey) {
			if err != nil {
				yield(certcache.Entry{}, err)
				return
			}
			key, ok := nameOf(markKey, item, attrKey)
			if !ok || !strings.HasPrefix(key, prefix) {
				continue
			}
			var size int64
			if z, ok := item[attrSize].(*types.AttributeValueMemberN); ok {
				size, _ = strconv.ParseInt(z.Value, 10, 64)
			}
			if !yield(certcache.Entry{Key: key, Size: size}, nil) {
				return
			}
		}
	}
}

// ListLeases implements driver.LeaseAdminDriver. The store keeps no
// expiry (see lease.go), so a lease's Expires is this node's estimate: its
// own write plus the TTL for a lease it holds, and for another holder's,
// a TTL after it first saw the lease's current rvn, as AcquireLease would
// take it over. Listing starts that watch: a lease first listed now is
// shown expiring a whole TTL from now.
func (d *driver) ListLeases(ctx context.Context, prefix string) iter.Seq2[certcache.LeaseInfo, error] {
	return func(yield func(certcache.LeaseInfo, error) bool) {
		for item, err := range d.query(ctx, markLease, prefix, attrName, attrHolder, attrRVN, attrTTL) {
			if err != nil {
				yield(certcache.LeaseInfo{}, err)
				return
			}
			name, ok := nameOf(markLease, item, attrName)
			if !ok || !strings.HasPrefix(name, prefix) {
				continue
			}
			sk := markLease + encoded(name)
			l, err := parseLease(sk, item, time.Now())
			if err != nil {
				yield(certcache.LeaseInfo{}, err)
				return
			}
			if !yield(certcache.LeaseInfo{Name: name, Holder: l.holder, Expires: time.Now().Add(d.leaseLeft(sk, l))}, nil) {
				return
			}
		}
	}
}

// leaseLeft is how long l runs by this node's count: its own, or its watch.
func (d *driver) leaseLeft(sk string, l *lease) time.Duration {
	d.mu.Lock()
	h, mine := d.mine[sk]
	d.mu.Unlock()
	if mine && h.token == l.holder {
		return h.ttl - time.Since(h.at)
	}
	return d.watchLeft(sk, l)
}

// BreakLease implements driver.LeaseAdminDriver: it deletes the lease
// item on condition that its rvn is the one read. Without force it breaks
// only a lease this node has watched unrefreshed for its TTL, as
// AcquireLease would take it over; an operator's first look starts that
// watch (certcache leases, then certcache unlock a TTL later, in one
// process), or force breaks it at once.
func (d *driver) BreakLease(ctx context.Context, name string, force bool) error {
	sk := markLease + encoded(name)
	for range 3 {
		l, err := d.readLease(ctx, sk)
		if err != nil || l == nil {
			return err
		}
		if !force {
			if left := d.watchLeft(sk, l); left > 0 {
				return heldErr(l, left)
			}
		}
		_, err = d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
			TableName:                 &d.table,
			Key:                       d.itemKey(sk),
			ConditionExpression:       aws.String("#rvn = :rvn"),
			ExpressionAttributeNames:  map[string]string{"#rvn": attrRVN},
			ExpressionAttributeValues: map[string]types.AttributeValue{":rvn": s(l.rvn)},
		})
		if err == nil {
			d.forget(sk)
			return nil
		}
		if !isConditionFailed(err) {
			return d.classify(err)
		}
	}
	return fmt.Errorf("%w: the lease item changed on every attempt", certcache.ErrLeaseHeld)
}
