// Package fsutil holds the durable-write recipes every file Keyward owns
// goes through, so a crash at any instant leaves either the old file or the
// new one, never a torn one, and no half-written file under a final name.
package fsutil

import (
	"errors"
	"fmt"
	"io"
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

// SecureDir creates dir (and missing parents) if needed and makes its mode
// exactly 0700, then checks that it stuck. An existing directory with looser
// (or tighter) permissions is changed, not refused: the key files in it are
// sealed, and refusing to start over a mode bit would only push operators to
// work around the check.
func SecureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return err
	}
	if !fi.IsDir() {
		return fmt.Errorf("%s is not a directory", dir)
	}
	if fi.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return err
		}
		if fi, err = os.Stat(dir); err != nil {
			return err
		}
		if fi.Mode().Perm() != 0o700 {
			return fmt.Errorf("cannot make %s mode 0700 (it is %04o)", dir, fi.Mode().Perm())
		}
	}
	return nil
}

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
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, ErrTooLarge
	}
	return b, nil
}

var (
	ErrNotRegular = errors.New("not a regular file")
	ErrTooLarge   = errors.New("file too large")
)
