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
// is stopped.
//
// The freezer can refuse: a process in uninterruptible I/O (a database's
// fsync on a busy disk) cannot be frozen, and runc gives up. Pause tries a
// few times over a few seconds; if the container still cannot be frozen,
// it logs why and returns ok false, and the caller injects no fault this
// time: a fault that could not be placed says nothing of the code under
// test. A resume that fails is a test failure (t.Errorf): the server would
// stay frozen. Pause and its resume may be called from any goroutine.
func (s *Server) Pause(t testing.TB) (resume func(), ok bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	cli, err := testcontainers.NewDockerClientWithOpts(ctx)
	if err != nil {
		t.Errorf("testenv: pausing %s: docker: %v", s.spec.Image, err)
		return func() {}, false
	}
	id := s.ctr.GetContainerID()
	for attempt := 1; ; attempt++ {
		_, err = cli.ContainerPause(ctx, id, client.ContainerPauseOptions{})
		if err == nil {
			break
		}
		if attempt == pauseAttempts || ctx.Err() != nil {
			cli.Close()
			t.Logf("testenv: %s could not be paused (%d attempts), no fault injected: %v", s.spec.Image, attempt, err)
			return func() {}, false
		}
		time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
	}
	var once sync.Once
	resume = func() {
		once.Do(func() {
			defer cli.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var err error
			for attempt := 1; attempt <= pauseAttempts; attempt++ {
				if _, err = cli.ContainerUnpause(ctx, id, client.ContainerUnpauseOptions{}); err == nil {
					return
				}
				time.Sleep(time.Duration(attempt) * 250 * time.Millisecond)
			}
			t.Errorf("testenv: resuming %s: %v", s.spec.Image, err)
		})
	}
	t.Cleanup(resume)
	return resume, true
}

// pauseAttempts bounds Pause's and resume's tries.
const pauseAttempts = 5
