package gs_test

import (
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	ccgs "github.com/certcache/certcache/gs"
)

// TestNewOptions: New hands Options.Cache, beside Timeout, to the portable
// layer. A client on a closed port: New contacts nothing.
func TestNewOptions(t *testing.T) {
	client := rawClient(t, "http://127.0.0.1:1")
	drivertest.RunNewOptions(t, func(o certcache.Options) (certcache.Cache, error) {
		return ccgs.New(client, "certs", &ccgs.Options{Prefix: "opts", Timeout: time.Second, Cache: o})
	})
}
