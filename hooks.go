package certcache

import "github.com/certcache/certcache/internal/hook"

// The hooks through which layered and encrypt reach this package.
func init() {
	hook.RegisterWrapper = registerWrapper
	hook.CoordinateAs = coordinateAs
	hook.TelemetryOf = telemetryOf
	hook.ReadsInBatches = readsInBatches
	hook.ListKeys = listKeys
	hook.WatchKey = func(c hook.Cache, key string) hook.KeyWatch { return watchKey(c, key) }
}
