package redis_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	goredis "github.com/redis/go-redis/v9"
	"golang.org/x/crypto/acme/autocert"
)

// TestConnectionSetup: a client opened from a URL sends HELLO alone to open
// a connection, so the first Get of a node (and a restarted node's preload)
// waits one round trip for it: no CLIENT SETINFO, and go-redis's
// maintenance-notifications probe only when maint_notifications asks for it.
// The Redis of the test images rejects the probe, which shows as an error
// reply in its stats.
func TestConnectionSetup(t *testing.T) {
	_, u := testenv.Redis(t)
	ctx := context.Background()
	o, err := goredis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	// The observer's own connection opens before the first reading, so
	// its setup is in no difference.
	observer := goredis.NewClient(o)
	defer observer.Close()
	stats := func() (errors, setinfo, conns int) {
		t.Helper()
		info, err := observer.Info(ctx, "stats", "commandstats").Result()
		if err != nil {
			t.Fatal(err)
		}
		field := func(line, name string) int {
			v, ok := strings.CutPrefix(line, name+":")
			if !ok {
				return -1
			}
			n, _ := strconv.Atoi(strings.TrimSpace(v))
			return n
		}
		for _, line := range strings.Split(info, "\n") {
			if n := field(line, "total_error_replies"); n >= 0 {
				errors = n
			}
			if n := field(line, "total_connections_received"); n >= 0 {
				conns = n
			}
			if rest, ok := strings.CutPrefix(line, "cmdstat_client|setinfo:calls="); ok {
				setinfo, _ = strconv.Atoi(strings.Split(rest, ",")[0])
			}
		}
		return errors, setinfo, conns
	}
	stats()

	for _, tc := range []struct {
		param      string
		wantErrors int // error replies the new connection draws
	}{
		{"", 0},
		{"maint_notifications=disabled", 0},
		{"maint_notifications=auto", 1},
	} {
		t.Run(tc.param, func(t *testing.T) {
			errors0, setinfo0, conns0 := stats()
			// Without coordination, whose leases run scripts that draw
			// NOSCRIPT error replies.
			c, err := certcache.Open(ctx, u+"/0?prefix=setup&coordinate=false&"+tc.param)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := c.Get(ctx, "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint
				t.Fatalf("Get = %v, want the miss", err)
			}
			errors1, setinfo1, conns1 := stats()
			if conns1 == conns0 {
				t.Fatal("Get opened no connection")
			}
			if got := errors1 - errors0; got != tc.wantErrors {
				t.Errorf("error replies to the connection's setup = %d, want %d", got, tc.wantErrors)
			}
			if setinfo1 != setinfo0 {
				t.Errorf("CLIENT SETINFO sent %d times", setinfo1-setinfo0)
			}
		})
	}
}
