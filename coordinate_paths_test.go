package certcache

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// The paths on which autocert orders besides a plain miss (issue 21): each
// must give the order to one caller in the fleet.

// handshakeCtx and renewalCtx are the contexts autocert gives Get.
func handshakeCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func renewalCtx(t *testing.T) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	t.Cleanup(cancel)
	return ctx, cancel
}

var pathSeq atomic.Int64

// fleetOf opens n caches on one fresh mem:// store, as n nodes would.
func fleetOf(t *testing.T, n int, query string) []Cache {
	t.Helper()
	u := fmt.Sprintf("mem://paths-%d", pathSeq.Add(1))
	if query != "" {
		u += "?" + query
	}
	var cs []Cache
	for range n {
		cs = append(cs, openCoordinated(t, u))
	}
	return cs
}

// A stored value autocert refuses is a miss for one node, ErrIssuing for
// the others: autocert would order on every node that read it.
func TestRefusedValueIsCoordinated(t *testing.T) {
	now := time.Now()
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	for _, tc := range []struct {
		name  string
		value func() []byte
	}{
		{"expired", func() []byte { return certValue(t, "x.example", now.Add(-2*time.Hour), now.Add(-time.Hour)) }},
		{"not valid yet", func() []byte { return certValue(t, "x.example", now.Add(time.Hour), now.Add(2*time.Hour)) }},
		{"another name", func() []byte { return certValue(t, "y.example", now.Add(-time.Hour), now.Add(time.Hour)) }},
		{"key does not match", func() []byte {
			v := certValue(t, "x.example", now.Add(-time.Hour), now.Add(time.Hour))
			_, rest := pem.Decode(v)
			kb, _ := x509.MarshalECPrivateKey(other)
			return append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), rest...)
		}},
		{"not a certificate", func() []byte { return []byte("garbage") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fleetOf(t, 3, "")
			if err := Uncoordinated(cs[0]).Put(context.Background(), "x.example", tc.value()); err != nil {
				t.Fatal(err)
			}
			var misses, issuing int
			for i, c := range cs {
				_, err := c.Get(handshakeCtx(t), "x.example")
				switch {
				case err == autocert.ErrCacheMiss: //nolint:errorlint
					misses++
				case errors.Is(err, ErrIssuing):
					issuing++
				default:
					t.Errorf("node %d: Get = %v, want the miss or ErrIssuing", i, err)
				}
			}
			if misses != 1 || issuing != 2 {
				t.Errorf("%d misses and %d ErrIssuing, want 1 and 2", misses, issuing)
			}
			// A waiter of GetCertificate takes the value for no
			// certificate: it must not hand back at once, in a loop.
			if _, err := cs[1].Get(peek(handshakeCtx(t)), "x.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
				t.Errorf("peek of a refused value = %v, want a miss", err)
			}
			good := certValue(t, "x.example", now.Add(-time.Hour), now.Add(90*24*time.Hour))
			if err := cs[0].Put(context.Background(), "x.example", good); err != nil {
				t.Fatal(err)
			}
			for i, c := range cs {
				if v, err := c.Get(handshakeCtx(t), "x.example"); err != nil || string(v) != string(good) {
					t.Errorf("node %d after the order: %v", i, err)
				}
			}
		})
	}
}

// The renewal threshold is the Manager's RenewBefore, told by
// GetCertificate or by renew_before, else a third of the life.
func TestRenewBefore(t *testing.T) {
	now := time.Now()
	day := 24 * time.Hour
	// A six-day certificate with two and a half days left: due by a
	// RenewBefore of 72 h, not by autocert's default of two days.
	v := certValue(t, "rb.example", now.Add(-3*day-12*time.Hour), now.Add(2*day+12*time.Hour))
	for _, tc := range []struct {
		name    string
		query   string
		manager time.Duration // RenewBefore of a Manager told through GetCertificate; 0: none
		due     bool
	}{
		{"default", "", 0, false},
		{"renew_before=72h", "renew_before=72h", 0, true},
		{"Manager told", "", 72 * time.Hour, true},
		{"Manager with the default", "", 0, false},
		{"renew_before=24h", "renew_before=24h", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := fleetOf(t, 2, tc.query)
			if tc.manager > 0 {
				for _, c := range cs {
					GetCertificate(&autocert.Manager{RenewBefore: tc.manager}, c)
				}
			}
			if err := cs[0].Put(context.Background(), "rb.example", v); err != nil {
				t.Fatal(err)
			}
			ctxA, _ := renewalCtx(t)
			if _, err := cs[0].Get(ctxA, "rb.example"); err != nil {
				t.Fatalf("renewal Get: %v", err)
			}
			// The second node's renewal returns at once if not due, and
			// waits for the first node's renewal if due.
			ctxB, cancelB := context.WithTimeout(context.Background(), 10*time.Minute)
			done := make(chan error, 1)
			go func() {
				_, err := cs[1].Get(ctxB, "rb.example")
				done <- err
			}()
			select {
			case err := <-done:
				if tc.due {
					t.Errorf("a second renewal of a due certificate returned (%v) while the first renews", err)
				}
			case <-time.After(time.Second):
				if !tc.due {
					t.Errorf("a renewal of a certificate that is not due waited")
				}
				cancelB()
				<-done
			}
			cancelB()
		})
	}
}

