//go:build !unix

package layered_test

import "time"

func cpuTime() (time.Duration, bool) { return 0, false }
