package fsutil

import (
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// TestSecureDir: a missing directory is created 0700; an existing one is
// never changed, and refused when group or others can enter it.
func TestSecureDir(t *testing.T) {
	base := t.TempDir()
	dir := filepath.Join(base, "a", "b")
	if created, err := SecureDir(dir); err != nil || !created {
		t.Fatalf("new dir: %v %v", created, err)
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o700 {
		t.Fatalf("new dir mode %04o", fi.Mode().Perm())
	}
	if created, err := SecureDir(dir); err != nil || created {
		t.Fatalf("existing private dir: %v %v", created, err)
	}
	open := filepath.Join(base, "open")
	os.Mkdir(open, 0o755)
	os.Chmod(open, 0o755)
	if _, err := SecureDir(open); !errors.Is(err, ErrNotPrivate) {
		t.Fatalf("0755 dir: %v", err)
	}
	if fi, _ := os.Stat(open); fi.Mode().Perm() != 0o755 {
		t.Fatalf("a refused dir was changed to %04o", fi.Mode().Perm())
	}
	file := filepath.Join(base, "file")
	os.WriteFile(file, nil, 0o600)
	if _, err := SecureDir(file); err == nil {
		t.Fatal("a file accepted as a directory")
	}
}

// TestReadSmallFile: only a regular file of at most max bytes is read; a
// symlink, a named pipe (which would block an ordinary open) or a large
// file is refused without blocking.
func TestReadSmallFile(t *testing.T) {
	dir := t.TempDir()
	ok := filepath.Join(dir, "ok")
	os.WriteFile(ok, []byte("hello"), 0o600)
	if b, err := ReadSmallFile(ok, 5); err != nil || string(b) != "hello" {
		t.Fatalf("regular file: %q %v", b, err)
	}
	if _, err := ReadSmallFile(ok, 4); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("too large: %v", err)
	}
	link := filepath.Join(dir, "link")
	os.Symlink(ok, link)
	if _, err := ReadSmallFile(link, 100); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("symlink: %v", err)
	}
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSmallFile(fifo, 100); !errors.Is(err, ErrNotRegular) {
		t.Fatalf("fifo: %v", err)
	}
}
