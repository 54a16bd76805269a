package redis

import (
	"context"
	"errors"
	"net"
	"os"
	"syscall"
	"testing"

	"github.com/certcache/certcache"
)

// TestRefusedHook: a refused dial becomes an error go-redis does not retry
// (no *net.OpError, no net.Error inside) that still matches
// ErrUnavailable and ECONNREFUSED; other dial failures pass through as they
// are, for go-redis to retry.
func TestRefusedHook(t *testing.T) {
	refused := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.ECONNREFUSED)}
	unreachable := &net.OpError{Op: "dial", Net: "tcp", Err: os.NewSyscallError("connect", syscall.EHOSTUNREACH)}
	for _, tc := range []struct {
		name      string
		dialErr   error
		wantFinal bool
	}{
		{"refused", refused, true},
		{"unreachable", unreachable, false},
		{"timeout", context.DeadlineExceeded, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dial := refusedHook{}.DialHook(func(context.Context, string, string) (net.Conn, error) {
				return nil, tc.dialErr
			})
			_, err := dial(context.Background(), "tcp", "127.0.0.1:1")
			var opErr *net.OpError
			var netErr net.Error
			retryable := errors.As(err, &opErr) || errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded)
			if retryable == tc.wantFinal {
				t.Fatalf("dial error %v: retryable by go-redis = %v, want %v", err, retryable, !tc.wantFinal)
			}
			if !tc.wantFinal {
				if err != tc.dialErr { //nolint:errorlint
					t.Errorf("dial error %v changed to %v", tc.dialErr, err)
				}
				return
			}
			if !errors.Is(err, certcache.ErrUnavailable) || !errors.Is(err, syscall.ECONNREFUSED) {
				t.Errorf("refused dial error %v does not match ErrUnavailable and ECONNREFUSED", err)
			}
			if err.Error() != refused.Error() {
				t.Errorf("message %q, want the dial error's %q", err, refused)
			}
		})
	}
}

func TestGlobEscape(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"certcache:", "certcache:"},
		{"a*b", `a\*b`},
		{"a?b", `a\?b`},
		{"[ab]", `\[ab\]`},
		{`a\b`, `a\\b`},
		{"^-!", "^-!"},
		{"日本*", `日本\*`},
		{"", ""},
	} {
		if got := globEscape(tc.in); got != tc.want {
			t.Errorf("globEscape(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// TestHashSlot checks hashSlot against slots Redis Cluster gives (CLUSTER
// KEYSLOT), hash tags included.
func TestHashSlot(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want uint16
	}{
		{"foo", 12182},
		{"123456789", 12739},
		{"{user1000}.following", 3443},
		{"{user1000}.followers", 3443},
		{"user1000", 3443},
	} {
		if got := hashSlot(tc.key); got != tc.want {
			t.Errorf("hashSlot(%q) = %d, want %d", tc.key, got, tc.want)
		}
	}
	// The tag is from the first "{" to the next "}"; an empty one does
	// not count, and the whole key is hashed.
	for _, tc := range []struct{ key, same string }{
		{"foo{{bar}}zap", "{bar"},
		{"a{user1000}b{x}", "user1000"},
	} {
		if hashSlot(tc.key) != hashSlot(tc.same) {
			t.Errorf("hashSlot(%q) = %d, want that of %q, %d", tc.key, hashSlot(tc.key), tc.same, hashSlot(tc.same))
		}
	}
	if hashSlot("{}foo") == hashSlot("foo") {
		t.Errorf("hashSlot(%q) hashed %q: an empty tag is no tag", "{}foo", "foo")
	}
}
