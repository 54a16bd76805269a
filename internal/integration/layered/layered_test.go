package layered_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/layered"
	"golang.org/x/crypto/acme/autocert"
)

var autocertMiss = autocert.ErrCacheMiss

// TestConformance runs the suite on a memory front over mem://, opened from
// the URL and from Go code. OpenBroken is a memory front over a directory
// that cannot exist (under a regular file).
func TestConformance(t *testing.T) {
	broken := func(t testing.TB) (certcache.Cache, error) {
		f := filepath.Join(t.TempDir(), "file")
		if err := os.WriteFile(f, nil, 0o600); err != nil {
			t.Fatal(err)
		}
		return certcache.Open(bg(), "file://"+f+"/certs?memory=true")
	}
	t.Run("URL", func(t *testing.T) {
		drivertest.Run(t, drivertest.Harness{
			Open: func(t testing.TB, ns string) (certcache.Cache, error) {
				return certcache.Open(bg(), "mem://url-"+ns+"?memory=true&memory_ttl=1m&memory_max_bytes=64MiB")
			},
			OpenBroken: broken,
		})
	})
	t.Run("New", func(t *testing.T) {
		drivertest.Run(t, drivertest.Harness{
			Open: func(t testing.TB, ns string) (certcache.Cache, error) {
				back, err := certcache.Open(bg(), "mem://new-"+ns)
				if err != nil {
					return nil, err
				}
				return layered.New(layered.NewMemory(nil), back)
			},
			OpenBroken: broken,
		})
	})
	t.Run("MemoryFileMem", func(t *testing.T) {
		// Three tiers: memory → file (a fallback) → mem.
		dir := t.TempDir()
		drivertest.Run(t, drivertest.Harness{
			Open: func(t testing.TB, ns string) (certcache.Cache, error) {
				disk, err := certcache.Open(bg(), "file://"+filepath.Join(dir, ns))
				if err != nil {
					return nil, err
				}
				back, err := certcache.Open(bg(), "mem://three-"+ns)
				if err != nil {
					return nil, err
				}
				return layered.New(layered.NewMemory(nil), disk, back)
			},
			OpenBroken: broken,
		})
	})
}

