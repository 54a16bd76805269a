package certcache

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strings"

	"github.com/certcache/certcache/internal/keyname"
)

// A key too long for a file name is stored under a shortened name that ends
// in '~' and a digest (see internal/keyname); the whole key is kept beside
// it in a hidden file named after the digest, so that a listing can give it
// back. autocert's keys are never that long.

// fullKeyPath returns the side file that holds the whole key of a value
// stored under the shortened name, or "" when name is not shortened.
func (d *dirDriver) fullKeyPath(name string) string {
	i := strings.LastIndexByte(name, '~')
	if i < 0 {
		return ""
	}
	return filepath.Join(d.dir, ".key"+name[i:])
}

// listPage is how many directory entries List reads at a time.
const listPage = 1000

// List implements driver.ListDriver: the directory is read a page at a time, and
// names that are not encoded keys (temporary files, leases, the side files
// of long keys, anything a person left there) are passed over.
func (d *dirDriver) List(ctx context.Context, prefix string) iter.Seq2[Entry, error] {
	return func(yield func(Entry, error) bool) {
		f, err := os.Open(d.dir)
		if errors.Is(err, fs.ErrNotExist) {
			return // nothing was ever Put: an empty cache
		}
		if err != nil {
			yield(Entry{}, err)
			return
		}
		defer f.Close()
		for {
			if err := ctx.Err(); err != nil {
				yield(Entry{}, err)
				return
			}
			des, err := f.ReadDir(listPage)
			for _, de := range des {
				e, ok, err := d.entry(de)
				if err != nil {
					yield(Entry{}, err)
					return
				}
				if ok && strings.HasPrefix(e.Key, prefix) && !yield(e, nil) {
					return
				}
			}
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Entry{}, err)
				return
			}
		}
	}
}

// entry describes the directory entry de, or reports that it is not a key.
func (d *dirDriver) entry(de fs.DirEntry) (Entry, bool, error) {
	if !de.Type().IsRegular() {
		return Entry{}, false, nil
	}
	key, hashed, err := keyname.Decode(de.Name())
	if err != nil {
		return Entry{}, false, nil // not a name Encode makes
	}
	if hashed {
		full, err := os.ReadFile(d.fullKeyPath(de.Name()))
		if err != nil || !strings.HasPrefix(string(full), key) || keyname.Encode(string(full), maxFileName) != de.Name() {
			return Entry{}, false, fmt.Errorf("list: cannot recover the whole key stored as %q: its side file is missing or wrong", de.Name())
		}
		key = string(full)
	}
	info, err := de.Info()
	if errors.Is(err, fs.ErrNotExist) {
		return Entry{}, false, nil // deleted since the directory was read
	}
	if err != nil {
		return Entry{}, false, err
	}
	return Entry{Key: key, Size: info.Size(), ModTime: info.ModTime()}, true, nil
}
