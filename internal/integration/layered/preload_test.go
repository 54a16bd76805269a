package layered_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/layered"
	"golang.org/x/crypto/acme/autocert"
)

// fakeStore is a driver.Driver with listing and leases whose Gets can be
// held, failed or made to miss per key, so that the tests can put a
// preload in any state. certcache.NewCache wraps it in the portable layer
// and issuance coordination, as every backend is.
type fakeStore struct {
	mu      sync.Mutex
	data    map[string][]byte
	gates   map[string]chan struct{} // Get of key waits for the channel to close
	getErr  map[string]error         // Get of key fails with this
	gone    map[string]bool          // listed, but Get misses (deleted since)
	listErr error                    // the listing fails after yielding the keys
	entered chan string              // Get of a gated key announces itself here

	delay time.Duration // every Get takes this long

	gets, leaseCalls      atomic.Int64
	inFlight, maxInFlight atomic.Int64
}

func newFakeStore() *fakeStore {
	return &fakeStore{data: map[string][]byte{}, gates: map[string]chan struct{}{},
		getErr: map[string]error{}, gone: map[string]bool{}, entered: make(chan string, 1024)}
}

// open returns a Cache over the store as a backend's New returns it:
// coordinated, since the store has leases.
func (f *fakeStore) open(t testing.TB) certcache.Cache {
	t.Helper()
	return certcache.NewCache("fake", f, &certcache.Options{DisableBreaker: true})
}

func (f *fakeStore) Get(ctx context.Context, key string) ([]byte, error) {
	f.gets.Add(1)
	n := f.inFlight.Add(1)
	defer f.inFlight.Add(-1)
	for m := f.maxInFlight.Load(); n > m && !f.maxInFlight.CompareAndSwap(m, n); m = f.maxInFlight.Load() {
	}
	if f.delay > 0 {
		time.Sleep(f.delay)
	}
	f.mu.Lock()
	gate, err, gone := f.gates[key], f.getErr[key], f.gone[key]
	v, ok := f.data[key]
	f.mu.Unlock()
	if gate != nil {
		f.entered <- key
		select {
		case <-gate:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	switch {
	case err != nil:
		return nil, err
	case gone || !ok:
		return nil, autocert.ErrCacheMiss
	}
	return slices.Clone(v), nil
}

func (f *fakeStore) Put(_ context.Context, key string, data []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.data[key] = slices.Clone(data)
	return nil
}

func (f *fakeStore) Delete(_ context.Context, key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.data, key)
	return nil
}

func (f *fakeStore) Close() error { return nil }

func (f *fakeStore) List(ctx context.Context, prefix string) iter.Seq2[certcache.Entry, error] {
	return func(yield func(certcache.Entry, error) bool) {
		f.mu.Lock()
		var keys []string
		for k := range f.data {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		listErr := f.listErr
		f.mu.Unlock()
		slices.Sort(keys)
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				yield(certcache.Entry{}, err)
				return
			}
			if !yield(certcache.Entry{Key: k}, nil) {
				return
			}
		}
		if listErr != nil {
			yield(certcache.Entry{}, listErr)
		}
	}
}

func (f *fakeStore) AcquireLease(context.Context, string, string, time.Duration) error {
	f.leaseCalls.Add(1)
	return nil
}

func (f *fakeStore) RefreshLease(context.Context, string, string, time.Duration) error {
	f.leaseCalls.Add(1)
	return nil
}

func (f *fakeStore) ReleaseLease(context.Context, string, string) error {
	f.leaseCalls.Add(1)
	return nil
}

func (f *fakeStore) gate(key string) chan struct{} {
	ch := make(chan struct{})
	f.mu.Lock()
	f.gates[key] = ch
	f.mu.Unlock()
	return ch
}

