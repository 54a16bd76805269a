package certcache

import (
	"context"
	"sync"
)

// memWatchers are the subscriptions to a memStore's changes: every Cache
// opened on a named store in the process, each with one.
type memWatchers struct {
	mu   sync.Mutex
	subs map[*memSub]struct{}
}

type memSub struct{ changed func(string) }

// Watch implements driver.WatchDriver: a Put or Delete calls changed before it
// returns.
func (s *memStore) Watch(ctx context.Context, ready func(), changed func(key string)) error {
	sub := &memSub{changed}
	s.watchers.mu.Lock()
	if s.watchers.subs == nil {
		s.watchers.subs = map[*memSub]struct{}{}
	}
	s.watchers.subs[sub] = struct{}{}
	s.watchers.mu.Unlock()
	ready()
	<-ctx.Done()
	s.watchers.mu.Lock()
	delete(s.watchers.subs, sub)
	s.watchers.mu.Unlock()
	return ctx.Err()
}

// changed tells the subscriptions that key changed.
func (s *memStore) changed(key string) {
	s.watchers.mu.Lock()
	defer s.watchers.mu.Unlock()
	for sub := range s.watchers.subs {
		sub.changed(key)
	}
}