// faultyStore is a mem:// store whose next Gets or Puts fail as an
// unreachable server's would.
type faultyStore struct {
	*memStore
	failGets, failPuts atomic.Int32
	timeouts           atomic.Bool // every other failed Get is a timeout
}

var (
	errDown    = fmt.Errorf("%w: connection refused", ErrUnavailable)
	errTimeout = fmt.Errorf("%w: no answer within 1s: %w", ErrUnavailable, context.DeadlineExceeded)
)

func (s *faultyStore) Get(ctx context.Context, key string) ([]byte, error) {
	if n := s.failGets.Add(-1); n >= 0 {
		if s.timeouts.Load() && n%2 == 0 {
			return nil, errTimeout
		}
		return nil, errDown
	}
	return s.memStore.Get(ctx, key)
}

func (s *faultyStore) Put(ctx context.Context, key string, data []byte) error {
	if s.failPuts.Add(-1) >= 0 {
		return errTimeout // the order's Put may well time out on a loaded store
	}
	return s.memStore.Put(ctx, key, data)
}

func faultyFleet(t *testing.T, n int, o *Options) (*faultyStore, []Cache) {
	st := &faultyStore{memStore: newMemStore()}
	var cs []Cache
	for range n {
		c := NewCache("faulty", st, o)
		t.Cleanup(func() { c.Close() })
		cs = append(cs, c)
	}
	return st, cs
}

// A renewal never gets an error it would order on: it waits for the store.
func TestRenewalWaitsOutStoreErrors(t *testing.T) {
	st, cs := faultyFleet(t, 1, nil)
	now := time.Now()
	v := certValue(t, "blip.example", now.Add(-time.Hour), now.Add(89*24*time.Hour))
	if err := cs[0].Put(context.Background(), "blip.example", v); err != nil {
		t.Fatal(err)
	}
	st.failGets.Store(5)
	st.timeouts.Store(true) // some of them a store that did not answer in time
	ctx, _ := renewalCtx(t)
	got, err := cs[0].Get(ctx, "blip.example")
	if err != nil || string(got) != string(v) {
		t.Fatalf("renewal Get through five store errors = %v; want the certificate", err)
	}
	// Its context ending is the only error it gets.
	st.failGets.Store(1 << 30)
	short, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	time.AfterFunc(300*time.Millisecond, cancel)
	if _, err := cs[0].Get(short, "blip.example"); !errors.Is(err, context.Canceled) {
		t.Errorf("renewal Get on a store that stays down = %v, want the context's end", err)
	}
}

// A miss on the renewal path (the certificate was deleted) is no reason
// for every node to order: one gets the miss, the others wait.
func TestRenewalMissIsCoordinated(t *testing.T) {
	cs := fleetOf(t, 2, "")
	ctxA, _ := renewalCtx(t)
	if _, err := cs[0].Get(ctxA, "gone.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("first renewal Get of a missing certificate = %v, want the miss", err)
	}
	done := make(chan []byte, 1)
	go func() {
		ctxB, _ := renewalCtx(t)
		v, err := cs[1].Get(ctxB, "gone.example")
		if err != nil {
			t.Errorf("second renewal Get = %v, want the renewed certificate", err)
		}
		done <- v
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the second renewal did not wait for the first one's certificate")
	default:
	}
	now := time.Now()
	v := certValue(t, "gone.example", now.Add(-time.Hour), now.Add(89*24*time.Hour))
	if err := cs[0].Put(ctxA, "gone.example", v); err != nil {
		t.Fatal(err)
	}
	if got := <-done; string(got) != string(v) {
		t.Error("the second renewal got something else than the first one's certificate")
	}
}

// Two Managers on one Cache: while one renews, the other's renewal waits
// instead of renewing too.
func TestTwoManagersOneCache(t *testing.T) {
	c := fleetOf(t, 1, "")[0]
	now := time.Now()
	old := certValue(t, "two.example", now.Add(-50*time.Second), now.Add(10*time.Second))
	if err := c.Put(context.Background(), "two.example", old); err != nil {
		t.Fatal(err)
	}
	ctx0, _ := renewalCtx(t)
	if v, err := c.Get(ctx0, "two.example"); err != nil || string(v) != string(old) {
		t.Fatalf("first Manager's renewal Get = %v, want the due certificate", err)
	}
	done := make(chan []byte, 1)
	go func() {
		ctx1, _ := renewalCtx(t)
		v, _ := c.Get(ctx1, "two.example")
		done <- v
	}()
	time.Sleep(300 * time.Millisecond)
	select {
	case <-done:
		t.Fatal("the second Manager's renewal returned while the first renews: both renew")
	default:
	}
	renewed := certValue(t, "two.example", now, now.Add(time.Hour))
	if err := c.Put(ctx0, "two.example", renewed); err != nil {
		t.Fatal(err)
	}
	if got := <-done; string(got) != string(renewed) {
		t.Error("the second Manager did not get the renewed certificate")
	}
}