// fill stores n certificate keys ("host-<i>.example.com", every third
// also "+rsa") and the keys autocert keeps beside them, which a preload
// must leave alone. It returns the certificate keys.
func fill(t testing.TB, c certcache.Cache, n int) []string {
	t.Helper()
	var certs []string
	for i := range n {
		certs = append(certs, fmt.Sprintf("host-%04d.example.com", i))
		if i%3 == 0 {
			certs = append(certs, fmt.Sprintf("host-%04d.example.com+rsa", i))
		}
	}
	for _, k := range certs {
		mustPut(t, c, k, "cert of "+k)
	}
	for _, k := range []string{"acme_account+key", "host-0000.example.com+token", "tok3n+http-01", "not a domain", "nodot"} {
		mustPut(t, c, k, "other")
	}
	return certs
}

// syncBuffer is a bytes.Buffer for a logger that writes from the preload's
// goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func newLogger() (*slog.Logger, *syncBuffer) {
	buf := &syncBuffer{}
	return slog.New(slog.NewTextHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug})), buf
}

func waitPreload(t testing.TB, s *layered.Stack) layered.Stats {
	t.Helper()
	select {
	case <-s.PreloadDone():
	case <-time.After(30 * time.Second):
		t.Fatalf("preload still running after 30 s: %+v", s.Stats())
	}
	st := s.Stats()
	if !st.PreloadDone {
		t.Errorf("PreloadDone is closed but Stats.PreloadDone = false")
	}
	return st
}

// TestPreload: a preload loads exactly the certificate keys, within the
// front's bounds; then handshakes' Gets never reach the authority.
func TestPreload(t *testing.T) {
	const domains = 60 // 80 certificate keys, 5 others
	certOnly := int64(len("host-0000.example.com")+len("cert of host-0000.example.com")) * 60
	for _, tc := range []struct {
		name       string
		opts       layered.MemoryOptions
		wantLoaded int
		wantFull   bool
	}{
		{"Unbounded", layered.MemoryOptions{}, 80, false},
		{"Concurrency1", layered.MemoryOptions{PreloadConcurrency: 1}, 80, false},
		{"MaxEntries", layered.MemoryOptions{MaxEntries: 50}, 50, true},
		{"MaxBytes", layered.MemoryOptions{MaxBytes: certOnly}, 0, true}, // some, not all: checked below
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeStore()
			back := store.open(t)
			certs := fill(t, back, domains)
			log, buf := newLogger()
			opts := tc.opts
			opts.Preload, opts.Logger = true, log
			s := mustNew(t, layered.NewMemory(&opts), back)
			st := waitPreload(t, s)
			if st.PreloadErrors != 0 || st.Evictions != 0 {
				t.Errorf("Stats = %+v, want no errors and no evictions", st)
			}
			if !tc.wantFull && (st.PreloadListed != uint64(len(certs)) || st.PreloadLoaded != uint64(len(certs))) {
				t.Errorf("Stats = %+v, want all %d certificate keys listed and loaded", st, len(certs))
			}
			if tc.wantLoaded > 0 && st.PreloadLoaded != uint64(tc.wantLoaded) {
				t.Errorf("loaded %d, want %d", st.PreloadLoaded, tc.wantLoaded)
			}
			if tc.wantFull {
				if st.PreloadLoaded == 0 || st.PreloadLoaded >= uint64(len(certs)) {
					t.Errorf("loaded %d of %d; want a full front to stop the preload part way", st.PreloadLoaded, len(certs))
				}
				if !strings.Contains(buf.String(), "memory front is full") {
					t.Errorf("log %q does not say the front is full", buf)
				}
			} else if !strings.Contains(buf.String(), "level=INFO msg=\"certcache/layered: preload done\" loaded=80 listed=80 errors=0") {
				t.Errorf("log %q, want one line saying it is done", buf)
			}
			if st.Entries != int(st.PreloadLoaded) {
				t.Errorf("memory holds %d entries, preload loaded %d", st.Entries, st.PreloadLoaded)
			}
			for _, k := range []string{"acme_account+key", "host-0000.example.com+token", "tok3n+http-01", "not a domain", "nodot"} {
				if _, err := s.Unwrap()[0].Get(bg(), k); !isMiss(err) {
					t.Errorf("memory holds %q: a preload loads certificates only", k)
				}
			}
			held := 0
			for _, k := range certs {
				if v, err := s.Unwrap()[0].Get(bg(), k); err == nil && string(v) == "cert of "+k {
					held++
				}
			}
			if held != int(st.PreloadLoaded) {
				t.Errorf("memory answers for %d certificates, preload loaded %d", held, st.PreloadLoaded)
			}
			if !tc.wantFull {
				gets := store.gets.Load()
				for _, k := range certs {
					mustGet(t, s, k, "cert of "+k)
				}
				if n := store.gets.Load() - gets; n != 0 {
					t.Errorf("%d Gets of preloaded certificates reached the store", n)
				}
			}
			if store.leaseCalls.Load() != 0 {
				t.Errorf("%d lease calls", store.leaseCalls.Load())
			}
		})
	}
}

