package keymemo

import (
	"strconv"
	"sync"
	"testing"
)

func TestGet(t *testing.T) {
	var m Memo[string]
	builds := 0
	build := func(k string) string { builds++; return "p:" + k }
	for range 3 {
		if got := m.Get("a", build); got != "p:a" {
			t.Fatalf("Get = %q, want p:a", got)
		}
	}
	if builds != 1 {
		t.Errorf("built %d times, want once", builds)
	}
	// Beyond Max, keys are built per call and still right.
	for i := range Max + 10 {
		k := strconv.Itoa(i)
		if got := m.Get(k, build); got != "p:"+k {
			t.Fatalf("Get(%q) = %q", k, got)
		}
	}
	if n := len(m.m); n != Max {
		t.Errorf("%d entries, want the bound %d", n, Max)
	}
}

func TestConcurrent(t *testing.T) {
	var m Memo[[]any]
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				k := strconv.Itoa((i * (g + 1)) % 300)
				if got := m.Get(k, func(k string) []any { return []any{k} }); got[0] != k {
					t.Errorf("Get(%q) = %v", k, got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestGetAllocs(t *testing.T) {
	var m Memo[any]
	m.Get("example.com", func(k string) any { return "p:" + k })
	key := string([]byte("example.com")) // not a constant
	if n := testing.AllocsPerRun(100, func() { m.Get(key, func(k string) any { return "p:" + k }) }); n != 0 {
		t.Errorf("a known key: %v allocations, want 0", n)
	}
}