func TestNewErrors(t *testing.T) {
	m := layered.NewMemory(nil)
	for _, tc := range []struct {
		name  string
		tiers []certcache.Cache
		want  string
	}{
		{"none", nil, "no tiers"},
		{"nil", []certcache.Cache{m, nil}, "tier 1 is nil"},
		{"twice", []certcache.Cache{m, m}, "tiers 0 and 1 are the same"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := layered.New(tc.tiers...)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestReadThrough: a value found in a slower tier fills the faster ones,
// and the next Get is answered in front.
func TestReadThrough(t *testing.T) {
	for _, tc := range []struct {
		name     string
		fallback bool // a file-like fallback tier between memory and authority
	}{{"MemoryAuthority", false}, {"MemoryFallbackAuthority", true}} {
		t.Run(tc.name, func(t *testing.T) {
			auth := newTier(t, "auth", nil)
			clk := newClock()
			tiers := []certcache.Cache{layered.NewMemory(&layered.MemoryOptions{Now: clk.Now})}
			var fb *tier
			if tc.fallback {
				fb = newTier(t, "fallback", nil)
				tiers = append(tiers, fb)
			}
			s := mustNew(t, append(tiers, auth)...)
			mustPut(t, auth.Cache, "example.com", "cert") // written by another node
			mustGet(t, s, "example.com", "cert")
			mustGet(t, s, "example.com", "cert")
			mustGet(t, s, "example.com", "cert")
			if n := auth.gets.Load(); n != 1 {
				t.Errorf("authority Gets = %d, want 1 (then memory answers)", n)
			}
			st := s.Stats()
			if st.Hits[0] != 2 || st.Hits[len(st.Hits)-1] != 1 || st.Entries != 1 {
				t.Errorf("Stats = %+v, want 2 memory hits, 1 authority hit, 1 entry", st)
			}
			if fb != nil {
				if n := fb.gets.Load(); n != 1 { // the fill compares before it writes
					t.Errorf("fallback tier read %d times while the authority answered, want 1 (the fill)", n)
				}
				mustGet(t, fb.Cache, "example.com", "cert") // filled
				// The next read from the authority finds the fallback up
				// to date and does not write it again.
				clk.Advance(layered.DefaultTTL)
				mustGet(t, s, "example.com", "cert")
				if a, p := auth.gets.Load(), fb.puts.Load(); a != 2 || p != 1 {
					t.Errorf("authority Gets = %d, fallback Puts = %d; want 2 and 1", a, p)
				}
			}
		})
	}
}

// TestWriteOrder: Put and Delete reach the authority first; when it fails,
// the faster tiers are left as they were.
func TestWriteOrder(t *testing.T) {
	for _, tc := range []struct {
		name     string
		op       string // put or delete
		authFail bool
		wantLog  []string
		wantMem  string // what the memory front serves afterwards ("" = nothing)
		wantFB   string // what the fallback tier holds afterwards
	}{
		{"PutOK", "put", false, []string{"auth put", "fallback put"}, "new", "new"},
		{"PutAuthFails", "put", true, []string{"auth put"}, "old", "old"},
		{"DeleteOK", "delete", false, []string{"auth delete", "fallback delete"}, "", ""},
		{"DeleteAuthFails", "delete", true, []string{"auth delete"}, "old", "old"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			log := &callLog{}
			clk := newClock()
			mem := layered.NewMemory(&layered.MemoryOptions{Now: clk.Now})
			fb, auth := newTier(t, "fallback", log), newTier(t, "auth", log)
			s := mustNew(t, mem, fb, auth)
			mustPut(t, s, "example.com", "old")
			log.take()
			auth.setFail(tc.op, tc.authFail)
			var err error
			if tc.op == "put" {
				err = s.Put(bg(), "example.com", []byte("new"))
			} else {
				err = s.Delete(bg(), "example.com")
			}
			if tc.authFail {
				if !errors.Is(err, certcache.ErrUnavailable) {
					t.Errorf("%s = %v, want the authority's error", tc.op, err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			if got := log.take(); strings.Join(got, ",") != strings.Join(tc.wantLog, ",") {
				t.Errorf("calls = %q, want %q", got, tc.wantLog)
			}
			// The memory front, read alone (within its TTL).
			got, err := mem.Get(bg(), "example.com")
			if tc.wantMem == "" {
				if !isMiss(err) {
					t.Errorf("memory holds %q, %v; want nothing", got, err)
				}
			} else if err != nil || string(got) != tc.wantMem {
				t.Errorf("memory holds %q, %v; want %q", got, err, tc.wantMem)
			}
			got, err = fb.Cache.Get(bg(), "example.com")
			if tc.wantFB == "" {
				if !isMiss(err) {
					t.Errorf("fallback holds %q, %v; want nothing", got, err)
				}
			} else if err != nil || string(got) != tc.wantFB {
				t.Errorf("fallback holds %q, %v; want %q", got, err, tc.wantFB)
			}
		})
	}
}

// TestFrontWriteFailure: when a fallback tier refuses a Put after the
// authority took it, the Stack removes its older copy; if even that fails,
// Put says so.
func TestFrontWriteFailure(t *testing.T) {
	fb, auth := newTier(t, "fallback", nil), newTier(t, "auth", nil)
	s := mustNew(t, layered.NewMemory(nil), fb, auth)
	mustPut(t, s, "example.com", "old")
	fb.setFail("put", true)
	mustPut(t, s, "example.com", "new") // the fallback drops "old" instead
	if _, err := fb.Cache.Get(bg(), "example.com"); !isMiss(err) {
		t.Errorf("fallback still holds a value after a failed Put: %v", err)
	}
	fb.setFail("delete", true)
	err := s.Put(bg(), "example.com", []byte("newer"))
	if err == nil || !strings.Contains(err.Error(), "may still hold an older value") {
		t.Errorf("Put with a broken fallback = %v, want an error saying so", err)
	}
	mustGet(t, auth.Cache, "example.com", "newer")
	mustGet(t, s, "example.com", "newer")
	if st := s.Stats(); st.FrontErrors != 2 {
		t.Errorf("FrontErrors = %d, want 2", st.FrontErrors)
	}
}

// TestTTL: within the TTL a hit never reaches the authority; after it, the
// next Get does, and sees what another node wrote.
func TestTTL(t *testing.T) {
	clk := newClock()
	auth := newTier(t, "auth", nil)
	s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{TTL: time.Minute, Now: clk.Now}), auth)
	mustPut(t, s, "example.com", "v1")
	mustPut(t, auth.Cache, "example.com", "v2") // another node renewed
	for _, tc := range []struct {
		advance time.Duration
		want    string
		gets    int64 // authority Gets so far
	}{
		{0, "v1", 0},
		{59 * time.Second, "v1", 0},
		{time.Second, "v2", 1}, // exactly the TTL: expired
		{30 * time.Second, "v2", 1},
		{30 * time.Second, "v2", 2},
	} {
		clk.Advance(tc.advance)
		mustGet(t, s, "example.com", tc.want)
		if n := auth.gets.Load(); n != tc.gets {
			t.Fatalf("after +%v: authority Gets = %d, want %d", tc.advance, n, tc.gets)
		}
	}
}

// TestStaleIfError with an injected failure: an expired copy is served
// when the authority fails, a miss stays a miss and drops the copy.
func TestStaleIfError(t *testing.T) {
	clk := newClock()
	auth := newTier(t, "auth", nil)
	s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{TTL: time.Minute, Now: clk.Now}), auth)
	mustPut(t, s, "example.com", "cert")
	mustPut(t, s, "gone.example", "old")
	clk.Advance(2 * time.Minute)
	auth.setFail("get", true)
	mustGet(t, s, "example.com", "cert") // stale
	_, err := s.Get(bg(), "never.example")
	notMiss(t, "Get of a key the front never saw", err)
	if !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("error %v does not match ErrUnavailable", err)
	}
	auth.setFail("get", false)
	if err := auth.Cache.Delete(bg(), "gone.example"); err != nil { // another node deleted it
		t.Fatal(err)
	}
	if _, err := s.Get(bg(), "gone.example"); !isMiss(err) {
		t.Fatalf("Get of a key the authority lost = %v, want a miss", err)
	}
	auth.setFail("get", true)
	_, err = s.Get(bg(), "gone.example")
	notMiss(t, "Get after the miss dropped the copy", err)
	st := s.Stats()
	want := layered.Stats{Hits: []uint64{0, 0}, Misses: 1, StaleServes: 1, BackendErrors: 3, Entries: 1, Bytes: int64(len("example.com") + len("cert"))}
	if !equalStats(st, want) {
		t.Errorf("Stats = %+v, want %+v", st, want)
	}
}

