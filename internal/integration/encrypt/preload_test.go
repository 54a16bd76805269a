package encrypt_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
)

// TestPreloadThroughEncryption: a memory front's preload over an encrypted
// SQLite cache reads the sealed values in batches (GetMany through the
// wrapper) and holds them opened. A value sealed with another key fails
// its batch; the preload reads that batch again name by name, loads the
// others and counts the one error.
func TestPreloadThroughEncryption(t *testing.T) {
	dir := t.TempDir()
	base := "sqlite://" + dir + "/cache.db?timeout=20s&encryption_key="
	ref, other := b64File(t, newKey(t)), b64File(t, newKey(t))
	w, err := certcache.Open(context.Background(), base+ref)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	const n = 300
	for i := range n {
		if err := w.Put(context.Background(), fmt.Sprintf("h%03d.example", i), fmt.Appendf(nil, "cert %d", i)); err != nil {
			t.Fatal(err)
		}
	}
	stranger, err := certcache.Open(context.Background(), base+other)
	if err != nil {
		t.Fatal(err)
	}
	defer stranger.Close()
	if err := stranger.Put(context.Background(), "h150.example", []byte("sealed with another key")); err != nil {
		t.Fatal(err)
	}

	c, err := certcache.Open(context.Background(), base+ref+"&memory=true&memory_preload=true")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if !hook.ReadsInBatches(c) {
		t.Fatal("ReadsInBatches = false over SQLite through encryption")
	}
	stack := certcache.Uncoordinated(c).(*layered.Stack)
	select {
	case <-stack.PreloadDone():
	case <-time.After(time.Minute):
		t.Fatal("the preload did not end")
	}
	if st := stack.Stats(); st.PreloadListed != n || st.PreloadLoaded != n-1 || st.PreloadErrors != 1 {
		t.Errorf("Stats = %+v, want %d listed, %d loaded, 1 error", st, n, n-1)
	}
	front := stack.Unwrap()[0]
	for _, i := range []int{0, 149, 151, n - 1} {
		k := fmt.Sprintf("h%03d.example", i)
		v, err := front.Get(context.Background(), k)
		if err != nil || !bytes.Equal(v, fmt.Appendf(nil, "cert %d", i)) {
			t.Errorf("front Get(%s) = %q, %v; want the opened value", k, v, err)
		}
	}
}
