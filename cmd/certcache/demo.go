package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"golang.org/x/crypto/acme"
	"golang.org/x/crypto/acme/autocert"
)

// runDemo is the demo subcommand.
func runDemo(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("demo", "[-cache URL] [-domain NAME] [-v]",
		"Runs a real ACME issuance against Pebble inside this process into the cache,\n"+
			"serves HTTPS with the certificate and fetches a page over verified TLS.", stdout, stderr)
	cacheURL := fs.String("cache", defaultCacheURL(), "certcache URL of the cache")
	domain := fs.String("domain", "demo.certcache.test", "domain name to obtain a certificate for (resolved to 127.0.0.1 for Pebble)")
	verbose := fs.Bool("v", false, "print Pebble's log")
	if _, code, ok := parseArgs(fs, args, 0, 0); !ok {
		return code
	}
	var pebbleLog io.Writer
	if *verbose {
		pebbleLog = stderr
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	if _, err := demo(ctx, stdout, *cacheURL, *domain, pebbleLog); err != nil {
		fmt.Fprintln(stderr, "certcache demo:", err)
		return 1
	}
	return 0
}

func defaultCacheURL() string {
	return "file://" + filepath.ToSlash(filepath.Join(os.TempDir(), "certcache-demo"))
}

// rootKey is where the demo keeps the root of the Pebble that issued the
// cached certificate. Each run starts a new Pebble with a new root, so a
// later run needs the earlier root to verify a certificate from the cache.
// autocert never reads or writes this key.
const rootKey = "certcache-demo+pebble-root.pem"

// demo runs the demonstration, printing to w, and returns what Pebble saw.
func demo(ctx context.Context, w io.Writer, cacheURL, domain string, pebbleLog io.Writer) (acmetest.Stats, error) {
	cache, err := certcache.Open(ctx, cacheURL)
	if err != nil {
		return acmetest.Stats{}, err
	}
	defer cache.Close()

	// The demo's two listeners, on free loopback ports: HTTP for HTTP-01
	// (where a real server listens on :80) and HTTPS (:443).
	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return acmetest.Stats{}, err
	}
	defer httpL.Close()
	tcpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return acmetest.Stats{}, err
	}
	defer tcpL.Close()

	// Pebble validates on those ports: HTTP-01 on the HTTP one, TLS-ALPN-01
	// on the HTTPS one.
	pebble, err := acmetest.Start(acmetest.Options{
		HTTPPort: httpL.Addr().(*net.TCPAddr).Port,
		TLSPort:  tcpL.Addr().(*net.TCPAddr).Port,
		Log:      pebbleLog,
	})
	if err != nil {
		return acmetest.Stats{}, err
	}
	defer pebble.Close()

	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(domain),
		Cache:      cache,
		Client:     pebble.Client(),
	}
	tlsConfig := certcache.TLSConfig(m, cache) // waits for a certificate another instance is ordering
	var alpnChecks, http01Checks atomic.Int64
	getCert := tlsConfig.GetCertificate
	tlsConfig.GetCertificate = func(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
		if slices.Contains(hello.SupportedProtos, acme.ALPNProto) {
			alpnChecks.Add(1)
		}
		return getCert(hello)
	}
	acmeHTTP := m.HTTPHandler(nil)
	httpSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The validation request names the demo's port in Host; a server
		// on :80 would see the bare name, which HostPolicy expects.
		if h, _, err := net.SplitHostPort(r.Host); err == nil {
			r.Host = h
		}
		if strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/") {
			http01Checks.Add(1)
		}
		acmeHTTP.ServeHTTP(w, r)
	}), ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog()}
	go httpSrv.Serve(httpL)
	defer httpSrv.Close()
	httpsSrv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello over TLS from the certcache demo, %s\n", r.Host)
	}), ReadHeaderTimeout: 10 * time.Second, ErrorLog: discardLog()}
	go httpsSrv.Serve(tls.NewListener(tcpL, tlsConfig))
	defer httpsSrv.Close()

	fmt.Fprintf(w, "certcache demo: autocert + certcache against a real ACME CA (Pebble, in this process)\n")
	fmt.Fprintf(w, "  cache   %s\n", cacheURL)
	fmt.Fprintf(w, "  ACME    %s (validates HTTP-01 on 127.0.0.1:%d, TLS-ALPN-01 on 127.0.0.1:%d)\n",
		pebble.DirectoryURL, pebble.HTTPPort, pebble.TLSPort)
	fmt.Fprintf(w, "  server  https://%s/ on %s\n\n", domain, tcpL.Addr())

	// The client trusts this Pebble's root and the root of the Pebble that
	// issued a cached certificate, if an earlier run saved one.
	roots := pebble.Roots()
	if saved, err := cache.Get(ctx, rootKey); err == nil {
		if pool, err := acmetest.ParseRoots(saved); err == nil {
			roots = pool
			roots.AppendCertsFromPEM(pebble.RootPEM())
		}
	} else if err != autocert.ErrCacheMiss {
		return pebble.Stats(), err
	}

	start := time.Now()
	leaf, body, err := fetch(ctx, tcpL.Addr().String(), domain, roots)
	took := time.Since(start)
	st := pebble.Stats()
	if err != nil {
		return st, fmt.Errorf("GET https://%s/: %w (Pebble: %v)", domain, err, st)
	}
	if st.Finalized > 0 {
		if err := cache.Put(ctx, rootKey, pebble.RootPEM()); err != nil {
			return st, err
		}
	}

	fmt.Fprintf(w, "GET https://%s/ over TLS verified against the issuing Pebble's root (%v):\n  %s\n", domain, took.Round(time.Millisecond), strings.TrimSpace(body))
	fmt.Fprintf(w, "certificate\n")
	fmt.Fprintf(w, "  subject    %s (DNS names: %s)\n", leaf.Subject, strings.Join(leaf.DNSNames, ", "))
	fmt.Fprintf(w, "  serial     %x\n", leaf.SerialNumber)
	fmt.Fprintf(w, "  issuer     %s\n", leaf.Issuer)
	fmt.Fprintf(w, "  not after  %s\n", leaf.NotAfter.UTC().Format(time.RFC3339))
	fmt.Fprintf(w, "cached in %s under key %q", cacheURL, domain)
	if dir, ok := fileDir(cacheURL); ok {
		fmt.Fprintf(w, ":\n")
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			if !strings.HasPrefix(e.Name(), ".") {
				fmt.Fprintf(w, "  %s\n", filepath.Join(dir, e.Name()))
			}
		}
	} else {
		fmt.Fprintln(w)
	}
	fmt.Fprintf(w, "\nPebble: %s, %s", plural(st.Orders, "new order"), plural(st.Finalized, "certificate"))
	if st.Finalized > 0 {
		fmt.Fprintf(w, " issued (validated by %s)\n", challenges(alpnChecks.Load(), http01Checks.Load()))
		fmt.Fprintf(w, "Run the demo again: the certificate will come from the cache, with 0 new orders.\n")
	} else {
		fmt.Fprintf(w, " issued: the certificate came from the cache.\n")
	}
	return st, nil
}

