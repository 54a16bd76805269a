// Package e2e_test runs autocert on top of certcache against a real ACME CA:
// Pebble, in-process (internal/integration/acmetest), which validates HTTP-01 by
// connecting back to the servers under test. For every backend:
//
//  1. a Manager obtains a certificate on the first TLS handshake; a second,
//     fresh Manager on the same cache URL serves the same certificate with
//     zero new orders at Pebble;
//  2. a cluster of three Managers sits behind a balancer that sends every
//     HTTP-01 validation request to a node that did not place the order:
//     issuance succeeds because the token travels through the cache;
//  3. with the backend down, a handshake for an uncached name fails and
//     Pebble sees no new order: an outage is not taken for a miss.
//
// A backend is one row in the backends table.
package e2e_test

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	_ "github.com/certcache/certcache/azblob"
	_ "github.com/certcache/certcache/dynamodb"
	_ "github.com/certcache/certcache/encrypt"
	_ "github.com/certcache/certcache/gs"
	"github.com/certcache/certcache/internal/integration/acmetest"
	"github.com/certcache/certcache/internal/integration/testenv"
	_ "github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
	"golang.org/x/crypto/acme/autocert"
)

// A backend starts a fresh, empty store for one test. Adding a backend is
// one row in backends: its name, and a start func that returns the URL of a
// new store (usually from an internal/integration/testenv server func) and a stop func
// that makes it unreachable (usually srv.Stop; see serverBackend).
type backend struct {
	name string
	// start returns the store's URL and a func that makes the store
	// unusable to every cache opened on it (stops the server); c is the
	// cache the test's Manager uses, for stores that live in the process.
	start func(t *testing.T) (rawURL string, stop func(t *testing.T, c certcache.Cache))
}

var backends = []backend{
	{"mem", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		// mem://NAME is shared by every Open in the process; it cannot be
		// stopped, so the outage is the Manager's cache being closed.
		name := strings.NewReplacer("/", "-", "_", "-").Replace(strings.ToLower(t.Name()))
		return "mem://" + name, func(t *testing.T, c certcache.Cache) { c.Close() }
	}},
	{"file", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		dir := filepath.Join(t.TempDir(), "certs")
		return "file://" + dir, func(t *testing.T, _ certcache.Cache) { replaceWithFile(t, dir) }
	}},
	{"redis", serverBackend(testenv.Redis)},
	{"redis-cluster", serverBackend(testenv.RedisCluster)}, // keys spread over three masters
	// The wrappers above a backend: values sealed at rest, a memory front
	// (which must not turn an outage into a miss either).
	{"redis+encryption+memory", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		srv, u := testenv.Redis(t)
		return u + "?encryption_key=env:" + e2eKeyEnv + "&memory=true", func(t *testing.T, _ certcache.Cache) { srv.Stop(t) }
	}},
	{"postgres", serverBackend(testenv.Postgres)},
	{"mariadb", serverBackend(testenv.MariaDB)},
	{"sqlite", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		dir := filepath.Join(t.TempDir(), "db")
		if err := os.Mkdir(dir, 0o700); err != nil {
			t.Fatal(err)
		}
		// Each scenario opens its caches anew, and a cache opens the
		// database file on first use: a file where the directory was
		// makes it impossible.
		return "sqlite://" + dir + "/cache.db", func(t *testing.T, _ certcache.Cache) { replaceWithFile(t, dir) }
	}},
	{"s3", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		srv, endpoint := testenv.MinIO(t)
		srv.Exec(t, "mc", "mb", "local/certs")
		return "s3://certs/e2e?use_path_style=true&endpoint=" + endpoint, func(t *testing.T, _ certcache.Cache) { srv.Stop(t) }
	}},
	{"dynamodb", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		// dynalite checks that requests are signed, not by whom: MinIO's
		// credentials from TestMain do.
		srv, endpoint := testenv.DynamoDB(t)
		return "dynamodb://" + testenv.DynamoDBTable + "/e2e?endpoint=" + endpoint, func(t *testing.T, _ certcache.Cache) { srv.Stop(t) }
	}},
	{"azblob", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		srv, endpoint := testenv.Azurite(t)
		return "azblob://certs/e2e?create_container=true&endpoint=" + endpoint, func(t *testing.T, _ certcache.Cache) { srv.Stop(t) }
	}},
	{"gs", func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		srv, endpoint := testenv.FakeGCS(t, "certs")
		return "gs://certs/e2e?endpoint=" + endpoint, func(t *testing.T, _ certcache.Cache) { srv.Stop(t) }
	}},
}

