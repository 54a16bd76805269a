package gs_test

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// newTestServer serves h, one request at a time, and returns its URL.
func newTestServer(t *testing.T, h http.HandlerFunc) string {
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		h(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}
