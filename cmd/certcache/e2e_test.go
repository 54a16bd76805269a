package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/certkey"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"golang.org/x/crypto/acme/autocert"
)

// TestMain gives the S3 SDK MinIO's credentials through the environment,
// away from the machine's AWS configuration, as the e2e tests do.
func TestMain(m *testing.M) {
	cleanup := testenv.IsolateAWS()
	testenv.UseMinIOCredentials()
	code := m.Run()
	cleanup()
	if built.path != "" {
		os.RemoveAll(filepath.Dir(built.path))
	}
	os.Exit(code)
}

// migrationBackends are the stores TestMigrateFromDirCache copies a real
// autocert.DirCache directory to. start returns the store's URL, and a
// func that stops and restarts its server (nil for file://).
var migrationBackends = []struct {
	name  string
	start func(t *testing.T) (rawURL string, srv *testenv.Server)
}{
	{"file", func(t *testing.T) (string, *testenv.Server) {
		return "file://" + filepath.Join(t.TempDir(), "certs"), nil
	}},
	{"redis", func(t *testing.T) (string, *testenv.Server) {
		srv, u := testenv.RedisDurable(t)
		return u + "/0?prefix=migrated", srv
	}},
	{"postgres", func(t *testing.T) (string, *testenv.Server) {
		srv, u := testenv.Postgres(t)
		return u, srv
	}},
	{"s3", func(t *testing.T) (string, *testenv.Server) {
		srv, endpoint := testenv.MinIO(t)
		srv.Exec(t, "mc", "mb", "local/certs")
		return "s3://certs/migrated?use_path_style=true&endpoint=" + endpoint, srv
	}},
	{"dynamodb", func(t *testing.T) (string, *testenv.Server) {
		// No server to stop and restart: dynalite keeps its tables in
		// memory, so a restarted one is empty, and the copy onto a
		// stopped store is the durable stores' part (the dynamodb package
		// proves a stopped server an error).
		_, endpoint := testenv.DynamoDB(t)
		return "dynamodb://" + testenv.DynamoDBTable + "/migrated?endpoint=" + endpoint, nil
	}},
	{"gs", func(t *testing.T) (string, *testenv.Server) {
		srv, endpoint := testenv.FakeGCSDurable(t, "certs")
		return "gs://certs/migrated?endpoint=" + endpoint, srv
	}},
}

