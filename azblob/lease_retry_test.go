package azblob

import (
	"context"
	"errors"
	"github.com/certcache/certcache/internal/httpfault"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/certcache/certcache"
)

// TestLeaseLostAnswer: a conditional lease write or delete that lands but
// whose answer is lost is sent again by the SDK's retry policy, and the
// retry fails its condition because of the first attempt's own change. The
// lease must still count as acquired, refreshed or released, as it is.
func TestLeaseLostAnswer(t *testing.T) {
	var method, cond string // the requests whose answer is lost
	lost := &httpfault.LostAnswer{Match: func(r *http.Request) bool {
		q := r.URL.Query()
		return r.Method == method && strings.Contains(r.URL.Path, leaseDir) && !q.Has("comp") && !q.Has("snapshot") &&
			r.Header.Get(cond) != ""
	}}
	d := azuriteDriverWith(t, azcore.ClientOptions{
		Transport: &http.Client{Transport: lost},
		Retry:     policy.RetryOptions{RetryDelay: 10 * time.Millisecond, MaxRetryDelay: 50 * time.Millisecond},
	})
	ctx := context.Background()
	const ttl = time.Minute
	acquireA := func(n string) error { return d.AcquireLease(ctx, n, "A", ttl) }
	if err := d.Put(ctx, "k", []byte("v")); err != nil { // creates the container
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name         string
		setup        func(name string) error // nil: none
		method, cond string                  // the request that loses its answer
		ok           int                     // the status of the request that lands
		fail         []int                   // the statuses the SDK's retry of it may get
		call         func(name string) error
		release      bool // the call released the lease
	}{
		{"acquire creates", nil, http.MethodPut, "If-None-Match", http.StatusCreated, []int{http.StatusConflict},
			acquireA, false},
		{"acquire replaces", acquireA, http.MethodPut, "If-Match", http.StatusCreated, []int{http.StatusPreconditionFailed},
			func(n string) error { return d.AcquireLease(ctx, n, "A", 2*ttl) }, false},
		{"refresh", acquireA, http.MethodPut, "If-Match", http.StatusCreated, []int{http.StatusPreconditionFailed},
			func(n string) error { return d.RefreshLease(ctx, n, "A", ttl) }, false},
		{"release", acquireA, http.MethodDelete, "If-Match", http.StatusAccepted, []int{http.StatusNotFound, http.StatusPreconditionFailed},
			func(n string) error { return d.ReleaseLease(ctx, n, "A") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			name := tc.name + ".example"
			if tc.setup != nil {
				if err := tc.setup(name); err != nil {
					t.Fatal(err)
				}
			}
			method, cond = tc.method, tc.cond
			lost.Arm()
			err := tc.call(name)
			method, cond = "", ""
			got := lost.Statuses()
			t.Logf("statuses of the %s %s requests: %v; result: %v", tc.method, tc.cond, got, err)
			if len(got) < 2 || got[0] != tc.ok || !slices.Contains(tc.fail, got[1]) {
				t.Errorf("the %s %s requests got %v; want %d (lost), then one of %v for the SDK's retry", tc.method, tc.cond, got, tc.ok, tc.fail)
			}
			if err != nil {
				t.Fatalf("with the first answer lost: %v; want success", err)
			}
			err = d.AcquireLease(ctx, name, "B", ttl)
			switch {
			case tc.release && err != nil:
				t.Errorf("B acquiring the released lease: %v", err)
			case !tc.release && !errors.Is(err, certcache.ErrLeaseHeld):
				t.Errorf("B acquiring = %v; want ErrLeaseHeld, A holding the lease", err)
			case !tc.release:
				// Dated as a write whose answer came back would be.
				if n := snapshotsOf(t, d, d.leaseBlob(name)); n != 1 {
					t.Errorf("%d snapshots of the lease blob; want 1, of the version written", n)
				}
				if err := d.RefreshLease(ctx, name, "A", ttl); err != nil {
					t.Errorf("A refreshing afterwards: %v", err)
				}
			}
		})
	}
}
