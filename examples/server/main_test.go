package main

import (
	"context"
	"crypto/tls"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/integration/acmetest"
)

// TestMain runs the example's main when the test binary is started as the
// example by TestServer.
func TestMain(m *testing.M) {
	if os.Getenv("CERTCACHE_EXAMPLE_SERVER") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestServer runs the example as its own process against Pebble and fetches
// its page over verified TLS: the certificate is obtained on the first
// handshake (Pebble validates TLS-ALPN-01 on the example's HTTPS port), and
// a second run of the example serves it from the cache with no new order.
// The first run also exports metrics (METRICS_ADDR), scraped after the
// certificate is served.
func TestServer(t *testing.T) {
	const domain = "example.certcache.test"
	httpPort, httpsPort, metricsPort := freePort(t), freePort(t), freePort(t)
	pebble, err := acmetest.Start(acmetest.Options{HTTPPort: httpPort, TLSPort: httpsPort})
	if err != nil {
		t.Fatal(err)
	}
	defer pebble.Close()
	roots := filepath.Join(t.TempDir(), "pebble-wfe.pem")
	if err := os.WriteFile(roots, pebble.FrontEndCertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheURL := "file://" + filepath.Join(t.TempDir(), "certs")

	for run := 1; run <= 2; run++ {
		cmd := exec.Command(os.Args[0], "-test.run=^$",
			"-http", "127.0.0.1:"+strconv.Itoa(httpPort), "-https", "127.0.0.1:"+strconv.Itoa(httpsPort))
		cmd.Env = append(os.Environ(),
			"CERTCACHE_EXAMPLE_SERVER=1",
			"CERT_CACHE_URL="+cacheURL,
			"DOMAINS="+domain,
			"ACME_DIRECTORY_URL="+pebble.DirectoryURL,
			"SSL_CERT_FILE="+roots, // the example trusts Pebble's directory as it would Let's Encrypt's
		)
		if run == 1 {
			cmd.Env = append(cmd.Env, "METRICS_ADDR=127.0.0.1:"+strconv.Itoa(metricsPort))
		}
		cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		before := pebble.Stats()
		body, err := getHTTPS(t, httpsPort, domain, pebble)
		if run == 1 && err == nil {
			checkMetrics(t, metricsPort, domain)
		}
		cmd.Process.Signal(syscall.SIGTERM)
		waitErr := cmd.Wait()
		if err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		if want := "hello from " + domain + " over HTTPS\n"; body != want {
			t.Errorf("run %d: page %q, want %q", run, body, want)
		}
		if waitErr != nil {
			t.Errorf("run %d: example exited with %v after SIGTERM", run, waitErr)
		}
		st := pebble.Stats()
		t.Logf("run %d: Pebble: %v", run, st)
		switch {
		case run == 1 && st.Finalized != 1:
			t.Errorf("run 1: want 1 certificate issued, Pebble saw %v", st)
		case run == 2 && st != before:
			t.Errorf("run 2: Pebble saw new requests (before %v, after %v), want the certificate from the cache", before, st)
		}
	}
}

// checkMetrics scrapes the example's /metrics, served by the OpenTelemetry
// Prometheus exporter, and looks for the certcache series that serving
// domain's first certificate from a file:// cache must have produced.
func checkMetrics(t *testing.T, port int, domain string) {
	t.Helper()
	resp, err := http.Get("http://127.0.0.1:" + strconv.Itoa(port) + "/metrics")
	if err != nil {
		t.Errorf("scraping /metrics: %v", err)
		return
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("scraping /metrics: %s, %v", resp.Status, err)
		return
	}
	body := string(b)
	for _, want := range []struct {
		series string   // the start of a sample line
		labels []string // on the same line
	}{
		// autocert stored the certificate: a Put reached the store.
		{"certcache_calls_total{", []string{`certcache_backend="file"`, `certcache_operation="put"`, `certcache_outcome="ok"`}},
		// and first read it as missing, which took the order lease.
		{"certcache_calls_total{", []string{`certcache_operation="get"`, `certcache_outcome="miss"`}},
		{"certcache_calls_total{", []string{`certcache_operation="lease_acquire"`, `certcache_outcome="ok"`}},
		{"certcache_call_duration_seconds_bucket{", []string{`certcache_operation="get"`, `le="0.005"`}},
		{"certcache_call_duration_seconds_count{", []string{`certcache_operation="put"`}},
		{"certcache_lease_events_total{", []string{`certcache_event="acquired"`}},
		{"certcache_breaker_open{", []string{`certcache_backend="file"`}},
		{"certcache_certificate_expiry_seconds{", []string{`certcache_certificate="` + domain + `"`}},
	} {
		if line := findSample(body, want.series, want.labels); line == "" {
			t.Errorf("/metrics has no %s sample with %v", want.series, want.labels)
		} else if strings.HasPrefix(want.series, "certcache_certificate_expiry_seconds") {
			// Pebble issues certificates valid for years; a few days at least.
			f := strings.Fields(line)
			if v, err := strconv.ParseFloat(f[len(f)-1], 64); err != nil || v < 3*24*3600 {
				t.Errorf("expiry sample %q: want several days ahead", line)
			}
		}
	}
	if t.Failed() {
		t.Logf("/metrics:\n%s", body)
	}
}

// findSample returns the first line of a Prometheus text exposition that
// begins with series and holds every label.
func findSample(body, series string, labels []string) string {
lines:
	for _, line := range strings.Split(body, "\n") {
		if !strings.HasPrefix(line, series) {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue lines
			}
		}
		return line
	}
	return ""
}

// getHTTPS fetches https://domain/ from the example, verified against
// Pebble's root, retrying while the example starts.
func getHTTPS(t *testing.T, port int, domain string, pebble *acmetest.Pebble) (string, error) {
	addr := "127.0.0.1:" + strconv.Itoa(port)
	client := &http.Client{Timeout: 2 * time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pebble.Roots(), ServerName: domain},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr)
		},
	}}
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := client.Get("https://" + domain + "/")
		if err != nil {
			if strings.Contains(err.Error(), "connection refused") && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
				continue
			}
			return "", err
		}
		b, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(b), err
	}
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
