package certcache_test

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/certcache/certcache/internal/hook"

	"github.com/certcache/certcache"
	"github.com/certcache/certcache/drivertest"
	"golang.org/x/crypto/acme/autocert"
)

func TestConformanceMem(t *testing.T) {
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "mem://"+ns)
		},
		Pushes: true,
	})
}

func TestConformanceFile(t *testing.T) {
	root := t.TempDir()
	drivertest.Run(t, drivertest.Harness{
		Open: func(t testing.TB, ns string) (certcache.Cache, error) {
			return certcache.Open(context.Background(), "file://"+filepath.Join(root, ns))
		},
		// Leases exclude across processes sharing the directory.
		URL:    func(ns string) string { return "file://" + filepath.Join(root, ns) },
		Pushes: true,
		// A directory path that runs through a regular file cannot be
		// created or read: every call fails, and none may look like a miss.
		OpenBroken: func(t testing.TB) (certcache.Cache, error) {
			blocker := filepath.Join(t.TempDir(), "not-a-dir")
			if err := os.WriteFile(blocker, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			return certcache.Open(context.Background(), "file://"+filepath.Join(blocker, "certs"))
		},
	})
	// Nothing was written outside root, whatever the keys were.
	entries, err := os.ReadDir(filepath.Dir(root))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != filepath.Base(root) {
			t.Errorf("a key escaped the cache directory: %s", e.Name())
		}
	}
}

// TestFileMatchesDirCache checks that file:// keeps autocert.DirCache's
// layout: either can read what the other wrote, with the same modes.
func TestFileMatchesDirCache(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "certs")
	// Layout alone: the values are no certificates, which coordination
	// would take for misses.
	c, err := certcache.Open(ctx, "file://"+dir+"?coordinate=false")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	dc := autocert.DirCache(dir)
	for _, key := range drivertest.AutocertKeys {
		v := []byte("by certcache " + key)
		if err := c.Put(ctx, key, v); err != nil {
			t.Fatal(err)
		}
		got, err := dc.Get(ctx, key)
		if err != nil || string(got) != string(v) {
			t.Errorf("DirCache.Get(%q) = %q, %v; want %q", key, got, err, v)
		}
		if err := dc.Put(ctx, key+"-dc", v); err != nil {
			t.Fatal(err)
		}
		if got, err := c.Get(ctx, key+"-dc"); err != nil || string(got) != string(v) {
			t.Errorf("file Get(%q) = %q, %v", key+"-dc", got, err)
		}
		fi, err := os.Stat(filepath.Join(dir, key))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", key, fi.Mode().Perm())
		}
	}
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
}

// TestFileUnreadableIsNotMiss: a permission error must never read as a miss.
func TestFileUnreadableIsNotMiss(t *testing.T) {
	if os.Geteuid() == 0 {
		// root reads anything; a file that is a directory fails for everyone.
		ctx := context.Background()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "example.com"), 0o700); err != nil {
			t.Fatal(err)
		}
		c, err := certcache.Open(ctx, "file://"+dir)
		if err != nil {
			t.Fatal(err)
		}
		_, err = c.Get(ctx, "example.com")
		if err == nil || errors.Is(err, autocert.ErrCacheMiss) {
			t.Fatalf("Get of an unreadable entry = %v, want a non-miss error", err)
		}
		return
	}
	ctx := context.Background()
	dir := t.TempDir()
	c, _ := certcache.Open(ctx, "file://"+dir)
	if err := c.Put(ctx, "example.com", []byte("v")); err != nil {
		t.Fatal(err)
	}
	os.Chmod(dir, 0)
	defer os.Chmod(dir, 0o700)
	if _, err := c.Get(ctx, "example.com"); err == nil || errors.Is(err, autocert.ErrCacheMiss) {
		t.Fatalf("Get in an unreadable directory = %v, want a non-miss error", err)
	}
}