// serverBackend is a backend on a server that testenv starts; the outage
// stops it.
func serverBackend(start func(testing.TB) (*testenv.Server, string)) func(*testing.T) (string, func(*testing.T, certcache.Cache)) {
	return func(t *testing.T) (string, func(*testing.T, certcache.Cache)) {
		srv, u := start(t)
		return u, func(t *testing.T, _ certcache.Cache) { srv.Stop(t) }
	}
}

// replaceWithFile puts a regular file where the directory dir was. Tests
// run as root, so taking permissions away would not stop anything.
func replaceWithFile(t *testing.T, dir string) {
	t.Helper()
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dir, []byte("not a directory"), 0o600); err != nil {
		t.Fatal(err)
	}
}

// e2eKeyEnv names the environment variable holding the encryption key of
// the encrypted rows, set by TestMain.
const e2eKeyEnv = "CERTCACHE_E2E_KEY"

// TestMain gives the S3 SDK MinIO's credentials and the Azure SDK Azurite's
// account through the environment, as a deployment would, away from the
// machine's AWS configuration and metadata service (see testenv.IsolateAWS);
// and the encrypted row its key.
func TestMain(m *testing.M) {
	cleanup := testenv.IsolateAWS()
	testenv.UseMinIOCredentials()
	testenv.UseAzuriteAccount(testenv.AzuriteDevAccount)
	var key [32]byte
	rand.Read(key[:])
	os.Setenv(e2eKeyEnv, base64.StdEncoding.EncodeToString(key[:]))
	code := m.Run()
	cleanup()
	os.Exit(code)
}

func TestE2E(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			rawURL, stop := b.start(t)
			rawURL = withParam(rawURL, "timeout=10s")
			t.Logf("cache URL %s", redacted(rawURL))
			label := strings.ReplaceAll(b.name, "+", "-")
			domain := func(scenario string) string { return scenario + "." + label + ".certcache.test" }
			t.Run("1-second-manager-reuses", func(t *testing.T) { testReuse(t, rawURL, domain("reuse")) })
			t.Run("2-cluster-challenge-on-other-node", func(t *testing.T) { testCluster(t, rawURL, domain("cluster")) })
			t.Run("3-backend-down-no-order", func(t *testing.T) { testOutage(t, rawURL, domain("outage"), stop) })
		})
	}
}

// testReuse is scenario 1.
func testReuse(t *testing.T, rawURL, domain string) {
	env := newEnv(t, 1, rawURL, func(int) int { return 0 }, domain)

	serial := env.fetch(t, 0, domain)
	st := env.pebble.Stats()
	t.Logf("first Manager: serial %x; Pebble: %v", serial, st)
	if st.Finalized != 1 || st.Orders < 1 {
		t.Fatalf("first issuance: want 1 certificate from at least 1 order, Pebble saw %v", st)
	}
	if hits := env.node(0).challengeOK.Load(); hits == 0 {
		t.Errorf("node 0 served no HTTP-01 token: the certificate was not validated over HTTP-01")
	}

	// A fresh Manager with a fresh cache on the same URL.
	second := env.addNode(t)
	serial2 := env.fetch(t, second, domain)
	st2 := env.pebble.Stats()
	t.Logf("second Manager: serial %x; Pebble: %v", serial2, st2)
	if serial2.Cmp(serial) != 0 {
		t.Errorf("second Manager served serial %x, want the cached %x", serial2, serial)
	}
	if st2 != st {
		t.Errorf("second Manager: Pebble saw new requests: before %v, after %v", st, st2)
	}
	if n := env.node(second).orders.Load(); n != 0 {
		t.Errorf("second Manager placed %d orders, want 0", n)
	}
}

