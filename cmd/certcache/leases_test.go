package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
)

// TestLeases runs leases and unlock on the stores that need no server.
func TestLeases(t *testing.T) {
	for _, tc := range []struct{ name, url string }{
		{"mem", "mem://leases-test"},
		{"file", "file://" + filepath.Join(t.TempDir(), "certs")},
	} {
		t.Run(tc.name, func(t *testing.T) { leasesScenario(t, tc.url) })
	}
}

// TestLeasesOnServers runs leases and unlock on the servers of
// TestMigrateFromDirCache.
func TestLeasesOnServers(t *testing.T) {
	for _, b := range migrationBackends {
		if b.name == "file" {
			continue // TestLeases
		}
		t.Run(b.name, func(t *testing.T) {
			u, _ := b.start(t)
			leasesScenario(t, u)
		})
	}
}

// leasesScenario lists a live lease, fails to unlock it without -force,
// unlocks it with -force so that another holder takes it, and unlocks an
// expired lease without -force.
func leasesScenario(t *testing.T, rawURL string) {
	ctx := context.Background()
	open := func() certcache.Cache {
		c, err := certcache.Open(ctx, rawURL)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	a, b := open(), open()
	prefix := fmt.Sprintf("cli-%d/", time.Now().UnixNano())
	name := prefix + "issue_cert_example.com"
	l, err := certcache.AcquireLease(ctx, a, name, time.Minute)
	if err != nil {
		t.Fatal(err)
	}

	stdout, _, code := runCmd(t, "leases", "-json", "-prefix", prefix, rawURL)
	var rows []leaseRow
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || code != 0 {
		t.Fatalf("leases -json: status %d, %v", code, err)
	}
	if len(rows) != 1 || rows[0].Name != name || rows[0].Holder != l.Token() || rows[0].Expired || rows[0].Expires == nil ||
		time.Until(*rows[0].Expires) < 50*time.Second || time.Until(*rows[0].Expires) > 70*time.Second {
		t.Fatalf("leases -json = %+v; want %s held by %s for about a minute", rows, name, l.Token())
	}
	stdout, _, code = runCmd(t, "leases", rawURL, "-prefix", prefix)
	if code != 0 || !strings.Contains(stdout, "NAME") || !strings.Contains(stdout, name) ||
		!strings.Contains(stdout, l.Token()[:shortHolder]+"…") || !strings.Contains(stdout, " in ") {
		t.Errorf("leases: status %d; want a table with %s, its holder in short and its expiry", code, name)
	}

	_, stderr, code := runCmd(t, "unlock", rawURL, name)
	if code != exitFail || !strings.Contains(stderr, "is held by "+l.Token()[:shortHolder]) || !strings.Contains(stderr, "-force") {
		t.Errorf("unlock of a live lease: status %d, stderr %q; want 1, the holder and a hint at -force", code, stderr)
	}
	if _, err := certcache.AcquireLease(ctx, b, name, time.Minute); !errors.Is(err, certcache.ErrLeaseHeld) {
		t.Fatalf("after a refused unlock, AcquireLease = %v, want certcache.ErrLeaseHeld", err)
	}
	stdout, _, code = runCmd(t, "unlock", "-force", rawURL, name)
	if code != 0 || !strings.HasPrefix(stdout, "unlocked "+name) {
		t.Errorf("unlock -force: status %d, stdout %q", code, stdout)
	}
	if _, err := certcache.AcquireLease(ctx, b, name, time.Minute); err != nil {
		t.Errorf("after unlock -force, AcquireLease by another holder: %v", err)
	}
	if stdout, _, code := runCmd(t, "unlock", rawURL, prefix+"never-taken"); code != 0 || !strings.Contains(stdout, "is not held") {
		t.Errorf("unlock of a lease not held: status %d, stdout %q", code, stdout)
	}

	// An expired lease is broken without -force.
	short := prefix + "expired"
	if _, err := certcache.AcquireLease(ctx, a, short, time.Second); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2500 * time.Millisecond)
	if strings.HasPrefix(rawURL, "dynamodb:") {
		// DynamoDB has no clock a condition can read: a lease expires for a
		// node that has watched its version unchanged for its TTL (see
		// package dynamodb), which a fresh command has not, so it must
		// refuse and point at -force rather than guess.
		if _, stderr, code := runCmd(t, "unlock", rawURL, short); code != exitFail || !strings.Contains(stderr, "-force") {
			t.Errorf("unlock of a lease this process never watched: status %d, stderr %q; want 1 and a hint at -force", code, stderr)
		}
		if _, _, code := runCmd(t, "unlock", "-force", rawURL, short); code != 0 {
			t.Errorf("unlock -force of an expired lease: status %d, want 0", code)
		}
	} else if _, _, code := runCmd(t, "unlock", rawURL, short); code != 0 {
		t.Errorf("unlock of an expired lease: status %d, want 0", code)
	}
	stdout, _, _ = runCmd(t, "leases", "-json", "-prefix", short, rawURL)
	if strings.TrimSpace(stdout) != "[]" {
		t.Errorf("leases after unlocking the expired lease: %s, want []", stdout)
	}
}
