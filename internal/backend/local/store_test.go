package local

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/kms"
)

var bg = context.Background()

func openStore(t *testing.T) (*FileStore, string) {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	s, err := OpenFileStore(dir, 0)
	if err != nil {
		t.Fatalf("OpenFileStore: %v", err)
	}
	return s, dir
}

func mode(t *testing.T, path string) os.FileMode {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Mode().Perm()
}

func tempFiles(t *testing.T, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), fsutil.TempPrefix) && !strings.HasSuffix(e.Name(), keySuffix) {
			out = append(out, e.Name())
		}
	}
	return out
}

func TestValidName(t *testing.T) {
	for _, n := range []string{"a", "A-b_c.d", strings.Repeat("x", 128), "...", ".tmp-a", "0"} {
		if !ValidName(n) {
			t.Errorf("ValidName(%q) = false", n)
		}
	}
	for _, n := range []string{"", ".", "..", strings.Repeat("x", 129), "a/b", "a\\b", "a b", "é", "a\x00", "a:b"} {
		if ValidName(n) {
			t.Errorf("ValidName(%q) = true", n)
		}
	}
}

func TestModes(t *testing.T) {
	s, dir := openStore(t)
	if m := mode(t, dir); m != 0o700 {
		t.Fatalf("new dir mode %04o, want 0700", m)
	}
	if _, err := s.Create(bg, "k1", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(dir, "k1.key")); m != 0o600 {
		t.Fatalf("record mode %04o, want 0600", m)
	}
	if _, err := s.Update(bg, "k1", []byte("w"), 1); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(dir, "k1.key")); m != 0o600 {
		t.Fatalf("record mode after Update %04o, want 0600", m)
	}

	// An existing, too-open directory is refused and left as it is (Keyward
	// never changes the mode of a directory); a custom file mode is applied
	// exactly, whatever the umask.
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(dir, 0o440); !errors.Is(err, kms.ErrInvalidRequest) || !strings.Contains(err.Error(), "chmod 700") {
		t.Fatalf("too-open dir: err = %v, want ErrInvalidRequest with a hint", err)
	}
	if m := mode(t, dir); m != 0o755 {
		t.Fatalf("refused dir mode changed to %04o", m)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s2, err := OpenFileStore(dir, 0o440)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s2.Create(bg, "k2", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, filepath.Join(dir, "k2.key")); m != 0o440 {
		t.Fatalf("record mode %04o, want 0440", m)
	}
	// A read-only record can still be replaced and deleted (directory rights).
	if _, err := s2.Update(bg, "k2", []byte("w"), 1); err != nil {
		t.Fatal(err)
	}
	if err := s2.Delete(bg, "k2", 2, nil); err != nil {
		t.Fatal(err)
	}

	for _, bad := range []os.FileMode{0o644, 0o666, 0o700, 0o660, 0o604, 0o200, 0o4600, 0o777} {
		if _, err := OpenFileStore(dir, bad); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("perm %04o: err = %v, want ErrInvalidRequest", uint32(bad), err)
		}
	}
	if _, err := OpenFileStore("", 0); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("empty dir: %v", err)
	}
	file := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(file, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(file, 0); err == nil {
		t.Error("OpenFileStore on a regular file succeeded")
	}
}

