package s3_test

import (
	"testing"
	"time"

	awss3 "github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	ccs3 "github.com/certcache/certcache/s3"
)

// TestNewOptions: New hands Options.Cache, beside Timeout, to the portable
// layer.
func TestNewOptions(t *testing.T) {
	client := awss3.New(awss3.Options{Region: "us-east-1"})
	drivertest.RunNewOptions(t, func(o certcache.Options) (certcache.Cache, error) {
		return ccs3.New(client, "certs", &ccs3.Options{Prefix: "opts", Timeout: time.Second, Cache: o})
	})
}