// testCluster is scenario 2.
func testCluster(t *testing.T, rawURL, domain string) {
	// Node 0 takes the handshake and places the order; the balancer sends
	// HTTP-01 requests round-robin to the other two.
	env := newEnv(t, 3, rawURL, func(i int) int { return 1 + i%2 }, domain)

	serial := env.fetch(t, 0, domain)
	st := env.pebble.Stats()
	t.Logf("cluster: serial %x; Pebble: %v", serial, st)
	for i, n := range env.nodes { // no node is added any more
		t.Logf("node %d: placed %d orders, served %d HTTP-01 tokens (%d requests)", i, n.orders.Load(), n.challengeOK.Load(), n.challengeReq.Load())
	}
	if st.Finalized != 1 {
		t.Fatalf("want 1 certificate, Pebble saw %v", st)
	}
	if env.node(0).orders.Load() == 0 {
		t.Errorf("node 0 placed no order")
	}
	if n := env.node(0).challengeReq.Load(); n != 0 {
		t.Errorf("node 0, which placed the order, got %d HTTP-01 requests; the balancer should send none there", n)
	}
	served := env.node(1).challengeOK.Load() + env.node(2).challengeOK.Load()
	if served == 0 {
		t.Errorf("nodes 1 and 2 served no HTTP-01 token, yet the certificate was issued")
	}
	for i := 1; i < 3; i++ {
		if n := env.node(i).orders.Load(); n != 0 {
			t.Errorf("node %d placed %d orders, want 0", i, n)
		}
	}

	// Every node now serves the same certificate without a new order.
	for i := 1; i < 3; i++ {
		if s := env.fetch(t, i, domain); s.Cmp(serial) != 0 {
			t.Errorf("node %d served serial %x, want %x", i, s, serial)
		}
	}
	if st2 := env.pebble.Stats(); st2 != st {
		t.Errorf("serving from the other nodes made new requests at Pebble: before %v, after %v", st, st2)
	}
}

// TestClusterNeedsSharedCache is the control for scenario 2: with the same
// balancer in front of three Managers that each have a private cache, the
// nodes that get the HTTP-01 requests do not know the token and issuance
// fails. Scenario 2 passes because of the shared cache, not by accident.
func TestClusterNeedsSharedCache(t *testing.T) {
	const domain = "control.certcache.test"
	// mem:// without a name is private to each Open.
	env := newEnv(t, 3, "mem://", func(i int) int { return 1 + i%2 }, domain)
	if _, _, err := env.tryFetch(0, domain); err == nil {
		t.Fatal("issuance succeeded with private caches: the balancer did not route HTTP-01 away from the ordering node")
	} else {
		t.Logf("handshake: %v", err)
	}
	st := env.pebble.Stats()
	t.Logf("Pebble: %v; HTTP-01 requests at nodes 1, 2: %d (%d answered), %d (%d answered)", st,
		env.node(1).challengeReq.Load(), env.node(1).challengeOK.Load(),
		env.node(2).challengeReq.Load(), env.node(2).challengeOK.Load())
	if st.Finalized != 0 {
		t.Errorf("Pebble issued %d certificates", st.Finalized)
	}
	if env.node(1).challengeReq.Load()+env.node(2).challengeReq.Load() == 0 {
		t.Errorf("no HTTP-01 request reached nodes 1 and 2")
	}
	if env.node(1).challengeOK.Load()+env.node(2).challengeOK.Load() != 0 {
		t.Errorf("a node without the token answered HTTP-01 with 200")
	}
}

