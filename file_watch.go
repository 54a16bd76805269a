package certcache

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/certcache/certcache/driver"

	"github.com/certcache/certcache/internal/keyname"
	"github.com/fsnotify/fsnotify"
)

// file:// implements driver.WatchDriver with fsnotify (inotify) on a local file
// system on Linux: a Put renames its value into place, which the watch of
// the directory sees, as it sees a Delete's removal, whichever process on
// the machine wrote. A network file system (NFS, SMB, FUSE and the like)
// does not tell one machine of another's writes, and other systems'
// notifications are not relied on: there Watch reports ErrUnsupported and
// waiters poll.

var _ driver.WatchDriver = (*dirDriver)(nil)

// Watch implements driver.WatchDriver.
func (d *dirDriver) Watch(ctx context.Context, ready func(), changed func(key string)) error {
	if local, err := localFS(d.dir); err != nil {
		return err // the directory is not made yet: try again later
	} else if !local {
		return fmt.Errorf("%w: %s is not on a local file system, whose changes it could be told of", ErrUnsupported, d.dir)
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	if err := w.Add(d.dir); err != nil {
		return err
	}
	ready()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case ev, ok := <-w.Events:
			if !ok {
				return errors.New("file: the watch of the directory ended")
			}
			if ev.Name == d.dir {
				return fmt.Errorf("file: the directory went away (%v)", ev.Op)
			}
			if ev.Has(fsnotify.Create) || ev.Has(fsnotify.Write) || ev.Has(fsnotify.Remove) || ev.Has(fsnotify.Rename) {
				if key, ok := d.keyOf(filepath.Base(ev.Name)); ok {
					changed(key)
				}
			}
		case err, ok := <-w.Errors:
			if !ok {
				return errors.New("file: the watch of the directory ended")
			}
			if errors.Is(err, fsnotify.ErrEventOverflow) {
				changed("") // events were dropped: any key may have changed
				continue
			}
			return err
		}
	}
}

// keyOf returns the key stored under the file name, or false for a name
// that holds no value (a temporary file, a lease, a side file).
func (d *dirDriver) keyOf(name string) (string, bool) {
	if strings.HasPrefix(name, ".") {
		return "", false
	}
	key, hashed, err := keyname.Decode(name)
	if err != nil {
		return "", false
	}
	if hashed {
		full, err := os.ReadFile(d.fullKeyPath(name))
		if err != nil {
			return "", true // "": wake every waiter rather than miss one
		}
		key = string(full)
	}
	return key, true
}
