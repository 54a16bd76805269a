package azblob

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob/container"
	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// azuriteDriver returns a driver on a fresh Azurite, in container "certs"
// (created on first use) under prefix p, with policies added to its
// client's pipeline.
func azuriteDriver(t *testing.T, policies ...policy.Policy) *driver {
	t.Helper()
	return azuriteDriverWith(t, azcore.ClientOptions{PerCallPolicies: policies})
}

// azuriteEnv names the environment variable that gives the white-box tests
// an Azurite to use: "ENDPOINT ACCOUNT KEY". They need a server but live
// in this package, which may not import the Docker harness (it would enter
// every user's go.sum); TestDriverInternals in internal/integration/azblob
// starts Azurite and runs them with it, and fails if any of them skips.
const azuriteEnv = "CERTCACHE_TEST_AZURITE"

// azuriteDriverWith is azuriteDriver with a client made with o.
func azuriteDriverWith(t *testing.T, o azcore.ClientOptions) *driver {
	t.Helper()
	f := strings.Fields(os.Getenv(azuriteEnv))
	if len(f) != 3 {
		t.Skipf("%s is not set: internal/integration/azblob's TestDriverInternals runs this test against Azurite", azuriteEnv)
	}
	ep, name, key := f[0], f[1], f[2]
	cred, err := azblob.NewSharedKeyCredential(name, key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(ep, cred, &azblob.ClientOptions{ClientOptions: o})
	if err != nil {
		t.Fatal(err)
	}
	return newDriver(c, "certs", "p", true)
}

// countCreates counts the requests that create a container.
type countCreates struct{ n atomic.Int64 }

func (c *countCreates) Do(req *policy.Request) (*http.Response, error) {
	if r := req.Raw(); r.Method == http.MethodPut && r.URL.Query().Get("restype") == "container" {
		c.n.Add(1)
	}
	return req.Next()
}

// TestCreateContainerOnce: a burst of first calls on a missing container
// creates it with one request, and every call then works.
func TestCreateContainerOnce(t *testing.T) {
	var creates countCreates
	d := azuriteDriver(t, &creates)
	var wg sync.WaitGroup
	for i := range 32 {
		wg.Go(func() {
			if _, err := d.Get(context.Background(), fmt.Sprint("k", i)); err != autocert.ErrCacheMiss { //nolint:errorlint
				t.Errorf("Get on a missing container = %v, want a miss once it is created", err)
			}
		})
	}
	wg.Wait()
	if n := creates.n.Load(); n < 1 || n > 2 {
		// Two when a call finds the container missing just as the first
		// creation ends; never one per call.
		t.Errorf("%d requests created the container for 32 calls", n)
	}
}

// TestListPages lists across many small pages, and stops when the caller
// stops or the context ends.
func TestListPages(t *testing.T) {
	d := azuriteDriver(t)
	d.listPage = 3
	ctx := context.Background()
	var want []string
	for i := range 20 {
		k := fmt.Sprintf("k%02d", i)
		want = append(want, k)
		if err := d.Put(ctx, k, []byte("v")); err != nil {
			t.Fatal(err)
		}
	}
	if err := d.AcquireLease(ctx, "k05", "tok", time.Minute); err != nil {
		t.Fatal(err)
	}
	var got []string
	for e, err := range d.List(ctx, "k") {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, e.Key)
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("List in pages of 3 = %q; want %q", got, want)
	}

	n := 0
	for range d.List(ctx, "") {
		if n++; n == 4 {
			break
		}
	}
	if n != 4 {
		t.Errorf("stopping after 4 entries: saw %d", n)
	}

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var last error
	n = 0
	for _, err := range d.List(cctx, "") {
		if n++; n == 2 {
			cancel()
		}
		last = err
	}
	if !errors.Is(last, context.Canceled) || n > 3 {
		t.Errorf("cancelled after 2 entries: %d yields, last error %v; want context.Canceled right after", n, last)
	}
}

// TestLeaseSameToken: acquiring with the token that holds the lease
// extends it (the portable layer always makes a new token, so only the
// driver can show this); a stale or damaged lease blob is taken over.
func TestLeaseSameToken(t *testing.T) {
	d := azuriteDriver(t)
	ctx := context.Background()
	if err := d.AcquireLease(ctx, "x", "t1", time.Second); err != nil {
		t.Fatal(err)
	}
	if err := d.AcquireLease(ctx, "x", "t1", time.Minute); err != nil {
		t.Fatalf("re-acquire with the holder's token: %v", err)
	}
	time.Sleep(2500 * time.Millisecond) // past the first TTL and its clock step
	if err := d.AcquireLease(ctx, "x", "t2", time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Errorf("acquire after the first TTL of a re-acquired lease = %v; want ErrLeaseHeld", err)
	}
	if err := d.RefreshLease(ctx, "x", "t1", time.Minute); err != nil {
		t.Errorf("refresh: %v", err)
	}

	// A lease blob without the TTL (not ours, or damaged) does not block the name.
	bn := d.leaseBlob("y")
	if _, err := d.cc.NewBlockBlobClient(bn).UploadBuffer(ctx, nil, nil); err != nil {
		t.Fatal(err)
	}
	if err := d.AcquireLease(ctx, "y", "t1", time.Minute); err != nil {
		t.Errorf("acquire over a lease blob without metadata: %v", err)
	}
}

