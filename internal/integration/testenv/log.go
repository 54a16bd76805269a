package testenv

import (
	"io"
	"strings"
	"sync"
	"testing"
)

// Log returns a writer that copies what a server or library logs (Pebble,
// net/http, Caddy) to t.Log while t runs, a line per write, and drops what
// comes after t ended: t.Log panics then.
func Log(t *testing.T) io.Writer {
	w := &logWriter{t: t}
	t.Cleanup(func() {
		w.mu.Lock()
		w.done = true
		w.mu.Unlock()
	})
	return w
}

type logWriter struct {
	t    *testing.T
	mu   sync.Mutex
	done bool
}

func (w *logWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimRight(string(b), "\n"))
	}
	return len(b), nil
}
