package certmagicstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certcache/certcache"
	_ "github.com/certcache/certcache/azblob"
	"github.com/certcache/certcache/drivertest"
	_ "github.com/certcache/certcache/dynamodb"
	_ "github.com/certcache/certcache/encrypt"
	_ "github.com/certcache/certcache/gs"
	"github.com/certcache/certcache/internal/integration/certmagictest"
	"github.com/certcache/certcache/internal/integration/testenv"
	_ "github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/redis"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
)

// keyEnv names the environment variable that holds the encryption key of
// the encrypted row, set by TestMain.
const keyEnv = "CERTCACHE_CERTMAGIC_TEST_KEY"

// TestMain hands the S3 SDK MinIO's credentials and the Azure SDK
// Azurite's account through the environment, as a deployment would, away
// from the machine's AWS configuration (see testenv.IsolateAWS).
func TestMain(m *testing.M) {
	cleanup := testenv.IsolateAWS()
	testenv.UseMinIOCredentials()
	testenv.UseAzuriteAccount(testenv.AzuriteDevAccount)
	var key [32]byte
	rand.Read(key[:])
	os.Setenv(keyEnv, base64.StdEncoding.EncodeToString(key[:]))
	code := m.Run()
	cleanup()
	os.Exit(code)
}

// A backend gives the harness for one store: every backend certcache has,
// each on its real server, and the wrappers above one.
type backend struct {
	name    string
	harness func(t *testing.T) drivertest.Harness
}

// opener makes Harness.Open from a URL per namespace.
func opener(nsURL func(ns string) string) func(testing.TB, string) (certcache.Cache, error) {
	return func(_ testing.TB, ns string) (certcache.Cache, error) {
		return certcache.Open(context.Background(), nsURL(ns))
	}
}

// broken opens rawURL, a store that is not there.
func broken(rawURL string) func(testing.TB) (certcache.Cache, error) {
	return func(testing.TB) (certcache.Cache, error) { return certcache.Open(context.Background(), rawURL) }
}

