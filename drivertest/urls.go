package drivertest

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	"golang.org/x/crypto/acme/autocert"
)

// OpenCase is a URL that Open must refuse, and a part of the error message
// that says why. It is an alias of an unnamed struct so that tables of
// cases can be written {url, want}.
type OpenCase = struct {
	URL, Want string
}

// RunOpenErrors checks every case: Open fails with a *certcache.Error for
// the open operation that wraps certcache.ErrInvalidURL, says Want, and
// shows none of secrets.
func RunOpenErrors(t *testing.T, cases []OpenCase, secrets ...string) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.URL, func(t *testing.T) {
			c, err := certcache.Open(context.Background(), tc.URL)
			if err == nil {
				c.Close()
				t.Fatalf("Open succeeded")
			}
			if !errors.Is(err, certcache.ErrInvalidURL) {
				t.Errorf("%v does not match ErrInvalidURL", err)
			}
			var ce *certcache.Error
			if !errors.As(err, &ce) || ce.Op != "open" {
				t.Errorf("%v is not a *certcache.Error for the open operation", err)
			}
			if !strings.Contains(err.Error(), tc.Want) {
				t.Errorf("error %q does not contain %q", err, tc.Want)
			}
			for _, s := range secrets {
				if s != "" && strings.Contains(err.Error(), s) {
					t.Errorf("error reveals a secret: %v", err)
				}
			}
		})
	}
}

// RunOpenAccepts checks that Open accepts every URL. Open contacts no
// server, so none needs to run.
func RunOpenAccepts(t *testing.T, urls []string) {
	t.Helper()
	for _, u := range urls {
		c, err := certcache.Open(context.Background(), u)
		if err != nil {
			t.Errorf("Open(%q): %v", u, err)
			continue
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close of %q: %v", u, err)
		}
	}
}

// GetFailsWith opens rawURL and checks that a Get fails with an error that
// is not a miss, says want, and shows none of secrets: for a server the
// cache must not trust (a wrong CA) or that refuses it.
func GetFailsWith(t *testing.T, rawURL, want string, secrets ...string) {
	t.Helper()
	c, err := certcache.Open(context.Background(), rawURL)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_, err = c.Get(context.Background(), "example.com")
	if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("Get = %v, want a non-miss error", err)
	}
	if !strings.Contains(err.Error(), want) {
		t.Errorf("error %q does not contain %q", err, want)
	}
	for _, s := range secrets {
		if s != "" && strings.Contains(err.Error(), s) {
			t.Errorf("error reveals a secret: %v", err)
		}
	}
}