// testOutage is scenario 3.
func testOutage(t *testing.T, rawURL, domain string, stop func(*testing.T, certcache.Cache)) {
	env := newEnv(t, 1, rawURL, func(int) int { return 0 }, domain)
	stop(t, env.node(0).cache)

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := env.node(0).cache.Get(ctx, domain); err == nil || err == autocert.ErrCacheMiss {
		t.Fatalf("Get on the stopped backend: err = %v, want a failure that is not a miss", err)
	} else {
		t.Logf("Get on the stopped backend: %v", err)
	}
	_, _, err := env.tryFetch(0, domain)
	if err == nil {
		t.Fatalf("handshake for %s succeeded with the backend down", domain)
	}
	t.Logf("handshake with the backend down: %v", err)
	st := env.pebble.Stats()
	t.Logf("backend down: Pebble: %v", st)
	if st != (acmetest.Stats{}) {
		t.Errorf("backend down: Pebble saw %v, want nothing (an outage was taken for a miss)", st)
	}
	if n := env.node(0).orders.Load(); n != 0 {
		t.Errorf("the Manager placed %d orders with the backend down", n)
	}
}

// env is one Pebble, n autocert nodes on the same cache URL and the
// balancer in front of their HTTP-01 handlers.
type env struct {
	pebble *acmetest.Pebble
	rawURL string
	// helper serves TLS through certcache.TLSConfig (handshakes wait for a
	// certificate another node orders) instead of the Manager's TLSConfig.
	helper bool
	// gate, if set, wraps node i's ACME client transport.
	gate func(i int, rt http.RoundTripper) http.RoundTripper
	// refuse, if set, makes the balancer answer 404 to every HTTP-01
	// request for a name it holds: validation fails, as for a name the CA
	// will not issue.
	refuse func(host string) bool
	names  []string
	// renewBefore is every node's Manager.RenewBefore.
	renewBefore time.Duration
	// open, if set, builds node i's cache instead of certcache.Open of
	// rawURL: a stack put together in Go.
	open func(t *testing.T, i int) certcache.Cache
	// route picks the node for the i-th HTTP-01 request (from 0).
	route func(i int) int
	reqs  atomic.Int64
	gets  getRecorder // the Managers' Gets

	mu    sync.Mutex
	nodes []*node
}

// node returns the i-th node.
func (e *env) node(i int) *node {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.nodes[i]
}

// addNode starts one more node and returns its index.
func (e *env) addNode(t *testing.T) int {
	t.Helper()
	e.mu.Lock()
	i := len(e.nodes)
	e.mu.Unlock()
	nd := e.startNode(t, i)
	e.mu.Lock()
	defer e.mu.Unlock()
	e.nodes = append(e.nodes, nd)
	return i
}

// node is one instance of the application: a Manager, its own cache
// connection, an HTTPS server and an HTTP-01 server.
type node struct {
	m            *autocert.Manager
	cache        certcache.Cache
	httpsAddr    string
	httpAddr     string
	orders       atomic.Int64 // new-order requests this node's ACME client sent
	challengeReq atomic.Int64 // HTTP-01 requests the balancer sent it
	challengeOK  atomic.Int64 // and those it answered 200
}

// newEnv starts Pebble, n nodes and the balancer, which sends the i-th
// HTTP-01 request to node route(i).
func newEnv(t *testing.T, n int, rawURL string, route func(int) int, domains ...string) *env {
	t.Helper()
	return newEnvWith(t, &env{rawURL: rawURL, names: domains, route: route}, n, acmetest.Options{})
}

// newEnvWith starts Pebble with opts (HTTPPort and Log set here), and n
// nodes as e describes.
func newEnvWith(t *testing.T, e *env, n int, opts acmetest.Options) *env {
	t.Helper()
	balancer, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	opts.HTTPPort = balancer.Addr().(*net.TCPAddr).Port
	opts.Log = testenv.Log(t)
	e.pebble, err = acmetest.Start(opts)
	if err != nil {
		balancer.Close()
		t.Fatal(err)
	}
	t.Cleanup(e.pebble.Close)
	for i := 0; i < n; i++ {
		e.addNode(t)
	}
	serve(t, balancer, e.balancer(t))
	return e
}