func TestOpenErrors(t *testing.T) {
	ctx := context.Background()
	for _, tc := range []struct {
		url, want string
	}{
		{"", "empty URL"},
		{"example.com", "no scheme"},
		{"nosuch://x", `unknown scheme "nosuch"; registered: file,`},
		{"s3://bucket", `forgotten import _ "github.com/certcache/certcache/s3"`},
		{"dynamodb://table", `forgotten import _ "github.com/certcache/certcache/dynamodb"`},
		{"postgres://u:hunter2@db/x", `forgotten import _ "github.com/certcache/certcache/sql/postgres"`},
		{"rediss://u:hunter2@r:6379", `forgotten import _ "github.com/certcache/certcache/redis"`},
		{"mem://?timeout=fast", `timeout="fast": want a positive duration`},
		{"mem://?timeout=0s", `want a positive duration`},
		{"mem://?timeout=1s&timeout=2s", "given 2 times"},
		{"mem://?memory=1", `parameter memory needs package github.com/certcache/certcache/layered`},
		{"mem://?encryption_key=env:K", `needs package github.com/certcache/certcache/encrypt`},
		{"mem://?bogus=1", `mem:// takes no parameters`},
		{"mem://a/b", "want mem:// or mem://NAME"},
		{"file://", "needs a directory"},
		{"file:///tmp/x?mode=0777", "file:// takes no parameters"},
		{"file://u:hunter2@host/x", "not a user or port"},
		{"redis://u:hunter2@h%zz/", "details withheld"},
		{"redis://u:hunter2@[::1/", "details withheld"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			c, err := certcache.Open(ctx, tc.url)
			if err == nil {
				c.Close()
				t.Fatalf("Open(%q) succeeded", tc.url)
			}
			if !errors.Is(err, certcache.ErrInvalidURL) {
				t.Errorf("error %v does not match ErrInvalidURL", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "hunter2") {
				t.Errorf("error reveals the password: %v", err)
			}
			var ce *certcache.Error
			if !errors.As(err, &ce) || ce.Op != "open" {
				t.Errorf("error %v is not a *certcache.Error with Op open", err)
			}
		})
	}
}

func TestOpenTimeoutParam(t *testing.T) {
	c, err := certcache.Open(context.Background(), "mem://?timeout=3s")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Put(context.Background(), "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
}

func TestRegisterPanics(t *testing.T) {
	for name, fn := range map[string]func(){
		"duplicate": func() {
			certcache.Register("mem", certcache.Backend{Name: "x", Open: nil})
		},
		"no open": func() { certcache.Register("fresh-scheme", certcache.Backend{Name: "x"}) },
		"timeout param": func() {
			hook.RegisterWrapper(hook.Wrapper{Params: []string{"timeout"},
				Wrap: func(context.Context, hook.Cache, url.Values) (hook.Cache, error) { return nil, nil }})
		},
	} {
		t.Run(name, func(t *testing.T) {
			defer func() {
				if recover() == nil {
					t.Error("no panic")
				}
			}()
			fn()
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := &certcache.Error{Backend: "s3", Op: "get", Key: "example.com", Err: fmt.Errorf("boom")}
	if got, want := err.Error(), `certcache/s3: get "example.com": boom`; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func ExampleOpen() {
	ctx := context.Background()
	cache, err := certcache.Open(ctx, "mem://")
	if err != nil {
		panic(err)
	}
	defer cache.Close()

	_, err = cache.Get(ctx, "example.com")
	fmt.Println(err == autocert.ErrCacheMiss)
	// Output: true
}

func BenchmarkMem(b *testing.B) {
	c, err := certcache.Open(context.Background(), "mem://")
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	drivertest.RunBenchmarks(b, c)
}

func BenchmarkFile(b *testing.B) {
	c, err := certcache.Open(context.Background(), "file://"+b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	drivertest.RunBenchmarks(b, c)
}
