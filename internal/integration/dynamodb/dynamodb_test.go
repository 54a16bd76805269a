package dynamodb_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	awsddb "github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	_ "github.com/certcache/certcache/dynamodb"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestMain isolates the tests from the machine's AWS configuration and
// hands the SDK dynalite's test credentials through the environment, as a
// deployment would.
func TestMain(m *testing.M) {
	cleanup := testenv.IsolateAWS()
	os.Setenv("AWS_ACCESS_KEY_ID", testenv.DynamoDBKeyID)
	os.Setenv("AWS_SECRET_ACCESS_KEY", testenv.DynamoDBSecret)
	code := m.Run()
	cleanup()
	os.Exit(code)
}

const table = testenv.DynamoDBTable

var dynalite = testenv.DynamoDB

// rawClient is an SDK client on endpoint, for setting up and checking what
// the cache stored, and for the raw benchmarks.
func rawClient(t testing.TB, endpoint string) *awsddb.Client {
	t.Helper()
	cfg, err := config.LoadDefaultConfig(context.Background(), config.WithRegion("us-east-1"))
	if err != nil {
		t.Fatal(err)
	}
	return awsddb.NewFromConfig(cfg, func(o *awsddb.Options) { o.BaseEndpoint = aws.String(endpoint) })
}

// cacheURL is the URL of prefix in the test table on endpoint.
func cacheURL(endpoint, prefix, extra string) string {
	return fmt.Sprintf("dynamodb://%s/%s?endpoint=%s%s", table, prefix, endpoint, extra)
}

func open(t testing.TB, rawURL string) certcache.Cache {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	// The store's own behaviour, beneath issuance coordination: the values
	// here are no certificates.
	return certcache.Uncoordinated(c)
}

func TestConformance(t *testing.T) {
	_, endpoint := dynalite(t)
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), cacheURL(endpoint, ns, "&timeout=5s"))
		},
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			return certcache.Open(context.Background(), cacheURL("http://"+testenv.ClosedAddr(t), "broken", "&timeout=2s"))
		},
		BrokenIsUnavailable: true,
		// dynalite keeps its tables in memory: the restarted server gets
		// the table again, as an operator would recreate it.
		Outage: func(t testing.TB) (certcache.Cache, func(), func()) {
			srv, endpoint := dynalite(t)
			c, err := certcache.Open(context.Background(), cacheURL(endpoint, "outage", "&timeout=2s"))
			if err != nil {
				t.Fatal(err)
			}
			return c, func() { srv.Stop(t) }, func() { srv.Restart(t); testenv.CreateDynamoDBTable(t, endpoint, table) }
		},
		Timeout:            5 * time.Second,
		WatchedLeaseExpiry: true,
		Secrets:            []string{testenv.DynamoDBSecret},
	})
}
