package e2e_test

// The fleet scenarios (issuance coordination): five nodes on one cache URL,
// validation balanced over all of them, Pebble reusing authorizations as
// Let's Encrypt does.
//
//  4. stampede: every node gets three simultaneous handshakes for a new
//     name, while handshakes for a name every node already serves keep
//     going; with certcache.TLSConfig every handshake succeeds, with the
//     Manager's own TLSConfig the other nodes' handshakes fail fast; one
//     certificate either way, and every node then serves it. A control with
//     coordinate=false issues more than one;
//  5. the ordering node dies mid-order: another node issues after the lease
//     runs out, and the name gets at most two certificates;
//  6. the CA refuses the name: the fleet places at most one order attempt
//     per lease TTL;
//  7. renewal of 60-second certificates on five nodes: one certificate per
//     renewal cycle.

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/acmetest"
)

const fleetSize = 5

// letsEncrypt is how Pebble runs for the fleet: authorizations reused.
var letsEncrypt = acmetest.Options{AuthzReuse: 100}

func TestFleet(t *testing.T) {
	t.Parallel()
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			// Five nodes and a CA per scenario keep the CPU busy: a few rows
			// at a time, so that latencies measure the code, not a machine
			// with twenty processes per core.
			fleetSlots <- struct{}{}
			defer func() { <-fleetSlots }()
			rawURL, _ := b.start(t)
			rawURL = withParam(rawURL, "timeout=10s")
			label := strings.ReplaceAll(b.name, "+", "-")
			domain := func(scenario string) string { return scenario + "." + label + ".certcache.test" }
			t.Run("4-stampede-helper", func(t *testing.T) { testStampede(t, rawURL, domain("stampede-helper"), domain("cached-helper"), true) })
			t.Run("4-stampede-cache-alone", func(t *testing.T) { testStampede(t, rawURL, domain("stampede-alone"), domain("cached-alone"), false) })
			t.Run("4-stampede-control-uncoordinated", func(t *testing.T) { testUncoordinated(t, withParam(rawURL, "coordinate=false"), domain("control")) })
			t.Run("5-holder-dies", func(t *testing.T) { testHolderDies(t, withParam(rawURL, "lease_ttl=3s"), domain("dies")) })
			t.Run("6-ca-refuses", func(t *testing.T) { testRefused(t, withParam(rawURL, "lease_ttl=4s"), domain("refused")) })
		})
	}
}

// TestFleetRenewal is scenario 7 on one row of each kind of store —
// process memory, a key-value server, SQL, an object store — beside
// TestFleet. Each takes over two minutes of wall time, mostly waiting for
// renewal timers, so the rows run at once in goroutines of this one test
// instead of taking go test's few parallel slots (-parallel is GOMAXPROCS)
// for minutes each.
func TestFleetRenewal(t *testing.T) {
	t.Parallel()
	var wg sync.WaitGroup
	for _, b := range backends {
		if !renewalRows[b.name] {
			continue
		}
		wg.Go(func() {
			t.Run(b.name, func(t *testing.T) {
				rawURL, _ := b.start(t)
				label := strings.ReplaceAll(b.name, "+", "-")
				testRenewals(t, withParam(rawURL, "timeout=10s"), "renew."+label+".certcache.test")
			})
		})
	}
	wg.Wait()
}

var renewalRows = map[string]bool{"mem": true, "redis": true, "postgres": true, "s3": true, "dynamodb": true, "gs": true}

// fleetSlots bounds how many rows run their busy scenarios at once.
var fleetSlots = make(chan struct{}, 2)

// handshake is one timed handshake.
type handshake struct {
	node   int
	took   time.Duration
	serial *big.Int
	err    error
}

func timedFetch(e *env, i int, domain string) handshake {
	start := time.Now()
	serial, _, err := e.tryFetch(i, domain)
	return handshake{node: i, took: time.Since(start), serial: serial, err: err}
}

// percentile returns the p-th percentile of ds (nearest rank).
func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(p/100*float64(len(s))+0.5) - 1
	return s[max(0, min(i, len(s)-1))]
}

// roundTrip is the median time of a Get that misses on node 0's store.
func roundTrip(e *env) time.Duration {
	c := e.node(0).cache
	var ds []time.Duration
	for range 5 {
		start := time.Now()
		c.Get(context.Background(), "round-trip-probe+token")
		ds = append(ds, time.Since(start))
	}
	return percentile(ds, 50)
}

