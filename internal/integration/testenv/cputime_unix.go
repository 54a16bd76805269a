//go:build unix

package testenv

import (
	"syscall"
	"time"
)

// CPUTime returns the CPU time the process has used, user and system, all
// threads (the GC's workers included). On a shared machine, wall time
// counts the time other processes hold the cores; CPU time does not.
func CPUTime() (time.Duration, bool) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, false
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), true
}
