// Package leakcheck tells a test whether the code it ran left goroutines
// behind, as go.uber.org/goleak does. It is kept here, in a few lines,
// because the root package's and drivertest's tests would otherwise add
// goleak to the go.sum of every module that imports certcache (go mod tidy
// records the modules of its dependencies' tests).
package leakcheck

import (
	"bytes"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Snapshot is the set of goroutines alive at one moment, by ID.
type Snapshot map[int]bool

// Take records the goroutines alive now.
func Take() Snapshot {
	s := Snapshot{}
	for _, g := range goroutines() {
		s[g.id] = true
	}
	return s
}

// VerifyNone fails t if a goroutine that was not in before is still alive:
// it retries for up to wait, since goroutines that were told to end may
// take a moment to return. The test goroutines of package testing and the
// caller's own goroutine are not counted.
func VerifyNone(t testing.TB, before Snapshot, wait time.Duration) {
	t.Helper()
	deadline := time.Now().Add(wait)
	for delay := time.Millisecond; ; delay = min(2*delay, 100*time.Millisecond) {
		var left []string
		for _, g := range goroutines() {
			if !before[g.id] && !g.current && !g.harness() {
				left = append(left, g.stack)
			}
		}
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d goroutine(s) left behind after %v:\n\n%s", len(left), wait, strings.Join(left, "\n\n"))
			return
		}
		time.Sleep(delay)
	}
}

type goroutine struct {
	id      int
	current bool
	stack   string
}

// harness reports whether g belongs to the test binary rather than to the
// code under test: a test's own goroutine, or the signal handler the
// runtime starts on demand.
func (g goroutine) harness() bool {
	return strings.Contains(g.stack, "\ntesting.tRunner(") ||
		strings.Contains(g.stack, "\ntesting.(*T).Run(") ||
		strings.Contains(g.stack, "\ntesting.runTests(") ||
		strings.Contains(g.stack, "\nos/signal.signal_recv(") ||
		strings.Contains(g.stack, "\nos/signal.loop(")
}

// goroutines parses runtime.Stack of every goroutine; the first is the
// caller's own.
func goroutines() []goroutine {
	buf := make([]byte, 1<<16)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var gs []goroutine
	for i, block := range bytes.Split(buf, []byte("\n\n")) {
		header, _, _ := bytes.Cut(block, []byte("\n"))
		// "goroutine 18 [chan receive]:"
		f := strings.Fields(string(header))
		if len(f) < 2 || f[0] != "goroutine" {
			continue
		}
		id, err := strconv.Atoi(f[1])
		if err != nil {
			continue
		}
		gs = append(gs, goroutine{id: id, current: i == 0, stack: "\n" + string(block)})
	}
	return gs
}