// TestPreloadSkipsWhatChanged: a preload never overwrites what a Put or a
// Delete left while its Get was in flight, never takes an order lease for
// a certificate that was deleted since the listing, and reads a key that a
// handshake is loading as well (it cannot know the handshake's outcome).
func TestPreloadSkipsWhatChanged(t *testing.T) {
	store := newFakeStore()
	back := store.open(t) // coordinated: New must look beneath it
	// The preload starts with one Get in flight and adds one per answer
	// while keys wait: the a-N keys, listed first, let it grow to four.
	for _, k := range []string{"a-1.example.com", "a-2.example.com", "a-3.example.com",
		"put.example.com", "deleted.example.com", "gone.example.com", "first.example.com", "plain.example.com"} {
		mustPut(t, back, k, "old")
	}
	store.gone["gone.example.com"] = true
	held := store.gate("a-1.example.com")
	gates := map[string]chan struct{}{}
	for _, k := range []string{"put.example.com", "deleted.example.com", "first.example.com"} {
		gates[k] = store.gate(k)
	}
	s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{Preload: true, PreloadConcurrency: 8}), back)
	if k := <-store.entered; k != "a-1.example.com" { // the preload's only Get until it answers
		t.Fatalf("the preload's first Get is of %s", k)
	}
	first := make(chan error, 1)
	go func() { // a handshake for first.example.com, before the preload reads it
		_, err := s.Get(bg(), "first.example.com")
		first <- err
	}()
	if k := <-store.entered; k != "first.example.com" {
		t.Fatalf("a Get of %s entered the store, want the handshake's of first.example.com", k)
	}
	close(held)
	for range gates { // the preload's Gets of the gated keys are in flight
		<-store.entered
	}
	mustPut(t, s, "put.example.com", "new")
	if err := s.Delete(bg(), "deleted.example.com"); err != nil {
		t.Fatal(err)
	}
	for _, g := range gates {
		close(g)
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	st := waitPreload(t, s)
	mustGet(t, s, "put.example.com", "new")
	if _, err := s.Get(bg(), "deleted.example.com"); !isMiss(err) {
		t.Errorf("Get of a key deleted during the preload = %v, want a miss", err)
	}
	if _, err := s.Get(bg(), "gone.example.com"); !isMiss(err) {
		t.Errorf("Get of a listed key that is gone = %v, want a miss", err)
	}
	if n := store.leaseCalls.Load(); n != 0 {
		t.Errorf("%d lease calls: a preload (and a Stack's miss) must not take an order lease", n)
	}
	if st.PreloadListed != 8 || st.PreloadErrors != 0 {
		t.Errorf("Stats = %+v, want 8 listed, no errors", st)
	}
}

