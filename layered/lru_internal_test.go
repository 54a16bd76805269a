package layered

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// modelLRU is what lru must behave like: keys from the most recently used
// to the least, and their values.
type modelLRU struct {
	order []string
	vals  map[string]string
}

func (m *modelLRU) touch(k string) {
	m.order = slices.DeleteFunc(m.order, func(o string) bool { return o == k })
	m.order = slices.Insert(m.order, 0, k)
}

// TestLRUAgainstModel runs random operations on an lru and on a model of
// it, and checks after each that both hold the same entries in the same
// order, and that the lru's links, index and free list are consistent.
func TestLRUAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name string
		keys int // distinct keys drawn from
		ops  int
	}{
		{"Few", 3, 2000},
		{"Some", 40, 20000},
		{"Many", 1000, 20000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(1, uint64(tc.keys)))
			l, m := newLRU(), &modelLRU{vals: map[string]string{}}
			maxLive := 0
			for op := range tc.ops {
				k := fmt.Sprintf("k%d", r.IntN(tc.keys))
				switch o := r.IntN(6); o {
				case 0, 1: // set
					v := fmt.Sprint(op)
					old, had := l.set(k, []byte(v), int64(op))
					wantOld, wantHad := m.vals[k]
					if had != wantHad || string(old) != wantOld {
						t.Fatalf("op %d: set(%s) replaced %q %v, want %q %v", op, k, old, had, wantOld, wantHad)
					}
					m.vals[k] = v
					m.touch(k)
				case 2, 3: // get, which makes k the most recently used; peek
					read, name := l.get, "get"
					if o == 3 {
						read, name = l.peek, "peek"
					}
					v, _, ok := read(k)
					want, wantOK := m.vals[k]
					if ok != wantOK || string(v) != want {
						t.Fatalf("op %d: %s(%s) = %q %v, want %q %v", op, name, k, v, ok, want, wantOK)
					}
					if ok && o == 2 {
						m.touch(k)
					}
				case 4: // remove
					v, ok := l.remove(k)
					want, wantOK := m.vals[k]
					if ok != wantOK || string(v) != want {
						t.Fatalf("op %d: remove(%s) = %q %v, want %q %v", op, k, v, ok, want, wantOK)
					}
					delete(m.vals, k)
					m.order = slices.DeleteFunc(m.order, func(o string) bool { return o == k })
				case 5: // removeOldest
					key, v, ok := l.removeOldest()
					if len(m.order) == 0 {
						if ok {
							t.Fatalf("op %d: removeOldest of nothing = %s", op, key)
						}
						break
					}
					want := m.order[len(m.order)-1]
					if !ok || key != want || string(v) != m.vals[want] {
						t.Fatalf("op %d: removeOldest = %s %q %v, want %s %q", op, key, v, ok, want, m.vals[want])
					}
					delete(m.vals, want)
					m.order = m.order[:len(m.order)-1]
				}
				maxLive = max(maxLive, l.len())
				checkLRU(t, op, l, m.order)
				if len(l.nodes)-1 > maxLive {
					t.Fatalf("op %d: %d nodes for at most %d entries at once: removed nodes are not reused", op, len(l.nodes)-1, maxLive)
				}
			}
			l.purge()
			checkLRU(t, tc.ops, l, nil)
		})
	}
}

// checkLRU checks that l holds want, most recently used first, with
// consistent links and index, and every other node on the free list.
func checkLRU(t *testing.T, op int, l *lru, want []string) {
	t.Helper()
	var got []string
	prev := int32(0)
	for i, n := l.nodes[0].next, 0; i != 0; i, n = l.nodes[i].next, n+1 {
		if n > len(l.nodes) || l.nodes[i].prev != prev {
			t.Fatalf("op %d: broken ring at node %d", op, i)
		}
		if l.index[l.nodes[i].key] != i {
			t.Fatalf("op %d: index of %s is %d, node %d", op, l.nodes[i].key, l.index[l.nodes[i].key], i)
		}
		got = append(got, l.nodes[i].key)
		prev = i
	}
	if l.nodes[0].prev != prev {
		t.Fatalf("op %d: the sentinel's prev is %d, the last node %d", op, l.nodes[0].prev, prev)
	}
	if !slices.Equal(got, want) || l.len() != len(want) {
		t.Fatalf("op %d: order %q (len %d), want %q", op, got, l.len(), want)
	}
	free := 0
	for i := l.free; i != 0; i = l.nodes[i].next {
		if n := l.nodes[i]; n.key != "" || n.val != nil {
			t.Fatalf("op %d: free node %d still holds %q", op, i, n.key)
		}
		if free++; free > len(l.nodes) {
			t.Fatalf("op %d: the free list loops", op)
		}
	}
	if len(want)+free != len(l.nodes)-1 {
		t.Fatalf("op %d: %d entries and %d free nodes of %d", op, len(want), free, len(l.nodes)-1)
	}
}