func TestTempFiles(t *testing.T) {
	s, dir := openStore(t)
	if _, err := s.Create(bg, "a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(bg, "a", []byte("w"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(bg, "a", []byte("x")); !errors.Is(err, kms.ErrExists) {
		t.Fatal(err)
	}
	if tf := tempFiles(t, dir); len(tf) != 0 {
		t.Fatalf("temp files left behind: %v", tf)
	}

	// Crash leftovers are removed on Open; a key whose id starts with ".tmp-",
	// a foreign file, and a temp file another store is still writing are not.
	if _, err := s.Create(bg, ".tmp-a", []byte("v")); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{".tmp-123", ".tmp-456789"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	busy, err := fsutil.WriteTemp(dir, []byte("in flight"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer fsutil.ReleaseTemp(busy)
	if err := os.WriteFile(filepath.Join(dir, "README"), []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenFileStore(dir, 0); err != nil {
		t.Fatal(err)
	}
	if tf := tempFiles(t, dir); len(tf) != 1 || tf[0] != filepath.Base(busy) {
		t.Fatalf("temp files after Open: %v, want only the in-flight %s", tf, filepath.Base(busy))
	}
	for _, n := range []string{".tmp-a.key", "README", "a.key"} {
		if _, err := os.Stat(filepath.Join(dir, n)); err != nil {
			t.Errorf("%s: %v", n, err)
		}
	}
	if e, err := s.Get(bg, ".tmp-a"); err != nil || string(e.Value) != "v" {
		t.Fatalf("Get .tmp-a: %v %v", e, err)
	}
}

func TestConcurrentCreate(t *testing.T) {
	s, dir := openStore(t)
	// Half the creators use a second store on the same directory, standing
	// in for a second process: the winner is decided by the filesystem.
	s2, err := OpenFileStore(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	const n = 64
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			st := s
			if i%2 == 1 {
				st = s2
			}
			<-start
			_, errs[i] = st.Create(bg, "same", fmt.Appendf(nil, "value-%d", i))
		})
	}
	close(start)
	wg.Wait()
	winner := -1
	for i, err := range errs {
		switch {
		case err == nil:
			if winner >= 0 {
				t.Fatalf("creators %d and %d both won", winner, i)
			}
			winner = i
		case !errors.Is(err, kms.ErrExists):
			t.Fatalf("creator %d: %v", i, err)
		}
	}
	if winner < 0 {
		t.Fatal("no creator won")
	}
	e, err := s.Get(bg, "same")
	if err != nil {
		t.Fatal(err)
	}
	if want := fmt.Sprintf("value-%d", winner); string(e.Value) != want || e.Revision != 1 {
		t.Fatalf("stored %q rev %d, want %q rev 1", e.Value, e.Revision, want)
	}
	if tf := tempFiles(t, dir); len(tf) != 0 {
		t.Fatalf("temp files left behind: %v", tf)
	}
}

func TestUpdateCAS(t *testing.T) {
	s, _ := openStore(t)
	if _, err := s.Create(bg, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	e, err := s.Get(bg, "k")
	if err != nil || e.Revision != 1 || string(e.Value) != "v1" {
		t.Fatalf("Get: %+v %v", e, err)
	}
	if _, err := s.Update(bg, "k", []byte("v2"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Update(bg, "k", []byte("stale"), 1); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("stale Update: %v, want ErrConflict", err)
	}
	if _, err := s.Update(bg, "k", []byte("future"), 5); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("future Update: %v, want ErrConflict", err)
	}
	e, err = s.Get(bg, "k")
	if err != nil || e.Revision != 2 || string(e.Value) != "v2" {
		t.Fatalf("after Update: %+v %v", e, err)
	}
	if _, err := s.Update(bg, "k", []byte("v3"), 2); err != nil {
		t.Fatal(err)
	}
	if e, _ = s.Get(bg, "k"); e.Revision != 3 || string(e.Value) != "v3" {
		t.Fatalf("after 2nd Update: %+v", e)
	}

	// Concurrent CAS from the same revision: exactly one wins.
	const n = 32
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := range n {
		wg.Go(func() { _, errs[i] = s.Update(bg, "k", fmt.Appendf(nil, "c%d", i), 3) })
	}
	wg.Wait()
	wins := 0
	for _, err := range errs {
		if err == nil {
			wins++
		} else if !errors.Is(err, kms.ErrConflict) {
			t.Fatal(err)
		}
	}
	if e, _ = s.Get(bg, "k"); wins != 1 || e.Revision != 4 {
		t.Fatalf("%d concurrent CAS winners, revision %d; want 1 and 4", wins, e.Revision)
	}

	if _, err := s.Update(bg, "nope", []byte("v"), 1); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("Update missing: %v", err)
	}
	if _, err := s.Update(bg, "k", make([]byte, MaxValueSize+1), 4); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("oversized Update: %v", err)
	}
}

func TestDeleteAndGetMissing(t *testing.T) {
	s, dir := openStore(t)
	if _, err := s.Get(bg, "k"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("Get missing: %v", err)
	}
	if err := s.Delete(bg, "k", 1, nil); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("Delete missing: %v", err)
	}
	if _, err := s.Create(bg, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(bg, "k", 1, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "k.key")); !os.IsNotExist(err) {
		t.Fatalf("file still there: %v", err)
	}
	if _, err := s.Get(bg, "k"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("Get deleted: %v", err)
	}
	// Recreate after delete starts again at revision 1.
	if _, err := s.Create(bg, "k", []byte("v")); err != nil {
		t.Fatal(err)
	}
	if e, _ := s.Get(bg, "k"); e.Revision != 1 {
		t.Fatalf("revision %d", e.Revision)
	}
}

