package layered_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/encrypt"
	"github.com/certcache/certcache/layered"
	"golang.org/x/crypto/acme/autocert"
)

// Coordination is the outermost layer however a stack is built, and a
// stack built in Go behaves as the one its URL builds (issue 21).

const stacksKeyEnv = "CERTCACHE_LAYERED_STACKS_KEY"

var stacksKey = func() []byte {
	k := make([]byte, encrypt.KeySize)
	rand.Read(k)
	os.Setenv(stacksKeyEnv, base64.StdEncoding.EncodeToString(k))
	return k
}()

var stackSeq atomic.Int64

// stackBuilder opens one node's cache on the store named by the mem:// URL.
type stackBuilder func(t *testing.T, store string) certcache.Cache

func mustOpen(t *testing.T, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func keyring(t *testing.T) *encrypt.Keyring {
	kr, err := encrypt.NewKeyring(stacksKey)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func must(t *testing.T, c certcache.Cache, err error) certcache.Cache {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	return c
}

var stacks = []struct {
	name   string
	sealed bool
	build  stackBuilder
}{
	{"url/plain", false, func(t *testing.T, s string) certcache.Cache { return mustOpen(t, s) }},
	{"url/memory", false, func(t *testing.T, s string) certcache.Cache { return mustOpen(t, s+"?memory=true&memory_ttl=1h") }},
	{"url/encrypt", true, func(t *testing.T, s string) certcache.Cache {
		return mustOpen(t, s+"?encryption_key=env:"+stacksKeyEnv)
	}},
	{"url/encrypt+memory", true, func(t *testing.T, s string) certcache.Cache {
		return mustOpen(t, s+"?encryption_key=env:"+stacksKeyEnv+"&memory=true&memory_ttl=1h")
	}},
	{"go/layered.New", false, func(t *testing.T, s string) certcache.Cache {
		c, err := layered.New(layered.NewMemory(&layered.MemoryOptions{TTL: time.Hour}), mustOpen(t, s))
		return must(t, c, err)
	}},
	{"go/encrypt.New", true, func(t *testing.T, s string) certcache.Cache {
		c, err := encrypt.New(mustOpen(t, s), keyring(t), nil)
		return must(t, c, err)
	}},
	{"go/layered.New(encrypt.New)", true, func(t *testing.T, s string) certcache.Cache {
		enc, err := encrypt.New(mustOpen(t, s), keyring(t), nil)
		must(t, enc, err)
		c, err := layered.New(layered.NewMemory(&layered.MemoryOptions{TTL: time.Hour}), enc)
		return must(t, c, err)
	}},
	{"go/encrypt.New(layered.New)", true, func(t *testing.T, s string) certcache.Cache {
		st, err := layered.New(layered.NewMemory(&layered.MemoryOptions{TTL: time.Hour}), mustOpen(t, s))
		must(t, st, err)
		c, err := encrypt.New(st, keyring(t), nil)
		return must(t, c, err)
	}},
}

// leafValue is an autocert cache value for name, valid from notBefore to
// notAfter.
func leafValue(t *testing.T, name string, notBefore, notAfter time.Time) []byte {
	t.Helper()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		DNSNames: []string{name}, NotBefore: notBefore, NotAfter: notAfter}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, _ := x509.MarshalECPrivateKey(key)
	return append(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

func TestStacksCoordinateAtTheTop(t *testing.T) {
	for _, st := range stacks {
		t.Run(st.name, func(t *testing.T) {
			store := fmt.Sprintf("mem://stacks-%d", stackSeq.Add(1))
			a, b := st.build(t, store), st.build(t, store)
			defer a.Close()
			defer b.Close()
			if certcache.Uncoordinated(a) == a {
				t.Fatalf("%T has no coordination at its top", a)
			}
			hs, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			now := time.Now()

			// An expired certificate, stored as this stack stores it
			// (sealed or not): one node orders, the other is told to wait.
			if err := certcache.Uncoordinated(a).Put(hs, "old.example", leafValue(t, "old.example", now.Add(-2*time.Hour), now.Add(-time.Hour))); err != nil {
				t.Fatal(err)
			}
			if st.sealed {
				raw := mustOpen(t, store+"?coordinate=false")
				v, err := raw.Get(hs, "old.example")
				raw.Close()
				if err != nil || len(v) > 0 && v[0] == '-' {
					t.Fatalf("the store holds %.10q (%v); want it sealed", v, err)
				}
			}
			_, errA := a.Get(hs, "old.example")
			_, errB := b.Get(hs, "old.example")
			if errA != autocert.ErrCacheMiss || !errors.Is(errB, certcache.ErrIssuing) { //nolint:errorlint
				t.Errorf("expired certificate: Gets = %v and %v, want the miss and ErrIssuing", errA, errB)
			}

			// A due certificate on the renewal path: one renews, the
			// other waits, through fronts that both hold the old copy.
			due := leafValue(t, "due.example", now.Add(-50*time.Second), now.Add(10*time.Second))
			if err := a.Put(hs, "due.example", due); err != nil {
				t.Fatal(err)
			}
			for _, c := range []certcache.Cache{a, b} { // the handshake path loads the fronts
				if v, err := c.Get(hs, "due.example"); err != nil || string(v) != string(due) {
					t.Fatalf("handshake Get of a due certificate = %v", err)
				}
			}
			ra, cancelA := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancelA()
			if v, err := a.Get(ra, "due.example"); err != nil || string(v) != string(due) {
				t.Fatalf("first renewal Get = %v, want the due certificate", err)
			}
			got := make(chan []byte, 1)
			go func() {
				rb, cancelB := context.WithTimeout(context.Background(), 10*time.Minute)
				defer cancelB()
				v, _ := b.Get(rb, "due.example")
				got <- v
			}()
			select {
			case <-got:
				t.Fatal("the second renewal returned while the first renews: both renew")
			case <-time.After(300 * time.Millisecond):
			}
			renewed := leafValue(t, "due.example", now, now.Add(time.Hour))
			if err := a.Put(ra, "due.example", renewed); err != nil {
				t.Fatal(err)
			}
			if v := <-got; string(v) != string(renewed) {
				t.Error("the second renewal did not get the renewed certificate: it renews again")
			}
			// The front's stale copy does not start another renewal.
			rc, cancelC := context.WithTimeout(context.Background(), 10*time.Minute)
			defer cancelC()
			if v, err := b.Get(rc, "due.example"); err != nil || string(v) != string(renewed) {
				t.Errorf("a later renewal Get on the second node = %v; want the renewed certificate", err)
			}
		})
	}
}