func equalStats(a, b layered.Stats) bool {
	if len(a.Hits) != len(b.Hits) {
		return false
	}
	for i := range a.Hits {
		if a.Hits[i] != b.Hits[i] {
			return false
		}
	}
	a.Hits, b.Hits = nil, nil
	return a.Misses == b.Misses && a.StaleServes == b.StaleServes && a.BackendErrors == b.BackendErrors &&
		a.FrontErrors == b.FrontErrors && a.Evictions == b.Evictions && a.Entries == b.Entries && a.Bytes == b.Bytes
}

// doneCounter is a context that counts the callers waiting on Done: the
// Stack's Get selects on it once it has joined (or started) the shared call.
type doneCounter struct {
	context.Context
	n *atomic.Int64
}

func (c doneCounter) Done() <-chan struct{} {
	c.n.Add(1)
	return c.Context.Done()
}

// TestSingleflight: N concurrent misses for one key make one authority call,
// and each caller gets its own slice.
func TestSingleflight(t *testing.T) {
	const n = 50
	auth := newTier(t, "auth", nil)
	s := mustNew(t, layered.NewMemory(nil), auth)
	mustPut(t, auth.Cache, "example.com", "cert")
	gate := make(chan struct{})
	auth.getGate = gate
	var waiting atomic.Int64
	ctx := doneCounter{Context: bg(), n: &waiting}
	results := make([][]byte, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			results[i], errs[i] = s.Get(ctx, "example.com")
		}(i)
	}
	deadline := time.Now().Add(time.Minute)
	for waiting.Load() < n && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	close(gate)
	wg.Wait()
	if got := auth.gets.Load(); got != 1 {
		t.Errorf("%d concurrent misses made %d authority calls, want 1", n, got)
	}
	for i := range results {
		if errs[i] != nil || string(results[i]) != "cert" {
			t.Fatalf("caller %d: %q, %v", i, results[i], errs[i])
		}
	}
	results[0][0] = 'X' // callers own distinct slices
	if string(results[1]) != "cert" {
		t.Errorf("callers share a slice")
	}
	mustGet(t, s, "example.com", "cert")
}