// TestPreloadHandshakeTakesTheFirstRead: a handshake that comes while the
// preload's read of its name is in flight is answered by whichever read
// lands first, its own or the preload's: under autocert's lock, where every
// other handshake waits for it, it never waits longer than either.
func TestPreloadHandshakeTakesTheFirstRead(t *testing.T) {
	for _, tc := range []struct {
		name         string
		preloadFirst bool
	}{
		{"PreloadLandsFirst", true},
		{"OwnReadLandsFirst", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeStore()
			back := store.open(t)
			mustPut(t, back, "slow.example.com", "v")
			preloadRead := store.gate("slow.example.com")
			s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{Preload: true}), back)
			<-store.entered // the preload's Get
			ownRead := store.gate("slow.example.com")
			got := make(chan error, 1)
			go func() {
				v, err := s.Get(bg(), "slow.example.com")
				if err == nil && string(v) != "v" {
					err = fmt.Errorf("got %q, want %q", v, "v")
				}
				got <- err
			}()
			<-store.entered // the handshake's own Get
			first, second := preloadRead, ownRead
			if !tc.preloadFirst {
				first, second = ownRead, preloadRead
			}
			close(first)
			select {
			case err := <-got:
				if err != nil {
					t.Fatal(err)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("the handshake waited for the read that had not landed")
			}
			close(second)
			st := waitPreload(t, s)
			if tc.preloadFirst && (st.PreloadLoaded != 1 || st.Hits[0] != 1) {
				t.Errorf("Stats = %+v; want the preload's copy served from memory", st)
			}
			if !tc.preloadFirst && st.Hits[0] != 0 {
				t.Errorf("Stats = %+v; want the handshake's own read served", st)
			}
		})
	}
}

// TestPreloadFailures: a failed Get is counted and skipped; an unavailable
// store or a failed listing ends the preload; each says so in one log line.
func TestPreloadFailures(t *testing.T) {
	broken := errors.New("value does not open")
	for _, tc := range []struct {
		name       string
		setup      func(f *fakeStore)
		wantLoaded uint64
		wantErrors uint64
		wantLog    string
	}{
		{"OneKeyFails", func(f *fakeStore) { f.getErr["b.example.com"] = broken }, 3, 1,
			`level=WARN msg="certcache/layered: preload done, some certificates could not be read" loaded=3 listed=4 errors=1`},
		{"StoreUnavailable", func(f *fakeStore) {
			f.getErr["a.example.com"] = fmt.Errorf("%w: connection refused", certcache.ErrUnavailable)
		}, 0, 1, `level=WARN msg="certcache/layered: preload failed" loaded=0`},
		{"ListingFails", func(f *fakeStore) { f.listErr = errors.New("listing broke") }, 4, 1,
			`level=WARN msg="certcache/layered: preload failed: listing the store" loaded=4 listed=4 errors=1`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := newFakeStore()
			back := store.open(t)
			for _, k := range []string{"a.example.com", "b.example.com", "c.example.com", "d.example.com"} {
				mustPut(t, back, k, "v")
			}
			tc.setup(store)
			log, buf := newLogger()
			s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{Preload: true, PreloadConcurrency: 1, Logger: log}), back)
			st := waitPreload(t, s)
			if st.PreloadLoaded != tc.wantLoaded || st.PreloadErrors != tc.wantErrors {
				t.Errorf("Stats = %+v, want %d loaded, %d errors", st, tc.wantLoaded, tc.wantErrors)
			}
			if got := buf.String(); !strings.Contains(got, tc.wantLog) || strings.Count(got, "\n") != 1 {
				t.Errorf("log = %q, want one line containing %q", got, tc.wantLog)
			}
			// The handshakes are not affected by the preload's failure:
			// the Stack still reads through.
			store.mu.Lock()
			clear(store.getErr)
			store.mu.Unlock()
			mustGet(t, s, "d.example.com", "v")
		})
	}
}

