// Package lograte bounds a log line that an outage or a misconfiguration
// would repeat on every call to one line per interval, which carries the
// count of the lines it stood for.
package lograte

import (
	"sync"
	"time"
)

// Limiter lets one line through per interval. The zero value is ready.
type Limiter struct {
	mu         sync.Mutex
	last       time.Time
	suppressed uint64
}

// Allow reports whether a line may be logged now: the first ever, or the
// first every interval. If so, more is how many lines were held back since
// the last one logged; if not, this line is counted among them.
func (l *Limiter) Allow(every time.Duration) (more uint64, ok bool) {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.last.IsZero() && now.Sub(l.last) < every {
		l.suppressed++
		return 0, false
	}
	more = l.suppressed
	l.last, l.suppressed = now, 0
	return more, true
}
