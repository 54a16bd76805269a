package e2e_test

// The paths on which autocert orders without a cache miss (issue 21): a
// stored value autocert refuses, a renewal threshold other than the
// default, a memory front, a store that fails during a renewal.
//
//  8. a certificate autocert would refuse is in the store (expired, not
//     valid yet, its key not the leaf's, for another name): autocert takes
//     it for a miss and orders; the fleet must order once, and every node
//     then serves that one certificate;
//  9. renewals of 60-second certificates with Manager.RenewBefore at 30 s
//     and 50 s, behind a memory front, and with the store paused around
//     each renewal: one certificate per renewal cycle.

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/authority"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// An invalidStored is a value under a certificate key that autocert reads
// and refuses.
type invalidStored struct {
	name string
	// value returns the stored value for domain.
	value func(t *testing.T, domain string) []byte
	// everyRow: run on every backend, not only mem.
	everyRow bool
}

var invalidStoredCases = []invalidStored{
	{"expired", func(t *testing.T, domain string) []byte {
		now := time.Now()
		return selfSigned(t, domain, now.Add(-2*time.Hour), now.Add(-time.Hour), nil)
	}, true},
	{"not-yet-valid", func(t *testing.T, domain string) []byte {
		now := time.Now()
		return selfSigned(t, domain, now.Add(time.Hour), now.Add(90*24*time.Hour), nil)
	}, true},
	{"key-mismatch", func(t *testing.T, domain string) []byte {
		now := time.Now()
		other, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return selfSigned(t, domain, now.Add(-time.Hour), now.Add(90*24*time.Hour), other)
	}, false},
	{"other-name", func(t *testing.T, domain string) []byte {
		now := time.Now()
		return selfSigned(t, "other-"+domain, now.Add(-time.Hour), now.Add(90*24*time.Hour), nil)
	}, false},
}

// selfSigned returns an autocert cache value (the private key's PEM block,
// then the certificate's, as autocert's cachePut writes them) holding a
// self-signed ECDSA P-256 certificate for domain valid from notBefore to
// notAfter. With storedKey set, the value holds storedKey instead of the
// certificate's key.
func selfSigned(t *testing.T, domain string, notBefore, notAfter time.Time, storedKey *ecdsa.PrivateKey) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: domain},
		DNSNames:     []string{domain},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	if storedKey != nil {
		key = storedKey
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	v := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return append(v, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
}

// store puts value under key through c, a cache the nodes do not use,
// and closes c. A Put is never coordinated, so the value lands as it is
// (sealed, if c seals).
func store(t *testing.T, c certcache.Cache, key string, value []byte) {
	t.Helper()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.Put(ctx, key, value); err != nil {
		t.Fatalf("storing the invalid certificate: %v", err)
	}
}

// TestFleetInvalidStored is scenario 8 on every backend.
func TestFleetInvalidStored(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fleetSlots <- struct{}{}
			defer func() { <-fleetSlots }()
			rawURL, _ := b.start(t)
			rawURL = withParam(rawURL, "timeout=10s")
			label := strings.ReplaceAll(b.name, "+", "-")
			for _, c := range invalidStoredCases {
				if !c.everyRow && b.name != "mem" {
					continue
				}
				t.Run("8-"+c.name, func(t *testing.T) {
					domain := c.name + "." + label + ".certcache.test"
					open, err := certcache.Open(context.Background(), rawURL)
					if err != nil {
						t.Fatal(err)
					}
					store(t, open, domain, c.value(t, domain))
					e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true}, fleetSize, letsEncrypt)
					checkOneIssuance(t, e, "8 "+strings.ToUpper(c.name)+" "+b.name, domain, 3)
				})
			}
		})
	}
}

// stampede makes perNode simultaneous handshakes for domain on every node
// of e and returns them.
func stampede(e *env, domain string, perNode int) []handshake {
	var wg sync.WaitGroup
	results := make(chan handshake, perNode*fleetSize)
	for i := range fleetSize {
		for range perNode {
			wg.Go(func() { results <- timedFetch(e, i, domain) })
		}
	}
	wg.Wait()
	close(results)
	var hs []handshake
	for h := range results {
		hs = append(hs, h)
	}
	return hs
}

