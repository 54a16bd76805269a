package reliability

import (
	"context"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"

	"github.com/certcache/certcache"
	_ "github.com/certcache/certcache/encrypt"
	_ "github.com/certcache/certcache/layered"
	_ "github.com/certcache/certcache/s3"
	_ "github.com/certcache/certcache/sql/mysql"
	_ "github.com/certcache/certcache/sql/postgres"
	_ "github.com/certcache/certcache/sql/sqlite"
	"golang.org/x/crypto/acme/autocert"
)

// urlSeeds are the URL forms of every scheme, with and without the
// parameters each backend knows, and some that are wrong.
var urlSeeds = []string{
	"mem://", "mem://shared", "file:///var/lib/certs", "file://certs", "file:",
	"redis://localhost:6379/0?prefix=app&timeout=5s", "rediss://h:6380/1?tls_ca_file=/x&dial_timeout=1s",
	"redis+sentinel://s1:26379/0?master_name=m&addr=s2:26379&password=pw",
	"redis+cluster://n1:6379?addr=n2:6379&addr=n3:6379&read_timeout=2s",
	"postgres://user@db:5432/app?sslmode=verify-full&table=certs&pool_max_conns=4",
	"postgresql://db/app?table=a.b", "mysql://user@tcp-host:3306/app?tls=true&table=certs",
	"sqlite:///var/lib/certs.db?table=certs", "sqlite://rel.db",
	"s3://bucket/prefix?region=us-east-1&endpoint=http://127.0.0.1:9000&use_path_style=true",
	"s3://bucket?sse=aws:kms&sse_kms_key_id=alias/x", "s3:///nobucket",
	"dynamodb://table/prefix?region=us-east-1&endpoint=http://127.0.0.1:8000", "dynamodb:///notable",
	"azblob://container/prefix?account=acct&endpoint=http://127.0.0.1:10000/acct&create_container=true",
	"mem://?memory=true&memory_ttl=1m&memory_max_entries=10&memory_max_bytes=1MiB",
	"mem://?encryption_key=env:NO_SUCH_VAR", "redis://h/0?timeout=-1s", "redis://h/0?x=1&x=2",
	"%", "://", "redis://[::1", "s3://b?%zz", "unknown://x",
}

// FuzzOpenURL opens arbitrary URLs, some with a password put into them, on
// every scheme: Open never panics, never contacts a server (there are none),
// and every rejection is a *certcache.Error that does not show the password.
func FuzzOpenURL(f *testing.F) {
	for _, s := range urlSeeds {
		f.Add(s, "")
		f.Add(s, "hunter2-Pa55word")
	}
	// Relative file:// and sqlite:// paths resolve here, not in the tree.
	f.Chdir(f.TempDir())
	f.Fuzz(func(t *testing.T, rawURL, password string) {
		if password != "" {
			if i := strings.Index(rawURL, "://"); i >= 0 {
				rawURL = rawURL[:i+3] + "user:" + url.PathEscape(password) + "@" + rawURL[i+3:]
			}
		}
		c, err := certcache.Open(context.Background(), rawURL)
		if err == nil {
			if err := c.Close(); err != nil {
				t.Errorf("Close of a cache opened on %q: %v", rawURL, err)
			}
			return
		}
		var ce *certcache.Error
		if !errors.As(err, &ce) || ce.Op != "open" {
			t.Errorf("Open(%q) = %v: not a *certcache.Error with Op open", rawURL, err)
		}
		msg := err.Error()
		if !strings.HasPrefix(msg, "certcache") {
			t.Errorf("Open(%q) error %q does not start with certcache", rawURL, msg)
		}
		// Short passwords may coincide with words of a message.
		if len(password) >= 8 && (strings.Contains(msg, password) || strings.Contains(msg, url.PathEscape(password))) {
			t.Errorf("Open error reveals the password %q: %s", password, msg)
		}
	})
}

// FuzzKeys stores arbitrary keys and values in mem:// and file:// caches:
// a key is either refused with ErrInvalidKey or stored and read back
// exactly, never escapes the cache's directory, and Delete removes it.
func FuzzKeys(f *testing.F) {
	for _, k := range []string{"example.com", "example.com+rsa", "acme_account+key", "../../etc/passwd",
		"a/b", "a%2Fb", ".", "..", ".tmp-x", "日本語", "", "a\x00b", strings.Repeat("x", 1025)} {
		f.Add(k, []byte("value"))
	}
	f.Fuzz(func(t *testing.T, key string, value []byte) {
		root := t.TempDir()
		dir := root + "/certs"
		for _, raw := range []string{"mem://", "file://" + dir} {
			c, err := certcache.Open(context.Background(), raw)
			if err != nil {
				t.Fatal(err)
			}
			// Arbitrary values under keys that may look like a domain:
			// the store's contract, beneath coordination (which takes a
			// value autocert would refuse for a miss).
			c = certcache.Uncoordinated(c)
			ctx := context.Background()
			err = c.Put(ctx, key, value)
			if certcache.ValidateKey(key) != nil {
				if !errors.Is(err, certcache.ErrInvalidKey) {
					t.Errorf("%s: Put(%q) = %v, want ErrInvalidKey", raw, key, err)
				}
				c.Close()
				continue
			}
			if err != nil {
				t.Fatalf("%s: Put(%q): %v", raw, key, err)
			}
			got, err := c.Get(ctx, key)
			if err != nil || string(got) != string(value) {
				t.Fatalf("%s: Get(%q) = %q, %v; want %q", raw, key, got, err, value)
			}
			if err := c.Delete(ctx, key); err != nil {
				t.Fatalf("%s: Delete(%q): %v", raw, key, err)
			}
			if _, err := c.Get(ctx, key); err == nil {
				t.Fatalf("%s: Get(%q) after Delete succeeded", raw, key)
			}
			c.Close()
		}
		// Nothing but the cache directory was created under root.
		entries, err := os.ReadDir(root)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			if e.Name() != "certs" {
				t.Errorf("key %q escaped the cache directory: %s", key, e.Name())
			}
		}
	})
}

// TestHugeValue: a value far larger than a certificate is refused by the
// documented limit, certcache.MaxValueSize, before anything is stored, with
// the memory front and encryption in the way too.
func TestHugeValue(t *testing.T) {
	huge := make([]byte, 64<<20)
	t.Setenv("CERTCACHE_HUGE_TEST_KEY", "MDEyMzQ1Njc4OTAxMjM0NTY3ODkwMTIzNDU2Nzg5MDE=")
	for _, raw := range []string{"mem://", "file://" + t.TempDir(), "mem://?memory=true",
		"mem://?encryption_key=env:CERTCACHE_HUGE_TEST_KEY"} {
		c, err := certcache.Open(context.Background(), raw)
		if err != nil {
			t.Fatal(err)
		}
		err = c.Put(context.Background(), "example.com", huge)
		if !errors.Is(err, certcache.ErrTooLarge) {
			t.Errorf("%s: Put of 64 MiB = %v, want certcache.ErrTooLarge", raw, err)
		}
		if _, err := c.Get(context.Background(), "example.com"); err != autocert.ErrCacheMiss { //nolint:errorlint
			t.Errorf("%s: after a refused Put, Get = %v, want a miss", raw, err)
		}
		c.Close()
	}
}
