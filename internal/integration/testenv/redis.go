package testenv

import (
	"context"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"
)

// Redis starts a Redis server (image "redis") without persistence and
// returns it with its URL, redis://127.0.0.1:PORT.
func Redis(t testing.TB) (*Server, string) {
	t.Helper()
	return RedisWith(t, "--save", "", "--appendonly", "no")
}

// RedisDurable starts a Redis server that fsyncs every write to its
// append-only file, so that what it acknowledged survives a restart.
func RedisDurable(t testing.TB) (*Server, string) {
	t.Helper()
	return RedisWith(t, "--save", "", "--appendonly", "yes", "--appendfsync", "always", "--dir", "/tmp")
}

// RedisTLS starts a Redis server that speaks only TLS, with a certificate
// for 127.0.0.1 and localhost issued by ca, and returns it with its URL,
// rediss://127.0.0.1:PORT.
func RedisTLS(t testing.TB, ca *CA) (*Server, string) {
	t.Helper()
	cert, key := ca.Issue(t, "127.0.0.1", "localhost")
	s := Start(t, Spec{
		Image: "redis",
		Files: map[string][]byte{"/tls/server.pem": cert, "/tls/server.key": key, "/tls/ca.pem": ca.PEM},
		Cmd: func(s *Server) []string {
			return []string{"redis-server", "--port", "0", "--tls-port", s.Port(0), "--bind", s.Bind,
				"--tls-cert-file", "/tls/server.pem", "--tls-key-file", "/tls/server.key",
				"--tls-ca-cert-file", "/tls/ca.pem", "--tls-auth-clients", "no", "--save", "", "--appendonly", "no"}
		},
	})
	return s, "rediss://" + s.Addr(0)
}

// RedisWith starts a Redis server with extra redis-server arguments and
// returns it with its URL.
func RedisWith(t testing.TB, args ...string) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "redis",
		Cmd: func(s *Server) []string {
			return append([]string{"redis-server", "--port", s.Port(0), "--bind", s.Bind}, args...)
		},
		Ready: redisPing(0),
	})
	return s, "redis://" + s.Addr(0)
}

// RedisURL returns CERTCACHE_TEST_REDIS_URL if set, else the URL of a new
// Redis container.
func RedisURL(t testing.TB) string {
	t.Helper()
	if u := ExternalURL("redis"); u != "" {
		return u
	}
	_, u := Redis(t)
	return u
}

// RedisSentinel starts a Redis master on Ports[0] watched by one sentinel on
// Ports[1] under the master name "mymaster", in one container, and returns
// the redis+sentinel URL.
func RedisSentinel(t testing.TB) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "redis",
		Ports: 2,
		Cmd: func(s *Server) []string {
			script := fmt.Sprintf(`redis-server --port %[1]s --bind %[3]s --save '' --appendonly no --daemonize yes &&
printf 'port %[2]s\nbind %[3]s\nsentinel monitor mymaster 127.0.0.1 %[1]s 1\n' > /tmp/sentinel.conf &&
exec redis-sentinel /tmp/sentinel.conf`, s.Port(0), s.Port(1), s.Bind)
			return []string{"sh", "-c", script}
		},
		Ready: func(ctx context.Context, s *Server) error {
			if err := redisPing(0)(ctx, s); err != nil {
				return err
			}
			out, err := redisCommand(ctx, s.Addr(1), "SENTINEL", "get-master-addr-by-name", "mymaster")
			if err != nil {
				return err
			}
			if !strings.Contains(out, s.Port(0)) {
				return fmt.Errorf("sentinel does not know the master yet: %q", out)
			}
			return nil
		},
	})
	return s, fmt.Sprintf("redis+sentinel://%s?master_name=mymaster", s.Addr(1))
}

// RedisCluster starts a three-node Redis Cluster (three masters, no
// replicas) in one container and returns the redis+cluster URL. Nodes
// announce 127.0.0.1, so clients reach them in host and bridge mode alike.
func RedisCluster(t testing.TB) (*Server, string) {
	t.Helper()
	s := Start(t, Spec{
		Image: "redis",
		Ports: 6, // three client ports, then three cluster-bus ports
		Cmd: func(s *Server) []string {
			var b strings.Builder
			for i := 0; i < 3; i++ {
				fmt.Fprintf(&b, "redis-server --port %s --cluster-port %s --bind %s --cluster-enabled yes "+
					"--cluster-config-file /tmp/nodes-%d.conf --cluster-announce-ip 127.0.0.1 "+
					"--save '' --appendonly no --daemonize yes && ", s.Port(i), s.Port(i+3), s.Bind, i)
			}
			fmt.Fprintf(&b, "sleep 1 && redis-cli --cluster create 127.0.0.1:%s 127.0.0.1:%s 127.0.0.1:%s --cluster-yes && ",
				s.Port(0), s.Port(1), s.Port(2))
			b.WriteString("exec sleep infinity")
			return []string{"sh", "-c", b.String()}
		},
		Ready: func(ctx context.Context, s *Server) error {
			for i := 0; i < 3; i++ {
				out, err := redisCommand(ctx, s.Addr(i), "CLUSTER", "INFO")
				if err != nil {
					return err
				}
				if !strings.Contains(out, "cluster_state:ok") {
					return fmt.Errorf("node %d: cluster not ready", i)
				}
			}
			return nil
		},
		StartupTimeout: 2 * time.Minute,
	})
	return s, fmt.Sprintf("redis+cluster://%s?addr=%s&addr=%s", s.Addr(0), s.Addr(1), s.Addr(2))
}

func redisPing(i int) func(ctx context.Context, s *Server) error {
	return func(ctx context.Context, s *Server) error {
		out, err := redisCommand(ctx, s.Addr(i), "PING")
		if err != nil {
			return err
		}
		if !strings.Contains(out, "PONG") {
			return fmt.Errorf("PING answered %q", out)
		}
		return nil
	}
}

// redisCommand sends one command in RESP and returns the raw reply: enough
// to probe readiness without a client library in this package.
func redisCommand(ctx context.Context, addr string, args ...string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return "", err
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := conn.Write([]byte(b.String())); err != nil {
		return "", err
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if n == 0 && err != nil {
		return "", err
	}
	reply := string(buf[:n])
	if strings.HasPrefix(reply, "-") {
		return "", fmt.Errorf("redis error: %s", strings.TrimSpace(reply))
	}
	return reply, nil
}
