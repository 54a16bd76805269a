package azblob

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/testenv"
)

// azuriteDriver returns a driver on a fresh Azurite, in container "certs"
// (created on first use) under prefix p.
func azuriteDriver(t *testing.T) *driver {
	t.Helper()
	_, ep := testenv.Azurite(t)
	a := testenv.AzuriteDevAccount
	cred, err := azblob.NewSharedKeyCredential(a.Name, a.Key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := azblob.NewClientWithSharedKeyCredential(ep, cred, nil)
	if err != nil {
		t.Fatal(err)
	}
	return newDriver(c, "certs", "p", true)
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
