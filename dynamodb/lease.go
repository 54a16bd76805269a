package dynamodb

import (
	"context"
	"errors"
	"fmt"
	ccdriver "github.com/certcache/certcache/driver"
	"strconv"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/certcache/certcache"
)

// Leases follow the AWS DynamoDB Lock Client: a lease is an item (sort key
// "l:" and the encoded name) that records its holder's token, its TTL, and
// a record version number (rvn), a random value that every write of the
// item replaces. DynamoDB has no clock a condition expression can read, and
// nodes' clocks disagree, so no node compares times across machines:
//
//   - A contender that finds another holder's lease remembers its rvn and
//     when it first saw it, by its own monotonic clock. Once it has seen
//     the same rvn for the lease's whole TTL, the holder has not refreshed
//     it for that long, and the contender may take it over: a write on
//     condition that the rvn is still the one it watched. Until then it
//     answers ErrLeaseHeld. A contender that first sees a lease when it
//     is long past its holder's TTL therefore still waits a TTL from then.
//   - The holder counts its lease from the moment it sent the write that
//     took or refreshed it, also by its own monotonic clock, and refuses
//     to refresh one older than its TTL (ErrLeaseLost): every contender
//     began watching after that write landed, so none can take the lease
//     before the holder's own count runs out.
//
// Taking a free lease (none stored) is a write on condition that there is
// none; refreshing, a write on condition that the holder is the token;
// releasing, a delete on that condition; breaking, a delete on condition
// that the rvn is the one read. So of two nodes that act at once, one's
// condition fails.
const (
	attrHolder = "holder" // S: the holder's token
	attrRVN    = "rvn"    // S: the record version number
	attrTTL    = "ttl_ms" // N: the TTL in milliseconds
	attrName   = "name"   // S: the whole lease name, on an item whose sk was shortened
)

// watch is what this node has seen of another holder's lease: its rvn,
// and when it first saw that rvn, by the monotonic clock.
type watch struct {
	rvn   string
	since time.Time
}

// held is a lease this node wrote for token at (monotonic) for ttl.
type held struct {
	token string
	at    time.Time
	ttl   time.Duration
}

// lease is a lease item as read, and when the answer came.
type lease struct {
	holder, rvn string
	ttl         time.Duration
	seen        time.Time
}

var _ ccdriver.LeaseDriver = (*driver)(nil)

