package certcache

import (
	"path/filepath"
	"testing"

	"github.com/certcache/certcache/internal/keyname"
)

// TestDirDriverPath: the file of a key is filepath.Join of the directory
// and the encoded key, for any directory and key, without calling Join.
func TestDirDriverPath(t *testing.T) {
	dirs := []string{"/", "/var/lib/certs", "/var/lib/certs/", "/var//lib/./certs", ".", "certs", "certs/sub/..", "../certs"}
	keys := []string{"example.com", "example.com+rsa", "acme_account+key", "../x", "a/b", ".hidden", ".", "..", "ключ"}
	for _, dir := range dirs {
		d := newDirDriver(dir).(*dirDriver)
		for _, key := range keys {
			want := filepath.Join(dir, keyname.Encode(key, maxFileName))
			got := d.path(key)
			if filepath.Clean(got) != want || filepath.Dir(got) != filepath.Clean(dir) {
				t.Errorf("dir %q, key %q: path %q, want %q", dir, key, got, want)
			}
		}
	}
}
