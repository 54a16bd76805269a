package e2e_test

// 10. the stampede of scenario 4 on stacks built in Go rather than opened
//     from a URL: encryption (encrypt.New), a memory front (layered.New),
//     a backend's New over the application's own client; and an expired
//     certificate sealed in the store under encrypt.New: one certificate
//     each;
// 11. the Put of the new certificate is refused once: the holder of the
//     order lease must get it stored without a second order anywhere.

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"github.com/certcache/certcache/driver"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache/sql/postgres"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/encrypt"
	"github.com/certcache/certcache/layered"
	"github.com/certcache/certcache/redis"
	sqlcache "github.com/certcache/certcache/sql"
	"github.com/jackc/pgx/v5/pgxpool"
	goredis "github.com/redis/go-redis/v9"
)

// A goStack builds one node's cache for the store at rawURL.
type goStack struct {
	name string
	open func(t *testing.T, rawURL string, kr *encrypt.Keyring) certcache.Cache
	// expired: an expired certificate for the name is stored first,
	// through the same stack (so sealed if it seals).
	expired bool
	rows    map[string]bool // nil: every row of goStackRows
}

var goStackRows = map[string]bool{"mem": true, "redis": true, "postgres": true}

var goStacks = []goStack{
	{name: "encrypt", open: func(t *testing.T, rawURL string, kr *encrypt.Keyring) certcache.Cache {
		return mustEncrypt(t, openURL(t, rawURL), kr)
	}},
	{name: "layered", open: func(t *testing.T, rawURL string, _ *encrypt.Keyring) certcache.Cache {
		c, err := layered.New(layered.NewMemory(nil), openURL(t, rawURL))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}},
	{name: "sdk", open: sdkCache, rows: map[string]bool{"redis": true, "postgres": true}},
	{name: "sdk-encrypt-layered", open: func(t *testing.T, rawURL string, kr *encrypt.Keyring) certcache.Cache {
		c, err := layered.New(layered.NewMemory(nil), mustEncrypt(t, sdkCache(t, rawURL, kr), kr))
		if err != nil {
			t.Fatal(err)
		}
		return c
	}, rows: map[string]bool{"redis": true, "postgres": true}},
	{name: "encrypt-expired", open: func(t *testing.T, rawURL string, kr *encrypt.Keyring) certcache.Cache {
		return mustEncrypt(t, openURL(t, rawURL), kr)
	}, expired: true},
}

