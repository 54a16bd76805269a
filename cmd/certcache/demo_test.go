package main

import (
	"bytes"
	"context"
	"regexp"
	"testing"
	"time"
)

// TestDemoTwice runs the demo twice on one cache: the first run obtains a
// certificate from Pebble, the second serves it from the cache with no new
// order.
func TestDemoTwice(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cacheURL := "file://" + t.TempDir() + "/certs"
	serial := regexp.MustCompile(`serial +([0-9a-f]+)`)

	var out1 bytes.Buffer
	st1, err := demo(ctx, &out1, cacheURL, "demo.certcache.test", nil)
	t.Logf("first run:\n%s", out1.String())
	if err != nil {
		t.Fatal(err)
	}
	if st1.Orders != 1 || st1.Finalized != 1 {
		t.Errorf("first run: Pebble saw %v, want 1 order and 1 certificate", st1)
	}

	var out2 bytes.Buffer
	st2, err := demo(ctx, &out2, cacheURL, "demo.certcache.test", nil)
	t.Logf("second run:\n%s", out2.String())
	if err != nil {
		t.Fatal(err)
	}
	if st2.OrderRequests != 0 || st2.Finalized != 0 {
		t.Errorf("second run: Pebble saw %v, want nothing", st2)
	}
	s1, s2 := serial.FindStringSubmatch(out1.String()), serial.FindStringSubmatch(out2.String())
	if s1 == nil || s2 == nil || s1[1] != s2[1] {
		t.Errorf("serials: first run %v, second run %v; want the same", s1, s2)
	}
}