// A Put refused after the order is tried again with the lease kept: no
// other node orders, and the certificate lands.
func TestFailedPutIsRetried(t *testing.T) {
	st, cs := faultyFleet(t, 2, &Options{LeaseTTL: 1500 * time.Millisecond})
	ctx := handshakeCtx(t)
	if _, err := cs[0].Get(ctx, "put.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("first Get = %v, want the miss", err)
	}
	st.failPuts.Store(1)
	now := time.Now()
	v := certValue(t, "put.example", now.Add(-time.Hour), now.Add(89*24*time.Hour))
	if err := cs[0].Put(ctx, "put.example", v); err == nil {
		t.Fatal("the refused Put succeeded")
	}
	// The order's context ends (autocert's GetCertificate returns); the
	// lease must live on until the retry lands, past the TTL.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got, err := cs[1].Get(handshakeCtx(t), "put.example")
		if err == nil {
			if string(got) != string(v) {
				t.Fatal("another certificate landed")
			}
			break
		}
		if err == autocert.ErrCacheMiss { //nolint:errorlint
			t.Fatal("another node got the miss: it would order again")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the certificate did not land within 5 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A Get whose context has no deadline is not autocert's: its lease is not
// kept alive, so a health check cannot hold a name for the fleet.
func TestLeaseWithoutDeadlineRunsOut(t *testing.T) {
	cs := fleetOf(t, 2, "lease_ttl=1s")
	if _, err := cs[0].Get(context.Background(), "probe.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("first Get = %v, want the miss", err)
	}
	time.Sleep(1500 * time.Millisecond)
	if _, err := cs[1].Get(handshakeCtx(t), "probe.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get a TTL and a half later = %v, want the miss: the lease was kept alive", err)
	}
}

// autocert draws its renewal jitter again after reading a due certificate
// and may put the renewal off for a moment: the same node's next renewal
// takes its lease back at once, while other nodes still wait.
func TestRenewalResumesItsLease(t *testing.T) {
	cs := fleetOf(t, 2, "lease_ttl=1m")
	now := time.Now()
	old := certValue(t, "jitter.example", now.Add(-50*time.Second), now.Add(10*time.Second))
	if err := cs[0].Put(context.Background(), "jitter.example", old); err != nil {
		t.Fatal(err)
	}
	first, cancel := renewalCtx(t)
	if v, err := cs[0].Get(first, "jitter.example"); err != nil || string(v) != string(old) {
		t.Fatalf("first renewal Get = %v, want the due certificate", err)
	}
	cancel() // autocert put the renewal off: no order, no Put
	time.Sleep(50 * time.Millisecond)
	other, cancelOther := context.WithTimeout(context.Background(), 10*time.Minute)
	waited := make(chan error, 1)
	go func() {
		_, err := cs[1].Get(other, "jitter.example")
		waited <- err
	}()
	again, _ := renewalCtx(t)
	start := time.Now()
	if v, err := cs[0].Get(again, "jitter.example"); err != nil || string(v) != string(old) {
		t.Fatalf("the same node's next renewal Get = %v, want the due certificate", err)
	}
	if took := time.Since(start); took > 5*time.Second {
		t.Errorf("the same node's next renewal waited %v for its own lease", took)
	}
	select {
	case err := <-waited:
		t.Errorf("the other node's renewal returned (%v) while this one renews", err)
	case <-time.After(300 * time.Millisecond):
	}
	cancelOther()
	<-waited
}

// A renewal that took its lease back and then met a store error reads
// again, instead of waiting on its own lease until its context ends.
func TestResumedRenewalReadsAgain(t *testing.T) {
	st, cs := faultyFleet(t, 1, nil)
	now := time.Now()
	old := certValue(t, "again.example", now.Add(-50*time.Second), now.Add(10*time.Second))
	if err := cs[0].Put(context.Background(), "again.example", old); err != nil {
		t.Fatal(err)
	}
	first, cancel := renewalCtx(t)
	if _, err := cs[0].Get(first, "again.example"); err != nil {
		t.Fatalf("first renewal Get = %v", err)
	}
	cancel() // put off by autocert's jitter
	st.failGets.Store(2)
	got := make(chan error, 1)
	go func() {
		ctx, _ := renewalCtx(t)
		_, err := cs[0].Get(ctx, "again.example")
		got <- err
	}()
	select {
	case err := <-got:
		if err != nil {
			t.Errorf("resumed renewal Get = %v, want the due certificate", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a resumed renewal that met a store error still waits 10 s later, on its own lease")
	}
}