// startNode starts the i-th node.
func (e *env) startNode(t *testing.T, i int) *node {
	t.Helper()
	var cache certcache.Cache
	if e.open != nil {
		cache = e.open(t, i)
	} else {
		var err error
		if cache, err = certcache.Open(context.Background(), e.rawURL); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { cache.Close() })
	nd := &node{cache: cache}
	client := e.pebble.Client()
	rt := countOrders(client.HTTPClient.Transport, &nd.orders)
	if e.gate != nil {
		rt = e.gate(i, rt)
	}
	client.HTTPClient = &http.Client{Transport: rt}
	nd.m = &autocert.Manager{
		Prompt:      autocert.AcceptTOS,
		Cache:       cache,
		HostPolicy:  autocert.HostWhitelist(e.names...),
		Client:      client,
		RenewBefore: e.renewBefore,
	}
	nd.m.Cache = slowGets{cache, t, i, &e.gets}

	httpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	serve(t, httpL, nd.m.HTTPHandler(nil)) // HTTP-01, else a redirect to HTTPS
	nd.httpAddr = httpL.Addr().String()

	tcpL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tlsConfig := nd.m.TLSConfig()
	if e.helper {
		tlsConfig = certcache.TLSConfig(nd.m, cache)
	}
	httpsL := tls.NewListener(tcpL, tlsConfig)
	serve(t, httpsL, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from node %d\n", i)
	}))
	nd.httpsAddr = tcpL.Addr().String()
	return nd
}

// slowGets logs every Get that takes longer than half a second: autocert
// calls Get under a lock every handshake of the node takes, so a slow Get
// explains a slow handshake.
type slowGets struct {
	certcache.Cache
	t    *testing.T
	node int
	rec  *getRecorder
}

func (c slowGets) Get(ctx context.Context, key string) ([]byte, error) {
	start := time.Now()
	v, err := c.Cache.Get(ctx, key)
	d := time.Since(start)
	if d > 500*time.Millisecond {
		c.t.Logf("SLOW GET node %d %q: %v: %v", c.node, key, d.Round(time.Millisecond), err)
	}
	c.rec.add(c.node, key, err, d)
	return v, err
}

// getRecorder keeps the longest Get the Managers made, by outcome: a Get
// that waited for another node's order would return the certificate (a
// hit) after as long as the order; a Get that returned a miss or an error
// did not wait for any order, whatever its store made it wait.
type getRecorder struct {
	mu      sync.Mutex
	hit     map[string]time.Duration // key → longest hit
	notHit  time.Duration            // longest miss or error, any key
	issuing map[string]map[int]int   // key → node → Gets answered certcache.ErrIssuing
}

func (r *getRecorder) add(node int, key string, err error, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if errors.Is(err, certcache.ErrIssuing) {
		if r.issuing == nil {
			r.issuing = map[string]map[int]int{}
		}
		if r.issuing[key] == nil {
			r.issuing[key] = map[int]int{}
		}
		r.issuing[key][node]++
	}
	if err != nil {
		r.notHit = max(r.notHit, d)
		return
	}
	if r.hit == nil {
		r.hit = map[string]time.Duration{}
	}
	r.hit[key] = max(r.hit[key], d)
}

// longest returns the longest hit of key, the longest Get that did not
// hit, and how many Gets of key each node had answered with ErrIssuing,
// and forgets them.
func (r *getRecorder) longest(key string) (hit, notHit time.Duration, issuing map[int]int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	hit, notHit, issuing = r.hit[key], r.notHit, r.issuing[key]
	r.hit, r.notHit, r.issuing = nil, 0, nil
	return hit, notHit, issuing
}