// TestPreloadInBackground: New, Get and Put never wait for a preload, even
// one whose every Get hangs; Close stops it promptly and logs that.
func TestPreloadInBackground(t *testing.T) {
	store := newFakeStore()
	back := store.open(t)
	for i := range 3 { // listed first, answered: the preload grows to 4 Gets in flight
		mustPut(t, back, fmt.Sprintf("a-%d.example.com", i), "v")
	}
	for i := range 8 {
		k := fmt.Sprintf("held-%d.example.com", i)
		mustPut(t, back, k, "v")
		store.gate(k) // never opened
	}
	mustPut(t, back, "zfree.example.com", "v") // listed after the held ones: never reached
	log, buf := newLogger()
	start := time.Now()
	c, err := layered.New(layered.NewMemory(&layered.MemoryOptions{Preload: true, PreloadConcurrency: 4, Logger: log}), back)
	if err != nil {
		t.Fatal(err)
	}
	s := certcache.Uncoordinated(c).(*layered.Stack)
	for range 4 { // every worker is stuck
		<-store.entered
	}
	mustGet(t, s, "zfree.example.com", "v")
	mustPut(t, s, "new.example.com", "v")
	if d := time.Since(start); d > time.Second {
		t.Errorf("New, Get and Put took %v beside a stuck preload", d)
	}
	select {
	case <-s.PreloadDone():
		t.Fatal("the preload ended while its Gets hang")
	default:
	}
	start = time.Now()
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Close took %v to stop the preload", d)
	}
	select {
	case <-s.PreloadDone():
	default:
		t.Fatal("Close returned before the preload ended")
	}
	if st := s.Stats(); st.PreloadErrors != 0 || !st.PreloadDone {
		t.Errorf("Stats = %+v, want no errors (Close is not a failure), done", st)
	}
	if !strings.Contains(buf.String(), "preload stopped: the cache was closed") {
		t.Errorf("log = %q", buf)
	}
}

// TestPreloadThenTTL: a preloaded copy is fresh for the TTL; after it the
// store is read again, and while the store fails the expired copy is
// served.
func TestPreloadThenTTL(t *testing.T) {
	auth := newTier(t, "auth", nil)
	mustPut(t, auth.Cache, "example.com", "cert")
	clk := newClock()
	s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{Preload: true, TTL: time.Minute, Now: clk.Now}), auth)
	waitPreload(t, s)
	if st := s.Stats(); st.PreloadLoaded != 1 {
		// The tier wrapper hides the store from certcache.List unless it
		// unwraps; see tier.Unwrap.
		t.Fatalf("Stats = %+v, want 1 loaded", st)
	}
	gets := auth.gets.Load()
	mustGet(t, s, "example.com", "cert")
	if auth.gets.Load() != gets {
		t.Error("a fresh preloaded copy was read from the store")
	}
	clk.Advance(time.Minute)
	mustGet(t, s, "example.com", "cert")
	if auth.gets.Load() != gets+1 {
		t.Error("an expired preloaded copy was not read from the store again")
	}
	clk.Advance(time.Minute)
	auth.setFail("get", true)
	mustGet(t, s, "example.com", "cert")
	if st := s.Stats(); st.StaleServes != 1 {
		t.Errorf("Stats = %+v, want 1 stale serve", st)
	}
}

// TestPreloadURL: memory_preload from the URL, and where coordination sits
// in what Open returns: above the Stack, whose tiers are uncoordinated, so
// the preload reads beneath it.
func TestPreloadURL(t *testing.T) {
	for _, tc := range []struct {
		query   string
		preload bool
		wantErr string
	}{
		{query: "memory_preload=true", preload: true},
		{query: "memory=true&memory_preload=1&memory_max_entries=100", preload: true},
		{query: "memory=true&memory_preload=false"},
		{query: "memory=true"},
		{query: "memory_preload=yes", wantErr: `memory_preload="yes": want true or false`},
		{query: "memory_preload=true&memory_preload=true", wantErr: "memory_preload given 2 times"},
		{query: "memory=false&memory_preload=true", wantErr: "memory=false with other memory_ parameters"},
	} {
		t.Run(tc.query, func(t *testing.T) {
			ns := fmt.Sprintf("mem://preload-url-%d", time.Now().UnixNano())
			seed, err := certcache.Open(bg(), ns)
			if err != nil {
				t.Fatal(err)
			}
			defer seed.Close()
			mustPut(t, seed, "example.com", "cert")
			c, err := certcache.Open(bg(), ns+"?"+tc.query)
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
			s, ok := certcache.Uncoordinated(c).(*layered.Stack)
			if !ok || c == certcache.Cache(s) {
				t.Fatalf("Open gave %T over %T; want coordination above a *layered.Stack", c, certcache.Uncoordinated(c))
			}
			for i, tier := range s.Unwrap() {
				if certcache.Uncoordinated(tier) != tier {
					t.Errorf("tier %d of the Stack is coordinated", i)
				}
			}
			if !tc.preload {
				<-s.PreloadDone() // closed at once: nothing to wait for
				if st := s.Stats(); st.PreloadListed != 0 || st.PreloadDone || st.Entries != 0 {
					t.Errorf("Stats = %+v, want no preload", st)
				}
				return
			}
			if st := waitPreload(t, s); st.PreloadLoaded != 1 || st.Entries != 1 {
				t.Errorf("Stats = %+v, want 1 loaded", st)
			}
		})
	}
}

