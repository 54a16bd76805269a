package reliability

import (
	"testing"

	"github.com/certcache/certcache/internal/testenv"
	_ "github.com/certcache/certcache/redis"
)

// targets are the backends the fault and resource tests cover, each on a
// server that keeps acknowledged writes across a restart.
var targets = []target{
	{"redis", func(t *testing.T) (*testenv.Server, string) {
		srv, u := testenv.RedisDurable(t)
		return srv, u + "/0?prefix=faults"
	}},
}
