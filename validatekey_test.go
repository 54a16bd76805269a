package certcache_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/certcache/certcache"
)

// TestValidateKey: every key autocert writes is valid; an empty or too
// long key, a control character (C0, DEL or C1) anywhere, and invalid
// UTF-8 are not, and the error says which.
func TestValidateKey(t *testing.T) {
	for _, tc := range []struct {
		key  string
		want string // in the error; "" for a valid key
	}{
		{"example.com", ""},
		{"example.com+rsa", ""},
		{"example.com+token", ""},
		{"tok_EN-1+http-01", ""},
		{"acme_account+key", ""},
		{"bücher.example", ""},
		{"日本.example", ""},
		{strings.Repeat("a", certcache.MaxKeyLen), ""},
		{"", "empty"},
		{strings.Repeat("a", certcache.MaxKeyLen+1), "limit"},
		{"a\nb", "control character U+000A"},
		{"\x00", "control character U+0000"},
		{"a\x7f", "control character U+007F"},
		{"bücher\x01", "control character U+0001"},
		{"a\u0085b", "control character U+0085"},
		{"a\xffb", "not valid UTF-8"},
		{"bü\xc3", "not valid UTF-8"},
	} {
		err := certcache.ValidateKey(tc.key)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("ValidateKey(%q) = %v, want nil", tc.key, err)
		case tc.want != "" && (!errors.Is(err, certcache.ErrInvalidKey) || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey saying %q", tc.key, err, tc.want)
		}
	}
}