// TestSingleflightCallerGivesUp: a caller whose context ends returns at once
// while the shared call goes on for the others.
func TestSingleflightCallerGivesUp(t *testing.T) {
	auth := newTier(t, "auth", nil)
	s := mustNew(t, layered.NewMemory(nil), auth)
	mustPut(t, auth.Cache, "example.com", "cert")
	gate, enter := make(chan struct{}), make(chan struct{}, 1)
	auth.getGate, auth.getEnter = gate, enter
	ctx, cancel := context.WithCancel(bg())
	errc := make(chan error, 1)
	go func() { _, err := s.Get(ctx, "example.com"); errc <- err }()
	<-enter // the authority call is under way
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("Get after cancel = %v, want context.Canceled", err)
	}
	close(gate)
	auth.getEnter = nil
	mustGet(t, s, "example.com", "cert")
}

// TestDeleteDoesNotResurface: a read that fetched a value before a Delete
// must not put it back in front after the Delete.
func TestDeleteDoesNotResurface(t *testing.T) {
	for _, op := range []string{"delete", "put"} {
		t.Run(op, func(t *testing.T) {
			auth := newTier(t, "auth", nil)
			s := mustNew(t, layered.NewMemory(nil), auth)
			mustPut(t, auth.Cache, "example.com", "old")
			gate, enter := make(chan struct{}), make(chan struct{}, 1)
			auth.mu.Lock()
			auth.getGate, auth.getEnter = gate, enter
			auth.mu.Unlock()
			done := make(chan []byte)
			go func() { v, _ := s.Get(bg(), "example.com"); done <- v }()
			<-enter // the Get has read "old" from the authority
			auth.mu.Lock()
			auth.getGate, auth.getEnter = nil, nil
			auth.mu.Unlock()
			want := ""
			if op == "delete" {
				if err := s.Delete(bg(), "example.com"); err != nil {
					t.Fatal(err)
				}
			} else {
				mustPut(t, s, "example.com", "new")
				want = "new"
			}
			close(gate)
			if v := <-done; string(v) != "old" {
				t.Fatalf("the overlapping Get returned %q", v)
			}
			got, err := s.Get(bg(), "example.com")
			if want == "" && !isMiss(err) || want != "" && string(got) != want {
				t.Errorf("after %s, Get = %q, %v; want %q (the old value resurfaced)", op, got, err, want)
			}
		})
	}
}

func TestEviction(t *testing.T) {
	v4k := strings.Repeat("x", 4096)
	for _, tc := range []struct {
		name      string
		opts      layered.MemoryOptions
		puts      []string // keys, each with a 4 KiB value; "get:K" reads K
		held      []string
		evictions uint64
	}{
		{"EntryBound", layered.MemoryOptions{MaxEntries: 2}, []string{"a", "b", "c"}, []string{"b", "c"}, 1},
		{"EntryBoundLRU", layered.MemoryOptions{MaxEntries: 2}, []string{"a", "b", "get:a", "c"}, []string{"a", "c"}, 1},
		{"ByteBound", layered.MemoryOptions{MaxBytes: 10 << 10}, []string{"a", "b", "c", "d"}, []string{"c", "d"}, 2},
		{"ByteBoundLRU", layered.MemoryOptions{MaxBytes: 10 << 10}, []string{"a", "b", "get:a", "c"}, []string{"a", "c"}, 1},
		{"TooLargeForBound", layered.MemoryOptions{MaxBytes: 4096}, []string{"a"}, nil, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := layered.NewMemory(&tc.opts).(*layered.Memory)
			defer m.Close()
			for _, p := range tc.puts {
				if k, ok := strings.CutPrefix(p, "get:"); ok {
					mustGet(t, m, k, v4k)
					continue
				}
				mustPut(t, m, p, v4k)
			}
			for _, k := range []string{"a", "b", "c", "d"} {
				_, err := m.Get(bg(), k)
				held := err == nil
				want := false
				for _, h := range tc.held {
					want = want || h == k
				}
				if held != want {
					t.Errorf("key %q held = %v, want %v", k, held, want)
				}
			}
			st := m.Stats()
			if st.Evictions != tc.evictions || st.Entries != len(tc.held) || st.Bytes != int64(len(tc.held)*(4096+1)) {
				t.Errorf("Stats = %+v, want %d evictions, %d entries of 4097 bytes", st, tc.evictions, len(tc.held))
			}
		})
	}
}

