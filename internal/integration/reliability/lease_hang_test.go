package reliability

import (
	"context"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/jackc/pgx/v5"
)

// The lease hang test: lease writes that hang while reads answer must not
// stall the node.
//
// A transaction holds an exclusive lock on the PostgreSQL lease table
// (LOCK TABLE … IN EXCLUSIVE MODE: every INSERT, UPDATE and DELETE of a
// lease waits, every read of the cache table answers), as a long
// transaction holding the rows, or a migration, would. Under an autocert
// Manager serving a cached name and asked for a new name every 100 ms, the
// first new name's order lease waits out one Get timeout and opens the
// lease breaker; from then on new names fail at once (a lease probe, not a
// Get, decides when it closes), cached names' handshakes stay fast, no
// order reaches the CA, and the main breaker never opens. After the lock
// is released a new name is issued. Figures are logged with the prefix
// LEASEHANG.

// lockedFor is how long the lease table stays locked: the one Get timeout
// it may cost, then long enough to watch the node with the lease breaker
// open.
const lockedFor = certcache.DefaultGetTimeout + 4*time.Second

func TestLeaseHang(t *testing.T) {
	_, u := testenv.Postgres(t)
	const table = "leasehang"
	env := startHangEnv(t, u+"&table="+table)
	a := env.node(t, env.cache)
	cachedName := "cached.leasehang.certcache.test"
	newName := func(i int) string { return "new-" + strconv.Itoa(i) + ".leasehang.certcache.test" }
	afterName := "after.leasehang.certcache.test"
	var row hangRow

	t0 := time.Now()
	if _, err := a.handshake(cachedName, env.roots, 3*time.Minute); err != nil {
		t.Fatalf("issuing %s before the lock: %v (Pebble: %v)", cachedName, err, env.pebble.Stats())
	}
	row.issueBaseline = time.Since(t0)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unlocked := false
	unlock := func() {
		if !unlocked {
			unlocked = true
			if err := tx.Rollback(ctx); err != nil {
				t.Errorf("releasing the lock: %v", err)
			}
		}
	}
	defer unlock()
	if _, err := tx.Exec(ctx, `LOCK TABLE "`+table+`$leases" IN EXCLUSIVE MODE`); err != nil {
		t.Fatalf("locking the lease table: %v", err)
	}
	lockedAt := time.Now()
	before := env.pebble.Stats()

	var (
		mu              sync.Mutex
		cached, newOnes []handshakeResult
		inflight        sync.WaitGroup
	)
	stop := make(chan struct{})
	var loops sync.WaitGroup
	loops.Add(2)
	go func() { // a new name every newNameEvery
		defer loops.Done()
		tick := time.NewTicker(newNameEvery)
		defer tick.Stop()
		for i := 0; ; i++ {
			inflight.Add(1)
			go func(i int) {
				defer inflight.Done()
				start := time.Now()
				took, err := a.handshake(newName(i), env.roots, time.Minute)
				mu.Lock()
				newOnes = append(newOnes, handshakeResult{start, took, err})
				mu.Unlock()
			}(i)
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	go func() { // the cached name, one handshake after another
		defer loops.Done()
		for {
			start := time.Now()
			took, err := a.handshake(cachedName, env.roots, time.Minute)
			mu.Lock()
			cached = append(cached, handshakeResult{start, took, err})
			mu.Unlock()
			select {
			case <-stop:
				return
			case <-time.After(cachedEvery):
			}
		}
	}()

	var openSince time.Time
	for deadline := lockedAt.Add(certcache.DefaultGetTimeout + hangSlack); ; {
		st := breakerStats(t, env.cache)
		if st.Lease != nil && st.Lease.Open {
			openSince = st.Lease.OpenSince
			row.tripAfter = openSince.Sub(lockedAt)
			t.Logf("LEASEHANG lease breaker open %v after the lock: %s", row.tripAfter.Round(time.Millisecond), st.Lease.Cause)
			break
		}
		if time.Now().After(deadline) {
			close(stop)
			loops.Wait()
			unlock()
			inflight.Wait()
			t.Fatalf("lease breaker still closed %v after the lock: %+v, lease %+v", time.Since(lockedAt), st, st.Lease)
		}
		time.Sleep(10 * time.Millisecond)
	}

	time.Sleep(time.Until(lockedAt.Add(lockedFor)))
	close(stop)
	loops.Wait()
	inflight.Wait() // every new name's handshake has ended
	during := env.pebble.Stats()
	bst := breakerStats(t, env.cache)
	row.ordersWhileFrozen = during.OrderRequests - before.OrderRequests
	if row.ordersWhileFrozen != 0 {
		t.Errorf("while leases hung Pebble saw %d new-order requests: before %v, after %v", row.ordersWhileFrozen, before, during)
	}
	if bst.Opened != 0 || bst.Open {
		t.Errorf("the main breaker opened while only leases hung: %+v", bst)
	}
	if !bst.Lease.Open || bst.Lease.Opened != 1 {
		t.Errorf("lease breaker before the unlock: %+v, want open, opened once", bst.Lease)
	}
	row.fastFailed, row.probes = bst.Lease.FastFailed, bst.Lease.Probes

	unlock()
	unlockAt := time.Now()
	recovered := make(chan time.Duration, 1)
	go func() {
		for time.Since(unlockAt) < time.Minute {
			if st, _ := certcache.BreakerStatsOf(env.cache); st.Lease != nil && !st.Lease.Open {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
		recovered <- time.Since(unlockAt)
	}()
	for attempt := 1; ; attempt++ {
		start := time.Now()
		took, err := a.handshake(afterName, env.roots, time.Minute)
		if err == nil {
			row.issued = time.Since(unlockAt)
			t.Logf("after the unlock: attempt %d, %v after the unlock, issued %s in %v", attempt, start.Sub(unlockAt).Round(time.Millisecond), afterName, took.Round(time.Millisecond))
			break
		}
		t.Logf("after the unlock: attempt %d, %v after the unlock, failed in %v: %v", attempt, start.Sub(unlockAt).Round(time.Millisecond), took.Round(time.Millisecond), err)
		if time.Since(unlockAt) > time.Minute {
			t.Fatalf("no certificate for %s a minute after the unlock: %v", afterName, err)
		}
		time.Sleep(newNameEvery)
	}
	row.recovered = <-recovered

	mu.Lock()
	defer mu.Unlock()
	row.cachedN, row.newN = len(cached), len(newOnes)
	checkCached(t, &row, cached, openSince)
	checkNew(t, &row, newOnes, openSince, lockedFor)
	var first time.Duration // the new name whose lease timeout opened the breaker
	var fails []time.Duration
	for _, r := range newOnes {
		if r.start.After(openSince) {
			fails = append(fails, r.took)
		} else {
			first = max(first, r.took)
		}
	}
	slices.Sort(fails)
	var median time.Duration
	if len(fails) > 0 {
		median = fails[len(fails)/2]
	}
	if st := env.pebble.Stats(); st.Finalized != 2 {
		t.Errorf("Pebble issued %d certificates, want 2 (the cached name and the one after the unlock): %v", st.Finalized, st)
	}
	t.Logf("LEASEHANG postgres, lease table locked %v under autocert, Get timeout %v (default), a new name every %v:", lockedFor, certcache.DefaultGetTimeout, newNameEvery)
	t.Logf("LEASEHANG lease breaker open %v after the lock; main breaker opened %d times", row.tripAfter.Round(time.Millisecond), bst.Opened)
	t.Logf("LEASEHANG cached name: %d handshakes, all succeeded; worst %v (the lease timeout that opened the breaker held autocert's lock); with the lease breaker open: median %v, worst %v (target %v)",
		row.cachedN, row.cachedWorst.Round(time.Millisecond), row.cachedMedianOpen.Round(100*time.Microsecond), row.cachedWorstOpen.Round(time.Millisecond), fastHandshake)
	t.Logf("LEASEHANG new names: %d asked for, all failed; before the breaker opened the slowest took %v; with it open (%d): median %v, worst %v",
		row.newN, first.Round(time.Millisecond), len(fails), median.Round(100*time.Microsecond), row.newWorstOpen.Round(time.Millisecond))
	t.Logf("LEASEHANG orders while locked: %d; lease breaker fast-failed %d calls, sent %d probes", row.ordersWhileFrozen, row.fastFailed, row.probes)
	t.Logf("LEASEHANG unlock → lease breaker closed %v, → new name issued %v (issuance before the lock took %v)",
		row.recovered.Round(time.Millisecond), row.issued.Round(time.Millisecond), row.issueBaseline.Round(time.Millisecond))
	if limit := recoverSlack; row.recovered > limit {
		t.Errorf("the lease breaker closed %v after the unlock, want within %v", row.recovered, limit)
	}
	if limit := issueFactor*row.issueBaseline + recoverSlack + time.Second; row.issued > limit {
		t.Errorf("a new name was issued %v after the unlock, want within %v", row.issued, limit)
	}
}
