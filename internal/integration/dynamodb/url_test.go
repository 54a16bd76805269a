package dynamodb_test

import (
	"strings"
	"testing"
	"time"

	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	ccddb "github.com/certcache/certcache/dynamodb"
)

func TestOpenErrors(t *testing.T) {
	const secret = "AKIAsecretLEAK"
	drivertest.RunOpenErrors(t, []drivertest.OpenCase{
		{"dynamodb://t1x/p?region=eu-west-1&bogus=1&other=2", "unknown parameter bogus, other"},
		{"dynamodb://t1x/p?region=eu-west-1&region=us-east-1", "region given 2 times"},
		{"dynamodb://t1x/p?region=", "region is empty"},
		{"dynamodb://t1x/p?region=eu-west-1&max_conns=0", "max_conns=0: want at least 1"},
		{"dynamodb://t1x/p?region=eu-west-1&disable_https=true", "disable_https needs endpoint"},
		{"dynamodb://t1x/p?endpoint=https://h:8000&disable_https=true", "contradicts the https scheme"},
		{"dynamodb://t1x/p?endpoint=ftp://h", `endpoint="ftp://h": want an http or https URL`},
		{"dynamodb://t1x/p?endpoint=http://u:" + secret + "@h", "credentials do not belong in the endpoint"},
		{"dynamodb://t1x/p?region=eu-west-1&profile=nonexistent", `profile "nonexistent" is not in the shared configuration files`},
		{"dynamodb://t1x/p", "no region"},
		{"dynamodb://key:" + secret + "@t1x/p?region=eu-west-1", "credentials do not belong in the URL"},
		{"dynamodb://t1x:8000/p?region=eu-west-1", "has a port"},
		{"dynamodb:///p?region=eu-west-1", "no table"},
		{"dynamodb:t1x?region=eu-west-1", "no table"},
		{"dynamodb://t1x/p#frag?region=eu-west-1", "no fragment"},
		{"dynamodb://ab?region=eu-west-1", `table "ab": want 3 to 255 characters`},
		{"dynamodb://tab!e/p?region=eu-west-1", `table "tab!e"`},
		{"dynamodb://t1x/a%0Ab?region=eu-west-1", "control character"},
		{"dynamodb://t1x/" + strings.Repeat("p", 1025) + "?region=eu-west-1", "prefix of 1025 bytes, limit 1024"},
	}, secret)
}

// TestNewOptions: New hands Options.Cache, beside Timeout, to the portable
// layer.
func TestNewOptions(t *testing.T) {
	client := awsddb.New(awsddb.Options{Region: "us-east-1"})
	drivertest.RunNewOptions(t, func(o certcache.Options) (certcache.Cache, error) {
		return ccddb.New(client, "certcache", &ccddb.Options{Prefix: "opts", Timeout: time.Second, Cache: o})
	})
	if _, err := ccddb.New(nil, "certcache", nil); err == nil {
		t.Error("New(nil client) succeeded")
	}
	if _, err := ccddb.New(client, "x", nil); err == nil || !strings.Contains(err.Error(), `table "x"`) {
		t.Errorf("New with table %q = %v, want an error naming it", "x", err)
	}
}