// readLease reads the lease item sk, or nil if there is none.
func (d *driver) readLease(ctx context.Context, sk string) (*lease, error) {
	out, err := d.client.GetItem(ctx, &dynamodb.GetItemInput{TableName: &d.table, Key: d.itemKey(sk), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, d.classify(err)
	}
	if out.Item == nil {
		return nil, nil
	}
	return parseLease(sk, out.Item, time.Now())
}

func parseLease(sk string, item map[string]types.AttributeValue, seen time.Time) (*lease, error) {
	h, ok1 := item[attrHolder].(*types.AttributeValueMemberS)
	r, ok2 := item[attrRVN].(*types.AttributeValueMemberS)
	t, ok3 := item[attrTTL].(*types.AttributeValueMemberN)
	if !ok1 || !ok2 || !ok3 || h.Value == "" || r.Value == "" {
		return nil, fmt.Errorf("item %q is not a lease", sk)
	}
	ms, err := strconv.ParseInt(t.Value, 10, 64)
	if err != nil || ms <= 0 {
		return nil, fmt.Errorf("item %q is not a lease: ttl %q", sk, t.Value)
	}
	return &lease{holder: h.Value, rvn: r.Value, ttl: time.Duration(ms) * time.Millisecond, seen: seen}, nil
}

// watchLeft records l as seen and returns how long this node must still
// see its rvn unchanged before the lease may be taken over: at most its
// TTL, and zero or less once it has watched that long.
func (d *driver) watchLeft(sk string, l *lease) time.Duration {
	d.mu.Lock()
	defer d.mu.Unlock()
	w, ok := d.watched[sk]
	if !ok || w.rvn != l.rvn {
		w = watch{rvn: l.rvn, since: l.seen}
		d.watched[sk] = w
	}
	return l.ttl - l.seen.Sub(w.since)
}

// forget drops what this node remembers of lease sk.
func (d *driver) forget(sk string) {
	d.mu.Lock()
	delete(d.watched, sk)
	delete(d.mine, sk)
	d.mu.Unlock()
}

func heldErr(l *lease, left time.Duration) error {
	return fmt.Errorf("%w: this node takes it over only once it has seen it unrefreshed for its TTL of %v, %v from now at the earliest",
		certcache.ErrLeaseHeld, l.ttl, left.Round(time.Millisecond))
}

// AcquireLease creates the lease item if there is none, extends it if
// token holds it, and takes it over once this node has watched it
// unrefreshed for its TTL. A few rounds cover a lease released or taken
// between our reading and our writing, and a write that failed its
// condition only because an SDK retry of it found its own first attempt.
func (d *driver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	if token == "" {
		return errors.New("empty lease token")
	}
	sk := markLease + encoded(name)
	for range 3 {
		l, err := d.readLease(ctx, sk)
		if err != nil {
			return err
		}
		var cond string
		vals := map[string]types.AttributeValue{}
		switch {
		case l == nil:
			cond = "attribute_not_exists(#sk)"
		case l.holder == token:
			cond, vals[":token"] = "#holder = :token", s(token)
		default:
			if left := d.watchLeft(sk, l); left > 0 {
				return heldErr(l, left)
			}
			cond, vals[":rvn"] = "#rvn = :rvn", s(l.rvn)
		}
		err = d.writeLease(ctx, sk, name, token, ttl, cond, vals)
		if !isConditionFailed(err) {
			return err
		}
	}
	return fmt.Errorf("%w: the lease item changed on every attempt", certcache.ErrLeaseHeld)
}

// RefreshLease rewrites the lease item with a new rvn, on condition that
// token holds it, unless this node's count of it has run out.
func (d *driver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	sk := markLease + encoded(name)
	d.mu.Lock()
	h, ok := d.mine[sk]
	d.mu.Unlock()
	if ok && h.token == token && time.Since(h.at) >= h.ttl {
		return fmt.Errorf("%w: not refreshed within its TTL of %v, by this node's clock", certcache.ErrLeaseLost, h.ttl)
	}
	err := d.writeLease(ctx, sk, name, token, ttl, "#holder = :token", map[string]types.AttributeValue{":token": s(token)})
	if isConditionFailed(err) {
		return fmt.Errorf("%w: it was released, broken or taken over", certcache.ErrLeaseLost)
	}
	return err
}

// ReleaseLease deletes the lease item on condition that token holds it.
func (d *driver) ReleaseLease(ctx context.Context, name, token string) error {
	sk := markLease + encoded(name)
	_, err := d.client.DeleteItem(ctx, &dynamodb.DeleteItemInput{
		TableName:                 &d.table,
		Key:                       d.itemKey(sk),
		ConditionExpression:       aws.String("#holder = :token"),
		ExpressionAttributeNames:  map[string]string{"#holder": attrHolder},
		ExpressionAttributeValues: map[string]types.AttributeValue{":token": s(token)},
	})
	if err == nil || isConditionFailed(err) {
		// Not ours (any more): nothing to release.
		d.forget(sk)
		return nil
	}
	return d.classify(err)
}

// writeLease puts the lease item for token with a new rvn, on condition
// cond, and records when this node sent it.
func (d *driver) writeLease(ctx context.Context, sk, name, token string, ttl time.Duration, cond string, vals map[string]types.AttributeValue) error {
	item := d.itemKey(sk)
	item[attrHolder] = s(token)
	item[attrRVN] = s(newGen() + newGen())
	item[attrTTL] = &types.AttributeValueMemberN{Value: strconv.FormatInt(ttl.Milliseconds(), 10)}
	if enc := sk[len(markLease):]; enc != encodedWhole(name) {
		item[attrName] = s(name) // shortened: ListLeases reads the name from here
	}
	names := map[string]string{"#sk": attrSK, "#holder": attrHolder, "#rvn": attrRVN}
	at := time.Now()
	_, err := d.client.PutItem(ctx, &dynamodb.PutItemInput{
		TableName:                 &d.table,
		Item:                      item,
		ConditionExpression:       &cond,
		ExpressionAttributeNames:  usedNames(cond, names),
		ExpressionAttributeValues: nilIfEmpty(vals),
	})
	if err != nil {
		return d.classify(err)
	}
	d.mu.Lock()
	delete(d.watched, sk)
	d.mine[sk] = held{token: token, at: at, ttl: ttl}
	d.mu.Unlock()
	return nil
}