// checkOneIssuance runs a stampede for domain on e's fresh Pebble and
// checks that every handshake succeeded, that the fleet got exactly one
// certificate, and that every node then serves it. It logs the summary
// line prefixed with label.
func checkOneIssuance(t *testing.T, e *env, label, domain string, perNode int) {
	t.Helper()
	hs := stampede(e, domain, perNode)
	var failed int
	var took []time.Duration
	for _, h := range hs {
		took = append(took, h.took)
		if h.err != nil {
			failed++
			t.Errorf("node %d: handshake for %s failed: %v", h.node, domain, h.err)
		}
	}
	st := e.pebble.Stats()
	orders := make([]int64, fleetSize)
	for i := range fleetSize {
		orders[i] = e.node(i).orders.Load()
	}
	t.Logf("%s: %d certificate(s), %d orders (by node %v), %d accounts; %d of %d handshakes failed; handshakes p50 %v max %v",
		label, st.Finalized, st.Orders, orders, st.Accounts, failed, len(hs), percentile(took, 50), percentile(took, 100))
	if st.Finalized != 1 {
		t.Errorf("%d certificates issued for %s, want exactly 1 (Pebble %v; orders by node %v)", st.Finalized, domain, st, orders)
	}
	servesOne(t, e, domain)
	if st2 := e.pebble.Stats(); st2.Finalized != st.Finalized {
		t.Errorf("serving from every node issued %d more certificates", st2.Finalized-st.Finalized)
	}
}