func TestInvalidNamesAndContext(t *testing.T) {
	s, _ := openStore(t)
	for _, n := range []string{"", "..", "../x", "a/b", strings.Repeat("y", 200)} {
		if _, err := s.Create(bg, n, []byte("v")); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("Create(%q): %v", n, err)
		}
		if _, err := s.Get(bg, n); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("Get(%q): %v", n, err)
		}
		if _, err := s.Update(bg, n, nil, 1); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("Update(%q): %v", n, err)
		}
		if err := s.Delete(bg, n, 1, nil); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("Delete(%q): %v", n, err)
		}
	}
	if _, err := s.Create(bg, "big", make([]byte, MaxValueSize+1)); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("oversized Create: %v", err)
	}
	if _, _, err := s.List(bg, "", -1); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("List limit -1: %v", err)
	}

	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.Create(ctx, "c", []byte("v")); !errors.Is(err, context.Canceled) {
		t.Errorf("Create with cancelled ctx: %v", err)
	}
	if _, err := s.Get(bg, "c"); !errors.Is(err, kms.ErrNotFound) {
		t.Errorf("cancelled Create wrote anyway: %v", err)
	}
	if _, err := s.Get(ctx, "c"); !errors.Is(err, context.Canceled) {
		t.Errorf("Get: %v", err)
	}
	if _, err := s.Update(ctx, "c", nil, 1); !errors.Is(err, context.Canceled) {
		t.Errorf("Update: %v", err)
	}
	if err := s.Delete(ctx, "c", 1, nil); !errors.Is(err, context.Canceled) {
		t.Errorf("Delete: %v", err)
	}
	if _, _, err := s.List(ctx, "", 10); !errors.Is(err, context.Canceled) {
		t.Errorf("List: %v", err)
	}
}

func TestList(t *testing.T) {
	s, dir := openStore(t)
	ids := []string{"a", "a-b", "a.b", "b", "B", "c_1", "z", ".tmp-k"}
	for _, id := range ids {
		if _, err := s.Create(bg, id, []byte(id)); err != nil {
			t.Fatal(err)
		}
	}
	// Foreign files, temp files, directories and bad names are not records.
	for _, n := range []string{"notes.txt", ".tmp-999", "key", "bad name.key", "..key", ".key", DefaultParamsFile} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub.key"), 0o700); err != nil {
		t.Fatal(err)
	}
	// A damaged record is still listed: Get reports it.
	if err := os.WriteFile(filepath.Join(dir, "damaged.key"), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	want := append(slices.Clone(ids), "damaged")
	slices.Sort(want)

	var got []string
	after := ""
	for pages := 0; ; pages++ {
		names, more, err := s.List(bg, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		if len(names) > 3 || (more && len(names) != 3) {
			t.Fatalf("page %v more=%v", names, more)
		}
		got = append(got, names...)
		if !more {
			break
		}
		after = names[len(names)-1]
		if pages > 10 {
			t.Fatal("paging does not end")
		}
	}
	if !slices.Equal(got, want) {
		t.Fatalf("listed %v, want %v", got, want)
	}

	all, more, err := s.List(bg, "", 1000)
	if err != nil || more || !slices.Equal(all, want) {
		t.Fatalf("List all: %v %v %v", all, more, err)
	}
	names, more, err := s.List(bg, "", 0)
	if err != nil || len(names) != 0 || !more {
		t.Fatalf("List limit 0: %v %v %v", names, more, err)
	}
	names, more, err = s.List(bg, "z", 10)
	if err != nil || len(names) != 0 || more {
		t.Fatalf("List after last: %v %v %v", names, more, err)
	}
	// after need not be an existing or valid id.
	names, more, err = s.List(bg, "a/", 2)
	if err != nil || !slices.Equal(names, []string{"b", "c_1"}) || !more {
		t.Fatalf("List after \"a/\": %v %v %v", names, more, err)
	}
	if _, err := s.Get(bg, "damaged"); !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("Get damaged: %v", err)
	}
}

