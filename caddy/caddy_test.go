package certcachecaddy_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	caddycmd "github.com/caddyserver/caddy/v2/cmd"
	_ "github.com/caddyserver/caddy/v2/modules/standard"
	"github.com/certcache/certcache/certmagicstore"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// envRunCaddy makes this test binary, run again by startCaddy, be Caddy:
// Caddy's command with its standard modules and this module, as
// cmd/caddy and xcaddy build it. One build serves the test and the Caddy
// processes it starts.
const envRunCaddy = "CERTCACHE_TEST_RUN_CADDY"

func TestMain(m *testing.M) {
	if os.Getenv(envRunCaddy) == "1" {
		os.Args = append([]string{"caddy"}, os.Args[1:]...)
		caddycmd.Main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// caddyfile is a Caddy whose certificates come from Pebble and live in the
// store at {env.CERT_CACHE_URL}.
const caddyfile = `{
	storage certcache {env.CERT_CACHE_URL}
	admin off
	persist_config off
	skip_install_trust
	ocsp_stapling off
	http_port {$HTTP_PORT}
	https_port {$HTTPS_PORT}
	email ops@certcache.test
	cert_issuer acme {
		dir {$ACME_DIR}
		trusted_roots {$ACME_ROOT}
		disable_tlsalpn_challenge
	}
}

{$DOMAIN} {
	respond "hello from {$NAME}"
}
`

// caddyProc is a running Caddy.
type caddyProc struct {
	name      string
	httpsAddr string
	out       *lockedBuffer
	stopFn    func(*testing.T) // stops it, once, and checks its log
}

// TestCaddy: a Caddy built with the module and configured by a Caddyfile
// with "storage certcache {env.CERT_CACHE_URL}" on a real Redis obtains a
// certificate from Pebble, over HTTP-01, and serves HTTPS with it; a second
// Caddy on the same URL serves the same certificate without ordering.
func TestCaddy(t *testing.T) {
	_, redisURL := testenv.Redis(t)
	storeURL := redisURL + "/0?prefix=caddy-test&timeout=10s"
	const domain = "caddy.certcache.test"

	httpPort := freePort(t)
	pebble, err := acmetest.Start(acmetest.Options{HTTPPort: httpPort, Log: testenv.Log(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer pebble.Close()
	dir := t.TempDir()
	acmeRoot := filepath.Join(dir, "pebble-front-end.pem")
	if err := os.WriteFile(acmeRoot, pebble.FrontEndCertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Caddyfile"), []byte(caddyfile), 0o600); err != nil {
		t.Fatal(err)
	}
	env := func(name string, httpPort int) []string {
		home := filepath.Join(dir, name)
		return []string{
			"CERT_CACHE_URL=" + storeURL,
			"HTTP_PORT=" + fmt.Sprint(httpPort),
			"HTTPS_PORT=" + fmt.Sprint(freePort(t)),
			"ACME_DIR=" + pebble.DirectoryURL,
			"ACME_ROOT=" + acmeRoot,
			"DOMAIN=" + domain,
			"NAME=" + name,
			"HOME=" + home, "XDG_DATA_HOME=" + home, "XDG_CONFIG_HOME=" + home,
		}
	}

	start := time.Now()
	first := startCaddy(t, dir, "first", env("first", httpPort))
	serial := waitServe(t, pebble, first, domain, 3*time.Minute)
	st := pebble.Stats()
	t.Logf("first Caddy serves %s (serial %x) %v after start; Pebble: %v", domain, serial, time.Since(start).Round(time.Millisecond), st)
	if st.Finalized != 1 {
		t.Errorf("Pebble issued %d certificates, want 1", st.Finalized)
	}

	// The certificate is in Redis, where certmagicstore keeps CertMagic's keys.
	probe, err := certmagicstore.Open(context.Background(), storeURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer probe.Close()
	keys, err := probe.List(context.Background(), "certificates", true)
	if err != nil {
		t.Fatalf("listing the store: %v", err)
	}
	found := false
	for _, k := range keys {
		found = found || strings.HasSuffix(k, "/"+domain+"/"+domain+".crt")
	}
	if !found {
		t.Errorf("the store holds no certificate for %s: %q", domain, keys)
	}

	// A second Caddy on the same URL, with ports of its own: Pebble's
	// validation could not reach it, and it needs none.
	start = time.Now()
	second := startCaddy(t, dir, "second", env("second", freePort(t)))
	serial2 := waitServe(t, pebble, second, domain, time.Minute)
	st2 := pebble.Stats()
	t.Logf("second Caddy serves serial %x %v after start; Pebble: %v", serial2, time.Since(start).Round(time.Millisecond), st2)
	if serial2.Cmp(serial) != 0 {
		t.Errorf("second Caddy serves serial %x, want the stored %x", serial2, serial)
	}
	if st2 != st {
		t.Errorf("the second Caddy made requests at Pebble: before %v, after %v", st, st2)
	}

	for _, p := range []*caddyProc{second, first} {
		p.stop(t)
	}
}

// startCaddy runs this test binary as Caddy on the Caddyfile in dir.
func startCaddy(t *testing.T, dir, name string, env []string) *caddyProc {
	t.Helper()
	cmd := exec.Command(os.Args[0], "run", "--config", filepath.Join(dir, "Caddyfile"), "--adapter", "caddyfile")
	cmd.Env = append(os.Environ(), envRunCaddy+"=1")
	cmd.Env = append(cmd.Env, env...)
	p := &caddyProc{name: name, out: &lockedBuffer{}}
	for _, kv := range env {
		if port, ok := strings.CutPrefix(kv, "HTTPS_PORT="); ok {
			p.httpsAddr = "127.0.0.1:" + port
		}
	}
	cmd.Stdout, cmd.Stderr = p.out, p.out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	stopped := false
	p.stopFn = func(t *testing.T) {
		if stopped {
			return
		}
		stopped = true
		cmd.Process.Signal(syscall.SIGINT)
		select {
		case err := <-done:
			t.Logf("%s Caddy exited: %v", name, err)
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
			t.Errorf("%s Caddy did not stop within 20s of SIGINT", name)
		}
		out := p.out.String()
		t.Logf("%s Caddy's log:\n%s", name, out)
		if strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("%s Caddy reported a data race", name)
		}
	}
	t.Cleanup(func() { p.stop(t) })
	return p
}

func (p *caddyProc) stop(t *testing.T) { p.stopFn(t) }

// waitServe fetches https://domain/ from p until it answers over TLS
// verified against Pebble's root, and returns the certificate's serial.
func waitServe(t *testing.T, pebble *acmetest.Pebble, p *caddyProc, domain string, limit time.Duration) *big.Int {
	t.Helper()
	deadline := time.Now().Add(limit)
	var last error
	for time.Now().Before(deadline) {
		serial, body, err := fetch(pebble.TLSClientConfig(domain), p.httpsAddr)
		if err == nil {
			if want := "hello from " + p.name; body != want {
				t.Fatalf("%s Caddy answered %q, want %q", p.name, body, want)
			}
			return serial
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("%s Caddy did not serve %s over verified TLS within %v: %v", p.name, domain, limit, last)
	return nil
}

func fetch(cfg *tls.Config, addr string) (*big.Int, string, error) {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	// Caddy routes by Host: the name, as a browser would send it.
	req, err := http.NewRequest(http.MethodGet, "https://"+addr+"/", nil)
	if err != nil {
		return nil, "", err
	}
	req.Host = cfg.ServerName
	resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if len(resp.TLS.VerifiedChains) == 0 {
		return nil, "", fmt.Errorf("no verified chain")
	}
	return resp.TLS.PeerCertificates[0].SerialNumber, string(b), nil
}

// freePort returns a loopback port free at the moment.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// lockedBuffer collects a process's output.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}