// TestMigrateFromDirCache is the migration the README describes, for real:
// autocert obtains a certificate from Pebble into an autocert.DirCache
// directory; certcache cp copies the directory to a backend; a fresh
// Manager on the backend serves that certificate with zero new orders at
// Pebble. ls, inspect and expiring read the backend; an interrupted copy,
// run again, ends complete; a copy onto the backend while it is down exits
// 1 and loses nothing on either side.
func TestMigrateFromDirCache(t *testing.T) {
	const domain = "migrate.certcache.test"
	pebble, httpL, tlsL := startPebble(t)
	dir := filepath.Join(t.TempDir(), "autocert")
	serial := serve(t, pebble, httpL, tlsL, autocert.DirCache(dir), domain)
	issued := pebble.Stats()
	t.Logf("autocert.DirCache %s: serial %x; Pebble: %v", dir, serial, issued)
	if issued.Finalized != 1 {
		t.Fatalf("Pebble issued %d certificates, want 1", issued.Finalized)
	}
	// Stale HTTP-01 tokens, as a DirCache collects over the years: enough
	// keys for a copy to be interrupted halfway.
	for i := range 20 {
		k := "stale-token-" + string(rune('a'+i)) + "+http-01"
		if err := autocert.DirCache(dir).Put(context.Background(), k, []byte(k+".thumbprint")); err != nil {
			t.Fatal(err)
		}
	}
	srcValues := dirValues(t, dir)
	if _, ok := srcValues[domain]; !ok {
		t.Fatalf("DirCache holds %v, no %s", slices.Collect(mapKeys(srcValues)), domain)
	}
	srcURL := "file://" + dir

	for _, b := range migrationBackends {
		t.Run(b.name, func(t *testing.T) {
			dstURL, srv := b.start(t)

			// An interrupted copy (after three keys), then the same
			// command, which copies the rest.
			interruptedCopy(t, srcURL, dstURL, 3)
			stdout, _, code := runCmd(t, "cp", "-json", srcURL, dstURL)
			s := cpSummaryOf(t, stdout)
			if code != 0 || !s.Complete || s.Listed != len(srcValues) || s.Identical < 3 || s.Copied < 1 || s.Copied+s.Identical != len(srcValues) {
				t.Fatalf("cp after the interrupted one: status %d, %+v", code, s)
			}

			// A fresh Manager on the backend: the same certificate, no
			// new order.
			c, err := certcache.Open(context.Background(), dstURL)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			l2, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if got := serve(t, pebble, nil, l2, c, domain); got.Cmp(serial) != 0 {
				t.Errorf("the Manager on %s served serial %x, want the migrated %x", b.name, got, serial)
			}
			if st := pebble.Stats(); st != issued {
				t.Errorf("serving from %s made requests at Pebble: before %v, after %v", b.name, issued, st)
			}

			// ls, inspect and expiring on the backend.
			stdout, _, code = runCmd(t, "ls", "-json", dstURL)
			var infos []keyInfo
			if err := json.Unmarshal([]byte(stdout), &infos); err != nil || code != 0 {
				t.Fatalf("ls: status %d, %v", code, err)
			}
			kinds := map[string]kind{}
			for _, i := range infos {
				kinds[i.Key] = i.Kind
				if i.Key == domain && (i.KeyType != "ECDSA P-256" || !strings.HasPrefix(i.Issuer, "Pebble Intermediate") || len(i.Problems) != 0) {
					t.Errorf("ls: %s: %+v", domain, i)
				}
			}
			if len(infos) != len(srcValues) || kinds[domain] != kindCert || kinds[certkey.AccountKey] != kindAccountKey {
				t.Errorf("ls shows %v; want the %d keys of the DirCache, %s a certificate and %s the account key", kinds, len(srcValues), domain, certkey.AccountKey)
			}
			stdout, _, code = runCmd(t, "inspect", dstURL, domain)
			if code != 0 || !strings.Contains(stdout, "serial       "+colonHex(serial.Bytes())) || !strings.Contains(stdout, "matches the leaf") {
				t.Errorf("inspect: status %d; want 0, serial %s, a matching key", code, colonHex(serial.Bytes()))
			}
			assertNoPrivateKey(t, stdout, srcValues[domain])
			if _, _, code := runCmd(t, "expiring", dstURL, "-within", "21d"); code != 0 {
				t.Errorf("expiring -within 21d: status %d, want 0 for a certificate of 90 days", code)
			}
			if stdout, _, code := runCmd(t, "expiring", dstURL, "-within", "100d"); code != 1 || !strings.Contains(stdout, domain) {
				t.Errorf("expiring -within 100d: status %d; want 1 and %s", code, domain)
			}

			if srv != nil {
				copyOntoStoppedStore(t, srv, srcURL, dstURL, dir, srcValues)
			}
		})
	}
}

