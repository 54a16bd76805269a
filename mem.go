package certcache

import (
	"context"
	"fmt"
	"iter"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/certcache/certcache/driver"

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

func openMem(_ context.Context, u *url.URL) (driver.Driver, error) {
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
	mu     sync.RWMutex
	m      map[string]memValue
	leases map[string]memLease // apart from m: a lease is never a key

	watchers memWatchers // see mem_watch.go
}

type memValue struct {
	data []byte
	mod  time.Time
}

type memLease struct {
	token   string
	expires time.Time
}

func newMemStore() *memStore {
	return &memStore{m: make(map[string]memValue), leases: make(map[string]memLease)}
}

func (s *memStore) Get(_ context.Context, key string) ([]byte, error) {
	s.mu.RLock()
	v, ok := s.m[key]
	s.mu.RUnlock()
	if !ok {
		return nil, autocert.ErrCacheMiss
	}
	return append([]byte{}, v.data...), nil // the caller owns what it gets
}

func (s *memStore) Put(_ context.Context, key string, data []byte) error {
	v := memValue{append([]byte{}, data...), time.Now()} // the caller may reuse data
	s.mu.Lock()
	s.m[key] = v
	s.mu.Unlock()
	s.changed(key)
	return nil
}

func (s *memStore) Delete(_ context.Context, key string) error {
	s.mu.Lock()
	delete(s.m, key)
	s.mu.Unlock()
	s.changed(key)
	return nil
}

func (s *memStore) Close() error { return nil }

// List yields the keys that begin with prefix. The keys are copied out in
// one pass under the read lock (a string header each, the strings shared
// with the map), so a Put is never blocked while the caller works through
// the listing; each entry is looked up again as it is yielded, and a key
// deleted meanwhile is left out.
func (s *memStore) List(ctx context.Context, prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		s.mu.RLock()
		keys := make([]string, 0, len(s.m))
		for k := range s.m {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		s.mu.RUnlock()
		for _, k := range keys {
			if err := ctx.Err(); err != nil {
				yield(Entry{}, err)
				return
			}
			s.mu.RLock()
			v, ok := s.m[k]
			s.mu.RUnlock()
			if ok && !yield(Entry{Key: k, Size: int64(len(v.data)), ModTime: v.mod}, nil) {
				return
			}
		}
	}
}

// AcquireLease implements driver.LeaseDriver on the process's clock, which is the
// store's clock here.
func (s *memStore) AcquireLease(_ context.Context, name, token string, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.token != token && now.Before(l.expires) {
		return ErrLeaseHeld
	}
	s.leases[name] = memLease{token, now.Add(ttl)}
	return nil
}

// RefreshLease implements driver.LeaseDriver.
func (s *memStore) RefreshLease(_ context.Context, name, token string, ttl time.Duration) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; !ok || l.token != token || !now.Before(l.expires) {
		return ErrLeaseLost
	}
	s.leases[name] = memLease{token, now.Add(ttl)}
	return nil
}

// ReleaseLease implements driver.LeaseDriver.
func (s *memStore) ReleaseLease(_ context.Context, name, token string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if l, ok := s.leases[name]; ok && l.token == token {
		delete(s.leases, name)
	}
	return nil
}

// ListLeases implements driver.LeaseAdminDriver. The leases are copied out under
// the lock and yielded after it.
func (s *memStore) ListLeases(ctx context.Context, prefix string) iter.Seq2[LeaseInfo, error] {
	return func(yield func(LeaseInfo, error) bool) {
		s.mu.RLock()
		var ls []LeaseInfo
		for name, l := range s.leases {
			if strings.HasPrefix(name, prefix) {
				ls = append(ls, LeaseInfo{Name: name, Holder: l.token, Expires: l.expires})
			}
		}
		s.mu.RUnlock()
		yieldLeases(ctx, ls, yield)
	}
}

// BreakLease implements driver.LeaseAdminDriver.
func (s *memStore) BreakLease(_ context.Context, name string, force bool) error {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.leases[name]
	if ok && !force && now.Before(l.expires) {
		return fmt.Errorf("%w: it expires in %v", ErrLeaseHeld, l.expires.Sub(now).Round(time.Millisecond))
	}
	delete(s.leases, name)
	return nil
}

// neverBlocks tells the portable layer that calls need no deadline.
func (s *memStore) neverBlocks() {}