// TestNewUncoordinates: New uses its tiers beneath their coordination, so
// that a fallback directory never takes order leases and coordination,
// where there is any, sits above the front (see the package
// documentation).
func TestNewUncoordinates(t *testing.T) {
	store := newFakeStore()
	back := store.open(t)
	if certcache.Uncoordinated(back) == back {
		t.Fatal("the test store is not coordinated")
	}
	s := mustNew(t, layered.NewMemory(nil), back)
	if got := s.Unwrap()[1]; got != certcache.Uncoordinated(back) {
		t.Errorf("authority tier is %T, want the cache beneath coordination", got)
	}
	if _, err := s.Get(bg(), "new.example.com"); !isMiss(err) {
		t.Fatalf("Get = %v, want a miss", err)
	}
	if n := store.leaseCalls.Load(); n != 0 {
		t.Errorf("%d lease calls under a Stack", n)
	}
	if _, err := layered.New(layered.NewMemory(nil), back, certcache.Uncoordinated(back)); err == nil || !strings.Contains(err.Error(), "the same cache") {
		t.Errorf("New with a cache twice, once coordinated = %v, want an error", err)
	}
}

// TestPreloadConcurrency: a preload starts with one Get in flight, grows
// by one per answer, and never has more than PreloadConcurrency.
func TestPreloadConcurrency(t *testing.T) {
	for _, conc := range []int{1, 4, 16} {
		t.Run(fmt.Sprint(conc), func(t *testing.T) {
			store := newFakeStore()
			back := store.open(t)
			certs := fill(t, back, 300)
			store.delay = 2 * time.Millisecond
			s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{Preload: true, PreloadConcurrency: conc}), back)
			if st := waitPreload(t, s); st.PreloadLoaded != uint64(len(certs)) {
				t.Errorf("Stats = %+v, want %d loaded", st, len(certs))
			}
			if got := store.maxInFlight.Load(); got != int64(conc) {
				t.Errorf("at most %d Gets in flight, want %d", got, conc)
			}
		})
	}
}

// TestPreloadSlowStart: until the store has answered the first Get, a
// preload has no other in flight, so that a node's cold connection pool
// does not open all its connections at once.
func TestPreloadSlowStart(t *testing.T) {
	store := newFakeStore()
	back := store.open(t)
	fill(t, back, 50)
	gate := store.gate("host-0000.example.com") // listed first
	store.delay = 2 * time.Millisecond          // so that Gets overlap once it grows
	s := mustNew(t, layered.NewMemory(&layered.MemoryOptions{Preload: true, PreloadConcurrency: 16}), back)
	<-store.entered
	time.Sleep(100 * time.Millisecond)
	if n := store.maxInFlight.Load(); n != 1 {
		t.Errorf("%d Gets in flight before the store answered the first, want 1", n)
	}
	close(gate)
	waitPreload(t, s)
	if n := store.maxInFlight.Load(); n < 2 {
		t.Errorf("at most %d Get in flight after the first answer, want it to grow", n)
	}
}
