package layered_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/layered"
)

// A memory front from the URL alone, on any backend: importing layered adds
// the memory parameters to every scheme.
func Example() {
	ctx := context.Background()
	cache, err := certcache.Open(ctx, "mem://example?memory=true&memory_ttl=1m&memory_max_entries=1000&memory_max_bytes=64MiB")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()

	cache.Put(ctx, "acme_account+key", []byte("account key"))
	cache.Get(ctx, "acme_account+key") // answered from memory
	st, _ := layered.StatsOf(cache)
	fmt.Printf("memory hits %d, backend hits %d, entries %d\n", st.Hits[0], st.Hits[1], st.Entries)
	// Output: memory hits 1, backend hits 0, entries 1
}

// memory → local directory → shared store: a node restarted while the shared
// store is down serves from its directory.
func ExampleNew() {
	ctx := context.Background()
	dir, _ := os.MkdirTemp("", "certs")
	defer os.RemoveAll(dir)
	disk, err := certcache.Open(ctx, "file://"+filepath.Join(dir, "certs"))
	if err != nil {
		fmt.Println(err)
		return
	}
	shared, err := certcache.Open(ctx, "mem://shared-store") // s3://…, redis://… in production
	if err != nil {
		fmt.Println(err)
		return
	}
	cache, err := layered.New(layered.NewMemory(&layered.MemoryOptions{TTL: 30 * time.Second}), disk, shared)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close() // closes every tier
	if err := cache.Put(ctx, "acme_account+key", []byte("account key")); err != nil {
		fmt.Println(err)
		return
	}
	v, err := disk.Get(ctx, "acme_account+key") // the directory holds a copy too
	fmt.Printf("%s %v\n", v, err)
	// Output: account key <nil>
}

// A restarted node loads every certificate into memory in the background
// (memory_preload=true), so that its first handshakes do not read the store
// one after the other under autocert's lock. A server that prefers to take
// traffic only once it is done can wait for it, with a deadline of its own.
func ExampleStack_PreloadDone() {
	ctx := context.Background()
	store, err := certcache.Open(ctx, "mem://preload-example") // redis://…, postgres://… in production
	if err != nil {
		fmt.Println(err)
		return
	}
	defer store.Close()
	store.Put(ctx, "example.com", []byte("certificate and key"))
	store.Put(ctx, "www.example.com", []byte("certificate and key"))
	store.Put(ctx, "acme_account+key", []byte("account key")) // not a certificate: not preloaded

	cache, err := certcache.Open(ctx, "mem://preload-example?memory_preload=true")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer cache.Close()
	stack := certcache.Uncoordinated(cache).(*layered.Stack) // Open puts coordination above the front
	select {
	case <-stack.PreloadDone():
	case <-time.After(10 * time.Second):
	}
	st, _ := layered.StatsOf(cache)
	fmt.Printf("preloaded %d of %d certificates\n", st.PreloadLoaded, st.PreloadListed)
	// Output: preloaded 2 of 2 certificates
}
