package s3_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/certcache/certcache/internal/keyname"
)

// listKeys lists c under prefix and returns the keys sorted, failing the
// test on an error or a key seen twice.
func listKeys(t testing.TB, c certcache.Cache, prefix string) []string {
	t.Helper()
	var keys []string
	for e, err := range certcache.List(context.Background(), c, prefix) {
		if err != nil {
			t.Fatalf("List(%.40q): %v", prefix, err)
		}
		keys = append(keys, e.Key)
	}
	slices.Sort(keys)
	for i := 1; i < len(keys); i++ {
		if keys[i] == keys[i-1] {
			t.Errorf("List(%.40q) yields %.40q twice", prefix, keys[i])
		}
	}
	return keys
}

// putRaw stores an object the cache did not write, as a person or another
// program might, under the bucket.
func putRaw(t testing.TB, client *awss3.Client, name string, meta map[string]string) {
	t.Helper()
	if _, err := client.PutObject(context.Background(), &awss3.PutObjectInput{Bucket: aws.String(bucket),
		Key: aws.String(name), Body: strings.NewReader("foreign"), Metadata: meta}); err != nil {
		t.Fatalf("putting %q: %v", name, err)
	}
}

// TestList: List reports exactly the keys of its namespace, hostile and
// shortened ones included, with their sizes and the store's times, filtered
// by prefix, and nothing else: no lease, no neighbouring or nested
// namespace, no object that no key maps to.
func TestList(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	ctx := context.Background()
	c := open(t, cacheURL(endpoint, "list", ""))
	var keys []string
	for _, k := range append(slices.Clone(drivertest.HostileKeys), "example.com", "example.com+rsa", "acme_account+key") {
		if certcache.ValidateKey(k) == nil && !slices.Contains(keys, k) {
			keys = append(keys, k)
		}
	}
	before := time.Now()
	for _, k := range keys {
		if err := c.Put(ctx, k, []byte("value of "+k)); err != nil {
			t.Fatal(err)
		}
	}
	after := time.Now()
	if _, err := certcache.AcquireLease(ctx, c, "example.com", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"list-b", "list/nested", "lis"} {
		if err := open(t, cacheURL(endpoint, ns, "")).Put(ctx, "example.com", []byte("elsewhere")); err != nil {
			t.Fatal(err)
		}
	}
	raw := rawClient(t, endpoint)
	for _, name := range []string{"list/not an encoding", "list/%41", "list/%2e", "list/.hidden", "list/a~b"} {
		putRaw(t, raw, name, nil)
	}

	// Entries carry the value's size and a time from the store, which
	// shares this machine's clock.
	for e, err := range certcache.List(ctx, c, "example.com") {
		if err != nil {
			t.Fatal(err)
		}
		if want := int64(len("value of " + e.Key)); e.Size != want {
			t.Errorf("%q: Size %d, want %d", e.Key, e.Size, want)
		}
		if e.ModTime.Before(before.Add(-2*time.Second)) || e.ModTime.After(after.Add(2*time.Second)) {
			t.Errorf("%q: ModTime %v, not within the Puts (%v to %v)", e.Key, e.ModTime, before, after)
		}
	}

	for _, prefix := range []string{
		"", "a", "a%", "a%2", "example.com", "example.com+", ".", "..", "/", "%", "~", "日本", "🎉",
		strings.Repeat("k", 600), strings.Repeat("k", 1000), strings.Repeat("é", 100), strings.Repeat("/", 200),
		strings.Repeat("x", certcache.MaxKeyLen), "no such prefix",
	} {
		var want []string
		for _, k := range keys {
			if strings.HasPrefix(k, prefix) {
				want = append(want, k)
			}
		}
		slices.Sort(want)
		if got := listKeys(t, c, prefix); !slices.Equal(got, want) {
			t.Errorf("List(%.40q) = %d keys %.200q; want %d keys %.200q", prefix, len(got), got, len(want), want)
		}
	}
}

// TestListShortenedWithoutMetadata: an object under a shortened name that
// does not record its key (written by an older certcache) cannot be listed
// exactly, and List says so rather than leaving it out.
func TestListShortenedWithoutMetadata(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	c := open(t, cacheURL(endpoint, "legacy", ""))
	putRaw(t, rawClient(t, endpoint), "legacy/"+keyname.Encode(strings.Repeat("/", 300), 255), nil)
	var err error
	for _, err = range certcache.List(context.Background(), c, "") {
		if err != nil {
			break
		}
	}
	if err == nil || !strings.Contains(err.Error(), "certcache-key") {
		t.Fatalf("List = %v; want an error about the missing certcache-key metadata", err)
	}
	t.Log(err)
}

// TestListPages: a listing longer than a page yields each key once, stops
// when the caller stops, and ends with the caller's context.
func TestListPages(t *testing.T) {
	_, endpoint := minio(t, testenv.MinIO)
	c := open(t, cacheURL(endpoint, "pages", ""))
	const n = 2500
	putMany(t, c, n)
	if got := listKeys(t, c, ""); len(got) != n {
		t.Errorf("List yields %d keys; want %d", len(got), n)
	}
	if got := listKeys(t, c, "key-01"); len(got) != 100 {
		t.Errorf("List(key-01) yields %d keys; want 100", len(got))
	}
	seen := 0
	for _, err := range certcache.List(context.Background(), c, "") {
		if err != nil {
			t.Fatal(err)
		}
		if seen++; seen == 10 {
			break
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	seen = 0
	var err error
	for _, err = range certcache.List(ctx, c, "") {
		if err != nil {
			break
		}
		if seen++; seen == 1500 {
			cancel() // in the second page
		}
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("List after cancel: %d keys, then %v; want context.Canceled", seen, err)
	}
	if seen != 1500 {
		t.Errorf("List went on after cancel: %d keys, want 1500", seen)
	}
}

// putMany stores n keys "key-0000"… concurrently.
func putMany(t testing.TB, c certcache.Cache, n int) {
	t.Helper()
	var wg sync.WaitGroup
	work := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range work {
				if err := c.Put(context.Background(), fmt.Sprintf("key-%04d", i), []byte("value")); err != nil {
					t.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
}
