package lograte

import (
	"testing"
	"time"
)

func TestLimiter(t *testing.T) {
	var l Limiter
	if more, ok := l.Allow(time.Hour); !ok || more != 0 {
		t.Fatalf("first line: Allow = %d, %v; want 0, true", more, ok)
	}
	for i := range 3 {
		if _, ok := l.Allow(time.Hour); ok {
			t.Fatalf("line %d within the interval was allowed", i+2)
		}
	}
	if more, ok := l.Allow(0); !ok || more != 3 {
		t.Fatalf("after the interval: Allow = %d, %v; want 3 held back, true", more, ok)
	}
	if more, ok := l.Allow(0); !ok || more != 0 {
		t.Fatalf("next line: Allow = %d, %v; want the count reset to 0", more, ok)
	}
}
