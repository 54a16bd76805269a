package e2e_test

// CertMagic on certcache, end to end, for every backend: three CertMagic
// Configs, each with its own in-memory certificate cache and its own
// Storage on one certcache URL, manage the same new name at the same
// moment, with Pebble's HTTP-01 validation sent by a balancer to a node
// that is not ordering. Exactly one certificate is issued (the Storage's
// locks exclude across the nodes); all three serve it; a fourth, fresh
// Config serves it with no new request at Pebble.

import (
	"context"
	"crypto/tls"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/caddyserver/certmagic"
	"github.com/certcache/certcache/certmagicstore"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
)

func TestCertmagic(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			rawURL, _ := b.start(t)
			rawURL = withParam(rawURL, "timeout=10s")
			t.Logf("cache URL %s", redacted(rawURL))
			testCertmagicFleet(t, rawURL, "fleet."+strings.ReplaceAll(b.name, "+", "-")+".certmagic.test")
		})
	}
}

// cmFleet is Pebble, the CertMagic nodes on one URL and the balancer in
// front of their HTTP-01 handlers.
type cmFleet struct {
	pebble *acmetest.Pebble
	rawURL string
	domain string
	// probe is a Storage of the test's own on the URL: the balancer looks
	// through it for the challenge token the ordering node stored.
	probe *certmagicstore.Storage

	obtainer    atomic.Int64 // 1 + the node that emitted cert_obtaining; 0 before
	reqs        atomic.Int64
	tokenShared atomic.Bool // a validation found the token in the store

	mu    sync.Mutex
	nodes []*cmNode
}

// cmNode is one instance: a CertMagic Config with its own cache and
// Storage, an HTTPS server and an HTTP server for HTTP-01.
type cmNode struct {
	cfg          *certmagic.Config
	httpsAddr    string
	httpAddr     string
	obtaining    atomic.Int64 // cert_obtaining events
	obtained     atomic.Int64 // cert_obtained events
	challengeReq atomic.Int64
	challengeOK  atomic.Int64
}

func (f *cmFleet) node(i int) *cmNode {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.nodes[i]
}

func testCertmagicFleet(t *testing.T, rawURL, domain string) {
	balancer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pebble, err := acmetest.Start(acmetest.Options{HTTPPort: balancer.Addr().(*net.TCPAddr).Port, Log: testenv.Log(t)})
	if err != nil {
		balancer.Close()
		t.Fatal(err)
	}
	t.Cleanup(pebble.Close)
	probe, err := certmagicstore.Open(context.Background(), rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { probe.Close() })
	f := &cmFleet{pebble: pebble, rawURL: rawURL, domain: domain, probe: probe}
	for range 3 {
		f.addNode(t)
	}
	serve(t, balancer, f.balancer(t))

	// The three manage the name at once.
	start := time.Now()
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			if err := f.node(i).cfg.ManageSync(ctx, []string{domain}); err != nil {
				t.Errorf("node %d: ManageSync: %v", i, err)
			}
		})
	}
	wg.Wait()
	st := pebble.Stats()
	t.Logf("three nodes managed %s in %v; Pebble: %v", domain, time.Since(start).Round(time.Millisecond), st)
	if t.Failed() {
		t.FailNow()
	}
	if st.Finalized != 1 {
		t.Errorf("Pebble issued %d certificates for three nodes on one store, want 1", st.Finalized)
	}
	obtainers := 0
	for i := range 3 {
		n := f.node(i)
		t.Logf("node %d: obtaining %d, obtained %d, HTTP-01 requests %d (%d answered)", i,
			n.obtaining.Load(), n.obtained.Load(), n.challengeReq.Load(), n.challengeOK.Load())
		if n.obtained.Load() > 0 {
			obtainers++
		}
	}
	if obtainers != 1 {
		t.Errorf("%d nodes obtained a certificate, want 1", obtainers)
	}
	if o := f.obtainer.Load() - 1; o >= 0 && f.node(int(o)).challengeReq.Load() != 0 {
		t.Errorf("the ordering node %d got HTTP-01 requests; the balancer should send none there", o)
	}
	if !f.tokenShared.Load() {
		t.Errorf("no HTTP-01 validation found the challenge token in the shared store")
	}

	serial := f.fetch(t, 0)
	for i := 1; i < 3; i++ {
		if s := f.fetch(t, i); s.Cmp(serial) != 0 {
			t.Errorf("node %d serves serial %x, node 0 %x", i, s, serial)
		}
	}

	// A fresh node on the same URL: its own empty certificate cache.
	before := pebble.Stats()
	fourth := f.addNode(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := f.node(fourth).cfg.ManageSync(ctx, []string{domain}); err != nil {
		t.Fatalf("fourth node: ManageSync: %v", err)
	}
	if s := f.fetch(t, fourth); s.Cmp(serial) != 0 {
		t.Errorf("fourth node serves serial %x, want the stored %x", s, serial)
	}
	after := pebble.Stats()
	t.Logf("fourth node: Pebble before %v, after %v", before, after)
	if after != before {
		t.Errorf("the fourth node made requests at Pebble: before %v, after %v", before, after)
	}
	if n := f.node(fourth).obtaining.Load(); n != 0 {
		t.Errorf("the fourth node started %d obtains, want 0", n)
	}
}

