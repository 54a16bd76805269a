// Package testenv starts the real servers that certcache's backend tests run
// against, with testcontainers-go, from images built locally by
// scripts/testenv-setup.sh (make testenv). Nothing is pulled from a registry.
//
// It works on two kinds of Docker engine:
//
//   - an engine without a bridge network (a sandbox with loopback-only
//     networking, as started by make testenv): containers share the host's
//     network namespace and each server listens on free loopback ports the
//     test picked;
//   - a normal engine (a laptop, most CI): containers sit on the default
//     bridge and each picked port is published on 127.0.0.1 under the same
//     number, so a server's address is the same as in host mode and a
//     server may announce it (Redis Sentinel and Cluster do).
//
// Set CERTCACHE_TEST_NETWORK=host or bridge to choose instead of detecting.
//
// When neither Docker nor an external URL (CERTCACHE_TEST_<NAME>_URL) is
// available, a backend test skips with a one-line reason, unless
// CERTCACHE_TEST_REQUIRE=1 (make test, CI), which turns the skip into a
// failure: a skipped test is not a passed one.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/moby/moby/api/types/container"
	"github.com/moby/moby/api/types/network"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
	tcexec "github.com/testcontainers/testcontainers-go/exec"
)

// Required reports whether CERTCACHE_TEST_REQUIRE=1, which turns every
// would-be skip of a backend test into a failure.
func Required() bool { return os.Getenv("CERTCACHE_TEST_REQUIRE") == "1" }

// Unavailable ends a test that cannot reach its server: a skip with a one-line
// reason, or a failure when Required.
func Unavailable(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Required() {
		t.Fatalf("%s (CERTCACHE_TEST_REQUIRE=1: a backend test may not skip)", msg)
	}
	t.Skipf("SKIP: %s (set CERTCACHE_TEST_REQUIRE=1 to make this a failure)", msg)
}

// ExternalURL returns CERTCACHE_TEST_<NAME>_URL: a server the user runs
// that a backend's tests use instead of a container.
func ExternalURL(name string) string {
	return os.Getenv("CERTCACHE_TEST_" + strings.ToUpper(name) + "_URL")
}

// Image is the local image for a test server, as scripts/testenv-setup.sh
// tags it.
func Image(name string) string { return "certcache-test/" + name + ":latest" }

// Spec describes a server to start.
type Spec struct {
	// Image is the name of a directory under internal/integration/testenv/images.
	Image string

	// Ports is how many ports the server listens on (at least 1).
	Ports int

	// Cmd returns the container's command for s (its ports and bind
	// address). Nil keeps the image's command.
	Cmd func(s *Server) []string

	// Env returns the container's environment for s; may be nil.
	Env func(s *Server) map[string]string

	// Files are copied into the container before it starts, by path; they
	// are readable by every user (test certificates and keys, configs).
	Files map[string][]byte

	// Ready reports whether the server accepts work. Nil means every port
	// accepts a TCP connection. It is retried until it succeeds or
	// StartupTimeout passes, after Start and after every Restart.
	Ready func(ctx context.Context, s *Server) error

	// StartupTimeout bounds waiting for Ready. If zero, one minute.
	StartupTimeout time.Duration
}

// Server is a running test server.
type Server struct {
	// Host is the address clients dial: always a loopback address.
	Host string
	// Ports are the ports the server listens on, in Spec order; the same
	// number inside the container and on the host.
	Ports []int
	// Bind is the address the server must listen on inside the container:
	// 127.0.0.1 with host networking, 0.0.0.0 behind a bridge.
	Bind string

	spec Spec
	ctr  testcontainers.Container
}

// Addr returns "host:port" of the i-th port.
func (s *Server) Addr(i int) string { return net.JoinHostPort(s.Host, strconv.Itoa(s.Ports[i])) }

func (s *Server) addrs() []string {
	a := make([]string, len(s.Ports))
	for i := range s.Ports {
		a[i] = s.Addr(i)
	}
	return a
}

// Port returns the i-th port as a string, for command lines.
func (s *Server) Port(i int) string { return strconv.Itoa(s.Ports[i]) }

// env is what every test in the process shares: one provider, one answer to
// "which network mode", found once.
var env struct {
	once     sync.Once
	err      error
	provider *testcontainers.DockerProvider
	hostMode bool
}