// balancer forwards each HTTP-01 request to the node route picks, over
// TCP, with the Host header stripped of its port as a balancer on port 80
// would pass it (autocert checks Host against HostPolicy).
func (e *env) balancer(t *testing.T) http.Handler {
	return &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			i := e.route(int(e.reqs.Add(1) - 1))
			host := r.In.Host
			if h, _, err := net.SplitHostPort(host); err == nil {
				host = h
			}
			r.Out.URL.Scheme = "http"
			r.Out.URL.Host = e.node(i).httpAddr
			if e.refuse != nil && e.refuse(host) && isChallenge(r.Out) {
				r.Out.URL.Path = "/.well-known/acme-challenge/refused" // no such token: 404
			}
			r.Out.Host = host
			r.Out = r.Out.WithContext(context.WithValue(r.Out.Context(), nodeKey{}, i))
			if isChallenge(r.Out) {
				e.node(i).challengeReq.Add(1)
			}
		},
		// Counts and logs what each node answered to HTTP-01.
		ModifyResponse: func(resp *http.Response) error {
			if !isChallenge(resp.Request) {
				return nil
			}
			i := resp.Request.Context().Value(nodeKey{}).(int)
			if resp.StatusCode == http.StatusOK {
				e.node(i).challengeOK.Add(1)
			}
			t.Logf("balancer: HTTP-01 %s for %s went to node %d: %s", resp.Request.URL.Path, resp.Request.Host, i, resp.Status)
			return nil
		},
	}
}

// nodeKey is the context key under which the balancer notes the node it
// picked for a request.
type nodeKey struct{}

func isChallenge(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/.well-known/acme-challenge/")
}

// fetch GETs https://domain/ from node i over TLS verified against Pebble's
// root and returns the serial of the certificate it served.
func (e *env) fetch(t *testing.T, i int, domain string) *big.Int {
	t.Helper()
	start := time.Now()
	serial, body, err := e.tryFetch(i, domain)
	if err != nil {
		t.Fatalf("GET https://%s/ from node %d: %v (Pebble: %v)", domain, i, err, e.pebble.Stats())
	}
	if want := fmt.Sprintf("hello from node %d\n", i); body != want {
		t.Fatalf("node %d answered %q, want %q", i, body, want)
	}
	t.Logf("GET https://%s/ from node %d over verified TLS: %v", domain, i, time.Since(start).Round(time.Millisecond))
	return serial
}

func (e *env) tryFetch(i int, domain string) (*big.Int, string, error) {
	tr := &http.Transport{TLSClientConfig: e.pebble.TLSClientConfig(domain), DisableKeepAlives: true}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 4 * time.Minute}
	resp, err := client.Get("https://" + e.node(i).httpsAddr + "/")
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, "", err
	}
	leaf := resp.TLS.PeerCertificates[0]
	if err := leaf.VerifyHostname(domain); err != nil {
		return nil, "", err
	}
	if len(resp.TLS.VerifiedChains) == 0 {
		return nil, "", errors.New("no verified chain")
	}
	return leaf.SerialNumber, string(b), nil
}

// countOrders counts the new-order requests an ACME client sends.
func countOrders(rt http.RoundTripper, n *atomic.Int64) http.RoundTripper {
	return roundTripFunc(func(r *http.Request) (*http.Response, error) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/order-plz") {
			n.Add(1)
		}
		return rt.RoundTrip(r)
	})
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// serve serves h on l until t ends.
func serve(t *testing.T, l net.Listener, h http.Handler) {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: time.Minute, ErrorLog: log.New(testenv.Log(t), "", 0)}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
}

// redacted returns rawURL without its password, for logs.
func redacted(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// withParam adds a query parameter to rawURL.
func withParam(rawURL, param string) string {
	u, err := url.Parse(rawURL)
	if err != nil || u.RawQuery == "" {
		return rawURL + "?" + param
	}
	return rawURL + "&" + param
}
