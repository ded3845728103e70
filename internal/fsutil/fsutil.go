// Package fsutil holds the durable-write recipes every file Keyward owns
// goes through, so a crash at any instant leaves either the old file or the
// new one, never a torn one, and no half-written file under a final name.
package fsutil

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
)

// TempPrefix starts every file written before it is published. os.CreateTemp
// replaces the "*" with digits only, so a temp name never ends in ".key" and
// a store that only lists names with a suffix (such as "*.key") never sees
// one. Callers whose final names may also start with TempPrefix must check
// their own suffix before calling IsStaleTemp.
const TempPrefix = ".tmp-"

// inflight holds the paths of temp files this process is writing right now.
// Opening a second FileStore on a directory (a reconfigure builds the new
// backend while the old one still serves) must not delete the first one's
// half-written files, only the leftovers of a crash.
var inflight sync.Map // path -> struct{}

// IsStaleTemp reports whether the directory entry name is a leftover temp
// file that OpenFileStore may remove.
func IsStaleTemp(dir, name string) bool {
	if !strings.HasPrefix(name, TempPrefix) {
		return false
	}
	_, busy := inflight.Load(filepath.Join(dir, name))
	return !busy
}

// WriteTemp writes data to a new temp file in dir with exactly mode perm
// (applied with fchmod, so the umask cannot change it, and before any byte
// is written), fsyncs and closes it. The caller publishes it (link or
// rename) and must call ReleaseTemp afterwards, success or not.
func WriteTemp(dir string, data []byte, perm os.FileMode) (path string, err error) {
	f, err := os.CreateTemp(dir, TempPrefix+"*")
	if err != nil {
		return "", err
	}
	path = f.Name()
	inflight.Store(path, struct{}{})
	defer func() {
		if err != nil {
			_ = f.Close()
			ReleaseTemp(path)
			path = ""
		}
	}()
	if err = f.Chmod(perm); err != nil {
		return path, err
	}
	if _, err = f.Write(data); err != nil {
		return path, err
	}
	if err = f.Sync(); err != nil {
		return path, err
	}
	return path, f.Close()
}

// ReleaseTemp removes the temp file if it still exists (after a successful
// rename it does not) and forgets it.
func ReleaseTemp(path string) {
	_ = os.Remove(path)
	inflight.Delete(path)
}

// PublishExclusive durably creates final with the content and mode of a new
// file, failing with an error matching fs.ErrExist if final already exists.
// os.Link never replaces its target, so among any number of concurrent
// publishers (threads or processes) exactly one wins, and a reader sees
// either no file or the complete one.
func PublishExclusive(dir, final string, data []byte, perm os.FileMode) error {
	tmp, err := WriteTemp(dir, data, perm)
	if err != nil {
		return err
	}
	defer ReleaseTemp(tmp)
	if err := os.Link(tmp, final); err != nil {
		return err
	}
	// Drop the second name before the directory sync, so the synced
	// directory holds only the final name.
	_ = os.Remove(tmp)
	return SyncDir(dir)
}

// PublishReplace durably replaces final (which need not exist) with data.
// rename(2) is atomic: a reader sees the old file or the new one.
func PublishReplace(dir, final string, data []byte, perm os.FileMode) error {
	tmp, err := WriteTemp(dir, data, perm)
	if err != nil {
		return err
	}
	defer ReleaseTemp(tmp)
	if err := os.Rename(tmp, final); err != nil {
		return err
	}
	return SyncDir(dir)
}

// SyncDir fsyncs a directory so that a link, rename or remove in it survives
// a crash. Filesystems that cannot sync a directory report EINVAL; there is
// nothing more we could do on them, so that is not an error.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) {
		return nil
	}
	return err
}

// SecureDir makes sure dir is a private directory: it creates dir (and
// missing parents, mode 0700) when it does not exist, and returns created
// true. An existing directory is never changed: it is accepted only when
// neither group nor others have any access to it (ErrNotPrivate
// otherwise), because Keyward must not alter the mode of a directory it
// did not create; the operator is told to tighten it instead.
func SecureDir(dir string) (created bool, err error) {
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
			return false, err
		}
		if err := os.Mkdir(dir, 0o700); err != nil {
			if errors.Is(err, fs.ErrExist) { // created meanwhile: check it as existing
				return SecureDir(dir)
			}
			return false, err
		}
		// Ours: the umask may have narrowed it further; make it exactly 0700.
		return true, os.Chmod(dir, 0o700)
	case err != nil:
		return false, err
	case !fi.IsDir():
		return false, fmt.Errorf("%s is not a directory", dir)
	case fi.Mode().Perm()&0o077 != 0:
		return false, fmt.Errorf("%w: %s is mode %04o; run chmod 700 %s, or name a directory that does not exist yet (Keyward creates it 0700)",
			ErrNotPrivate, dir, fi.Mode().Perm(), dir)
	}
	return false, nil
}

// ErrNotPrivate: an existing directory that group or others can access.
var ErrNotPrivate = errors.New("directory is not private")

// ReadSmallFile reads a regular file of at most max bytes. A symlink, a
// directory or an oversized file is refused (ErrNotRegular, ErrTooLarge)
// rather than followed or read, so a planted link or a huge foreign file in
// the directory cannot make us read elsewhere or allocate without bound.
func ReadSmallFile(path string, max int64) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, ErrNotRegular
	}
	if fi.Size() > max {
		return nil, ErrTooLarge
	}
	// Non-blocking, and checked again once open: a file swapped for a
	// named pipe after the Lstat must not block the caller.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK|syscall.O_NOFOLLOW, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadRegular(f, max)
}

// ReadRegular reads all of f, which must be a regular file of at most max
// bytes (checked on the open file, so a path swapped after a check cannot
// slip a pipe or a device in; open it with O_NONBLOCK so that a named pipe
// fails here instead of blocking the open). On error nothing is returned
// and what was read is cleared: the file may hold a secret.
func ReadRegular(f *os.File, max int64) ([]byte, error) {
	fi, err := f.Stat()
	if err != nil || !fi.Mode().IsRegular() {
		return nil, ErrNotRegular
	}
	if fi.Size() > max {
		return nil, ErrTooLarge
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		clear(b)
		return nil, err
	}
	if int64(len(b)) > max {
		clear(b)
		return nil, ErrTooLarge
	}
	return b, nil
}

var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file too large")
)