func setup() {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// Ryuk, the reaper container, would need an image from a registry;
	// every container here is removed by its test's Cleanup instead.
	setDefaultEnv("TESTCONTAINERS_RYUK_DISABLED", "true")
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		env.err = fmt.Errorf("no Docker engine: %v", err)
		return
	}
	defer cli.Close()
	if _, err := cli.Ping(ctx, client.PingOptions{}); err != nil {
		env.err = fmt.Errorf("no Docker engine answers: %v (run make testenv)", err)
		return
	}
	switch mode := os.Getenv("CERTCACHE_TEST_NETWORK"); mode {
	case "host":
		env.hostMode = true
	case "bridge":
	case "":
		_, err := cli.NetworkInspect(ctx, "bridge", client.NetworkInspectOptions{})
		env.hostMode = err != nil
	default:
		env.err = fmt.Errorf("CERTCACHE_TEST_NETWORK=%q: want host or bridge", mode)
		return
	}
	var opts []testcontainers.DockerProviderOption
	if env.hostMode {
		// Without this, testcontainers aims at the default gateway, which
		// a loopback-only sandbox must never contact.
		setDefaultEnv("TESTCONTAINERS_HOST_OVERRIDE", "127.0.0.1")
		opts = append(opts, testcontainers.WithDefaultBridgeNetwork("host"))
	}
	env.provider, env.err = testcontainers.NewDockerProvider(opts...)
}

func setDefaultEnv(k, v string) {
	if _, ok := os.LookupEnv(k); !ok {
		os.Setenv(k, v)
	}
}

// Start starts the server spec describes and removes it when t ends. When
// Docker or the image is missing it calls Unavailable.
func Start(t testing.TB, spec Spec) *Server {
	t.Helper()
	env.once.Do(setup)
	if env.err != nil {
		Unavailable(t, "%s server: %v", spec.Image, env.err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	image := Image(spec.Image)
	if _, err := env.provider.Client().ImageInspect(ctx, image); err != nil {
		Unavailable(t, "image %s is missing (run make testenv): %v", image, err)
	}
	if spec.Ports < 1 {
		spec.Ports = 1
	}
	// A port picked free may be taken before the server binds it (another
	// test process picks too); then the server exits and we try again.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		s, err := start(ctx, t, spec, image)
		if err == nil {
			mode := "bridge, ports published on 127.0.0.1"
			if env.hostMode {
				mode = "host network"
			}
			t.Logf("testenv: started %s in container %.12s on %s (%s)", image, s.ctr.GetContainerID(), strings.Join(s.addrs(), ", "), mode)
			return s
		}
		lastErr = err
		t.Logf("testenv: %s did not start (attempt %d): %v", spec.Image, attempt+1, err)
	}
	t.Fatalf("testenv: cannot start %s: %v", spec.Image, lastErr)
	return nil
}

func start(ctx context.Context, t testing.TB, spec Spec, image string) (*Server, error) {
	s := &Server{Host: "127.0.0.1", Bind: "127.0.0.1", spec: spec}
	if !env.hostMode {
		s.Bind = "0.0.0.0"
	}
	for len(s.Ports) < spec.Ports {
		p, err := freePort(s.Ports)
		if err != nil {
			return nil, err
		}
		s.Ports = append(s.Ports, p)
	}
	req := testcontainers.ContainerRequest{Image: image}
	if spec.Cmd != nil {
		req.Cmd = spec.Cmd(s)
	}
	if spec.Env != nil {
		req.Env = spec.Env(s)
	}
	for path, content := range spec.Files {
		req.Files = append(req.Files, testcontainers.ContainerFile{
			Reader: bytes.NewReader(content), ContainerFilePath: path, FileMode: 0o644,
		})
	}
	req.HostConfigModifier = func(hc *container.HostConfig) {
		if env.hostMode {
			hc.NetworkMode = "host"
			return
		}
		hc.PortBindings = network.PortMap{}
		for _, p := range s.Ports {
			port := network.MustParsePort(strconv.Itoa(p) + "/tcp")
			hc.PortBindings[port] = []network.PortBinding{{HostIP: loopback, HostPort: strconv.Itoa(p)}}
		}
	}
	if !env.hostMode {
		for _, p := range s.Ports {
			req.ExposedPorts = append(req.ExposedPorts, strconv.Itoa(p)+"/tcp")
		}
	}
	ctr, err := env.provider.RunContainer(ctx, req)
	if ctr != nil {
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if err := ctr.Terminate(ctx); err != nil {
				t.Logf("testenv: removing %s: %v", spec.Image, err)
			}
		})
	}
	if err != nil {
		return nil, err
	}
	s.ctr = ctr
	if err := s.waitReady(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

var loopback = netip.MustParseAddr("127.0.0.1")

// freePort returns a port that is free on loopback now, outside the
// kernel's ephemeral range (so client sockets do not take it later) and not
// in taken.
func freePort(taken []int) (int, error) {
	for i := 0; i < 100; i++ {
		p := 20000 + rand.IntN(12000)
		if containsInt(taken, p) {
			continue
		}
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			continue
		}
		l.Close()
		return p, nil
	}
	return 0, errors.New("no free port found")
}

