package certcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache/internal/callctx"
	"github.com/certcache/certcache/internal/keyname"
	"golang.org/x/crypto/acme/autocert"
)

// file:// keeps values in a directory, with autocert.DirCache's on-disk
// semantics: the directory is created 0700 on first Put, files are 0600, and
// a Put replaces its file atomically (write a temporary file, then rename),
// so a reader sees the old value or the new one, never half of either.
// Unlike DirCache it also syncs the file and the directory before Put
// returns — a Put that returned nil survives a crash — and it encodes keys
// (see internal/keyname) so that "../x" or "a/b" stay inside the directory.
// Keys made of autocert's usual characters keep their plain names, so a
// directory written by DirCache can be opened as file://DIR and vice versa.
//
//	file:///var/lib/certs   absolute path
//	file://certs            path relative to the working directory
func init() {
	Register("file", Backend{Name: "file", Open: openFile})
}

// maxFileName is NAME_MAX on every common file system. A longer encoded key
// is shortened (see internal/keyname), where DirCache would fail.
const maxFileName = 255

func openFile(_ context.Context, u *url.URL) (driver.Driver, error) {
	if u.User != nil || u.Port() != "" {
		return nil, fmt.Errorf("%w: file:// URLs take a path, not a user or port", ErrInvalidURL)
	}
	if u.RawQuery != "" {
		return nil, fmt.Errorf("%w: file:// takes no parameters, got %q", ErrInvalidURL, u.RawQuery)
	}
	dir := u.Opaque // file:certs
	if dir == "" {
		dir = u.Host + u.Path // file:///abs → "/abs"; file://rel/sub → "rel/sub"
	}
	if dir == "" {
		return nil, fmt.Errorf("%w: file:// needs a directory, e.g. file:///var/lib/certs", ErrInvalidURL)
	}
	return newDirDriver(dir), nil
}

// newDirDriver returns the file:// driver for dir, for wrappers and tests
// that need one without a URL. Wrap it with NewCache.
func newDirDriver(dir string) driver.Driver {
	dir = filepath.Clean(dir)
	prefix := dir
	if !os.IsPathSeparator(dir[len(dir)-1]) {
		prefix += string(filepath.Separator)
	}
	return &dirDriver{dir: dir, prefix: prefix}
}

type dirDriver struct {
	dir    string // cleaned
	prefix string // dir and a separator (dir alone when it ends with one: "/")
}

// path is filepath.Join(d.dir, name) for the encoded name, without Join's
// cleaning (a third of a miss's own work): an encoded name is one clean
// element, never empty, ".", ".." or with a separator (internal/keyname).
func (d *dirDriver) path(key string) string {
	return d.prefix + keyname.Encode(key, maxFileName)
}

// File system calls cannot be interrupted; like autocert.DirCache, each runs
// in a goroutine (callctx.Do) so that the call returns when ctx ends. A write abandoned
// that way may still land: reported as failed but stored is safe, the
// opposite would not be.
func (d *dirDriver) Get(ctx context.Context, key string) ([]byte, error) {
	return missIfNotExist(callctx.Do[[]byte](ctx, d.reader(key)))
}

// getWithin is Get ended by ctx or after timeout, for the portable layer,
// which then makes no context for the call.
func (d *dirDriver) getWithin(ctx context.Context, timeout time.Duration, key string) ([]byte, error) {
	return missIfNotExist(callctx.DoWithin[[]byte](ctx, timeout, d.reader(key)))
}

func (d *dirDriver) reader(key string) func() ([]byte, error) {
	return func() ([]byte, error) { return os.ReadFile(d.path(key)) }
}

func missIfNotExist(data []byte, err error) ([]byte, error) {
	if os.IsNotExist(err) { // what ReadFile returns, as DirCache checks it: cheaper than errors.Is on every miss
		return nil, autocert.ErrCacheMiss
	}
	return data, err
}

func (d *dirDriver) Put(ctx context.Context, key string, data []byte) error {
	_, err := callctx.Do(ctx, func() (struct{}, error) {
		name := d.path(key)
		if side := d.fullKeyPath(filepath.Base(name)); side != "" {
			// The whole key first: a listing that finds the value finds
			// its key too.
			if err := d.write(side, []byte(key)); err != nil {
				return struct{}{}, err
			}
		}
		return struct{}{}, d.write(name, data)
	})
	return err
}

func (d *dirDriver) write(name string, data []byte) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	// 0600, and a leading dot no encoded key has, so a temporary file is
	// never mistaken for a key.
	tmp, err := os.CreateTemp(d.dir, ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // a no-op once renamed
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), name); err != nil {
		return err
	}
	return syncDir(d.dir)
}

func syncDir(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

func (d *dirDriver) Delete(ctx context.Context, key string) error {
	_, err := callctx.Do(ctx, func() (struct{}, error) { return struct{}{}, os.Remove(d.path(key)) })
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

func (d *dirDriver) Close() error { return nil }
