package gs_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/certcache/certcache"
)

// TestURLErrors: a bad URL is refused by Open, before any client is made,
// with an error that names the mistake and shows no secret.
func TestURLErrors(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"gs://user:hunter2@bucket/p", "credentials do not belong in the URL"},
		{"gs:///prefix", "no bucket (want gs://BUCKET/PREFIX)"},
		{"gs:bucket", "no bucket"},
		{"gs://bucket:4443/p", `bucket "bucket" has a port; name the server with endpoint=`},
		{"gs://bucket/p#frag", "no fragment"},
		{"gs://Bucket/p", `bucket "Bucket": want lowercase letters, digits, -, _ and .`},
		{"gs://ab/p", `bucket "ab": want 3 to 63 characters`},
		{"gs://-bucket/p", "must start and end with a letter or digit"},
		{"gs://" + strings.Repeat("a", 64) + "/p", "at most 63 characters without dots"},
		{"gs://bucket/a//b", `prefix "a//b": empty path segment`},
		{"gs://bucket/a/../b", "path segment .."},
		{"gs://bucket/" + strings.Repeat("p", 513), "limit 512"},
		{"gs://bucket/p?region=x", "region"},
		{"gs://bucket/p?endpoint=a&endpoint=b", "endpoint"},
		{"gs://bucket/p?max_conns=0", "max_conns=0: want at least 1"},
		{"gs://bucket/p?max_conns=many", "max_conns"},
		{"gs://bucket/p?endpoint=ftp://127.0.0.1", `endpoint="ftp://127.0.0.1": want an http:// (emulator) or https:// URL`},
		{"gs://bucket/p?endpoint=http://", "no host"},
		{"gs://bucket/p?endpoint=http://u:hunter2@127.0.0.1:4443", `endpoint="(withheld: it holds credentials)"`},
		{"gs://bucket/p?endpoint=http://127.0.0.1:4443/storage/v1", "want only a scheme and a host"},
		{"gs://bucket/p?endpoint=http://127.0.0.1:4443?x=1", "no query or fragment"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := certcache.Open(context.Background(), tc.url)
			if err == nil {
				c.Close()
				t.Fatalf("Open succeeded; want an error mentioning %q", tc.want)
			}
			if !errors.Is(err, certcache.ErrInvalidURL) {
				t.Errorf("Open = %v; want an error matching certcache.ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Open = %v; want it to mention %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("Open's error reveals the password: %v", err)
			}
		})
	}
}

// TestURLOpens: good URLs open without contacting the emulator, which is
// not running.
func TestURLOpens(t *testing.T) {
	for _, u := range []string{
		"gs://bucket",
		"gs://bucket/",
		"gs://my.bucket_1/prod/certs/?max_conns=4",
		"gs://bucket/p?endpoint=http://127.0.0.1:4443/",
	} {
		t.Run(u, func(t *testing.T) {
			// An emulator address for every client: no test reaches for
			// Application Default Credentials or the metadata server.
			t.Setenv("STORAGE_EMULATOR_HOST", "127.0.0.1:1")
			c, err := certcache.Open(context.Background(), u)
			if err != nil {
				t.Fatal(err)
			}
			if err := c.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		})
	}
}