// interruptedCopy copies from src to dst and interrupts the copy after n
// keys, as an interrupt would.
func interruptedCopy(t *testing.T, srcURL, dstURL string, n int) {
	t.Helper()
	src, srcCloser, err := openCache(context.Background(), srcURL)
	if err != nil {
		t.Fatal(err)
	}
	defer srcCloser.Close()
	dst, dstCloser, err := openCache(context.Background(), dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer dstCloser.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	g, _ := newGlob("")
	sum, err := copyAll(ctx, src, dst, cpOptions{filter: g, workers: 1}, &interrupter{after: n, cancel: cancel})
	t.Logf("interrupted copy: %+v (listing: %v)", sum, err)
	if sum.Complete || sum.Copied < n {
		t.Fatalf("the interrupted copy is complete or copied fewer than %d keys: %+v", n, sum)
	}
}

// copyOntoStoppedStore stops the destination's server and copies onto it
// (with one key changed at the source, so that there is something to
// write): cp exits 1. Once the server is back, the destination holds what
// it held, and the source is as it was.
func copyOntoStoppedStore(t *testing.T, srv *testenv.Server, srcURL, dstURL, dir string, srcValues map[string][]byte) {
	t.Helper()
	extra := filepath.Join(dir, "extra.certcache.test")
	if err := os.WriteFile(extra, []byte("a value the destination does not have"), 0o600); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(extra)
	want := dirValues(t, dir)

	srv.Stop(t)
	start := time.Now()
	stdout, stderr, code := runCmd(t, "cp", "-json", srcURL, withQuery(dstURL, "timeout=3s"))
	s := cpSummaryOf(t, stdout)
	t.Logf("cp onto the stopped server: %v, %+v", time.Since(start), s)
	if code != 1 || s.Complete || s.Failed == 0 || s.Copied+s.Replaced != 0 {
		t.Errorf("cp onto the stopped server: status %d, %+v; want 1, failures, nothing copied", code, s)
	}
	if !strings.Contains(stderr, "run the same command again") {
		t.Errorf("stderr does not say to run the copy again")
	}
	srv.Restart(t)

	sameValues(t, "source", dirValues(t, dir), want)
	dst, closer, err := openCache(context.Background(), dstURL)
	if err != nil {
		t.Fatal(err)
	}
	defer closer.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for k, v := range srcValues {
		got, err := getRetry(ctx, dst, k)
		if err != nil || string(got) != string(v) {
			t.Errorf("after the outage, the destination's %s: %d bytes, %v; want the %d copied", k, len(got), err, len(v))
		}
	}
	if _, err := dst.Get(ctx, "extra.certcache.test"); err != autocert.ErrCacheMiss {
		t.Errorf("the destination has the key the failed copy was to write: %v", err)
	}
}

// getRetry reads key, retrying while the server that just restarted does
// not answer yet.
func getRetry(ctx context.Context, c certcache.Cache, key string) ([]byte, error) {
	for {
		v, err := c.Get(ctx, key)
		if err == nil || err == autocert.ErrCacheMiss || ctx.Err() != nil {
			return v, err
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func withQuery(rawURL, param string) string {
	if strings.Contains(rawURL, "?") {
		return rawURL + "&" + param
	}
	return rawURL + "?" + param
}

func mapKeys(m map[string][]byte) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// startPebble starts Pebble, validating HTTP-01 on httpL's port and
// TLS-ALPN-01 on tlsL's, where serve's Manager answers.
func startPebble(t *testing.T) (*acmetest.Pebble, net.Listener, net.Listener) {
	t.Helper()
	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { httpL.Close() })
	tlsL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tlsL.Close() })
	p, err := acmetest.Start(acmetest.Options{
		HTTPPort: httpL.Addr().(*net.TCPAddr).Port,
		TLSPort:  tlsL.Addr().(*net.TCPAddr).Port,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p, httpL, tlsL
}

// serve runs an autocert Manager on cache, serving HTTPS on tlsL (and
// HTTP-01 on httpL, if not nil), makes one TLS handshake for domain
// verified against Pebble's root, and returns the serial it was served.
func serve(t *testing.T, p *acmetest.Pebble, httpL, tlsL net.Listener, cache autocert.Cache, domain string) *big.Int {
	t.Helper()
	m := &autocert.Manager{
		Prompt:     autocert.AcceptTOS,
		HostPolicy: autocert.HostWhitelist(domain),
		Cache:      cache,
		Client:     p.Client(),
	}
	if httpL != nil {
		hs := &http.Server{Handler: m.HTTPHandler(nil), ReadHeaderTimeout: 10 * time.Second}
		go hs.Serve(httpL)
		t.Cleanup(func() { hs.Close() })
	}
	hs := &http.Server{Handler: http.NotFoundHandler(), ReadHeaderTimeout: 10 * time.Second, TLSConfig: m.TLSConfig()}
	go hs.ServeTLS(tlsL, "", "")
	t.Cleanup(func() { hs.Close() })

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	d := tls.Dialer{Config: p.TLSClientConfig(domain)}
	conn, err := d.DialContext(ctx, "tcp", tlsL.Addr().String())
	if err != nil {
		t.Fatalf("TLS handshake for %s: %v (Pebble: %v)", domain, err, p.Stats())
	}
	defer conn.Close()
	return conn.(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber
}
