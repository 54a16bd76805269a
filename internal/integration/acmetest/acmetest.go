// Package acmetest runs Pebble, Let's Encrypt's ACME test server, inside the
// current process, so that tests (and the certcache demo command) can put
// autocert through a real ACME issuance on top of a certcache.Cache.
//
// # Why in-process
//
// Pebble is assembled here from its own Go packages (ca, db, va, wfe), wired
// as its cmd/pebble does, rather than run from a container image:
//
//   - nothing to build or pull: the test needs only the Go module, so it runs
//     wherever go test runs, and the demo runs on a fresh machine;
//   - the harness sees every ACME request, so it counts the orders Pebble
//     creates directly (Stats) instead of scraping logs;
//   - each test gets its own CA on its own ports, so tests run in parallel.
//
// Nothing is faked: Pebble's validation authority really connects back over
// HTTP to fetch the HTTP-01 token (PEBBLE_VA_ALWAYS_VALID is forced off while
// Pebble is built). Names are resolved by a tiny DNS server, started here on
// loopback, that answers A 127.0.0.1 for every name, so the VA reaches the
// server under test and nothing else. The other Pebble settings are the
// deterministic ones: no random validation sleep (PEBBLE_VA_NOSLEEP=1), no
// rejected good nonces (PEBBLE_WFE_NONCEREJECT=0), no reuse of earlier
// authorizations (PEBBLE_AUTHZREUSE=0), so every order needs a fresh
// validation. Pebble reads these from the environment when it is built;
// Start sets them for that moment only and restores the environment after.
//
// Pebble's VA connects for HTTP-01 to the port Options.HTTPPort names on
// 127.0.0.1 (a real CA would use port 80) and for TLS-ALPN-01 to
// Options.TLSPort. autocert tries TLS-ALPN-01 first; a cluster behind an HTTP
// balancer cannot answer it on another node (autocert keeps TLS-ALPN-01
// certificates in memory only), so by default the TLS port is one where the
// harness accepts and drops every connection: TLS-ALPN-01 fails at once and
// autocert places a second order with HTTP-01, whose tokens go through the
// cache. Stats tells the two orders apart from issued certificates.
package acmetest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/letsencrypt/pebble/v2/ca"
	"github.com/letsencrypt/pebble/v2/db"
	"github.com/letsencrypt/pebble/v2/va"
	"github.com/letsencrypt/pebble/v2/wfe"
	"github.com/miekg/dns"
	"golang.org/x/crypto/acme"
)

// Options configure a Pebble.
type Options struct {
	// HTTPPort is the port on 127.0.0.1 where Pebble's VA fetches HTTP-01
	// tokens; the caller serves autocert's HTTPHandler there. Required.
	HTTPPort int

	// TLSPort is the port on 127.0.0.1 where the VA tries TLS-ALPN-01. If
	// zero, a port the harness holds and where it drops every connection,
	// so that TLS-ALPN-01 fails and autocert falls back to HTTP-01.
	TLSPort int

	// Log receives Pebble's log. If nil, the log is discarded.
	Log io.Writer

	// AuthzReuse is the percentage of orders for which Pebble reuses a
	// valid authorization of the same account and name, as Let's Encrypt
	// always does (100). If zero, 0: every order needs a fresh validation.
	AuthzReuse int

	// Validity is the lifetime of the certificates issued; whole seconds,
	// at least one. Short lifetimes make autocert renew within a test.
	// If zero, Pebble's default (90 days).
	Validity time.Duration
}

// Stats counts what Pebble was asked to do, from the requests its web front
// end answered.
type Stats struct {
	// OrderRequests counts new-order requests, whatever their outcome.
	OrderRequests int
	// Orders counts orders Pebble created (new-order answered 201).
	Orders int
	// Finalized counts orders finalized, that is certificates issued.
	Finalized int
	// Accounts counts ACME accounts created (new-account answered 201; a
	// key that is already registered gets 200).
	Accounts int
}

// Pebble is a running in-process ACME CA. Close it when done.
type Pebble struct {
	// DirectoryURL is the ACME directory, on https://127.0.0.1:PORT.
	DirectoryURL string
	// HTTPPort and TLSPort are where the VA validates HTTP-01 and
	// TLS-ALPN-01.
	HTTPPort, TLSPort int

	wfe      *httptest.Server
	dns      *dns.Server
	drop     net.Listener // the default TLS port; nil if the caller gave one
	root     *x509.Certificate
	rootPEM  []byte
	orderReq atomic.Int64
	orders   atomic.Int64
	final    atomic.Int64
	accounts atomic.Int64
	closed   sync.Once

	// newAccount serialises new-account requests. Pebble 2.10's
	// NewAccount stores an account and then sets its Orders URL, while a
	// concurrent request for the same key marshals that account: a data
	// race in Pebble that a fleet sharing one account key hits whenever
	// two nodes register at once. A real CA serialises them in its
	// database.
	newAccount sync.Mutex
}

