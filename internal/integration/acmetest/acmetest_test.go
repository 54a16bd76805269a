package acmetest_test

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"golang.org/x/crypto/acme/autocert"
)

// issue runs one autocert issuance for domain against p, with h serving
// HTTP-01 on p's HTTP port (nil: autocert's own handler), and returns the
// error of the TLS handshake that triggers it.
func issue(t *testing.T, p *acmetest.Pebble, httpL net.Listener, h http.Handler, domain string) error {
	t.Helper()
	cache, err := certcache.Open(context.Background(), "mem://")
	if err != nil {
		t.Fatal(err)
	}
	defer cache.Close()
	m := &autocert.Manager{Prompt: autocert.AcceptTOS, Cache: cache, HostPolicy: autocert.HostWhitelist(domain), Client: p.Client()}
	if h == nil {
		h = m.HTTPHandler(nil)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Host, _, _ = strings.Cut(r.Host, ":")
		h.ServeHTTP(w, r)
	})}
	go srv.Serve(httpL)
	defer srv.Close()

	server, client := net.Pipe()
	defer client.Close()
	go func() {
		tls.Server(server, m.TLSConfig()).Handshake()
		server.Close()
	}()
	c := tls.Client(client, p.TLSClientConfig(domain))
	c.SetDeadline(time.Now().Add(3 * time.Minute))
	return c.Handshake()
}

func start(t *testing.T) (*acmetest.Pebble, net.Listener) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p, err := acmetest.Start(acmetest.Options{HTTPPort: l.Addr().(*net.TCPAddr).Port})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, l
}

// TestIssue: a Manager that serves HTTP-01 gets a certificate that verifies
// against Roots; autocert's TLS-ALPN-01 attempt fails first (the default
// TLS port drops connections), so Pebble counts two orders and one
// certificate.
func TestIssue(t *testing.T) {
	p, l := start(t)
	if err := issue(t, p, l, nil, "ok.acmetest.test"); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	if st := p.Stats(); st != (acmetest.Stats{OrderRequests: 2, Orders: 2, Finalized: 1, Accounts: 1}) {
		t.Errorf("Pebble saw %v, want 2 orders (TLS-ALPN-01 failed, HTTP-01 valid), 1 certificate and 1 account", st)
	}
}

// TestValidationIsReal: with a wrong HTTP-01 answer there is no
// certificate, even with PEBBLE_VA_ALWAYS_VALID=1 in the environment, which
// Start overrides (and restores after).
func TestValidationIsReal(t *testing.T) {
	t.Setenv("PEBBLE_VA_ALWAYS_VALID", "1")
	p, l := start(t)
	if v := os.Getenv("PEBBLE_VA_ALWAYS_VALID"); v != "1" {
		t.Errorf("Start did not restore the environment: PEBBLE_VA_ALWAYS_VALID=%q", v)
	}
	wrong := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("not the key authorization")) })
	if err := issue(t, p, l, wrong, "wrong.acmetest.test"); err == nil {
		t.Fatal("handshake succeeded with a wrong HTTP-01 answer: validation is not real")
	}
	st := p.Stats()
	t.Logf("Pebble: %v", st)
	if st.Finalized != 0 || st.Orders == 0 {
		t.Errorf("Pebble saw %v, want orders but no certificate", st)
	}
}

// TestRequiresHTTPPort: the HTTP-01 port is the caller's to choose.
func TestRequiresHTTPPort(t *testing.T) {
	if _, err := acmetest.Start(acmetest.Options{}); err == nil {
		t.Fatal("Start without HTTPPort succeeded")
	}
}
