package sqlcache_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"golang.org/x/crypto/acme/autocert"
)

func open(t testing.TB, u string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), u)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	// The store's own behaviour, beneath issuance coordination (which takes
	// a value autocert would refuse for a miss): the values here are no
	// certificates. Coordination has its own tests.
	return certcache.Uncoordinated(c)
}

// withParam appends a query parameter to u.
func withParam(u, kv string) string {
	if strings.Contains(u, "?") {
		return u + "&" + kv
	}
	return u + "?" + kv
}

// mustFail checks that Get, Put, Delete, AcquireLease and List on c all
// fail with an error that is not a miss (nor, for AcquireLease, a held
// lease), names the backend and contains none of secrets; want, if set,
// must appear in the messages of Get, Put and Delete (the lease table has
// another name).
func mustFail(t *testing.T, c certcache.Cache, want string, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	_, gerr := c.Get(ctx, "example.com")
	_, lerr := certcache.AcquireLease(ctx, c, "example.com", time.Minute)
	var listErr error
	for _, err := range certcache.List(ctx, c, "") {
		listErr = err
		break
	}
	for op, err := range map[string]error{
		"Get":          gerr,
		"Put":          c.Put(ctx, "example.com", []byte("v")),
		"Delete":       c.Delete(ctx, "example.com"),
		"AcquireLease": lerr,
		"List":         listErr,
	} {
		switch {
		case err == nil:
			t.Errorf("%s succeeded; want an error", op)
			continue
		case errors.Is(err, autocert.ErrCacheMiss):
			t.Errorf("%s = %v: a failure reported as a miss", op, err)
		case errors.Is(err, certcache.ErrLeaseHeld):
			t.Errorf("%s = %v: a failure reported as a held lease", op, err)
		case !strings.HasPrefix(err.Error(), "certcache/"):
			t.Errorf("%s error %q does not name the backend", op, err)
		case want != "" && (op == "Get" || op == "Put" || op == "Delete") && !strings.Contains(err.Error(), want):
			t.Errorf("%s error %q does not contain %q", op, err, want)
		}
		for _, s := range secrets {
			if strings.Contains(err.Error(), s) {
				t.Errorf("%s error reveals a secret: %v", op, err)
			}
		}
	}
}

// concurrentCreate has eight caches, opened on one new table, write and
// read it at the same moment, several times over: whichever creates the
// table, none may fail. open opens a cache on a table.
func concurrentCreate(t *testing.T, open func(table string) certcache.Cache) {
	const n = 8
	for round := 0; round < 5; round++ {
		table := fmt.Sprintf("race_%d_%d", time.Now().UnixNano()%1e9, round)
		start := make(chan struct{})
		var wg sync.WaitGroup
		caches := make([]certcache.Cache, n)
		for i := range caches {
			caches[i] = certcache.Uncoordinated(open(table)) // no certificates: the store's own behaviour
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				key := fmt.Sprintf("k%d.example", i)
				if err := caches[i].Put(context.Background(), key, []byte(key)); err != nil {
					t.Errorf("round %d cache %d: Put: %v", round, i, err)
				}
			}()
		}
		close(start)
		wg.Wait()
		for i := range caches {
			key := fmt.Sprintf("k%d.example", (i+1)%n)
			if v, err := caches[i].Get(context.Background(), key); err != nil || string(v) != key {
				t.Errorf("round %d: Get(%q) = %q, %v", round, key, v, err)
			}
		}
	}
}

// hammer has every cache Put and Get keys of its own (also across
// processes) for d, and fails on any
// error.
func hammer(t *testing.T, d time.Duration, caches ...certcache.Cache) {
	t.Helper()
	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	var ops sync.Map
	for i, c := range caches {
		for g := 0; g < 4; g++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				n := 0
				for time.Now().Before(deadline) {
					key := fmt.Sprintf("h%d-%d-%d-%d.example", os.Getpid(), i, g, n%8) // distinct per process too
					v := []byte(fmt.Sprintf("value %d", n))
					if err := c.Put(context.Background(), key, v); err != nil {
						t.Errorf("cache %d: Put: %v", i, err)
						return
					}
					got, err := c.Get(context.Background(), key)
					if err != nil || string(got) != string(v) {
						t.Errorf("cache %d: Get = %q, %v; want %q", i, got, err, v)
						return
					}
					n++
				}
				ops.Store(fmt.Sprint(i, g), n)
			}()
		}
	}
	wg.Wait()
	total := 0
	ops.Range(func(_, v any) bool { total += v.(int); return true })
	t.Logf("%d Put+Get pairs in %v", total, d)
}

// rawOps are a driver's raw calls, with the same SQL as the backend's.
type rawOps struct {
	get func(ctx context.Context, key string) ([]byte, error) // nil, nil for no row
	put func(ctx context.Context, key string, v []byte) error
}

// dbOps are rawOps on a database/sql DB.
func dbOps(db *sql.DB, get, put string) rawOps {
	return rawOps{
		get: func(ctx context.Context, key string) ([]byte, error) {
			var v []byte
			err := db.QueryRowContext(ctx, get, key).Scan(&v)
			if errors.Is(err, sql.ErrNoRows) {
				return nil, nil
			}
			return v, err
		},
		put: func(ctx context.Context, key string, v []byte) error {
			_, err := db.ExecContext(ctx, put, key, v)
			return err
		},
	}
}

// benchRaw measures the raw calls doing the same work as
// drivertest.RunBenchmarks: "raw" with context.Background(), as an SDK
// user would write it, and "raw-timeout" with a context.WithTimeout per
// call, as certcache's per-call timeout does (a context that can end makes
// pgx and modernc.org/sqlite watch it, which costs a few microseconds).
func benchRaw(b *testing.B, ops rawOps) {
	v := drivertest.CertValue()
	if err := ops.put(context.Background(), "raw.example", v); err != nil {
		b.Fatal(err)
	}
	for _, mode := range []string{"raw", "raw-timeout"} {
		call := func(f func(ctx context.Context) error) error {
			if mode == "raw" {
				return f(context.Background())
			}
			ctx, cancel := context.WithTimeout(context.Background(), certcache.DefaultTimeout)
			defer cancel()
			return f(ctx)
		}
		b.Run(mode, func(b *testing.B) {
			b.Run("GetHit", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(v)))
				for b.Loop() {
					if err := call(func(ctx context.Context) error {
						got, err := ops.get(ctx, "raw.example")
						if err == nil && got == nil {
							err = errors.New("miss")
						}
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("GetMiss", func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := call(func(ctx context.Context) error {
						got, err := ops.get(ctx, "missing.example")
						if err == nil && got != nil {
							err = errors.New("hit")
						}
						return err
					}); err != nil {
						b.Fatal(err)
					}
				}
			})
			b.Run("Put", func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(v)))
				for b.Loop() {
					if err := call(func(ctx context.Context) error { return ops.put(ctx, "raw-put.example", v) }); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
