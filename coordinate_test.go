package certcache

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

func TestRenewing(t *testing.T) {
	for _, tc := range []struct {
		timeout time.Duration
		want    bool
	}{
		{10 * time.Minute, true}, // autocert's renewal (renewal.go)
		{5 * time.Minute, false}, // autocert's GetCertificate
		{time.Minute, false},
		{time.Hour, false},
	} {
		ctx, cancel := context.WithTimeout(context.Background(), tc.timeout)
		if got := renewing(ctx); got != tc.want {
			t.Errorf("renewing(%v context) = %v, want %v", tc.timeout, got, tc.want)
		}
		cancel()
	}
	if renewing(context.Background()) {
		t.Error("renewing(no deadline) = true")
	}
}

// certValue returns an autocert cache value (key PEM, then the leaf) whose
// leaf lives from notBefore to notAfter.
func certValue(t testing.TB, name string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	v := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	return append(v, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

func openCoordinated(t *testing.T, rawURL string) Cache {
	t.Helper()
	c, err := Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, ok := c.(*coordinated); !ok {
		t.Fatalf("Open(%q) = %T, want coordination on top", rawURL, c)
	}
	return c
}

// A holder keeps its lease as long as the order's context lives, beyond the
// TTL; an order that ends without a Put keeps the name for one TTL more.
func TestOrderLeaseLifetime(t *testing.T) {
	const ttl = 1500 * time.Millisecond
	url := "mem://lease-lifetime?lease_ttl=1500ms"
	a, b := openCoordinated(t, url), openCoordinated(t, url)
	order, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // autocert's handshake
	if _, err := a.Get(order, "slow.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("first Get = %v, want the miss", err)
	}
	time.Sleep(2 * ttl) // a slow order: refreshed meanwhile
	if _, err := b.Get(context.Background(), "slow.example"); !errors.Is(err, ErrIssuing) {
		t.Fatalf("Get during a slow order = %v, want ErrIssuing", err)
	}
	cancel() // the order failed: no Put
	time.Sleep(ttl / 2)
	if _, err := b.Get(context.Background(), "slow.example"); !errors.Is(err, ErrIssuing) {
		t.Fatalf("Get just after a failed order = %v, want ErrIssuing (the name is held for a TTL)", err)
	}
	if _, err := a.Get(context.Background(), "slow.example"); !errors.Is(err, ErrIssuing) {
		t.Fatalf("Get on the failed holder = %v, want ErrIssuing", err)
	}
	time.Sleep(ttl + ttl/3)
	if _, err := b.Get(context.Background(), "slow.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get a TTL after the failed order = %v, want the miss (another node's turn)", err)
	}
}

// A renewal's Get of a due certificate: one renews, the other waits for
// the renewed certificate.
func TestRenewalCoordination(t *testing.T) {
	url := "mem://renewal-coordination"
	a, b := openCoordinated(t, url), openCoordinated(t, url)
	now := time.Now()
	old := certValue(t, "renew.example", now.Add(-50*time.Second), now.Add(10*time.Second))
	if err := a.Put(context.Background(), "renew.example", old); err != nil {
		t.Fatal(err)
	}
	// A handshake's Get of the due certificate returns at once.
	hs, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	if v, err := b.Get(hs, "renew.example"); err != nil || string(v) != string(old) {
		t.Fatalf("handshake Get of a due certificate = %v", err)
	}
	cancel()
	renewA, cancelA := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancelA()
	if v, err := a.Get(renewA, "renew.example"); err != nil || string(v) != string(old) {
		t.Fatalf("first renewal Get = %v, want the due certificate: this node renews", err)
	}
	renewed := certValue(t, "renew.example", now, now.Add(time.Hour))
	got := make(chan []byte, 1)
	go func() {
		renewB, cancelB := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancelB()
		v, err := b.Get(renewB, "renew.example")
		if err != nil {
			t.Errorf("second renewal Get: %v", err)
		}
		got <- v
	}()
	time.Sleep(200 * time.Millisecond)
	if err := a.Put(renewA, "renew.example", renewed); err != nil {
		t.Fatal(err)
	}
	select {
	case v := <-got:
		if string(v) != string(renewed) {
			t.Errorf("the waiting renewal got the old certificate; it would order again")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the waiting renewal did not return 10 s after the renewed certificate landed")
	}
}

func TestCoordinationParams(t *testing.T) {
	for _, tc := range []struct {
		query string
		err   string
	}{
		{"coordinate=false", ""},
		{"coordinate=true&lease_ttl=2m", ""},
		{"coordinate=maybe", "coordinate"},
		{"lease_ttl=10ms", "lease_ttl"},
		{"lease_ttl=soon", "lease_ttl"},
		{"coordinate=false&lease_ttl=1m", "lease_ttl"},
		{"lease_ttl=1m&lease_ttl=2m", "lease_ttl"},
	} {
		c, err := Open(context.Background(), "file://"+t.TempDir()+"?"+tc.query)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.query, err)
		case tc.err != "" && (err == nil || !errors.Is(err, ErrInvalidURL) || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: err = %v, want ErrInvalidURL naming %s", tc.query, err, tc.err)
		}
		if c != nil {
			_, coordinatedOn := c.(*coordinated)
			if want := !strings.Contains(tc.query, "coordinate=false"); coordinatedOn != want {
				t.Errorf("%s: coordinated = %v, want %v", tc.query, coordinatedOn, want)
			}
			c.Close()
		}
	}
}

var benchSeq atomic.Int64 // distinct missing names across runs

// BenchmarkCoordination measures what coordination adds: nothing that
// matters to a hit (a key check), and to a miss of a certificate an
// acquired lease and a second read.
func BenchmarkCoordination(b *testing.B) {
	value := certValue(b, "hit.example", time.Now(), time.Now().Add(90*24*time.Hour))
	for _, on := range []bool{false, true} {
		name := "coordinate=" + map[bool]string{false: "false", true: "true"}[on]
		c, err := Open(context.Background(), "mem://bench-"+name+"?"+name)
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute) // as autocert's handshake
		defer cancel()
		c.Put(ctx, "hit.example", value)
		b.Run("GetHit/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := c.Get(ctx, "hit.example"); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run("GetMissCert/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				octx, ocancel := context.WithCancel(ctx)
				if _, err := c.Get(octx, "miss-"+strconv.FormatInt(benchSeq.Add(1), 10)+".example"); err != autocert.ErrCacheMiss { //nolint:errorlint
					b.Fatal(err)
				}
				ocancel()
			}
		})
	}
}
