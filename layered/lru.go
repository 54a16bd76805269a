package layered

// lru is the Memory tier's map in least-recently-used order: its entries
// in one slice, linked by index, and a map from key to index, so that the
// bookkeeping per entry (a 56-byte node and a map slot, about 115 bytes)
// stays a small fraction of the certificate it holds (BENCHMARKS.md,
// "Restart").
//
// It is not safe for concurrent use: Memory holds its mutex around every
// call.
type lru struct {
	index map[string]int32
	// nodes[0] is the sentinel of the ring: its next is the most recently
	// used entry, its prev the least; 0 in a link means the sentinel.
	nodes []lruNode
	free  int32 // the first unused node, linked by next; 0 if none
}

type lruNode struct {
	key        string
	val        []byte // never modified: a store puts a new slice
	expires    int64  // when the copy stops being fresh; see Memory.clock
	prev, next int32
}

func newLRU() *lru {
	return &lru{index: map[string]int32{}, nodes: make([]lruNode, 1)}
}

// len returns the number of entries.
func (l *lru) len() int { return len(l.index) }

// get returns key's entry and makes it the most recently used.
func (l *lru) get(key string) (val []byte, expires int64, ok bool) {
	i, ok := l.index[key]
	if !ok {
		return nil, 0, false
	}
	l.unlink(i)
	l.pushFront(i)
	return l.nodes[i].val, l.nodes[i].expires, true
}

// peek returns key's entry without changing the order.
func (l *lru) peek(key string) (val []byte, expires int64, ok bool) {
	i, ok := l.index[key]
	if !ok {
		return nil, 0, false
	}
	return l.nodes[i].val, l.nodes[i].expires, true
}

// set holds val for key as the most recently used entry, and returns the
// value it replaced, if any.
func (l *lru) set(key string, val []byte, expires int64) (old []byte, had bool) {
	if i, ok := l.index[key]; ok {
		n := &l.nodes[i]
		old, n.val, n.expires = n.val, val, expires
		l.unlink(i)
		l.pushFront(i)
		return old, true
	}
	i := l.free
	if i != 0 {
		l.free = l.nodes[i].next
	} else {
		i = int32(len(l.nodes))
		l.nodes = append(l.nodes, lruNode{})
	}
	l.nodes[i] = lruNode{key: key, val: val, expires: expires}
	l.pushFront(i)
	l.index[key] = i
	return nil, false
}

// remove forgets key and returns its value, if it was held.
func (l *lru) remove(key string) (val []byte, ok bool) {
	i, ok := l.index[key]
	if !ok {
		return nil, false
	}
	return l.drop(i), true
}

// removeOldest forgets the least recently used entry and returns it.
func (l *lru) removeOldest() (key string, val []byte, ok bool) {
	i := l.nodes[0].prev
	if i == 0 {
		return "", nil, false
	}
	key = l.nodes[i].key
	return key, l.drop(i), true
}

// purge forgets every entry and releases the memory they took.
func (l *lru) purge() { *l = *newLRU() }

// drop forgets node i, which is in use, and returns its value.
func (l *lru) drop(i int32) []byte {
	val := l.nodes[i].val
	delete(l.index, l.nodes[i].key)
	l.unlink(i)
	l.nodes[i] = lruNode{next: l.free} // let go of the key and value
	l.free = i
	return val
}

func (l *lru) unlink(i int32) {
	n := &l.nodes[i]
	l.nodes[n.prev].next = n.next
	l.nodes[n.next].prev = n.prev
}

func (l *lru) pushFront(i int32) {
	first := l.nodes[0].next
	l.nodes[i].prev, l.nodes[i].next = 0, first
	l.nodes[first].prev = i
	l.nodes[0].next = i
}
