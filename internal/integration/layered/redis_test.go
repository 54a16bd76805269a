package layered_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
)

// TestConformanceRedis runs the suite on a memory front over a real Redis,
// opened from the URL alone. The outage case stops the container under a
// live front: keys the front never saw must fail, not miss.
func TestConformanceRedis(t *testing.T) {
	base := testenv.RedisURL(t)
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(bg(), base+"?prefix="+ns+"&timeout=5s&memory=true&memory_ttl=1m")
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(bg(), "redis://"+testenv.ClosedAddr(t)+"/0?timeout=2s&dial_timeout=1s&memory=true")
		},
		BrokenIsUnavailable: true,
		Outage:              testenv.OutageOn(testenv.Redis, func(u string) string { return u + "?prefix=outage&timeout=2s&memory=true" }),
		Timeout:             5 * time.Second,
	})
}

// TestStaleIfErrorRedis stops a real Redis under a live memory → file →
// redis stack: expired copies are served (and counted), unknown keys fail,
// a node restarted during the outage serves from its directory, and after
// recovery a key deleted by another node is a miss that drops the copy.
func TestStaleIfErrorRedis(t *testing.T) {
	srv, u := testenv.Redis(t)
	dir := t.TempDir()
	clk := newClock()
	open := func(t *testing.T) *layered.Stack {
		disk, err := certcache.Open(bg(), "file://"+filepath.Join(dir, "certs"))
		if err != nil {
			t.Fatal(err)
		}
		back, err := certcache.Open(bg(), u+"?prefix=stale&timeout=2s&dial_timeout=1s")
		if err != nil {
			t.Fatal(err)
		}
		mem := layered.NewMemory(&layered.MemoryOptions{TTL: time.Minute, Now: clk.Now})
		return mustNew(t, mem, disk, back)
	}
	s := open(t)
	other := open(t) // another node
	mustPut(t, s, "example.com", "cert")
	mustPut(t, s, "gone.example", "old")
	clk.Advance(2 * time.Minute) // every copy in memory has expired

	srv.Stop(t)
	mustGet(t, s, "example.com", "cert") // the expired memory copy
	_, err := s.Get(bg(), "never.example")
	notMiss(t, "Get of a key the front never saw", err)
	if !errors.Is(err, certcache.ErrUnavailable) {
		t.Errorf("Get of an unseen key = %v, want ErrUnavailable", err)
	}
	if st := s.Stats(); st.StaleServes != 1 || st.BackendErrors != 2 {
		t.Errorf("Stats = %+v, want 1 stale serve, 2 backend errors", st)
	}
	// A node (re)started while Redis is down has nothing in memory and
	// serves from its directory.
	restarted := open(t)
	mustGet(t, restarted, "example.com", "cert")
	if st := restarted.Stats(); st.StaleServes != 1 {
		t.Errorf("restarted node Stats = %+v, want 1 stale serve", st)
	}

	srv.Restart(t)
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := other.Delete(bg(), "gone.example") // another node deletes it
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Delete after restart: %v", err)
		}
		time.Sleep(250 * time.Millisecond)
	}
	// Each cache has its own circuit breaker, which closes when its probe
	// sees Redis answer again; until then s serves stale copies.
	for {
		_, err := s.Get(bg(), "probe.example")
		if isMiss(err) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("Get after restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The Redis container runs without persistence: the restart emptied it.
	// Whatever the authority says is the truth, so both keys are misses now
	// and the stale copies go.
	for _, key := range []string{"gone.example", "example.com"} {
		if _, err := s.Get(bg(), key); !isMiss(err) {
			t.Fatalf("Get(%q) after restart = %v, want a miss", key, err)
		}
	}
	if st := s.Stats(); st.Entries != 0 || st.Misses != 3 {
		t.Errorf("Stats = %+v, want no entries left, 3 misses (the probe's and those two)", st)
	}
	srv.Stop(t)
	_, err = s.Get(bg(), "example.com")
	notMiss(t, "Get of a dropped copy during a second outage", err)
}

// TestStaleIfErrorStartup: a process that starts while its backend is down
// (Open does not contact the server) and has a directory tier serves from
// it.
func TestStaleIfErrorStartup(t *testing.T) {
	dir := t.TempDir()
	disk, err := certcache.Open(bg(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := disk.Put(bg(), "example.com", []byte("cert")); err != nil {
		t.Fatal(err)
	}
	back, err := certcache.Open(bg(), "redis://"+testenv.ClosedAddr(t)+"/0?timeout=2s&dial_timeout=1s")
	if err != nil {
		t.Fatal(err)
	}
	s := mustNew(t, layered.NewMemory(nil), disk, back)
	ctx, cancel := context.WithTimeout(bg(), time.Minute)
	defer cancel()
	got, err := s.Get(ctx, "example.com")
	if err != nil || string(got) != "cert" {
		t.Fatalf("Get at start-up with Redis down = %q, %v; want the directory's copy", got, err)
	}
}
