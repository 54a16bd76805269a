// Package httpfault makes HTTP failures that tests need and servers cannot be
// asked for: an answer lost after the server acted.
package httpfault

import (
	"io"
	"net"
	"net/http"
	"sync"
	"syscall"
)

// LostAnswer is an http.RoundTripper that, once armed, lets the next
// request that Match accepts reach the server and then reports a connection
// reset instead of the server's answer, as when a connection drops after
// the server acted. An SDK's retryer then sends the request again. It
// records the status of every matched request since it was armed, the
// lost answer's included.
type LostAnswer struct {
	// Next sends the requests; if nil, a clone of http.DefaultTransport.
	Next http.RoundTripper
	// Match picks the requests whose answers may be lost.
	Match func(*http.Request) bool

	once     sync.Once
	mu       sync.Mutex
	armed    bool
	statuses []int
}

// Arm makes the next matched request lose its answer, and forgets the
// statuses recorded so far.
func (l *LostAnswer) Arm() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.armed, l.statuses = true, nil
}

// Statuses returns the statuses the server gave the matched requests since
// Arm, in order.
func (l *LostAnswer) Statuses() []int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]int(nil), l.statuses...)
}

// RoundTrip sends req, and loses its answer if armed and req matches.
func (l *LostAnswer) RoundTrip(req *http.Request) (*http.Response, error) {
	l.once.Do(func() {
		if l.Next == nil {
			l.Next = http.DefaultTransport.(*http.Transport).Clone()
		}
	})
	resp, err := l.Next.RoundTrip(req)
	if err != nil || !l.Match(req) {
		return resp, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.statuses = append(l.statuses, resp.StatusCode)
	if !l.armed {
		return resp, nil
	}
	l.armed = false
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return nil, &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
}
