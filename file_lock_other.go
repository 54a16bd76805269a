//go:build !unix

package certcache

import (
	"fmt"
	"os"
	"runtime"
)

// lockFile: file:// leases need flock(2), which this system lacks.
func lockFile(*os.File) (func(), error) {
	return nil, fmt.Errorf("%w: file:// leases need flock, not available on %s", ErrUnsupported, runtime.GOOS)
}