func containsInt(xs []int, x int) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

func (s *Server) waitReady(ctx context.Context) error {
	timeout := s.spec.StartupTimeout
	if timeout == 0 {
		timeout = time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	ready := s.spec.Ready
	if ready == nil {
		ready = dialAll
	}
	var err error
	for {
		attemptCtx, cancelAttempt := context.WithTimeout(ctx, 5*time.Second)
		err = ready(attemptCtx, s)
		cancelAttempt()
		if err == nil {
			return nil
		}
		st, serr := s.ctr.State(ctx)
		if serr == nil && !st.Running {
			return fmt.Errorf("container exited (code %d): %s", st.ExitCode, s.logTail())
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("not ready after %v: %v; log: %s", timeout, err, s.logTail())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func dialAll(ctx context.Context, s *Server) error {
	for i := range s.Ports {
		var d net.Dialer
		conn, err := d.DialContext(ctx, "tcp", s.Addr(i))
		if err != nil {
			return err
		}
		conn.Close()
	}
	return nil
}

// logTail returns the end of the container's log, for error messages.
func (s *Server) logTail() string {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	rc, err := s.ctr.Logs(ctx)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return strings.TrimSpace(string(b))
}

// Stop stops the server's container (SIGTERM, then SIGKILL after a second);
// its data and ports stay reserved for Restart.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	timeout := time.Second
	if err := s.ctr.Stop(ctx, &timeout); err != nil {
		t.Fatalf("testenv: stopping %s: %v", s.spec.Image, err)
	}
}

// Restart starts a stopped server again on the same ports and waits until
// it is ready.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := s.ctr.Start(ctx); err != nil {
		t.Fatalf("testenv: restarting %s: %v", s.spec.Image, err)
	}
	if err := s.waitReady(ctx); err != nil {
		t.Fatalf("testenv: restarting %s: %v", s.spec.Image, err)
	}
}

// Exec runs cmd in the server's container and returns its output; a
// non-zero exit fails t.
func (s *Server) Exec(t testing.TB, cmd ...string) string {
	t.Helper()
	out, err := s.TryExec(cmd...)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	return out
}

// TryExec is Exec that returns the failure instead of failing a test.
func (s *Server) TryExec(cmd ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	code, r, err := s.ctr.Exec(ctx, cmd, tcexec.Multiplexed())
	if err != nil {
		return "", fmt.Errorf("exec %q in %s: %v", cmd, s.spec.Image, err)
	}
	b, _ := io.ReadAll(r)
	out := string(b)
	if code != 0 {
		return out, fmt.Errorf("exec %q in %s: exit %d: %s", cmd, s.spec.Image, code, out)
	}
	return out, nil
}

// ClosedAddr returns a loopback address that nothing listens on (a port
// just released), for tests of a backend that cannot be reached.
func ClosedAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// OutageOn returns a drivertest.Harness.Outage for a backend on a server in
// a container: it starts a server of its own with start, opens a cache on
// cacheURL(u), u being the URL start returned, and stops and restarts that
// server.
func OutageOn(start func(testing.TB) (*Server, string), cacheURL func(u string) string) func(testing.TB) (certcache.Cache, func(), func()) {
	return func(t testing.TB) (certcache.Cache, func(), func()) {
		srv, u := start(t)
		c, err := certcache.Open(context.Background(), cacheURL(u))
		if err != nil {
			t.Fatal(err)
		}
		return c, func() { srv.Stop(t) }, func() { srv.Restart(t) }
	}
}
