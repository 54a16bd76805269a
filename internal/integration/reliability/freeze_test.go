package reliability

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/integration/testenv"
	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// A freeze makes a store hang without closing anything: calls sent to it
// are neither answered nor refused until it thaws.
type freeze struct {
	name string
	// on freezes the store of srv (whose container runs image, reached
	// through px) and returns the func that thaws it. A freeze left on when
	// the test ends is thawed by a cleanup.
	on func(t *testing.T, srv *testenv.Server, image string, px *proxy) (thaw func())
}

var freezes = []freeze{
	// Every process of the server's container stopped, as docker pause
	// does (the cgroup freezer: SIGSTOP for a whole process tree, which a
	// signal to PID 1 alone is not for PostgreSQL's per-connection
	// backends). The kernel still accepts connections and queues requests;
	// they are answered at the thaw. This is a store whose host is
	// overloaded, swapping or stuck in I/O.
	{"Paused", func(t *testing.T, srv *testenv.Server, image string, _ *proxy) func() {
		return pauseContainer(t, srv, image)
	}},
	// toxiproxy's timeout toxic, both ways: connections are accepted and
	// everything sent is dropped; at the thaw the connections open during
	// the freeze are closed. This is a network partition.
	{"Blackhole", func(t *testing.T, _ *testenv.Server, _ string, px *proxy) func() {
		px.add(t, `{"name":"hang_down","type":"timeout","stream":"downstream","attributes":{"timeout":0}}`)
		px.add(t, `{"name":"hang_up","type":"timeout","stream":"upstream","attributes":{"timeout":0}}`)
		return px.reset
	}},
}

// pauseContainer pauses the container of srv through the Docker API and
// returns the func that unpauses it. The container is found by its image
// and by srv's port on its command line (testenv passes the port as an
// argument): with host networking the port is unique to one server.
func pauseContainer(t *testing.T, srv *testenv.Server, image string) func() {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Fatalf("docker: %v", err)
	}
	list, err := cli.ContainerList(ctx, client.ContainerListOptions{})
	if err != nil {
		t.Fatalf("docker: listing containers: %v", err)
	}
	var ids []string
	for _, c := range list.Items {
		if c.Image != testenv.Image(image) {
			continue
		}
		for _, arg := range strings.Fields(c.Command) {
			if arg == srv.Port(0) {
				ids = append(ids, c.ID)
				break
			}
		}
	}
	if len(ids) != 1 {
		t.Fatalf("docker: %d containers of %s have port %s on their command line, want 1", len(ids), testenv.Image(image), srv.Port(0))
	}
	id := ids[0]
	if _, err := cli.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		t.Fatalf("docker: pausing %s: %v", image, err)
	}
	paused := true
	unpause := func() {
		if !paused {
			return
		}
		paused = false
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if _, err := cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
			t.Errorf("docker: unpausing %s: %v", image, err)
		}
	}
	// A paused container cannot be stopped or removed: unpause it before
	// testenv's cleanup, registered earlier, runs.
	t.Cleanup(func() {
		unpause()
		cli.Close()
	})
	return unpause
}

// waitBreakerClosed waits until c's circuit breaker has seen the store
// answer again, for a test that mends a fault and then expects the very
// next call to reach the store: with the breaker open it fails at once
// until a background probe (every certcache.DefaultBreakerProbeInterval)
// gets an answer. It fails t if that takes longer than within.
func waitBreakerClosed(t testing.TB, c certcache.Cache, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		st, ok := certcache.BreakerStatsOf(c)
		if !ok || !st.Open {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the circuit breaker is still open %v after the fault was mended: %+v", within, st)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