func openURL(t *testing.T, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func mustEncrypt(t *testing.T, c certcache.Cache, kr *encrypt.Keyring) certcache.Cache {
	t.Helper()
	ec, err := encrypt.New(c, kr, nil)
	if err != nil {
		t.Fatal(err)
	}
	return ec
}

// sdkCache is the backend's New over a client of the application's own,
// closed when the test ends (Close of the cache leaves it open).
func sdkCache(t *testing.T, rawURL string, _ *encrypt.Keyring) certcache.Cache {
	t.Helper()
	co := certcache.Options{Timeout: 10 * time.Second}
	switch {
	case strings.HasPrefix(rawURL, "redis://"):
		opts, err := goredis.ParseURL(rawURL)
		if err != nil {
			t.Fatal(err)
		}
		client := goredis.NewClient(opts)
		t.Cleanup(func() { client.Close() })
		c, err := redis.New(client, &redis.Options{Cache: co})
		if err != nil {
			t.Fatal(err)
		}
		return c
	case strings.HasPrefix(rawURL, "postgres://"):
		pool, err := pgxpool.New(context.Background(), rawURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(pool.Close)
		c, err := postgres.New(pool, &sqlcache.Options{Cache: co})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Fatalf("no SDK stack for %s", redacted(rawURL))
	return nil
}

// TestFleetGoStacks is scenario 10.
func TestFleetGoStacks(t *testing.T) {
	t.Parallel()
	var raw [encrypt.KeySize]byte
	rand.Read(raw[:])
	kr, err := encrypt.NewKeyring(raw[:])
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range backends {
		if !goStackRows[b.name] {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fleetSlots <- struct{}{}
			defer func() { <-fleetSlots }()
			rawURL, _ := b.start(t) // the SDK stacks take the URL without parameters
			label := strings.ReplaceAll(b.name, "+", "-")
			for _, s := range goStacks {
				if s.rows != nil && !s.rows[b.name] {
					continue
				}
				t.Run("10-"+s.name, func(t *testing.T) {
					u := rawURL
					if !strings.HasPrefix(s.name, "sdk") {
						u = withParam(rawURL, "timeout=10s")
					}
					domain := s.name + ".stack." + label + ".certcache.test"
					forgetAccount(t, u)
					if s.expired {
						now := time.Now()
						store(t, s.open(t, u, kr), domain, selfSigned(t, domain, now.Add(-2*time.Hour), now.Add(-time.Hour), nil))
						checkSealed(t, u, domain)
					}
					e := newEnvWith(t, &env{names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true,
						open: func(t *testing.T, _ int) certcache.Cache { return s.open(t, u, kr) }}, fleetSize, letsEncrypt)
					checkOneIssuance(t, e, "10 STACK "+s.name+" "+b.name, domain, 3)
					if st := e.pebble.Stats(); st.Accounts != 1 {
						t.Errorf("the fleet created %d ACME accounts, want 1", st.Accounts)
					}
				})
			}
		})
	}
}

// forgetAccount deletes the ACME account key from the store at rawURL: the
// stacks of a row share its store, and a key sealed by one is garbage to
// another that does not seal.
func forgetAccount(t *testing.T, rawURL string) {
	t.Helper()
	c := openURL(t, rawURL)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := c.Delete(ctx, "acme_account+key"); err != nil {
		t.Fatalf("deleting the previous stack's account key: %v", err)
	}
}

// checkSealed checks that the value under key in the store at rawURL is
// not a plain PEM value: the stack under test sealed it.
func checkSealed(t *testing.T, rawURL, key string) {
	t.Helper()
	c := openURL(t, rawURL)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := certcache.Uncoordinated(c).Get(ctx, key)
	if err != nil {
		t.Fatalf("reading the stored value: %v", err)
	}
	if strings.HasPrefix(string(v), "-----BEGIN") {
		t.Fatalf("the stored value is plain PEM: the stack did not seal it")
	}
}

// leaseDriver is a driver with leases, as coordination needs.
type leaseDriver interface {
	driver.Driver
	driver.LeaseDriver
}

// refuseOnce is a driver that fails the first Put of key (for every node
// sharing refused) and passes everything else through.
type refuseOnce struct {
	leaseDriver
	key     string
	refused *atomic.Int64 // Puts of key refused so far
	at      *atomic.Int64 // when, in Unix nanoseconds
}

// errRefused is the refused Put's error: the store answered, and said no.
var errRefused = errors.New("write refused (test)")

func (d refuseOnce) Put(ctx context.Context, key string, data []byte) error {
	if key == d.key && d.refused.CompareAndSwap(0, 1) {
		d.at.Store(time.Now().UnixNano())
		return errRefused
	}
	return d.leaseDriver.Put(ctx, key, data)
}

// driverOf returns the driver under a cache opened from a URL.
func driverOf(t *testing.T, c certcache.Cache) leaseDriver {
	t.Helper()
	u, ok := certcache.Uncoordinated(c).(interface{ Unwrap() driver.Driver })
	if !ok {
		t.Fatalf("%T has no driver to unwrap", certcache.Uncoordinated(c))
	}
	d, ok := u.Unwrap().(leaseDriver)
	if !ok {
		t.Fatalf("driver %T has no leases", u.Unwrap())
	}
	return d
}

// TestFleetPutRefused is scenario 11, on mem and redis.
func TestFleetPutRefused(t *testing.T) {
	t.Parallel()
	const ttl = 3 * time.Second
	for _, b := range backends {
		if b.name != "mem" && b.name != "redis" {
			continue
		}
		t.Run(b.name, func(t *testing.T) {
			t.Parallel()
			fleetSlots <- struct{}{}
			defer func() { <-fleetSlots }()
			rawURL, _ := b.start(t)
			label := strings.ReplaceAll(b.name, "+", "-")
			domain := "refused-put." + label + ".certcache.test"
			var refused, at atomic.Int64
			open := func(t *testing.T, _ int) certcache.Cache {
				d := driverOf(t, openURL(t, rawURL)) // the cache opened is dropped: the new one closes its driver
				return certcache.NewCache(b.name, refuseOnce{leaseDriver: d, key: domain, refused: &refused, at: &at},
					&certcache.Options{Timeout: 10 * time.Second, LeaseTTL: ttl})
			}
			e := newEnvWith(t, &env{names: []string{domain}, route: func(i int) int { return i % fleetSize }, helper: true, open: open}, fleetSize, letsEncrypt)

			// Handshakes on every node, three at a time, until two lease
			// TTLs after the refusal: long enough for another node to take
			// the lease over if the holder let it run out.
			start := time.Now()
			var wg sync.WaitGroup
			var mu sync.Mutex
			var failures []string
			var count atomic.Int64
			for i := range fleetSize {
				for range 3 {
					wg.Go(func() {
						for {
							when := at.Load()
							switch {
							case when == 0 && time.Since(start) > 3*time.Minute:
								return
							case when != 0 && time.Since(time.Unix(0, when)) > 2*ttl:
								return
							}
							h := timedFetch(e, i, domain)
							count.Add(1)
							if h.err != nil {
								mu.Lock()
								failures = append(failures, fmt.Sprintf("node %d after %v: %v", i, time.Since(start).Round(time.Millisecond), h.err))
								mu.Unlock()
							}
							time.Sleep(100 * time.Millisecond)
						}
					})
				}
			}
			wg.Wait()
			if refused.Load() == 0 {
				t.Fatalf("no Put of %s was refused: the scenario tested nothing (Pebble %v)", domain, e.pebble.Stats())
			}

			// The certificate lands in the store: the one the CA issued.
			w := newWatcher(t, rawURL)
			deadline := time.Now().Add(2 * ttl)
			for len(w.certs(domain)) == 0 && time.Now().Before(deadline) {
				w.poll(domain)
				time.Sleep(200 * time.Millisecond)
			}
			st := e.pebble.Stats()
			orders := make([]int64, fleetSize)
			for i := range fleetSize {
				orders[i] = e.node(i).orders.Load()
			}
			stored := w.certs(domain)
			t.Logf("11 PUT REFUSED %s: %d certificate(s), %d orders (by node %v); %d handshakes, %d failed; %d distinct certificate(s) stored",
				b.name, st.Finalized, st.Orders, orders, count.Load(), len(failures), len(stored))
			if st.Finalized != 1 {
				t.Errorf("%d certificates issued for %s over two lease TTLs after the refused Put, want 1 (orders by node %v)", st.Finalized, domain, orders)
			}
			if len(stored) == 0 {
				t.Errorf("the certificate never landed in the store %v after the refused Put", time.Since(time.Unix(0, at.Load())).Round(time.Millisecond))
			}
			if n := len(failures); n > 0 {
				t.Logf("failed handshakes (first of %d): %s", n, failures[0])
			}
			serial := servesOne(t, e, domain)
			if len(stored) > 0 && serial != nil && stored[len(stored)-1].serial != serial.Text(16) {
				t.Errorf("the nodes serve %x, the store holds %s", serial, stored[len(stored)-1].serial)
			}
		})
	}
}
