//go:build !unix

package reliability

import "time"

// cpuTime is not measured here; see the unix version.
func cpuTime() (time.Duration, bool) { return 0, false }
