package testenv

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// Pause stops every process of the server's container, as docker pause
// does (the cgroup freezer), and returns the func that resumes them. The
// kernel still accepts connections and queues requests; they are answered
// at the resume: a store whose host is overloaded or stuck in I/O. A pause
// left on when the test ends is resumed by a cleanup, before the container
// is stopped. Failures are reported with t.Errorf, so Pause and its resume
// may be called from any goroutine; a pause that failed resumes nothing.
func (s *Server) Pause(t testing.TB) (resume func()) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Errorf("testenv: pausing %s: docker: %v", s.spec.Image, err)
		return func() {}
	}
	id := s.ctr.GetContainerID()
	if _, err := cli.ContainerPause(ctx, id, client.ContainerPauseOptions{}); err != nil {
		cli.Close()
		t.Errorf("testenv: pausing %s: %v", s.spec.Image, err)
		return func() {}
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err != nil {
				t.Errorf("testenv: resuming %s: %v", s.spec.Image, err)
			}
		})
	}
	t.Cleanup(resume)
	return resume
}