func TestCorruptRecords(t *testing.T) {
	s, dir := openStore(t)
	value := []byte("a sealed value that is long enough")
	cases := map[string]func([]byte) []byte{
		"flipped byte":   func(b []byte) []byte { b[len(b)/2] ^= 0x10; return b },
		"truncated":      func(b []byte) []byte { return b[:len(b)-3] },
		"truncated hard": func(b []byte) []byte { return b[:2] },
		"empty":          func(b []byte) []byte { return b[:0] },
		"wrong magic":    func(b []byte) []byte { copy(b, "JSON"); return b },
		"garbage tail":   func(b []byte) []byte { return append(b, "garbage"...) },
		"version 9":      func(b []byte) []byte { b[4] = 9; return b },
	}
	for name, damage := range cases {
		id := strings.ReplaceAll(name, " ", "-")
		if _, err := s.Create(bg, id, value); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, id+keySuffix)
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, damage(b), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err = s.Get(bg, id)
		if !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: Get = %v, want ErrCorrupt", name, err)
			continue
		}
		if !strings.Contains(err.Error(), p) || bytes.Contains([]byte(err.Error()), value[:8]) {
			t.Errorf("%s: error should name the file and not quote it: %v", name, err)
		}
		if _, err := s.Update(bg, id, value, 1); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: Update = %v, want ErrCorrupt", name, err)
		}
		if err := s.Delete(bg, id, 1, nil); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: Delete = %v, want ErrCorrupt: a record whose revision cannot be read is never deleted", name, err)
		}
	}

	// A symlink named like a record is not followed; an oversized file is not read.
	target := filepath.Join(t.TempDir(), "elsewhere")
	if err := os.WriteFile(target, encodeRecord(1, value), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(target, filepath.Join(dir, "link.key")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(bg, "link"); !errors.Is(err, kms.ErrCorrupt) {
		t.Errorf("symlink: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "huge.key"), make([]byte, maxRecordSize+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(bg, "huge"); !errors.Is(err, kms.ErrCorrupt) {
		t.Errorf("huge: %v", err)
	}
}

// TestKeyDirAdoption: only a new directory, an empty private one, one
// Keyward marked, or a key directory of an older release (records and the
// KDF file only) become key directories. A configure call naming a
// directory of the host (found as an attack: its mode was changed, a
// foreign ".tmp-*" file deleted, and an immediate deletion removed a
// foreign "server.key") is refused, and nothing in it changes.
func TestKeyDirAdoption(t *testing.T) {
	base := t.TempDir()

	// New: created 0700 with the marker.
	fresh := filepath.Join(base, "new", "keys")
	if _, err := OpenFileStore(fresh, 0); err != nil {
		t.Fatal(err)
	}
	if m := mode(t, fresh); m != 0o700 {
		t.Errorf("created dir mode %04o", m)
	}
	if b, err := os.ReadFile(filepath.Join(fresh, MarkerFile)); err != nil || string(b) != markerContent {
		t.Errorf("marker: %q, %v", b, err)
	}

	// Empty and private: adopted.
	empty := filepath.Join(base, "empty")
	os.Mkdir(empty, 0o700)
	if _, err := OpenFileStore(empty, 0); err != nil {
		t.Fatalf("empty private dir: %v", err)
	}

	// A host directory with foreign files: refused, untouched.
	host := filepath.Join(base, "etc")
	os.Mkdir(host, 0o755)
	foreign := map[string]string{".tmp-12345": "someone's temp file", "server.key": "-----BEGIN PRIVATE KEY-----", "passwd": "root:x:0:0"}
	for name, content := range foreign {
		os.WriteFile(filepath.Join(host, name), []byte(content), 0o644)
	}
	snapshot := func(dir string) map[string]string {
		out := map[string]string{}
		entries, _ := os.ReadDir(dir)
		for _, e := range entries {
			b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
			fi, _ := os.Stat(filepath.Join(dir, e.Name()))
			out[e.Name()] = fmt.Sprintf("%o %s", fi.Mode().Perm(), b)
		}
		fi, _ := os.Stat(dir)
		out["."] = fmt.Sprintf("%o", fi.Mode().Perm())
		return out
	}
	before := snapshot(host)
	if _, err := OpenFileStore(host, 0); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("host dir 0755: err = %v", err)
	}
	os.Chmod(host, 0o700)
	before["."] = "700"
	if _, err := OpenFileStore(host, 0); !errors.Is(err, kms.ErrInvalidRequest) || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("host dir with foreign files: err = %v", err)
	}
	if after := snapshot(host); !maps.Equal(before, after) {
		t.Fatalf("a refused directory changed:\nbefore %v\nafter  %v", before, after)
	}
	if holds, err := HoldsKeys(host); err != nil || holds {
		t.Errorf("HoldsKeys on a directory with a foreign server.key: %v %v", holds, err)
	}

	// A key directory of an older release (no marker): adopted; its
	// records stay.
	legacy := filepath.Join(base, "legacy")
	s, err := OpenFileStore(legacy, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Create(bg, "k1", []byte("sealed")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(legacy, DefaultParamsFile), []byte("{}"), 0o600)
	os.Remove(filepath.Join(legacy, MarkerFile))
	s, err = OpenFileStore(legacy, 0)
	if err != nil {
		t.Fatalf("legacy key dir: %v", err)
	}
	if e, err := s.Get(bg, "k1"); err != nil || string(e.Value) != "sealed" {
		t.Fatalf("legacy record: %v", err)
	}
	if holds, err := HoldsKeys(legacy); err != nil || !holds {
		t.Errorf("HoldsKeys on a key directory: %v %v", holds, err)
	}
	if _, err := os.Stat(filepath.Join(legacy, MarkerFile)); err != nil {
		t.Errorf("legacy dir not marked: %v", err)
	}
	// A ".key" file that is not a record makes a directory foreign.
	os.Remove(filepath.Join(legacy, MarkerFile))
	os.WriteFile(filepath.Join(legacy, "server.key"), []byte("-----BEGIN"), 0o600)
	if _, err := OpenFileStore(legacy, 0); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("dir with a foreign .key: err = %v", err)
	}
}

// TestDeleteAtRevision: Delete removes exactly the revision it is given,
// runs destroyMaterial first, and keeps the record when that fails.
func TestDeleteAtRevision(t *testing.T) {
	s, dir := openStore(t)
	if _, err := s.Create(bg, "k", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	rev, err := s.Update(bg, "k", []byte("v2"), 1)
	if err != nil || rev != 2 {
		t.Fatalf("update: rev %d %v", rev, err)
	}
	if err := s.Delete(bg, "k", 1, nil); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("delete at a stale revision: %v", err)
	}
	boom := errors.New("material stays")
	if err := s.Delete(bg, "k", 2, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("delete with failing material destruction: %v", err)
	}
	if e, err := s.Get(bg, "k"); err != nil || string(e.Value) != "v2" {
		t.Fatalf("record after a failed deletion: %v", err)
	}
	ran := false
	if err := s.Delete(bg, "k", 2, func() error { ran = true; return nil }); err != nil || !ran {
		t.Fatalf("delete: %v (material destroyed: %v)", err, ran)
	}
	if _, err := os.Stat(filepath.Join(dir, "k.key")); !os.IsNotExist(err) {
		t.Fatalf("record file still there: %v", err)
	}
}
