package certcache

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/certcache/certcache/internal/callctx"
	"github.com/certcache/certcache/internal/keyname"
)

// file:// leases are hidden files beside the values (".lease-" and the
// encoded name: no key's file starts with a dot), read and written only
// while the directory's lock file ".leases" is locked with flock(2), which
// makes each lease operation atomic across every process on the machine
// (and on NFS, where Linux maps flock to POSIX locks). Expiry is judged by
// the file system's clock: each operation first writes the lock file and
// takes its modification time as "now", so that processes whose clocks
// disagree with a network file system's still agree on expiry.

func (d *dirDriver) leasePath(name string) string {
	return filepath.Join(d.dir, ".lease-"+keyname.Encode(name, maxFileName-len(".lease-")))
}

// AcquireLease implements driver.LeaseDriver.
func (d *dirDriver) AcquireLease(ctx context.Context, name, token string, ttl time.Duration) error {
	return d.withLeases(ctx, true, func(now time.Time) error {
		holder, expires, err := d.readLease(name)
		if err != nil {
			return err
		}
		if holder != "" && holder != token && now.Before(expires) {
			return ErrLeaseHeld
		}
		return d.writeLease(name, token, now.Add(ttl))
	})
}

// RefreshLease implements driver.LeaseDriver.
func (d *dirDriver) RefreshLease(ctx context.Context, name, token string, ttl time.Duration) error {
	err := d.withLeases(ctx, false, func(now time.Time) error {
		holder, expires, err := d.readLease(name)
		if err != nil {
			return err
		}
		if holder != token || !now.Before(expires) {
			return ErrLeaseLost
		}
		return d.writeLease(name, token, now.Add(ttl))
	})
	if errors.Is(err, errNoLeases) {
		return ErrLeaseLost
	}
	return err
}

// ReleaseLease implements driver.LeaseDriver.
func (d *dirDriver) ReleaseLease(ctx context.Context, name, token string) error {
	err := d.withLeases(ctx, false, func(time.Time) error {
		holder, _, err := d.readLease(name)
		if err != nil || holder != token {
			return err
		}
		if err := os.Remove(d.leasePath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if errors.Is(err, errNoLeases) {
		return nil // nothing was ever held here
	}
	return err
}

// readLease returns the holder of lease name and when it expires; no holder
// for a lease that does not exist or cannot be parsed (a write cut short by
// a crash), which is then free.
func (d *dirDriver) readLease(name string) (holder string, expires time.Time, err error) {
	b, err := os.ReadFile(d.leasePath(name))
	if errors.Is(err, fs.ErrNotExist) {
		return "", time.Time{}, nil
	}
	if err != nil {
		return "", time.Time{}, err
	}
	tok, exp, ok := strings.Cut(strings.TrimSpace(string(b)), " ")
	ns, perr := strconv.ParseInt(exp, 10, 64)
	if !ok || perr != nil || tok == "" {
		return "", time.Time{}, nil
	}
	return tok, time.Unix(0, ns), nil
}

func (d *dirDriver) writeLease(name, token string, expires time.Time) error {
	return os.WriteFile(d.leasePath(name), []byte(token+" "+strconv.FormatInt(expires.UnixNano(), 10)+"\n"), 0o600)
}

// errNoLeases: the directory has no lock file, so no lease was ever
// taken in it.
var errNoLeases = errors.New("no lease lock file")

// withLeases runs f under the directory's lease lock, with the file
// system's current time. Only create (acquiring) makes the directory and
// its lock file; refreshing or releasing where there is none returns
// errNoLeases and writes nothing, so that a release made after the
// directory was removed does not bring it back.
func (d *dirDriver) withLeases(ctx context.Context, create bool, f func(now time.Time) error) error {
	_, err := callctx.Do(ctx, func() (struct{}, error) {
		flags := os.O_RDWR
		if create {
			if err := os.MkdirAll(d.dir, 0o700); err != nil {
				return struct{}{}, err
			}
			flags |= os.O_CREATE
		}
		lf, err := os.OpenFile(filepath.Join(d.dir, ".leases"), flags, 0o600)
		if !create && errors.Is(err, fs.ErrNotExist) {
			return struct{}{}, errNoLeases
		}
		if err != nil {
			return struct{}{}, err
		}
		defer lf.Close()
		unlock, err := lockFile(lf)
		if err != nil {
			return struct{}{}, err
		}
		defer unlock()
		if _, err := lf.WriteAt([]byte{'\n'}, 0); err != nil {
			return struct{}{}, err
		}
		fi, err := lf.Stat()
		if err != nil {
			return struct{}{}, err
		}
		return struct{}{}, f(fi.ModTime())
	})
	return err
}

// ListLeases implements driver.LeaseAdminDriver: the lease files are read under
// the lease lock, with the file system's time to judge them by. A lease
// whose name was too long for a file name (stored under a shortened name)
// cannot be named, and is left out.
func (d *dirDriver) ListLeases(ctx context.Context, prefix string) iter.Seq2[LeaseInfo, error] {
	return func(yield func(LeaseInfo, error) bool) {
		var ls []LeaseInfo
		err := d.withLeases(ctx, false, func(now time.Time) error {
			local := time.Now()
			des, err := os.ReadDir(d.dir)
			if err != nil {
				return err
			}
			for _, de := range des {
				enc, ok := strings.CutPrefix(de.Name(), ".lease-")
				if !ok || !de.Type().IsRegular() {
					continue
				}
				name, hashed, err := keyname.Decode(enc)
				if err != nil || hashed || !strings.HasPrefix(name, prefix) || d.leasePath(name) != filepath.Join(d.dir, de.Name()) {
					continue
				}
				holder, expires, err := d.readLease(name)
				if err != nil {
					return err
				}
				if holder != "" {
					ls = append(ls, LeaseInfo{Name: name, Holder: holder, Expires: local.Add(expires.Sub(now))})
				}
			}
			return nil
		})
		if errors.Is(err, errNoLeases) {
			return // no lease was ever taken here
		}
		if err != nil {
			yield(LeaseInfo{}, err)
			return
		}
		yieldLeases(ctx, ls, yield)
	}
}

// BreakLease implements driver.LeaseAdminDriver, judging expiry as AcquireLease
// does.
func (d *dirDriver) BreakLease(ctx context.Context, name string, force bool) error {
	err := d.withLeases(ctx, false, func(now time.Time) error {
		holder, expires, err := d.readLease(name)
		if err != nil {
			return err
		}
		if holder != "" && !force && now.Before(expires) {
			return fmt.Errorf("%w: it expires in %v, by the file system's clock", ErrLeaseHeld, expires.Sub(now).Round(time.Millisecond))
		}
		if err := os.Remove(d.leasePath(name)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return err
		}
		return nil
	})
	if errors.Is(err, errNoLeases) {
		return nil
	}
	return err
}
