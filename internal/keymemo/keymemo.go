// Package keymemo keeps, per cache key, what a backend builds from the key
// for every call: the name it stores the key under, boxed as the SDK's
// arguments hold it. autocert reads the same few keys over and over, and
// building them per call costs allocations that a raw SDK call on a
// constant name does not pay.
package keymemo

import "sync"

// Max bounds a Memo: a node serves at most a few thousand names, with a
// few keys each. Keys beyond it are built per call.
const Max = 4096

// Memo maps keys to what was built from them. The zero Memo is empty and
// ready to use.
type Memo[V any] struct {
	mu sync.RWMutex
	m  map[string]V
}

// Get returns build(key), built once per key.
func (m *Memo[V]) Get(key string, build func(string) V) V {
	m.mu.RLock()
	v, ok := m.m[key]
	m.mu.RUnlock()
	if ok {
		return v
	}
	v = build(key)
	m.mu.Lock()
	if m.m == nil {
		m.m = make(map[string]V)
	}
	if len(m.m) < Max {
		m.m[key] = v
	}
	m.mu.Unlock()
	return v
}