// fetch GETs https://domain/ from addr, verifying the server against roots,
// and returns the server's certificate and the page.
func fetch(ctx context.Context, addr, domain string, roots *x509.CertPool) (*x509.Certificate, string, error) {
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: roots, ServerName: domain},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, network, addr) // domain resolves here
		},
		DisableKeepAlives: true,
	}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+domain+"/", nil)
	if err != nil {
		return nil, "", err
	}
	resp, err := (&http.Client{Transport: tr}).Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, "", errors.New(resp.Status)
	}
	return resp.TLS.PeerCertificates[0], string(b), nil
}

// fileDir returns the directory of a file:// URL.
func fileDir(cacheURL string) (string, bool) {
	rest, ok := strings.CutPrefix(cacheURL, "file://")
	if !ok {
		return "", false
	}
	rest, _, _ = strings.Cut(rest, "?")
	return filepath.FromSlash(rest), true
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

func challenges(alpn, http01 int64) string {
	var s []string
	if alpn > 0 {
		s = append(s, fmt.Sprintf("TLS-ALPN-01: %d connections from Pebble", alpn))
	}
	if http01 > 0 {
		s = append(s, fmt.Sprintf("HTTP-01: %d requests from Pebble", http01))
	}
	if len(s) == 0 {
		return "no challenge seen"
	}
	return strings.Join(s, "; ")
}

func discardLog() *log.Logger { return log.New(io.Discard, "", 0) }