var backends = []backend{
	{"mem", func(t *testing.T) drivertest.Harness {
		return drivertest.Harness{Open: opener(func(ns string) string { return "mem://" + ns })}
	}},
	{"file", func(t *testing.T) drivertest.Harness {
		root := t.TempDir()
		return drivertest.Harness{
			Open: opener(func(ns string) string { return "file://" + filepath.Join(root, ns) }),
			// A directory that runs through a regular file: every call fails.
			OpenBroken: func(t testing.TB) (certcache.Cache, error) {
				blocker := filepath.Join(t.TempDir(), "not-a-dir")
				if err := os.WriteFile(blocker, nil, 0o600); err != nil {
					t.Fatal(err)
				}
				return certcache.Open(context.Background(), "file://"+filepath.Join(blocker, "certs"))
			},
		}
	}},
	{"redis", func(t *testing.T) drivertest.Harness {
		_, u := testenv.Redis(t)
		return drivertest.Harness{
			Open:                opener(func(ns string) string { return u + "/0?prefix=" + ns + "&timeout=5s" }),
			OpenBroken:          broken("redis://" + testenv.ClosedAddr(t) + "/0?timeout=2s&dial_timeout=1s"),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
		}
	}},
	// Keys spread over three masters: listing visits every one.
	{"redis-cluster", func(t *testing.T) drivertest.Harness {
		_, u := testenv.RedisCluster(t)
		return drivertest.Harness{Open: opener(func(ns string) string { return u + "&prefix=" + ns })}
	}},
	// Values sealed at rest and a memory front, which the Storage looks
	// through: sizes are of sealed values.
	{"redis+encryption+memory", func(t *testing.T) drivertest.Harness {
		_, u := testenv.Redis(t)
		return drivertest.Harness{
			Open: opener(func(ns string) string {
				return u + "/0?prefix=" + ns + "&encryption_key=env:" + keyEnv + "&memory=true"
			}),
			SealedSizes: true,
		}
	}},
	{"postgres", func(t *testing.T) drivertest.Harness {
		_, u := testenv.Postgres(t)
		return drivertest.Harness{
			Open: opener(func(ns string) string { return withParam(u, "table="+ns+"&timeout=5s") }),
			OpenBroken: broken("postgres://certcache:" + testenv.PostgresPassword + "@" + testenv.ClosedAddr(t) +
				"/certcache?timeout=2s&connect_timeout=1"),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
			Secrets:             []string{testenv.PostgresPassword},
		}
	}},
	{"mariadb", func(t *testing.T) drivertest.Harness {
		_, u := testenv.MariaDB(t)
		return drivertest.Harness{
			Open: opener(func(ns string) string { return withParam(u, "table="+ns+"&timeout=5s") }),
			OpenBroken: broken("mysql://certcache:" + testenv.MariaDBPassword + "@" + testenv.ClosedAddr(t) +
				"/certcache?timeout=2s"),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
			Secrets:             []string{testenv.MariaDBPassword},
		}
	}},
	{"sqlite", func(t *testing.T) drivertest.Harness {
		dir := t.TempDir()
		return drivertest.Harness{
			Open:       opener(func(ns string) string { return "sqlite://" + dir + "/cache.db?table=" + ns + "&timeout=20s" }),
			OpenBroken: broken("sqlite://" + dir + "/no/such/dir/cache.db?timeout=2s"),
			Timeout:    20 * time.Second,
		}
	}},
	{"s3", func(t *testing.T) drivertest.Harness {
		srv, endpoint := testenv.MinIO(t)
		srv.Exec(t, "mc", "mb", "local/certs")
		return drivertest.Harness{
			Open: opener(func(ns string) string {
				return "s3://certs/" + ns + "?use_path_style=true&timeout=5s&endpoint=" + endpoint
			}),
			OpenBroken:          broken("s3://certs/broken?use_path_style=true&timeout=2s&endpoint=http://" + testenv.ClosedAddr(t)),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
			Secrets:             []string{testenv.MinIOPassword},
		}
	}},
	{"dynamodb", func(t *testing.T) drivertest.Harness {
		// dynalite checks that requests are signed, not by whom: MinIO's
		// credentials from TestMain do.
		_, endpoint := testenv.DynamoDB(t)
		return drivertest.Harness{
			Open: opener(func(ns string) string {
				return "dynamodb://" + testenv.DynamoDBTable + "/" + ns + "?timeout=5s&endpoint=" + endpoint
			}),
			OpenBroken:          broken("dynamodb://" + testenv.DynamoDBTable + "/broken?timeout=2s&endpoint=http://" + testenv.ClosedAddr(t)),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
			WatchedLeaseExpiry:  true,
			Secrets:             []string{testenv.MinIOPassword},
		}
	}},
	{"azblob", func(t *testing.T) drivertest.Harness {
		_, endpoint := testenv.Azurite(t)
		return drivertest.Harness{
			Open: opener(func(ns string) string {
				return "azblob://certs/" + ns + "?create_container=true&timeout=5s&endpoint=" + endpoint
			}),
			OpenBroken: broken("azblob://certs?timeout=2s&endpoint=http://" + testenv.ClosedAddr(t) + "/" +
				testenv.AzuriteDevAccount.Name),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
			Secrets:             []string{testenv.AzuriteDevAccount.Key},
		}
	}},
	{"gs", func(t *testing.T) drivertest.Harness {
		_, endpoint := testenv.FakeGCS(t, "certs")
		return drivertest.Harness{
			Open: opener(func(ns string) string {
				return "gs://certs/" + ns + "?timeout=5s&endpoint=" + endpoint
			}),
			OpenBroken:          broken("gs://certs/broken?timeout=2s&endpoint=http://" + testenv.ClosedAddr(t)),
			BrokenIsUnavailable: true,
			Timeout:             5 * time.Second,
		}
	}},
}

// TestConformance runs the certmagic cases of drivertest on every
// backend against its real server.
func TestConformance(t *testing.T) {
	for _, b := range backends {
		t.Run(b.name, func(t *testing.T) {
			t.Parallel() // each backend on a server of its own
			certmagictest.RunCertmagic(t, b.harness(t))
		})
	}
}

// withParam adds query parameters to rawURL.
func withParam(rawURL, params string) string {
	for i := range len(rawURL) {
		if rawURL[i] == '?' {
			return rawURL + "&" + params
		}
	}
	return rawURL + "?" + params
}
