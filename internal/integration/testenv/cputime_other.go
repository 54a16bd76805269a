//go:build !unix

package testenv

import "time"

// CPUTime is not measured here; see the unix version.
func CPUTime() (time.Duration, bool) { return 0, false }