// TestMemoryContract checks the parts of the Cache contract the suite
// cannot reach on a bare Memory tier (which forgets after its TTL).
func TestMemoryContract(t *testing.T) {
	clk := newClock()
	m := layered.NewMemory(&layered.MemoryOptions{TTL: time.Minute, Now: clk.Now})
	v := []byte("value")
	if err := m.Put(bg(), "example.com", v); err != nil {
		t.Fatal(err)
	}
	v[0] = 'X'
	got, _ := m.Get(bg(), "example.com")
	got[1] = 'X'
	mustGet(t, m, "example.com", "value")
	mustPut(t, m, "empty.example", "")
	if got, err := m.Get(bg(), "empty.example"); err != nil || got == nil {
		t.Errorf("Get of an empty value = %v, %v; want a non-nil empty slice", got, err)
	}
	if err := m.Put(bg(), "big.example", make([]byte, certcache.MaxValueSize+1)); !errors.Is(err, certcache.ErrTooLarge) {
		t.Errorf("Put too large = %v", err)
	}
	for _, key := range []string{"", "a\nb", strings.Repeat("k", certcache.MaxKeyLen+1)} {
		if _, err := m.Get(bg(), key); !errors.Is(err, certcache.ErrInvalidKey) {
			t.Errorf("Get(%q) = %v, want ErrInvalidKey", key, err)
		}
	}
	cancelled, cancel := context.WithCancel(bg())
	cancel()
	if _, err := m.Get(cancelled, "example.com"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get with a cancelled context = %v", err)
	}
	clk.Advance(time.Minute)
	if _, err := m.Get(bg(), "example.com"); !isMiss(err) {
		t.Errorf("Get after the TTL = %v, want a miss", err)
	}
	if err := m.Delete(bg(), "example.com"); err != nil {
		t.Fatal(err)
	}
	m.Close()
	for op, err := range map[string]error{
		"get":    func() error { _, err := m.Get(bg(), "example.com"); return err }(),
		"put":    m.Put(bg(), "example.com", v),
		"delete": m.Delete(bg(), "example.com"),
	} {
		if !errors.Is(err, certcache.ErrClosed) || !strings.HasPrefix(err.Error(), "certcache/layered: "+op) {
			t.Errorf("%s after Close = %v", op, err)
		}
	}
	if err := m.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
}