// servesOne checks that every node serves the same certificate for domain,
// retrying a failing node for up to 30 s, and returns its serial.
func servesOne(t *testing.T, e *env, domain string) *big.Int {
	t.Helper()
	var want *big.Int
	deadline := time.Now().Add(30 * time.Second)
	for i := range fleetSize {
		for {
			h := timedFetch(e, i, domain)
			if h.err == nil {
				if want == nil {
					want = h.serial
				} else if h.serial.Cmp(want) != 0 {
					t.Errorf("node %d serves serial %x for %s, node 0 %x", i, h.serial, domain, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Errorf("node %d still fails for %s: %v", i, domain, h.err)
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	return want
}

// A renewalVariant is one way of running scenario 9.
type renewalVariant struct {
	name        string
	renewBefore time.Duration // every Manager's RenewBefore
	params      string        // added to the row's URL
	// blips: the store's server is paused around each renewal window,
	// and a Get gives up after a second, so that the renewals' reads fail.
	blips bool
	rows  map[string]bool // nil: every row of renewalRows
}

var renewalVariants = []renewalVariant{
	{name: "default"},
	{name: "renew-before-30s", renewBefore: 30 * time.Second},
	{name: "renew-before-50s", renewBefore: 50 * time.Second},
	{name: "memory", params: "memory=true"},
	{name: "store-blips", params: "get_timeout=1s", blips: true, rows: map[string]bool{"redis": true, "postgres": true}},
}

// pausable starts the servers of the rows whose server the blips pause.
var pausable = map[string]func(testing.TB) (*testenv.Server, string){"redis": testenv.Redis, "postgres": testenv.Postgres}

// TestFleetRenewalPaths is scenario 9: every variant on the rows of
// TestFleetRenewal, all at once in goroutines (see TestFleetRenewal). The
// variants of a row share its store, each with its own name, except the
// blips, which pause a server of their own.
func TestFleetRenewalPaths(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for _, b := range backends {
		if !renewalRows[b.name] {
			continue
		}
		wg.Go(func() {
			t.Run(b.name, func(t *testing.T) {
				shared, _ := b.start(t)
				label := strings.ReplaceAll(b.name, "+", "-")
				var vwg sync.WaitGroup
				for _, v := range renewalVariants {
					if v.rows != nil && !v.rows[b.name] {
						continue
					}
					vwg.Go(func() {
						t.Run("9-"+v.name, func(t *testing.T) {
							rawURL := shared
							var srv *testenv.Server
							if v.blips {
								srv, rawURL = pausable[b.name](t)
							}
							rawURL = withParam(rawURL, "timeout=10s")
							if v.params != "" {
								rawURL = withParam(rawURL, v.params)
							}
							testRenewalPath(t, rawURL, v.name+".renew."+label+".certcache.test", b.name, v, srv)
						})
					})
				}
				vwg.Wait()
			})
		})
	}
	wg.Wait()
}

// A storedCert is a certificate seen in the store.
type storedCert struct {
	serial              string
	notBefore, notAfter time.Time
}

// parseStored returns the leaf of an autocert cache value.
func parseStored(v []byte) (storedCert, bool) {
	for {
		var b *pem.Block
		b, v = pem.Decode(v)
		if b == nil {
			return storedCert{}, false
		}
		if b.Type == "CERTIFICATE" {
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return storedCert{}, false
			}
			return storedCert{c.SerialNumber.Text(16), c.NotBefore, c.NotAfter}, true
		}
	}
}

// renewThreshold is how long before NotAfter autocert renews c with
// Manager.RenewBefore rb: RenewBefore (at most 30 days) if set, else a
// third of the lifetime. autocert adds a jitter of up to a tenth of it.
func renewThreshold(c storedCert, rb time.Duration) time.Duration {
	if rb > 0 {
		return min(rb, 30*24*time.Hour)
	}
	return min(c.notAfter.Sub(c.notBefore)/3, 30*24*time.Hour)
}

// watcher polls a store for the certificates of names and keeps every
// distinct one it sees.
type watcher struct {
	c    certcache.Cache // beneath coordination: a read takes no lease
	mu   sync.Mutex
	seen map[string][]storedCert // name → in the order seen
	// onNew, if set, is called (in the watcher's goroutine) with each new
	// certificate.
	onNew func(name string, c storedCert)
}

func newWatcher(t *testing.T, rawURL string) *watcher {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &watcher{c: certcache.Uncoordinated(c), seen: map[string][]storedCert{}}
}

// poll reads each name once.
func (w *watcher) poll(names ...string) {
	for _, name := range names {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		v, err := w.c.Get(authority.Context(ctx), name) // the store's value, past a memory front
		cancel()
		if err != nil {
			continue
		}
		sc, ok := parseStored(v)
		if !ok {
			continue
		}
		w.mu.Lock()
		dup := slices.ContainsFunc(w.seen[name], func(c storedCert) bool { return c.serial == sc.serial })
		if !dup {
			w.seen[name] = append(w.seen[name], sc)
		}
		w.mu.Unlock()
		if !dup && w.onNew != nil {
			w.onNew(name, sc)
		}
	}
}

func (w *watcher) certs(name string) []storedCert {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.seen[name])
}

// sameCycle returns the pairs of certificates in cs issued in one renewal
// cycle: successive renewals are at least the lifetime less the threshold
// apart, duplicates of one cycle at most the jitter (a tenth of the
// threshold) and an order apart.
func sameCycle(cs []storedCert, rb time.Duration) [][2]storedCert {
	s := slices.Clone(cs)
	slices.SortFunc(s, func(a, b storedCert) int { return a.notBefore.Compare(b.notBefore) })
	var dups [][2]storedCert
	for i := 1; i < len(s); i++ {
		life := s[i-1].notAfter.Sub(s[i-1].notBefore)
		if s[i].notBefore.Sub(s[i-1].notBefore) < (life-renewThreshold(s[i-1], rb))*3/4 {
			dups = append(dups, [2]storedCert{s[i-1], s[i]})
		}
	}
	return dups
}

// testRenewalPath is scenario 9 for one variant: certificates live 60 s;
// the fleet must renew each once. srv, for the blips, is the server to
// pause around each renewal window.
func testRenewalPath(t *testing.T, rawURL, domain, row string, v renewalVariant, srv *testenv.Server) {
	const cycles = 3
	opts := letsEncrypt
	opts.Validity = time.Minute
	// Finalizing takes longer than autocert's renewal jitter, so that the
	// nodes' renewals all overlap one order: without coordination each of
	// them orders; a fast store and CA would otherwise hide that by luck.
	th0 := renewThreshold(storedCert{notBefore: time.Now(), notAfter: time.Now().Add(time.Minute)}, v.renewBefore)
	slow := th0/10 + time.Second
	gate := func(_ int, rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.Path, "/finalize-order/") {
				time.Sleep(slow)
			}
			return rt.RoundTrip(r)
		})
	}
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true, renewBefore: v.renewBefore, gate: gate}, fleetSize, opts)
	for i := range fleetSize { // every node loads it and starts its renewal timer
		e.fetch(t, i, domain)
	}
	first := e.pebble.Stats()
	var firstOrders int64
	for i := range fleetSize {
		firstOrders += e.node(i).orders.Load()
	}

	w := newWatcher(t, rawURL)
	var faults atomic.Int64
	var pauses sync.WaitGroup
	stopPauses := make(chan struct{})
	if v.blips {
		// Every node's renewal timer fires between NotAfter less the
		// threshold and a tenth of the threshold later: the server is
		// paused from a little before to a little after.
		w.onNew = func(_ string, c storedCert) {
			th := renewThreshold(c, v.renewBefore)
			from := c.notAfter.Add(-th - 300*time.Millisecond)
			to := c.notAfter.Add(-th + th/10 + 500*time.Millisecond)
			if time.Until(from) <= 0 {
				return
			}
			pauses.Go(func() {
				select {
				case <-time.After(time.Until(from)):
				case <-stopPauses:
					return
				}
				resume, ok := srv.Pause(t)
				if !ok {
					return
				}
				faults.Add(1)
				time.Sleep(time.Until(to))
				resume()
			})
		}
	}
	life := time.Minute
	th := renewThreshold(storedCert{notBefore: time.Now(), notAfter: time.Now().Add(life)}, v.renewBefore)
	cycle := life - th + th/10 + 3*time.Second
	deadline := time.Now().Add(cycles*cycle + 20*time.Second)
	for time.Now().Before(deadline) && len(w.certs(domain)) < cycles+1 {
		w.poll(domain)
		time.Sleep(200 * time.Millisecond)
	}
	close(stopPauses)
	pauses.Wait()
	time.Sleep(3 * time.Second) // let a duplicate renewal, if any, finish
	w.poll(domain)

	seen := w.certs(domain)
	st := e.pebble.Stats()
	var orders int64
	byNode := make([]int64, fleetSize)
	for i := range fleetSize {
		byNode[i] = e.node(i).orders.Load()
		orders += byNode[i]
	}
	renewed := st.Finalized - first.Finalized
	dups := sameCycle(seen, v.renewBefore)
	t.Logf("9 RENEWAL %s %s: %d certificate(s) issued, %d distinct stored, %d renewal cycles seen, %d in the same cycle as another; %d orders (%d after the first issuance, by node %v); %d faults",
		v.name, row, st.Finalized, len(seen), len(seen)-1, len(dups), st.Orders, orders-firstOrders, byNode, faults.Load())
	if len(seen) < cycles+1 {
		t.Errorf("saw %d certificates in the store, want the first and %d renewals (Pebble issued %d)", len(seen), cycles, st.Finalized)
	}
	if st.Finalized != len(seen) && st.Finalized != len(seen)+1 { // +1: a renewal may be under way right now
		t.Errorf("Pebble issued %d certificates for %d stored: renewals were duplicated", st.Finalized, len(seen))
	}
	for _, d := range dups {
		t.Errorf("certificates %s (from %v) and %s (from %v) belong to one renewal cycle", d[0].serial, d[0].notBefore.Format(time.TimeOnly), d[1].serial, d[1].notBefore.Format(time.TimeOnly))
	}
	// A renewal of a name whose authorization Pebble reuses is one order:
	// more orders than renewal cycles (and one under way) means a node
	// ordered without the lease.
	if allowed := int64(len(seen)-1-len(dups)) + 1; orders-firstOrders > allowed {
		t.Errorf("the nodes placed %d orders (by node %v, %d before the renewals) in %d renewal cycles (%d certificates): a node ordered without holding the lease",
			orders-firstOrders, byNode, firstOrders, len(seen)-1-len(dups), renewed)
	}
	if v.blips && faults.Load() == 0 {
		t.Errorf("the store was never paused: the variant tested nothing")
	}
}
