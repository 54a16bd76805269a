package certcache

import (
	"context"
	"crypto/tls"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/leakcheck"
	"golang.org/x/crypto/acme/autocert"
)

// Close ends every goroutine the cache started: order-lease keep-alives,
// Put retries, background releases, breaker probes, and the waiters of
// GetCertificate polling it (issue 21, item 12).
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer leakcheck.VerifyNone(t, leakcheck.Take(), 5*time.Second)
	st, cs := faultyFleet(t, 2, &Options{LeaseTTL: time.Second})
	a, b := cs[0], cs[1]
	order, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	// a holds an order lease, kept alive while its order runs.
	if _, err := a.Get(order, "leak.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get = %v, want the miss", err)
	}
	// A Put refused: its retry keeps the lease too.
	if _, err := a.Get(order, "retry.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get = %v, want the miss", err)
	}
	st.failPuts.Store(1 << 20)
	now := time.Now()
	a.Put(order, "retry.example", certValue(t, "retry.example", now.Add(-time.Hour), now.Add(time.Hour)))
	// b's handshakes wait for a's certificate through GetCertificate.
	get := GetCertificate(&autocert.Manager{Cache: b, Prompt: autocert.AcceptTOS}, b)
	waited := make(chan error, 1)
	go func() {
		_, err := get(&tls.ClientHelloInfo{ServerName: "leak.example"})
		waited <- err
	}()
	time.Sleep(300 * time.Millisecond)
	a.Close()
	b.Close()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a handshake still waits 10 s after its cache was closed")
	}
}
