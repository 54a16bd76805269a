//go:build !linux

package certcache

// localFS reports false: outside Linux, file:// waiters poll.
func localFS(string) (bool, error) { return false, nil }
