package encrypt

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"

	"github.com/certcache/certcache"
)

// BenchmarkSealOpen measures sealing and opening alone on a 4 KiB value,
// without a store, so the wrapper's share of BenchmarkOverhead is visible
// on a busy machine.
func BenchmarkSealOpen(b *testing.B) {
	key := make([]byte, KeySize)
	rand.Read(key)
	kr, err := NewKeyring(key)
	if err != nil {
		b.Fatal(err)
	}
	c := &cache{kr: kr}
	v := bytes.Repeat([]byte("-----BEGIN CERTIFICATE-----\n"), 4096/28+1)[:4096]
	b.Run("Seal4KiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			c.seal("example.com", v)
		}
	})
	sealed := c.seal("example.com", v)
	buf := make([]byte, len(sealed))
	b.Run("Open4KiB", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(int64(len(v)))
		for b.Loop() {
			copy(buf, sealed) // open works in place
			if _, _, err := c.open("example.com", buf); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// TestIDClash: two keys that share an id (forced here; 2^-64 by chance)
// both open their values.
func TestIDClash(t *testing.T) {
	k1, k2 := make([]byte, KeySize), make([]byte, KeySize)
	rand.Read(k1)
	rand.Read(k2)
	kr1, _ := NewKeyring(k1)
	kr2, _ := NewKeyring(k2)
	kr2.keys[0].id = kr1.keys[0].id
	both := &Keyring{primary: kr1.keys[0], keys: []*aeadKey{kr1.keys[0], kr2.keys[0]}}
	v := []byte("-----BEGIN value")
	for _, kr := range []*Keyring{kr1, kr2} {
		sealed := (&cache{kr: kr}).seal("example.com", v)
		got, _, err := (&cache{kr: both}).open("example.com", sealed)
		if err != nil || !bytes.Equal(got, v) {
			t.Errorf("open with clashing ids = %q, %v", got, err)
		}
	}
}

type single struct{ certcache.Cache }

func (s single) Unwrap() certcache.Cache { return s.Cache }

type multi struct {
	certcache.Cache
	tiers []certcache.Cache
}

func (m multi) Unwrap() []certcache.Cache { return m.tiers }

// TestFind: Reseal finds the encrypting cache under wrappers and stacks.
func TestFind(t *testing.T) {
	key := make([]byte, KeySize)
	rand.Read(key)
	kr, _ := NewKeyring(key)
	inner, _ := certcache.Open(context.Background(), "mem://")
	e := &cache{inner: inner, kr: kr}
	other, _ := certcache.Open(context.Background(), "mem://")
	for name, tc := range map[string]struct {
		c    certcache.Cache
		want *cache
	}{
		"itself":        {e, e},
		"wrapped":       {single{e}, e},
		"wrapped twice": {single{single{e}}, e},
		"second tier":   {multi{other, []certcache.Cache{other, single{e}}}, e},
		"none":          {multi{other, []certcache.Cache{other}}, nil},
		"plain":         {other, nil},
		"nil":           {nil, nil},
	} {
		if got := find(tc.c); got != tc.want {
			t.Errorf("%s: find = %p, want %p", name, got, tc.want)
		}
	}
}
