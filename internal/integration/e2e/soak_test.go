package e2e_test

// The soak: five nodes renew three names of 60-second certificates while
// the store's server is paused at random (0.5 to 3 s at a time) and
// handshakes keep coming; over the whole run, at most one certificate per
// name per renewal cycle.

import (
	"math/rand/v2"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/integration/testenv"
)

// soakEnv sets the soak's duration (a Go duration); make soak sets it.
const soakEnv = "CERTCACHE_SOAK"

// defaultSoak is the soak's duration when soakEnv is unset, as in make test.
const defaultSoak = 3 * time.Minute

// soakRows are the rows whose server the soak pauses.
var soakRows = []string{"redis", "postgres"}

func TestFleetSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak runs for minutes")
	}
	t.Parallel()
	d := defaultSoak
	if s := os.Getenv(soakEnv); s != "" {
		var err error
		if d, err = time.ParseDuration(s); err != nil || d <= 0 {
			t.Fatalf("%s=%q: want a positive Go duration", soakEnv, s)
		}
	}
	var wg sync.WaitGroup
	for _, row := range soakRows {
		wg.Go(func() {
			t.Run(row, func(t *testing.T) {
				srv, rawURL := pausable[row](t)
				testSoak(t, withParam(rawURL, "timeout=10s&get_timeout=1s"), row, srv, d)
			})
		})
	}
	wg.Wait()
}

func testSoak(t *testing.T, rawURL, row string, srv *testenv.Server, d time.Duration) {
	names := []string{"a.soak." + row + ".certcache.test", "b.soak." + row + ".certcache.test", "c.soak." + row + ".certcache.test"}
	opts := letsEncrypt
	opts.Validity = time.Minute
	e := newEnvWith(t, &env{rawURL: rawURL, names: names, route: func(i int) int { return i % fleetSize }, helper: true}, fleetSize, opts)
	for _, name := range names {
		for i := range fleetSize {
			e.fetch(t, i, name)
		}
	}
	start := time.Now()
	stop := make(chan struct{})
	var bg sync.WaitGroup

	// Faults: one pause at a time, 0.5 to 3 s, 2 to 10 s apart.
	var faults atomic.Int64
	var paused atomic.Int64 // nanoseconds
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(2*time.Second + rand.N(8*time.Second)):
			}
			p := 500*time.Millisecond + rand.N(2500*time.Millisecond)
			resume, ok := srv.Pause(t)
			if !ok {
				continue
			}
			faults.Add(1)
			paused.Add(int64(p))
			time.Sleep(p)
			resume()
		}
	})

	// Traffic: a handshake on a random node for a random name every
	// 100 ms; those a pause holds up may fail.
	var handshakes, failed atomic.Int64
	bg.Go(func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			bg.Go(func() {
				h := timedFetch(e, rand.N(fleetSize), names[rand.N(len(names))])
				handshakes.Add(1)
				if h.err != nil {
					failed.Add(1)
				}
			})
		}
	})

	w := newWatcher(t, rawURL)
	for time.Since(start) < d {
		w.poll(names...)
		time.Sleep(200 * time.Millisecond)
	}
	close(stop)
	bg.Wait()
	time.Sleep(3 * time.Second) // let a renewal under way finish
	w.poll(names...)

	st := e.pebble.Stats()
	var stored, cycles, dups int
	for _, name := range names {
		cs := w.certs(name)
		dd := sameCycle(cs, 0)
		stored += len(cs)
		cycles += len(cs) - 1 - len(dd)
		dups += len(dd)
		for _, p := range dd {
			t.Errorf("%s: certificates %s (from %v) and %s (from %v) belong to one renewal cycle", name, p[0].serial, p[0].notBefore.Format(time.TimeOnly), p[1].serial, p[1].notBefore.Format(time.TimeOnly))
		}
	}
	var orders int64
	for i := range fleetSize {
		orders += e.node(i).orders.Load()
	}
	t.Logf("SOAK %s %v: %d certificates issued, %d distinct stored, %d renewal cycles over %d names (%d in the same cycle as another); %d orders (Pebble %d); %d faults (%v paused); %d handshakes, %d failed",
		row, d, st.Finalized, stored, cycles, len(names), dups, orders, st.Orders, faults.Load(), time.Duration(paused.Load()).Round(time.Millisecond), handshakes.Load(), failed.Load())
	// Each name's certificate may be renewing right now: one in flight each.
	if st.Finalized < stored || st.Finalized > stored+len(names) {
		t.Errorf("Pebble issued %d certificates for %d stored (%s): renewals were duplicated", st.Finalized, stored, strings.Join(names, ", "))
	}
	if cycles < len(names) {
		t.Errorf("%d renewal cycles in %v over %d names: the soak renewed too little to tell", cycles, d, len(names))
	}
	if faults.Load() == 0 {
		t.Errorf("no fault in %v", d)
	}
}
