package certcache

import (
	"context"
	"fmt"
	"net/url"
	"sync"

	"golang.org/x/crypto/acme/autocert"
)

// mem:// keeps values in process memory. It is the cache for tests and
// single-process programs that want no disk at all; it shares nothing with
// other processes.
//
// mem:// alone gives a store private to that Open. mem://NAME gives the store
// called NAME, shared by every Open of the same name in the process and kept
// after Close, as SQLite's named in-memory databases are; it lives until the
// process exits.
func init() {
	Register("mem", Backend{Name: "mem", Open: openMem})
}

var namedMem struct {
	mu     sync.Mutex
	stores map[string]*memStore
}

func openMem(_ context.Context, u *url.URL) (Driver, error) {
	if u.Opaque != "" || u.User != nil || (u.Path != "" && u.Path != "/") || u.Port() != "" {
		return nil, fmt.Errorf("%w: want mem:// or mem://NAME", ErrInvalidURL)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w: mem:// takes no parameters, got %q", ErrInvalidURL, u.RawQuery)
	}
	name := u.Host
	if name == "" {
		return newMemStore(), nil
	}
	namedMem.mu.Lock()
	defer namedMem.mu.Unlock()
	s, ok := namedMem.stores[name]
	if !ok {
		if namedMem.stores == nil {
			namedMem.stores = make(map[string]*memStore)
		}
		s = newMemStore()
		namedMem.stores[name] = s
	}
	return s, nil
}

// memStore is the mem:// driver. Its Close is a no-op so that a named store
// outlives the caches opened on it.
type memStore struct {
	mu sync.RWMutex
	m  map[string][]byte
}

func newMemStore() *memStore { return &memStore{m: make(map[string][]byte)} }

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		return nil, autocert.ErrCacheMiss
	}
	return append([]byte{}, v...), nil // the caller owns what it gets
}

func (s *memStore) Put(_ context.Context, key string, data []byte) error {
	v := append([]byte{}, data...) // the caller may reuse data
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
	return nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	return nil
}

func (s *memStore) Close() error { return nil }

// neverBlocks tells the portable layer that calls need no deadline.
func (s *memStore) neverBlocks() {}
