package certcache

import (
	"context"
	"crypto/tls"
	"errors"
	"sync"
	"time"

	"golang.org/x/crypto/acme/autocert"
)

// GetCertificate returns a tls.Config.GetCertificate for m, whose Cache is c
// (or wraps c), that waits outside autocert's lock for a certificate
// another node is ordering, instead of failing the handshake with
// ErrIssuing; a wait that ends without one fails the handshake and never
// orders. It also tells c m's RenewBefore.
func GetCertificate(m *autocert.Manager, c Cache) func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	w := &waiter{m: m, c: c, polls: map[string]*poll{}}
	if co := findCoordinated(c); co != nil {
		w.handBack = co.ttl / 2
		co.watch(m)
	}
	return w.getCertificate
}

// TLSConfig is m.TLSConfig() with GetCertificate(m, c): TLS-ALPN-01 and the
// HTTP/2 protocols stay as autocert sets them.
func TLSConfig(m *autocert.Manager, c Cache) *tls.Config {
	cfg := m.TLSConfig()
	cfg.GetCertificate = GetCertificate(m, c)
	return cfg
}

// maxWait bounds a handshake's wait as autocert bounds an order.
const maxWait = 5 * time.Minute

type waiter struct {
	m        *autocert.Manager
	c        Cache
	handBack time.Duration

	mu    sync.Mutex
	polls map[string]*poll // certificate key → its one poller
}

// poll is the one poller of a key; landed is closed when the key's value
// is in the store, or when it is time to hand back (landed or not).
type poll struct {
	landed chan struct{}
}

func (w *waiter) getCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	ctx := hello.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	ctx, cancel := context.WithTimeout(ctx, maxWait)
	defer cancel()
	for {
		cert, err := w.m.GetCertificate(hello)
		var ce *Error
		if err == nil || !errors.Is(err, ErrIssuing) || !errors.As(err, &ce) || ce.Key == "" {
			return cert, err
		}
		select {
		case <-w.await(ce.Key):
		case <-ctx.Done():
			return nil, err // the order's error, not the context's: it says why
		}
	}
}

// await returns a channel closed when key's value has landed or it is time
// to hand back; one goroutine polls per key however many handshakes wait.
func (w *waiter) await(key string) <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	if p, ok := w.polls[key]; ok {
		return p.landed
	}
	p := &poll{landed: make(chan struct{})}
	w.polls[key] = p
	go w.poll(key, p)
	return p.landed
}

func (w *waiter) poll(key string, p *poll) {
	defer func() {
		w.mu.Lock()
		delete(w.polls, key)
		w.mu.Unlock()
		close(p.landed)
	}()
	handBack := w.handBack
	if handBack <= 0 {
		handBack = DefaultLeaseTTL / 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), handBack)
	defer cancel()
	watch := watchKey(w.c, key)
	defer watch.Stop()
	for {
		if _, err := w.c.Get(peek(ctx), key); err == nil || errors.Is(err, ErrClosed) {
			return
		}
		if watch.Wait(ctx) != nil {
			return
		}
	}
}

// findCoordinated finds the coordination layer of c, if any.
func findCoordinated(c Cache) *coordinated {
	for depth := 0; c != nil && depth < 16; depth++ {
		switch w := c.(type) {
		case *coordinated:
			return w
		case interface{ Unwrap() Cache }:
			c = w.Unwrap()
		default:
			return nil
		}
	}
	return nil
}