// testStampede is scenario 4.
func testStampede(t *testing.T, rawURL, domain, cached string, helper bool) {
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain, cached}, route: func(i int) int { return i % fleetSize }, helper: helper}, fleetSize, letsEncrypt)

	// Every node serves cached from autocert's memory first.
	cachedSerial := e.fetch(t, 0, cached)
	for i := 1; i < fleetSize; i++ {
		if s := e.fetch(t, i, cached); s.Cmp(cachedSerial) != 0 {
			t.Fatalf("node %d serves %s with serial %x, want %x", i, cached, s, cachedSerial)
		}
	}
	before := e.pebble.Stats()
	rtt := roundTrip(e)
	e.gets.longest("") // forget the warm-up

	// Handshakes for the cached name on every node, all through the stampede.
	stop := make(chan struct{})
	var cachedMu sync.Mutex
	var cachedTook []time.Duration
	var cachedWG sync.WaitGroup
	for i := range fleetSize {
		cachedWG.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := timedFetch(e, i, cached)
				if h.err != nil {
					t.Errorf("cached name on node %d failed during the stampede: %v", i, h.err)
					return
				}
				cachedMu.Lock()
				cachedTook = append(cachedTook, h.took)
				cachedMu.Unlock()
				time.Sleep(20 * time.Millisecond)
			}
		})
	}

	var wg sync.WaitGroup
	results := make(chan handshake, 3*fleetSize)
	for i := range fleetSize {
		for range 3 {
			wg.Go(func() { results <- timedFetch(e, i, domain) })
		}
	}
	wg.Wait()
	close(results)
	close(stop)
	cachedWG.Wait()

	var holder, waiters []time.Duration
	var failed []handshake
	serials := map[string]bool{}
	for h := range results {
		ordered := e.node(h.node).orders.Load() > 0
		switch {
		case h.err != nil:
			failed = append(failed, h)
		case ordered:
			holder = append(holder, h.took)
		default:
			waiters = append(waiters, h.took)
		}
		if h.serial != nil {
			serials[h.serial.Text(16)] = true
		}
	}
	after := e.pebble.Stats()
	certs := after.Finalized - before.Finalized
	orders := after.Orders - before.Orders
	var failTook []time.Duration
	for _, h := range failed {
		failTook = append(failTook, h.took)
	}
	t.Logf("STAMPEDE helper=%v: %d certificate(s), %d orders; holder handshakes p50 %v p99 %v (n=%d); waiter handshakes p50 %v p99 %v (n=%d); failed %d (p50 %v, max %v); cached name p50 %v p99 %v max %v (n=%d); store round trip %v",
		helper, certs, orders, percentile(holder, 50), percentile(holder, 99), len(holder),
		percentile(waiters, 50), percentile(waiters, 99), len(waiters),
		len(failed), percentile(failTook, 50), percentile(failTook, 100),
		percentile(cachedTook, 50), percentile(cachedTook, 99), percentile(cachedTook, 100), len(cachedTook), rtt)

	if certs != 1 {
		t.Errorf("%d certificates issued for %s, want exactly 1 (Pebble before %v, after %v)", certs, domain, before, after)
	}
	// Five nodes on a fresh store made one account key between them
	// (acme_account+key is coordinated), so the CA saw one account.
	if after.Accounts != 1 {
		t.Errorf("the fleet created %d ACME accounts, want 1", after.Accounts)
	}
	// autocert tries TLS-ALPN-01 first, which the harness drops on purpose,
	// then HTTP-01: two orders for one issuance.
	if orders > 2 {
		t.Errorf("%d orders for one issuance, want at most 2 (one dropped TLS-ALPN-01 attempt)", orders)
	}
	// No Get waits for the order under autocert's lock: on every node that
	// did not order, the Managers' first Gets of the name while the order
	// ran were answered at once with ErrIssuing (a Get that waited would
	// have returned the certificate instead), and the handshakes a Get
	// holds up (the cached name's, the other nodes' failing ones) stay
	// well below the order's time unless the store itself stalled.
	order := percentile(holder, 50)
	hitTook, notHitTook, issuing := e.gets.longest(domain)
	t.Logf("longest Get that found %s: %v; longest Get that missed or failed: %v; Gets answered ErrIssuing by node: %v", domain, hitTook, notHitTook, issuing)
	for i := range fleetSize {
		if e.node(i).orders.Load() == 0 && issuing[i] == 0 {
			t.Errorf("node %d did not order, yet none of its Gets of %s was answered ErrIssuing: did a Get wait for the order?", i, domain)
		}
	}
	slowestGet := max(hitTook, notHitTook)
	if helper {
		for _, h := range failed {
			t.Errorf("node %d: handshake failed with the helper: %v", h.node, h.err)
		}
	} else {
		if len(failed) == 0 {
			t.Errorf("no handshake failed without the helper: the stampede did not overlap the order")
		}
		for _, h := range failed {
			if h.took >= order/2 && h.took > 3*slowestGet+500*time.Millisecond {
				t.Errorf("node %d: a handshake without the helper failed after %v; the order took %v (store round trip %v): it waited for the order", h.node, h.took, order, rtt)
			}
		}
	}
	// A cached name's handshake waits for whatever Get holds autocert's
	// lock; one that waited for the order would wait as long as the order.
	// A store that stalls (a loaded machine: fsync, a cold connection)
	// explains a long wait too: the three handshakes for the new name on
	// a node can each hold the lock for one Get, the longest of which
	// took slowestGet.
	if worst := percentile(cachedTook, 100); worst >= order/2 && worst > 3*slowestGet+500*time.Millisecond {
		t.Errorf("a handshake for the cached name took %v during the stampede; the order took %v, the longest Get %v (store round trip %v)", worst, order, slowestGet, rtt)
	}

	// Every node now serves the one certificate.
	var want *big.Int
	deadline := time.Now().Add(30 * time.Second)
	for i := range fleetSize {
		for {
			h := timedFetch(e, i, domain)
			if h.err == nil {
				if want == nil {
					want = h.serial
				} else if h.serial.Cmp(want) != 0 {
					t.Errorf("node %d serves serial %x, node 0 %x", i, h.serial, want)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("node %d still fails for %s: %v", i, domain, h.err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	if st := e.pebble.Stats(); st.Finalized != after.Finalized {
		t.Errorf("serving from every node issued %d more certificates", st.Finalized-after.Finalized)
	}
}

// testUncoordinated is the control of scenario 4.
func testUncoordinated(t *testing.T, rawURL, domain string) {
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }}, fleetSize, letsEncrypt)
	var wg sync.WaitGroup
	for i := range fleetSize {
		for range 3 {
			wg.Go(func() { timedFetch(e, i, domain) })
		}
	}
	wg.Wait()
	st := e.pebble.Stats()
	t.Logf("CONTROL coordinate=false: %d certificates, %d orders, %d accounts", st.Finalized, st.Orders, st.Accounts)
	if st.Finalized <= 1 {
		t.Errorf("without coordination the stampede issued %d certificate(s); the control proves nothing", st.Finalized)
	}
}

// testHolderDies is scenario 5: node 0 takes the order and dies before it
// can store the certificate (its finalize request never returns and its
// cache is closed); the others, waiting through the helper, take over once
// its lease runs out.
func testHolderDies(t *testing.T, rawURL, domain string) {
	killed := make(chan struct{})
	finalizing := make(chan struct{}, 1)
	gate := func(i int, rt http.RoundTripper) http.RoundTripper {
		if i != 0 {
			return rt
		}
		return roundTripFunc(func(r *http.Request) (*http.Response, error) {
			if strings.Contains(r.URL.Path, "/finalize-order/") {
				select {
				case finalizing <- struct{}{}:
				default:
				}
				<-killed
				return nil, fmt.Errorf("node 0 died")
			}
			return rt.RoundTrip(r)
		})
	}
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true, gate: gate}, fleetSize, letsEncrypt)
	dead := make(chan handshake, 1)
	go func() { dead <- timedFetch(e, 0, domain) }()
	select {
	case <-finalizing:
	case <-time.After(2 * time.Minute):
		t.Fatalf("node 0 never reached finalize (Pebble %v)", e.pebble.Stats())
	}
	e.node(0).cache.Close() // the node dies: its lease is no longer refreshed
	var wg sync.WaitGroup
	results := make(chan handshake, fleetSize)
	for i := 1; i < fleetSize; i++ {
		wg.Go(func() { results <- timedFetch(e, i, domain) })
	}
	wg.Wait()
	close(killed)
	<-dead
	close(results)
	var took []time.Duration
	for h := range results {
		if h.err != nil {
			t.Errorf("node %d: %v", h.node, h.err)
		}
		took = append(took, h.took)
	}
	st := e.pebble.Stats()
	t.Logf("HOLDER DIES: %d certificate(s), %d orders; takeover handshakes p50 %v max %v", st.Finalized, st.Orders, percentile(took, 50), percentile(took, 100))
	if st.Finalized < 1 || st.Finalized > 2 {
		t.Errorf("%d certificates after the holder died, want 1 or 2", st.Finalized)
	}
}

