package s3_test

import (
	"context"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"github.com/certcache/certcache/internal/integration/testenv"
)

// TestTLS runs the suite against MinIO over HTTPS, with a certificate from a
// CA made for this run that the SDK trusts through AWS_CA_BUNDLE (the SDK's
// own setting, also ca_bundle in a profile). Without it, a call fails with
// a certificate error that is not a miss.
func TestTLS(t *testing.T) {
	ca := testenv.NewCA(t, "certcache minio test CA")
	t.Setenv("AWS_CA_BUNDLE", ca.WriteFile(t))
	_, endpoint := minio(t, func(tb testing.TB) (*testenv.Server, string) { return testenv.MinIOTLS(tb, ca) })
	if !strings.HasPrefix(endpoint, "https://") {
		t.Fatalf("endpoint %s is not HTTPS", endpoint)
	}
	t.Run("Conformance", func(t *testing.T) {
		drivertest.Run(t, drivertest.Harness{
			Open: func(t testing.TB, ns string) (certcache.Cache, error) {
				return certcache.Open(context.Background(), cacheURL(endpoint, ns, ""))
			},
			Secrets: []string{testenv.MinIOPassword},
		})
	})
	t.Run("WrongCA", func(t *testing.T) {
		t.Setenv("AWS_CA_BUNDLE", testenv.NewCA(t, "some other CA").WriteFile(t))
		drivertest.GetFailsWith(t, cacheURL(endpoint, "wrong-ca", "&timeout=5s"), "certificate", testenv.MinIOPassword)
	})
}
