package reliability

import (
	"os"
	"testing"

	_ "github.com/certcache/certcache/azblob"
	_ "github.com/certcache/certcache/dynamodb"
	_ "github.com/certcache/certcache/gs"
	"github.com/certcache/certcache/internal/integration/testenv"
	_ "github.com/certcache/certcache/redis"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
)

// TestMain gives the cloud SDKs the test servers' credentials through the
// environment, as a deployment would, and keeps the AWS SDK away from the
// machine's configuration and the instance metadata service.
func TestMain(m *testing.M) {
	cleanup := testenv.IsolateAWS()
	testenv.UseMinIOCredentials()
	testenv.UseAzuriteAccount(testenv.AzuriteDevAccount)
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// targets are the backends the fault and resource tests cover, each on a
// server that keeps acknowledged writes across a restart. Every URL names
// the server's address literally, so that the tests can point it at a
// proxy.
var targets = []target{
	{"redis", func(t *testing.T) (*testenv.Server, string) {
		srv, u := testenv.RedisDurable(t)
		return srv, u + "/0?prefix=faults"
	}},
	{"postgres", func(t *testing.T) (*testenv.Server, string) {
		srv, u := testenv.Postgres(t)
		return srv, u + "&table=faults"
	}},
	{"mariadb", func(t *testing.T) (*testenv.Server, string) {
		srv, u := testenv.MariaDB(t)
		return srv, withParam(u, "table=faults")
	}},
	{"s3", func(t *testing.T) (*testenv.Server, string) {
		srv, endpoint := testenv.MinIO(t)
		srv.Exec(t, "mc", "mb", "local/faults")
		return srv, "s3://faults/certs?use_path_style=true&endpoint=" + endpoint
	}},
	{"azblob", func(t *testing.T) (*testenv.Server, string) {
		srv, endpoint := testenv.Azurite(t)
		return srv, "azblob://faults/certs?create_container=true&endpoint=" + endpoint
	}},
	{"gs", func(t *testing.T) (*testenv.Server, string) {
		srv, endpoint := testenv.FakeGCSDurable(t, "faults")
		return srv, "gs://faults/certs?endpoint=" + endpoint
	}},
}