func TestURLParams(t *testing.T) {
	for _, tc := range []struct {
		query   string
		front   bool   // a Stack
		wantErr string // else
		check   func(t *testing.T, c certcache.Cache)
	}{
		{query: "memory=true", front: true},
		{query: "memory=1&memory_ttl=30s", front: true},
		{query: "memory_ttl=1m", front: true}, // any memory_ parameter turns it on
		{query: "memory=false", front: false},
		{query: "", front: false},
		{query: "memory=true&memory_max_entries=2", front: true, check: func(t *testing.T, c certcache.Cache) {
			for _, k := range []string{"a", "b", "c"} {
				mustPut(t, c, k, "v")
			}
			// tok+http-01, a, b, c through a front of two entries
			if st, _ := layered.StatsOf(c); st.Entries != 2 || st.Evictions != 2 {
				t.Errorf("Stats = %+v, want 2 entries, 2 evictions", st)
			}
		}},
		{query: "memory_max_bytes=1KiB", front: true, check: func(t *testing.T, c certcache.Cache) {
			mustPut(t, c, "a", strings.Repeat("x", 1000))
			mustPut(t, c, "b", strings.Repeat("x", 1000))
			if st, _ := layered.StatsOf(c); st.Entries != 1 || st.Bytes != 1001 {
				t.Errorf("Stats = %+v, want 1 entry of 1001 bytes", st)
			}
		}},
		{query: "memory=yes", wantErr: `memory="yes"`},
		{query: "memory=true&memory=true", wantErr: "memory given 2 times"},
		{query: "memory_ttl=soon", wantErr: `memory_ttl="soon"`},
		{query: "memory_ttl=0", wantErr: "memory_ttl=0"},
		{query: "memory_ttl=-1m", wantErr: "memory_ttl"},
		{query: "memory_max_entries=-1", wantErr: "memory_max_entries"},
		{query: "memory_max_entries=0", wantErr: "memory_max_entries=0"},
		{query: "memory_max_bytes=12XB", wantErr: `memory_max_bytes="12XB"`},
		{query: "memory_max_bytes=0", wantErr: "memory_max_bytes"},
		{query: "memory_max_bytes=MiB", wantErr: "memory_max_bytes"},
		{query: "memory=false&memory_ttl=1m", wantErr: "memory=false with other memory_ parameters"},
		{query: "memory=true&memory_tll=1m", wantErr: "takes no parameters"}, // the backend refuses the misspelling
	} {
		t.Run(tc.query, func(t *testing.T) {
			c, err := certcache.Open(bg(), "mem://?"+tc.query)
			if tc.wantErr != "" {
				if err == nil {
					c.Close()
					t.Fatal("Open succeeded")
				}
				if !errors.Is(err, certcache.ErrInvalidURL) || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Open = %v, want ErrInvalidURL containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, isFront := certcache.Uncoordinated(c).(*layered.Stack); isFront != tc.front {
				t.Fatalf("Open gave a %T; front = %v, want %v", c, isFront, tc.front)
			}
			mustPut(t, c, "tok+http-01", "v") // no certificate: coordination leaves it alone
			mustGet(t, c, "tok+http-01", "v")
			if tc.check != nil {
				tc.check(t, c)
			}
		})
	}
}

func TestByteUnits(t *testing.T) {
	for q, want := range map[string]int64{
		"1048576": 1 << 20, "64MiB": 64 << 20, "64mib": 64 << 20, "512KiB": 512 << 10, "1GiB": 1 << 30,
		"500KB": 500e3, "2MB": 2e6, "1GB": 1e9, "100B": 100,
	} {
		c, err := certcache.Open(bg(), "mem://?memory_max_bytes="+q)
		if err != nil {
			t.Errorf("%s: %v", q, err)
			continue
		}
		// A value of exactly the bound minus the key is held; one byte more is not.
		key := "k"
		fits := bytes.Repeat([]byte("x"), int(min(want, 4<<20))-len(key))
		if err := c.Put(bg(), key, fits); err != nil {
			t.Fatal(err)
		}
		st, _ := layered.StatsOf(c)
		if want <= 4<<20 && st.Entries != 1 {
			t.Errorf("%s: a value of the bound is not held: %+v", q, st)
		}
		if want < 4<<20 {
			c.Put(bg(), key, append(fits, 'x'))
			if st, _ := layered.StatsOf(c); st.Entries != 0 {
				t.Errorf("%s: a value over the bound is held: %+v", q, st)
			}
		}
		c.Close()
	}
}

func TestStatsOf(t *testing.T) {
	c, _ := certcache.Open(bg(), "mem://")
	defer c.Close()
	if _, ok := layered.StatsOf(c); ok {
		t.Error("StatsOf a plain cache reported ok")
	}
	m := layered.NewMemory(nil)
	mustPut(t, m, "a", "v")
	mustGet(t, m, "a", "v")
	if st, ok := layered.StatsOf(m); !ok || st.Hits[0] != 1 || st.Entries != 1 {
		t.Errorf("StatsOf(Memory) = %+v, %v", st, ok)
	}
}

// TestClose: Close closes every tier, and a closed Stack refuses calls even
// for keys its memory front holds.
func TestClose(t *testing.T) {
	mem, auth := layered.NewMemory(nil), newTier(t, "auth", nil)
	s, err := layered.New(mem, auth)
	if err != nil {
		t.Fatal(err)
	}
	mustPut(t, s, "example.com", "v")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Errorf("second Close = %v", err)
	}
	for name, c := range map[string]certcache.Cache{"stack": s, "memory": mem, "authority": auth.Cache} {
		if _, err := c.Get(bg(), "example.com"); !errors.Is(err, certcache.ErrClosed) {
			t.Errorf("%s Get after Close = %v, want ErrClosed", name, err)
		}
	}
	if _, err := s.Get(bg(), "example.com"); !strings.HasPrefix(fmt.Sprint(err), `certcache/layered: get "example.com"`) {
		t.Errorf("error %v does not name the package, operation and key", err)
	}
}