// Paths of Pebble's web front end that Stats counts; Start checks them
// against Pebble's directory.
const (
	newOrderPath   = "/order-plz"
	finalizePath   = "/finalize-order/"
	newAccountPath = "/sign-me-up"
)

// envMu serialises the moments when Start changes the environment.
var envMu sync.Mutex

// pebbleEnv is the environment Pebble is built with; "" unsets.
var pebbleEnv = map[string]string{
	"PEBBLE_VA_NOSLEEP":      "1",
	"PEBBLE_VA_SLEEPTIME":    "",
	"PEBBLE_VA_ALWAYS_VALID": "",
	"PEBBLE_WFE_NONCEREJECT": "0",
	"PEBBLE_AUTHZREUSE":      "0",
}

// Start starts Pebble, its DNS resolver and its web front end on loopback.
func Start(opts Options) (p *Pebble, err error) {
	if opts.HTTPPort <= 0 {
		return nil, errors.New("acmetest: Options.HTTPPort is required")
	}
	logw := opts.Log
	if logw == nil {
		logw = io.Discard
	}
	logger := log.New(logw, "pebble ", log.Lmicroseconds)
	p = &Pebble{HTTPPort: opts.HTTPPort, TLSPort: opts.TLSPort}
	defer func() {
		if err != nil {
			p.Close()
		}
	}()

	if p.TLSPort == 0 {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("acmetest: %w", err)
		}
		p.drop = l
		p.TLSPort = l.Addr().(*net.TCPAddr).Port
		go dropAll(l)
	}

	resolver, err := p.startDNS()
	if err != nil {
		return nil, err
	}

	store := db.NewMemoryStore()
	// Let's Encrypt's classic profile: the first name is also the subject's
	// common name.
	profiles := map[string]ca.Profile{"default": {Description: "The default profile", PromoteCommonName: true,
		ValidityPeriod: uint64(opts.Validity / time.Second)}}
	env := maps.Clone(pebbleEnv)
	env["PEBBLE_AUTHZREUSE"] = strconv.Itoa(opts.AuthzReuse)
	envMu.Lock()
	restore := setEnv(env)
	// ECDSA keys for the root and intermediate: as good for the test as
	// RSA and much faster to generate under the race detector.
	authority := ca.New(logger, store, "", "ecdsa", 0, 1, profiles)
	validator := va.New(logger, p.HTTPPort, p.TLSPort, false, resolver, store)
	front := wfe.New(logger, store, validator, authority, []string{"pebble.letsencrypt.org"}, false, false, 0, 0)
	restore()
	envMu.Unlock()

	p.rootPEM = authority.GetRootCert(0).PEM()
	p.root = authority.GetRootCert(0).Cert
	p.wfe = httptest.NewUnstartedServer(p.count(front.Handler()))
	p.wfe.Config.ErrorLog = logger
	p.wfe.StartTLS()
	p.DirectoryURL = p.wfe.URL + wfe.DirectoryPath
	if err := p.checkDirectory(); err != nil {
		return nil, err
	}
	return p, nil
}

// setEnv sets env ("" unsets) and returns a func that restores the old
// values.
func setEnv(env map[string]string) (restore func()) {
	type old struct {
		v  string
		ok bool
	}
	saved := map[string]old{}
	for k, v := range env {
		ov, ok := os.LookupEnv(k)
		saved[k] = old{ov, ok}
		if v == "" {
			os.Unsetenv(k)
		} else {
			os.Setenv(k, v)
		}
	}
	return func() {
		for k, o := range saved {
			if o.ok {
				os.Setenv(k, o.v)
			} else {
				os.Unsetenv(k)
			}
		}
	}
}

// dropAll accepts connections on l and closes them at once.
func dropAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}

// startDNS starts the resolver the VA asks (over TCP, as Pebble's VA does):
// A 127.0.0.1 for every name, no AAAA.
func (p *Pebble) startDNS() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("acmetest: dns: %w", err)
	}
	started := make(chan struct{})
	p.dns = &dns.Server{
		Listener:          l,
		Handler:           dns.HandlerFunc(answerLoopback),
		NotifyStartedFunc: func() { close(started) },
	}
	go p.dns.ActivateAndServe()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		return "", errors.New("acmetest: dns server did not start")
	}
	return l.Addr().String(), nil
}

func answerLoopback(w dns.ResponseWriter, r *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(r)
	for _, q := range r.Question {
		if q.Qtype == dns.TypeA {
			m.Answer = append(m.Answer, &dns.A{
				Hdr: dns.RR_Header{Name: q.Name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: 0},
				A:   net.IPv4(127, 0, 0, 1),
			})
		}
	}
	w.WriteMsg(m)
}

