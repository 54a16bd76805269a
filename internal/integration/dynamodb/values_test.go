package dynamodb_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/certcache/certcache"
	ccddb "github.com/certcache/certcache/dynamodb"
)

// items counts the items of partition "/"+prefix whose sort keys begin
// with mark, read with the raw client (a page holds at most 1 MB of them).
func items(t *testing.T, endpoint, prefix, mark string) int {
	t.Helper()
	pages := awsddb.NewQueryPaginator(rawClient(t, endpoint), &awsddb.QueryInput{
		TableName:              aws.String(table),
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :m)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": &types.AttributeValueMemberS{Value: "/" + prefix}, ":m": &types.AttributeValueMemberS{Value: mark},
		},
		Select: types.SelectCount,
	})
	count := 0
	for pages.HasMorePages() {
		out, err := pages.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		count += int(out.Count)
	}
	return count
}

func random(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// TestLargeValues: values past DynamoDB's 400 KB item limit, up to
// certcache.MaxValueSize, are stored as chunks and read back whole, with
// the longest key and prefix; replacing or deleting one leaves no chunk
// behind. dynalite enforces the item limit, so a chunk too large for it
// would fail here. dynalite takes seconds to serve 8 MiB (DynamoDB
// milliseconds), hence the long Get timeout.
func TestLargeValues(t *testing.T) {
	t.Parallel()
	_, endpoint := dynalite(t)
	ctx := context.Background()
	// The emulator holds items to DynamoDB's limit, as this test needs.
	if _, err := rawClient(t, endpoint).PutItem(ctx, &awsddb.PutItemInput{TableName: aws.String(table), Item: map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "/raw"}, "sk": &types.AttributeValueMemberS{Value: "k:x"},
		"val": &types.AttributeValueMemberB{Value: make([]byte, 400<<10)},
	}}); err == nil || !strings.Contains(err.Error(), "Item size has exceeded the maximum allowed size") {
		t.Fatalf("PutItem of an item over 400 KB = %v; want dynalite to refuse it as DynamoDB does", err)
	}
	prefix := strings.Repeat("p", 1024)
	c := open(t, cacheURL(endpoint, prefix, "&get_timeout=60s"))
	key := strings.Repeat("k", certcache.MaxKeyLen-4) + "+rsa"
	for _, size := range []int{ccddb.ChunkSize, ccddb.ChunkSize + 1, 3*ccddb.ChunkSize - 1, certcache.MaxValueSize} {
		v := random(size)
		if err := c.Put(ctx, key, v); err != nil {
			t.Fatalf("Put of %d bytes: %v", size, err)
		}
		start := time.Now()
		got, err := c.Get(ctx, key)
		t.Logf("Get of %d bytes: %v", size, time.Since(start))
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("Get of %d bytes = %d bytes, %v", size, len(got), err)
		}
		want := (size + ccddb.ChunkSize - 1) / ccddb.ChunkSize
		if want == 1 {
			want = 0 // stored whole
		}
		if n := items(t, endpoint, prefix, "c:"); n != want {
			t.Errorf("a value of %d bytes is stored in %d chunks, want %d (and none of the value it replaced)", size, n, want)
		}
	}
	for e, err := range certcache.List(ctx, c, "") {
		if err != nil || e.Key != key || e.Size != certcache.MaxValueSize {
			t.Errorf("List = %q (%d bytes), %v; want the key with %d bytes", e.Key, e.Size, err, certcache.MaxValueSize)
		}
	}
	if err := c.Put(ctx, key, []byte("small")); err != nil {
		t.Fatal(err)
	}
	if n := items(t, endpoint, prefix, "c:"); n != 0 {
		t.Errorf("%d chunks left after a large value was replaced by a small one", n)
	}
	if err := c.Put(ctx, key, random(2*ccddb.ChunkSize)); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, key); err != nil {
		t.Fatal(err)
	}
	if n := items(t, endpoint, prefix, ""); n != 0 {
		t.Errorf("%d items left after the only key was deleted", n)
	}
}