// snapshotsOf counts the snapshots of blob bn.
func snapshotsOf(t *testing.T, d *driver, bn string) int {
	t.Helper()
	n := 0
	pager := d.cc.NewListBlobsFlatPager(&container.ListBlobsFlatOptions{Prefix: &bn, Include: container.ListBlobsInclude{Snapshots: true}})
	for pager.More() {
		page, err := pager.NextPage(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, item := range page.Segment.BlobItems {
			if *item.Name == bn && item.Snapshot != nil {
				n++
			}
		}
	}
	return n
}

// TestLeaseClock: within the two seconds that whole-second HTTP dates
// leave uncertain, expiry is judged to the sub-second from snapshot times;
// without the writer's snapshot, never early. Azurite runs on this
// machine, so the local clock places the write at a chosen point of a
// second, where whole seconds alone would be nearly a second off.
//
// A loaded machine may run a step late; each attempt therefore works out,
// from when the write and the judgement really ran, what any correct judge
// must answer, and counts only if that is the answer the case is about.
func TestLeaseClock(t *testing.T) {
	d := azuriteDriver(t)
	ctx := context.Background()
	const ttl = 2 * time.Second
	for _, tc := range []struct {
		name          string
		phase         time.Duration // where in a second the lease is written
		dropSnapshots bool          // as if the writer died before its snapshot
		at            time.Duration // when it is judged, after the write
		want          bool
	}{
		// Written late in a second and judged 1.7 s later, the dates say 2 s.
		{"fine-before", 850 * time.Millisecond, false, ttl - 300*time.Millisecond, false},
		// Written early in a second and judged 2.3 s later, the dates say 2 s too.
		{"fine-after", 20 * time.Millisecond, false, ttl + 300*time.Millisecond, true},
		{"coarse-before", 850 * time.Millisecond, true, ttl - 300*time.Millisecond, false},
		{"coarse-after-ttl", 20 * time.Millisecond, true, ttl + 300*time.Millisecond, false}, // counted from the end of its second
		{"coarse-after-ttl-and-a-second", 20 * time.Millisecond, true, ttl + clockStep + 300*time.Millisecond, true},
	} {
		done := false
		for attempt := 0; attempt < 5 && !done; attempt++ {
			name := fmt.Sprint(tc.name, attempt)
			bn := d.leaseBlob(name)
			time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + tc.phase)))
			ws := time.Now()
			if err := d.AcquireLease(ctx, name, "tok", ttl); err != nil {
				t.Fatal(err)
			}
			we := time.Now()
			if n := snapshotsOf(t, d, bn); n != 1 {
				t.Errorf("%s: %d snapshots after acquiring, want 1", name, n)
			}
			if tc.dropSnapshots {
				v, _ := d.snapshots.Load(bn)
				d.dropSnapshot(ctx, bn, v.(string))
			}
			time.Sleep(time.Until(ws.Add(tc.at)))
			js := time.Now()
			st, err := d.readLease(ctx, bn)
			if err != nil || st == nil {
				t.Fatalf("read lease %q: %v, %v", name, st, err)
			}
			got, changed, err := d.expired(ctx, st)
			if err != nil || changed {
				t.Fatalf("judge lease %q: changed %v, %v", name, changed, err)
			}
			je := time.Now()
			// The lease counts from its writer's snapshot, taken between
			// ws and we, or without it from the end of its Last-Modified
			// second; the judge reads the time between js and je.
			from, to := ws, we
			if tc.dropSnapshots {
				from = st.modified.Add(clockStep)
				to = from
			}
			var want bool
			switch {
			case je.Before(from.Add(ttl)):
				want = false
			case !js.Before(to.Add(ttl)):
				want = true
			default:
				t.Logf("%s: judged from %v to %v after the write: inconclusive, again", name, js.Sub(ws), je.Sub(ws))
				continue
			}
			if got != want {
				t.Errorf("%s: expired %v, judged from %v to %v after the write; want %v", name, got, js.Sub(ws), je.Sub(ws), want)
			}
			done = want == tc.want
		}
		if !done {
			t.Errorf("%s: in 5 attempts, never judged when planned (is the machine overloaded?)", tc.name)
		}
	}

	// Refreshes replace the driver's snapshot; release deletes them all.
	if err := d.AcquireLease(ctx, "r", "tok", time.Minute); err != nil {
		t.Fatal(err)
	}
	for range 4 {
		if err := d.RefreshLease(ctx, "r", "tok", time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	bn := d.leaseBlob("r")
	if n := snapshotsOf(t, d, bn); n != 1 {
		t.Errorf("%d snapshots after 4 refreshes, want 1", n)
	}
	if err := d.ReleaseLease(ctx, "r", "tok"); err != nil {
		t.Fatal(err)
	}
	if n := snapshotsOf(t, d, bn); n != 0 {
		t.Errorf("%d snapshots after release, want 0", n)
	}
}
