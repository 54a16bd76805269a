package redis_test

import (
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	ccredis "github.com/certcache/certcache/redis"
	goredis "github.com/redis/go-redis/v9"
)

// TestReplicaReadsRefused: URLs that read from replicas cannot coordinate
// issuance (the re-read after taking a lease may miss a certificate just
// stored on the master); Open refuses them, naming the parameter and the
// fix, unless coordinate=false. Open dials nothing, so no server is needed.
func TestReplicaReadsRefused(t *testing.T) {
	const pw = "s3cr3t-replica-pw"
	var cases []drivertest.OpenCase
	for _, u := range []string{
		"redis+cluster://h:6379?read_only=true",
		"redis+cluster://h:6379?addr=h2:6379&route_by_latency=true",
		"redis+cluster://h:6379?route_randomly=true",
		"rediss+cluster://:" + pw + "@h:6379?read_only=true&coordinate=true",
		"redis+sentinel://h:26379?master_name=m&replica_only=true",
	} {
		param := u[strings.LastIndexAny(u, "?&")+1:]
		if strings.HasPrefix(param, "coordinate") {
			param = "read_only=true"
		}
		cases = append(cases,
			drivertest.OpenCase{URL: u, Want: param + " reads from replicas"},
			drivertest.OpenCase{URL: u, Want: "coordinate=false"})
	}
	cases = append(cases,
		drivertest.OpenCase{URL: "redis+sentinel://h:26379?master_name=m&route_by_latency=true", Want: "need redis+cluster"},
		drivertest.OpenCase{URL: "redis+sentinel://h:26379?master_name=m&route_randomly=true", Want: "need redis+cluster"})
	drivertest.RunOpenErrors(t, cases, pw)

	drivertest.RunOpenAccepts(t, []string{
		"redis+cluster://h:6379?read_only=true&coordinate=false",
		"redis+cluster://h:6379?route_by_latency=true&coordinate=false",
		"redis+cluster://h:6379?route_randomly=true&coordinate=false",
		"redis+sentinel://h:26379?master_name=m&replica_only=true&coordinate=false",
		"redis+cluster://h:6379?read_only=false",
		"redis+cluster://h:6379",
	})
}

// TestNewReplicaReadsRefused: New refuses a cluster client that reads from
// replicas unless coordination is off.
func TestNewReplicaReadsRefused(t *testing.T) {
	for _, tc := range []struct {
		name   string
		o      goredis.ClusterOptions
		off    bool
		wantOK bool
	}{
		{"Masters", goredis.ClusterOptions{}, false, true},
		{"ReadOnly", goredis.ClusterOptions{ReadOnly: true}, false, false},
		{"RouteByLatency", goredis.ClusterOptions{RouteByLatency: true}, false, false},
		{"RouteRandomly", goredis.ClusterOptions{RouteRandomly: true}, false, false},
		{"ReadOnlyUncoordinated", goredis.ClusterOptions{ReadOnly: true}, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.o.Addrs = []string{"127.0.0.1:1"}
			client := goredis.NewClusterClient(&tc.o)
			defer client.Close()
			c, err := ccredis.New(client, &ccredis.Options{Cache: certcache.Options{DisableCoordination: tc.off}})
			if c != nil {
				c.Close()
			}
			if (err == nil) != tc.wantOK {
				t.Fatalf("New = %v, want ok %v", err, tc.wantOK)
			}
			if err != nil && !strings.Contains(err.Error(), "DisableCoordination") {
				t.Errorf("error %q does not name the fix", err)
			}
		})
	}
}
