package azblob_test

import (
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/storage/azblob"

	"github.com/certcache/certcache"
	ccazblob "github.com/certcache/certcache/azblob"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestNewOptions: New hands Options.Cache, beside Timeout, to the portable
// layer.
func TestNewOptions(t *testing.T) {
	client, err := azblob.NewClientWithNoCredential("http://"+testenv.ClosedAddr(t)+"/devstoreaccount1", nil)
	if err != nil {
		t.Fatal(err)
	}
	drivertest.RunNewOptions(t, func(o certcache.Options) (certcache.Cache, error) {
		return ccazblob.New(client, "certs", &ccazblob.Options{Prefix: "opts", Timeout: time.Second, Cache: o})
	})
}
