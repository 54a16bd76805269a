package layered_test

import (
	"context"
	"crypto/tls"
	"fmt"
	"testing"
	"time"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/internal/leakcheck"
	"github.com/certcache/certcache/layered"
	"golang.org/x/crypto/acme/autocert"
)

// Close of a stack ends every goroutine it and its tiers started: a
// running preload, the memory front's, coordination's keep-alive of an
// order lease, and a handshake waiting through certcache.GetCertificate.
func TestCloseLeavesNoGoroutine(t *testing.T) {
	defer leakcheck.VerifyNone(t, leakcheck.Take(), 5*time.Second)
	store := fmt.Sprintf("mem://leak-%d", stackSeq.Add(1))
	fill := mustOpen(t, store)
	for i := range 200 {
		fill.Put(context.Background(), fmt.Sprintf("n%d.example", i), []byte("v"))
	}
	fill.Close()
	a := mustOpen(t, store+"?memory=true&memory_preload=true")
	b := mustOpen(t, store+"?memory=true")
	order, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	if _, err := a.Get(order, "leak.example"); err != autocert.ErrCacheMiss { //nolint:errorlint
		t.Fatalf("Get = %v, want the miss", err)
	}
	get := certcache.GetCertificate(&autocert.Manager{Cache: b, Prompt: autocert.AcceptTOS}, b)
	waited := make(chan error, 1)
	go func() {
		_, err := get(&tls.ClientHelloInfo{ServerName: "leak.example"})
		waited <- err
	}()
	time.Sleep(300 * time.Millisecond)
	if st, _ := layered.StatsOf(a); st.Entries == 0 && !st.PreloadDone {
		t.Log("the preload had not begun; Close stops it all the same")
	}
	a.Close()
	b.Close()
	select {
	case <-waited:
	case <-time.After(10 * time.Second):
		t.Fatal("a handshake still waits 10 s after its cache was closed")
	}
}
