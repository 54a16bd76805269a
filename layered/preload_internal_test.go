package layered

import "testing"

// TestRamp: a preload adds a worker per answer up to its concurrency, but
// never has more than maxColdWorkers waiting for their first answer.
func TestRamp(t *testing.T) {
	for _, tc := range []struct {
		name   string
		max    int
		events string // g: an answer (grow?), w: a worker's first Get is over
		want   string // per g: + grew, - did not
	}{
		{"FirstAnswerGrows", 16, "wg", "+"},
		{"ColdBound", 16, "wggggg", "++++-"},           // 1 warm worker answers on: 4 cold ones, then no more
		{"WarmingMakesRoom", 16, "wgggggwg", "++++-+"}, // a cold one answered its first
		{"MaxBound", 2, "wgwgg", "+--"},
		{"One", 1, "wgg", "--"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRamp(tc.max)
			got := ""
			for _, e := range tc.events {
				switch e {
				case 'g':
					if r.grow() {
						got += "+"
					} else {
						got += "-"
					}
				case 'w':
					r.warm()
				}
			}
			if got != tc.want {
				t.Errorf("events %q: grew %q, want %q", tc.events, got, tc.want)
			}
			if r.workers > tc.max || r.cold > maxColdWorkers {
				t.Errorf("%d workers, %d cold: beyond max %d, %d", r.workers, r.cold, tc.max, maxColdWorkers)
			}
		})
	}
}