// addNode starts one more CertMagic node and returns its index.
func (f *cmFleet) addNode(t *testing.T) int {
	t.Helper()
	f.mu.Lock()
	i := len(f.nodes)
	f.mu.Unlock()
	n := &cmNode{}

	storage, err := certmagicstore.Open(context.Background(), f.rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { storage.Close() }) // after the cache stops (cleanups run last first)
	logger := zap.New(zapcore.NewCore(zapcore.NewConsoleEncoder(zap.NewDevelopmentEncoderConfig()),
		zapcore.AddSync(testenv.Log(t)), zap.InfoLevel)).Named(fmt.Sprintf("node%d", i))
	var cfg *certmagic.Config
	cache := certmagic.NewCache(certmagic.CacheOptions{
		GetConfigForCert: func(certmagic.Certificate) (*certmagic.Config, error) { return cfg, nil },
		Logger:           logger,
	})
	t.Cleanup(cache.Stop)
	cfg = certmagic.New(cache, certmagic.Config{
		Storage: storage,
		Logger:  logger,
		OCSP:    certmagic.OCSPConfig{DisableStapling: true}, // Pebble's certificates name no responder
		OnEvent: func(_ context.Context, event string, _ map[string]any) error {
			switch event {
			case "cert_obtaining":
				n.obtaining.Add(1)
				f.obtainer.CompareAndSwap(0, int64(i)+1)
			case "cert_obtained":
				n.obtained.Add(1)
			}
			return nil
		},
	})

	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.httpAddr = httpL.Addr().String()
	frontEnd, err := acmetest.ParseRoots(f.pebble.FrontEndCertPEM())
	if err != nil {
		t.Fatal(err)
	}
	issuer := certmagic.NewACMEIssuer(cfg, certmagic.ACMEIssuer{
		CA:           f.pebble.DirectoryURL,
		TrustedRoots: frontEnd,
		Email:        "ops@certmagic.test",
		Agreed:       true,
		// HTTP-01 only, answered by the handler below: CertMagic finds the
		// port taken and leaves the answering to it. Pebble's TLS-ALPN-01
		// port drops every connection (acmetest).
		DisableTLSALPNChallenge: true,
		ListenHost:              "127.0.0.1",
		AltHTTPPort:             httpL.Addr().(*net.TCPAddr).Port,
		Logger:                  logger,
	})
	cfg.Issuers = []certmagic.Issuer{issuer}
	serve(t, httpL, issuer.HTTPChallengeHandler(http.NotFoundHandler()))

	tcpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	n.httpsAddr = tcpL.Addr().String()
	serve(t, tls.NewListener(tcpL, cfg.TLSConfig()), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from node %d\n", i)
	}))
	n.cfg = cfg

	f.mu.Lock()
	defer f.mu.Unlock()
	f.nodes = append(f.nodes, n)
	return i
}

// balancer forwards each HTTP-01 request to a node that is not ordering
// (round robin over the others), and notes whether the token the ordering
// node stored is in the shared store at that moment.
func (f *cmFleet) balancer(t *testing.T) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			k := int(f.reqs.Add(1) - 1)
			i := k % 3
			if o := int(f.obtainer.Load()) - 1; o >= 0 {
				i = (o + 1 + k%2) % 3
			}
			host := r.In.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			if isChallenge(r.In) {
				f.node(i).challengeReq.Add(1)
				keys, err := f.probe.List(r.In.Context(), "acme", true)
				for _, key := range keys {
					if strings.Contains(key, "/challenge_tokens/") && strings.HasSuffix(key, "/"+host+".json") {
						f.tokenShared.Store(true)
					}
				}
				t.Logf("balancer: HTTP-01 for %s to node %d; store holds %d acme keys (%v)", host, i, len(keys), err)
			}
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = f.node(i).httpAddr
			r.Out.Host = host
			r.Out = r.Out.WithContext(context.WithValue(r.Out.Context(), nodeKey{}, i))
		},
		ModifyResponse: func(resp *http.Response) error {
			if isChallenge(resp.Request) && resp.StatusCode == http.StatusOK {
				f.node(resp.Request.Context().Value(nodeKey{}).(int)).challengeOK.Add(1)
			}
			return nil
		},
	}
}

// fetch GETs https://domain/ from node i, verified against Pebble's root,
// and returns the serial of the certificate served.
func (f *cmFleet) fetch(t *testing.T, i int) *big.Int {
	t.Helper()
	tr := &http.Transport{TLSClientConfig: f.pebble.TLSClientConfig(f.domain), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: time.Minute}
	resp, err := client.Get("https://" + f.node(i).httpsAddr + "/")
	if err != nil {
		t.Fatalf("GET https://%s/ from node %d: %v", f.domain, i, err)
	}
	defer resp.Body.Close()
	if len(resp.TLS.VerifiedChains) == 0 {
		t.Fatalf("node %d: no verified chain", i)
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(f.domain); err != nil {
		t.Fatalf("node %d: %v", i, err)
	}
	return leaf.SerialNumber
}