// count wraps Pebble's web front end to count orders.
func (p *Pebble) count(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			h.ServeHTTP(w, r)
			return
		}
		sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		if r.URL.Path == newAccountPath {
			p.newAccount.Lock()
			defer p.newAccount.Unlock()
		}
		h.ServeHTTP(sw, r)
		switch {
		case r.URL.Path == newOrderPath:
			p.orderReq.Add(1)
			if sw.status == http.StatusCreated {
				p.orders.Add(1)
			}
		case strings.HasPrefix(r.URL.Path, finalizePath):
			if sw.status == http.StatusOK {
				p.final.Add(1)
			}
		case r.URL.Path == newAccountPath:
			if sw.status == http.StatusCreated {
				p.accounts.Add(1)
			}
		}
	})
}

type statusWriter struct {
	http.ResponseWriter
	status int
	wrote  bool
}

func (w *statusWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	w.wrote = true
	return w.ResponseWriter.Write(b)
}

// checkDirectory makes sure the paths count relies on are Pebble's.
func (p *Pebble) checkDirectory() error {
	resp, err := p.HTTPClient().Get(p.DirectoryURL)
	if err != nil {
		return fmt.Errorf("acmetest: directory: %w", err)
	}
	defer resp.Body.Close()
	var dir struct{ NewOrder, NewAccount string }
	if err := json.NewDecoder(resp.Body).Decode(&dir); err != nil {
		return fmt.Errorf("acmetest: directory: %w", err)
	}
	if !strings.HasSuffix(dir.NewOrder, newOrderPath) {
		return fmt.Errorf("acmetest: Pebble's newOrder is %q, not …%s: update the harness", dir.NewOrder, newOrderPath)
	}
	if !strings.HasSuffix(dir.NewAccount, newAccountPath) {
		return fmt.Errorf("acmetest: Pebble's newAccount is %q, not …%s: update the harness", dir.NewAccount, newAccountPath)
	}
	return nil
}

// HTTPClient returns a client that trusts Pebble's web front end (its TLS
// certificate, not the certificates Pebble issues), for acme.Client.
func (p *Pebble) HTTPClient() *http.Client { return p.wfe.Client() }

// FrontEndCertPEM returns the TLS certificate of Pebble's web front end,
// PEM-encoded: for a program that trusts it through SSL_CERT_FILE, as it
// would trust a real CA's directory through the system roots.
func (p *Pebble) FrontEndCertPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: p.wfe.Certificate().Raw})
}

// Client returns a new ACME client for Pebble, for autocert.Manager.Client.
// Each Manager needs its own: autocert sets the client's account key.
func (p *Pebble) Client() *acme.Client {
	return &acme.Client{DirectoryURL: p.DirectoryURL, HTTPClient: p.HTTPClient()}
}

// Roots returns a pool holding the root that signs what Pebble issues, for a
// client that verifies a server's certificate.
func (p *Pebble) Roots() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(p.root)
	return pool
}

// RootPEM returns that root, PEM-encoded.
func (p *Pebble) RootPEM() []byte { return append([]byte(nil), p.rootPEM...) }

// Stats returns the counts so far.
func (p *Pebble) Stats() Stats {
	return Stats{
		OrderRequests: int(p.orderReq.Load()),
		Orders:        int(p.orders.Load()),
		Finalized:     int(p.final.Load()),
		Accounts:      int(p.accounts.Load()),
	}
}

// String formats s for logs.
func (s Stats) String() string {
	return "new-order requests " + strconv.Itoa(s.OrderRequests) + ", orders created " +
		strconv.Itoa(s.Orders) + ", certificates issued " + strconv.Itoa(s.Finalized) + ", accounts created " + strconv.Itoa(s.Accounts)
}

// Close stops Pebble's web front end, resolver and TLS port. It waits for
// requests in flight.
func (p *Pebble) Close() {
	p.closed.Do(func() {
		if p.wfe != nil {
			p.wfe.Close()
		}
		if p.dns != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			p.dns.ShutdownContext(ctx)
			cancel()
		}
		if p.drop != nil {
			p.drop.Close()
		}
	})
}

// TLSClientConfig returns a client TLS configuration that verifies
// certificates Pebble issued for serverName.
func (p *Pebble) TLSClientConfig(serverName string) *tls.Config {
	return &tls.Config{RootCAs: p.Roots(), ServerName: serverName}
}

// ParseRoots parses PEM certificates into a pool, for a client that must
// trust a root saved by an earlier Pebble.
func ParseRoots(pemData []byte) (*x509.CertPool, error) {
	pool := x509.NewCertPool()
	n := 0
	for {
		var b *pem.Block
		b, pemData = pem.Decode(pemData)
		if b == nil {
			break
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("acmetest: root: %w", err)
		}
		pool.AddCert(c)
		n++
	}
	if n == 0 {
		return nil, errors.New("acmetest: no PEM certificate")
	}
	return pool, nil
}