// TestLargeValuesNeverTorn: readers of a key whose chunked value is being
// replaced read one whole value or the other, never a mix, never a miss.
func TestLargeValuesNeverTorn(t *testing.T) {
	t.Parallel()
	_, endpoint := dynalite(t)
	ctx := context.Background()
	w, r := open(t, cacheURL(endpoint, "torn", "")), open(t, cacheURL(endpoint, "torn", ""))
	values := [][]byte{bytes.Repeat([]byte("a"), ccddb.ChunkSize+5), bytes.Repeat([]byte("b"), 2*ccddb.ChunkSize-7)}
	if err := w.Put(ctx, "example.com", values[0]); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(done)
		for i := range 8 {
			if err := w.Put(ctx, "example.com", values[i%2]); err != nil {
				t.Errorf("Put: %v", err)
				return
			}
		}
	})
	reads := 0
	for loop := true; loop; reads++ {
		select {
		case <-done:
			loop = false
		default:
		}
		got, err := r.Get(ctx, "example.com")
		if err != nil {
			t.Fatalf("Get during overwrites: %v", err)
		}
		if !bytes.Equal(got, values[0]) && !bytes.Equal(got, values[1]) {
			t.Fatalf("Get during overwrites read %d bytes that are neither value", len(got))
		}
	}
	wg.Wait()
	t.Logf("%d whole reads during 8 overwrites", reads)
}

// TestLeaseWatchedExpiry: expiry follows the AWS DynamoDB Lock Client. A
// holder that refreshes keeps its lease however long a contender watches;
// once it stops, a contender takes it a TTL after it last saw it change,
// and a contender that first looks then still waits a whole TTL.
func TestLeaseWatchedExpiry(t *testing.T) {
	t.Parallel()
	_, endpoint := dynalite(t)
	ctx := context.Background()
	const ttl = 3 * time.Second
	a, b := open(t, cacheURL(endpoint, "watch", "")), open(t, cacheURL(endpoint, "watch", ""))
	la, err := certcache.AcquireLease(ctx, a, "lease", ttl)
	if err != nil {
		t.Fatal(err)
	}
	// a refreshes every third of the TTL for two TTLs: b, watching,
	// never sees the same record for a TTL.
	for range 6 {
		if _, err := certcache.AcquireLease(ctx, b, "lease", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
			t.Fatalf("AcquireLease of a refreshed lease = %v, want certcache.ErrLeaseHeld", err)
		}
		time.Sleep(ttl / 3)
		if err := la.Refresh(ctx); err != nil {
			t.Fatalf("Refresh: %v", err)
		}
	}
	// a stops refreshing; b watched the last record from its next look.
	if _, err := certcache.AcquireLease(ctx, b, "lease", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("AcquireLease = %v, want certcache.ErrLeaseHeld", err)
	}
	time.Sleep(ttl + 200*time.Millisecond)
	// A newcomer's first look is after the holder's TTL: held for it.
	c := open(t, cacheURL(endpoint, "watch", ""))
	if _, err := certcache.AcquireLease(ctx, c, "lease", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("a newcomer's AcquireLease at first look = %v, want certcache.ErrLeaseHeld", err)
	}
	if err := la.Refresh(ctx); !errors.Is(err, certcache.ErrLeaseLost) {
		t.Errorf("Refresh past the TTL by the holder's clock = %v, want certcache.ErrLeaseLost", err)
	}
	lb, err := certcache.AcquireLease(ctx, b, "lease", time.Minute)
	if err != nil {
		t.Fatalf("AcquireLease after watching the lease unrefreshed for its TTL: %v", err)
	}
	if _, err := certcache.AcquireLease(ctx, c, "lease", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("the newcomer's AcquireLease after the takeover = %v, want certcache.ErrLeaseHeld", err)
	}
	lb.Release(ctx)
}