// testRefused is scenario 6: validation of the name always fails.
func testRefused(t *testing.T, rawURL, domain string) {
	const ttl = 4 * time.Second // lease_ttl in rawURL
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true,
		refuse: func(host string) bool { return host == domain }}, fleetSize, letsEncrypt)
	start := time.Now()
	window := 3 * ttl
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i := range fleetSize {
		wg.Go(func() {
			for time.Since(start) < window {
				if h := timedFetch(e, i, domain); h.err != nil {
					failures.Add(1)
				}
				time.Sleep(100 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	st := e.pebble.Stats()
	// autocert's attempt at a name it cannot validate is three orders: one
	// for TLS-ALPN-01 (dropped by the harness), one for HTTP-01 (refused),
	// and one more that finds no challenge type left to try (verifyRFC).
	attempts := (st.Orders + 2) / 3
	allowed := int(elapsed/ttl) + 1
	t.Logf("CA REFUSES: %d orders (%d attempts) in %v with lease TTL %v (at most %d attempts allowed); %d handshakes failed; %d certificates",
		st.Orders, attempts, elapsed.Round(time.Millisecond), ttl, allowed, failures.Load(), st.Finalized)
	if st.Finalized != 0 {
		t.Errorf("a refused name got %d certificates", st.Finalized)
	}
	if attempts > allowed {
		t.Errorf("the fleet made %d order attempts in %v; with a lease TTL of %v at most %d", attempts, elapsed, ttl, allowed)
	}
	if attempts == 0 {
		t.Errorf("no order at all: the scenario tested nothing")
	}
}

// testRenewals is scenario 7: certificates live 60 s, so autocert renews
// each about 40 s after issuance (the last third of its life, with up to
// 2 s of jitter), on each of the five nodes.
func testRenewals(t *testing.T, rawURL, domain string) {
	const cycles = 3
	opts := letsEncrypt
	opts.Validity = time.Minute
	e := newEnvWith(t, &env{rawURL: rawURL, names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true}, fleetSize, opts)
	for i := range fleetSize { // every node loads it and starts its renewal timer
		e.fetch(t, i, domain)
	}
	// Watch the stored certificate: every certificate Pebble issues must be
	// one that lands in the store, one per cycle.
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	seen := map[string]time.Time{}
	deadline := time.Now().Add(cycles*45*time.Second + 15*time.Second)
	for time.Now().Before(deadline) && len(seen) < cycles+1 {
		if v, err := certcache.Uncoordinated(c).Get(context.Background(), domain); err == nil {
			if s := storedSerial(v); s != "" && seen[s].IsZero() {
				seen[s] = time.Now()
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(3 * time.Second) // let a duplicate renewal, if any, finish
	st := e.pebble.Stats()
	t.Logf("RENEWALS: %d distinct certificates stored, %d issued by Pebble, %d orders", len(seen), st.Finalized, st.Orders)
	if len(seen) < cycles+1 {
		t.Fatalf("saw %d certificates in the store, want the first and %d renewals", len(seen), cycles)
	}
	if st.Finalized != len(seen) && st.Finalized != len(seen)+1 { // +1: a renewal may be under way right now
		t.Errorf("Pebble issued %d certificates for %d stored: renewals were duplicated", st.Finalized, len(seen))
	}
}

// storedSerial returns the serial of the leaf in an autocert cache value.
func storedSerial(v []byte) string {
	for {
		var b *pem.Block
		b, v = pem.Decode(v)
		if b == nil {
			return ""
		}
		if b.Type == "CERTIFICATE" {
			if c, err := x509.ParseCertificate(b.Bytes); err == nil {
				return c.SerialNumber.Text(16)
			}
			return ""
		}
	}
}
