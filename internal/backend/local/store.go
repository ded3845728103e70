package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// keySuffix ends the file name of every key record: "<id>.key".
const keySuffix = ".key"

// aliasSuffix ends the file name of every alias record, and AliasDir is
// the subdirectory of the key directory that holds them.
const (
	aliasSuffix = ".alias"
	AliasDir    = "aliases"
)

// maxAliasName is the longest alias store name (the alias name without
// "alias/", '/' as '.'): with ".alias" it makes a file name of 255 bytes.
const maxAliasName = 255 - len(aliasSuffix)

// recordKind is what a FileStore keeps: key records or alias records.
type recordKind struct {
	suffix  string
	maxName int
}

var (
	keyRecords   = recordKind{keySuffix, 128}
	aliasRecords = recordKind{aliasSuffix, maxAliasName}
)

// valid reports whether name is a safe file name stem for the kind: 1 to
// maxName characters of [A-Za-z0-9._-], not "." or "..". No path
// separator can pass, so a name can never address a file outside the
// directory.
func (k recordKind) valid(name string) bool {
	return len(name) <= k.maxName && validStem(name)
}

// DefaultFilePerm is the mode of record files when OpenFileStore gets 0.
const DefaultFilePerm os.FileMode = 0o600

// ValidName reports whether name is a valid key id and therefore a safe file
// name stem: 1–128 characters of [A-Za-z0-9._-], not "." or "..". No path
// separator can pass, so a name can never address a file outside the
// directory. The kms layer validates ids itself; the store checks again
// because it is the layer that turns a name into a path.
func ValidName(name string) bool { return keyRecords.valid(name) }

func validStem(name string) bool {
	if len(name) == 0 || name == "." || name == ".." {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9',
			c == '.', c == '_', c == '-':
		default:
			return false
		}
	}
	return true
}

// validFilePerm is the rule for the configurable record mode
// (`file_permissions`): the owner can always read and may write; the group
// may read; nobody may execute and "other" gets nothing. That is exactly
// 0600, 0640, 0400 and 0440. Group or world write would let another account
// replace a record (a denial of service even though it cannot forge one),
// and world read would hand sealed material to every local user.
func validFilePerm(perm os.FileMode) bool {
	switch perm {
	case 0o600, 0o640, 0o400, 0o440:
		return true
	}
	return false
}

// FileStore is a keyring.Store keeping one file per key in a directory. See
// the package documentation for the file format and the concurrency rules.
// A FileStore holds no open files and needs no Close.
type FileStore struct {
	dir  string
	perm os.FileMode
	kind recordKind
}

var _ keyring.Store = (*FileStore)(nil)

// OpenFileStore opens the key directory dir. A directory that does not
// exist is created (mode 0700, parents too) and marked as Keyward's with
// the file MarkerFile. An existing directory becomes a key directory only
// if Keyward can tell it is its own, or that nothing of anyone else's is in
// it:
//
//   - it carries MarkerFile (Keyward created or adopted it before);
//   - it is empty; or
//   - it holds only what a key directory of an older Keyward release holds
//     ("<id>.key" record files, the KDF parameter file, temp files).
//
// The last two are adopted: the marker is written into them. Anything else
// is refused (kms.ErrInvalidRequest, naming one foreign entry), so that a
// configure call cannot turn a directory of the host into a key directory
// and have Keyward delete or overwrite files in it. An existing directory
// is never chmod-ed: if group or others can access it, OpenFileStore fails
// and says how to fix it (records are sealed, but their names are key ids,
// and the directory is the whole backend).
//
// perm is the mode of record files; 0 means DefaultFilePerm (0600). Other
// accepted values are 0640, 0400 and 0440 (see validFilePerm); anything else
// is an error wrapping kms.ErrInvalidRequest. Group-readable modes only
// matter to processes that can already enter the 0700 directory.
//
// Temp files left by a crash (".tmp-<digits>", regular files) are removed;
// nothing else is.
func OpenFileStore(dir string, perm os.FileMode) (*FileStore, error) {
	return openRecordStore(dir, perm, keyRecords)
}

// OpenAliasStore opens the alias records of the key directory keyDir: the
// subdirectory AliasDir, created (and marked) when missing, under the same
// rules as OpenFileStore.
func OpenAliasStore(keyDir string, perm os.FileMode) (*FileStore, error) {
	return openRecordStore(filepath.Join(keyDir, AliasDir), perm, aliasRecords)
}

func openRecordStore(dir string, perm os.FileMode, kind recordKind) (*FileStore, error) {
	if dir == "" {
		return nil, fmt.Errorf("local: empty key directory: %w", kms.ErrInvalidRequest)
	}
	if perm == 0 {
		perm = DefaultFilePerm
	}
	if !validFilePerm(perm) {
		return nil, fmt.Errorf("local: file permissions %04o not allowed (use 0600, 0640, 0400 or 0440): %w",
			uint32(perm), kms.ErrInvalidRequest)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("local: key directory %s: %v: %w", dir, err, kms.ErrInvalidRequest)
	}
	created, err := fsutil.SecureDir(abs)
	switch {
	case errors.Is(err, fsutil.ErrNotPrivate):
		return nil, fmt.Errorf("local: key_dir: %v: %w", err, kms.ErrInvalidRequest)
	case err != nil:
		return nil, fmt.Errorf("local: key directory: %v: %w", err, kms.ErrUnavailable)
	}
	entries, err := os.ReadDir(abs)
	if err != nil {
		return nil, fmt.Errorf("local: %v: %w", err, kms.ErrUnavailable)
	}
	if !created && !hasMarker(abs, entries) {
		if foreign := foreignEntry(abs, entries, kind); foreign != "" {
			return nil, fmt.Errorf("local: key_dir %s holds %q, which Keyward did not create; a key directory must be new, empty, or one Keyward made: %w",
				abs, foreign, kms.ErrInvalidRequest)
		}
	}
	if created || !hasMarker(abs, entries) {
		if err := writeMarker(abs); err != nil {
			return nil, unavailable(err)
		}
	}
	for _, e := range entries {
		if !isTempName(e.Name()) || !e.Type().IsRegular() || !fsutil.IsStaleTemp(abs, e.Name()) {
			continue
		}
		if err := os.Remove(filepath.Join(abs, e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, fmt.Errorf("local: removing stale temp file: %v: %w", err, kms.ErrUnavailable)
		}
	}
	return &FileStore{dir: abs, perm: perm, kind: kind}, nil
}

// MarkerFile marks a directory as a Keyward key directory. Its content is
// markerContent; it holds no secret.
const MarkerFile = ".keyward-key-dir"

const markerContent = "Keyward key directory, format 1. Do not put other files here.\n"

func hasMarker(dir string, entries []os.DirEntry) bool {
	for _, e := range entries {
		if e.Name() == MarkerFile {
			b, err := fsutil.ReadSmallFile(filepath.Join(dir, MarkerFile), 4096)
			return err == nil && string(b) == markerContent
		}
	}
	return false
}

func writeMarker(dir string) error {
	err := fsutil.PublishExclusive(dir, filepath.Join(dir, MarkerFile), []byte(markerContent), 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil // a concurrent open wrote it
	}
	return err
}

// foreignEntry returns the name of an entry a key directory of Keyward
// (of this or an older release) would not hold, or "" when there is none:
// record files that start with the record magic, the KDF parameter file,
// and temp files.
func foreignEntry(dir string, entries []os.DirEntry, kind recordKind) string {
	for _, e := range entries {
		name := e.Name()
		switch {
		case kind == keyRecords && name == AliasDir && e.IsDir():
			continue // checked when it is opened
		case !e.Type().IsRegular():
		case name == DefaultParamsFile, name == MarkerFile, isTempName(name):
			continue
		case strings.HasSuffix(name, kind.suffix) && kind.valid(strings.TrimSuffix(name, kind.suffix)) && hasRecordMagic(filepath.Join(dir, name)):
			continue
		}
		return name
	}
	return ""
}

// isTempName reports whether name is one of fsutil's temp file names
// (".tmp-" and digits).
func isTempName(name string) bool {
	digits, ok := strings.CutPrefix(name, fsutil.TempPrefix)
	if !ok || digits == "" {
		return false
	}
	for i := 0; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return false
		}
	}
	return true
}

// HoldsKeys reports whether dir holds at least one key record (a
// "<id>.key" regular file that starts with the record magic). A missing
// directory holds none; files that only look like records do not count,
// so a foreign "server.key" cannot make a directory look like Keyward's.
func HoldsKeys(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), keySuffix)
		if ok && ValidName(id) && e.Type().IsRegular() && hasRecordMagic(filepath.Join(dir, e.Name())) {
			return true, nil
		}
	}
	return false, nil
}

func hasRecordMagic(path string) bool {
	f, err := os.Open(path)
	if err != nil {
		return false
	}
	defer f.Close()
	var head [len(recordMagic)]byte
	_, err = io.ReadFull(f, head[:])
	return err == nil && string(head[:]) == recordMagic
}

// Dir returns the absolute path of the key directory.
func (s *FileStore) Dir() string { return s.dir }

// path validates name and returns its record file path.
func (s *FileStore) path(name string) (string, error) {
	if !s.kind.valid(name) {
		if len(name) > 140 {
			name = name[:140] + "..."
		}
		return "", fmt.Errorf("local: invalid record name %q: %w", name, kms.ErrInvalidRequest)
	}
	return filepath.Join(s.dir, name+s.kind.suffix), nil
}

func checkValue(value []byte) error {
	if len(value) > MaxValueSize {
		return fmt.Errorf("local: value of %d bytes exceeds the %d-byte limit: %w",
			len(value), MaxValueSize, kms.ErrInvalidRequest)
	}
	return nil
}

// unavailable wraps an I/O failure of the directory as a whole: the disk is
// full, read-only, gone. The os error already names the path.
func unavailable(err error) error {
	return fmt.Errorf("local: %v: %w", err, kms.ErrUnavailable)
}

// Create implements keyring.Store. The record is written to a temp file,
// fsynced, hard-linked to its final name (which fails if the name exists, so
// exactly one of any number of concurrent creators wins, even across
// processes) and the directory is fsynced. If Create returns an error other
// than kms.ErrExists the record may or may not exist afterwards; it is never
// half-written.
func (s *FileStore) Create(ctx context.Context, name string, value []byte) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p, err := s.path(name)
	if err != nil {
		return 0, err
	}
	if err := checkValue(value); err != nil {
		return 0, err
	}
	err = fsutil.PublishExclusive(s.dir, p, encodeRecord(1, value), s.perm)
	switch {
	case err == nil:
		return 1, nil
	case errors.Is(err, fs.ErrExist):
		return 0, fmt.Errorf("local: key %q: %w", name, kms.ErrExists)
	default:
		return 0, unavailable(err)
	}
}

// Get implements keyring.Store. A file that exists but cannot be read as a
// record (damaged, truncated, foreign, a symlink, unreadable) is an error
// wrapping kms.ErrCorrupt that names the file but never quotes it.
func (s *FileStore) Get(ctx context.Context, name string) (keyring.Entry, error) {
	if err := ctx.Err(); err != nil {
		return keyring.Entry{}, err
	}
	p, err := s.path(name)
	if err != nil {
		return keyring.Entry{}, err
	}
	rev, value, err := s.read(name, p)
	if err != nil {
		return keyring.Entry{}, err
	}
	return keyring.Entry{Value: value, Revision: rev}, nil
}

func (s *FileStore) read(name, p string) (uint64, []byte, error) {
	b, err := fsutil.ReadSmallFile(p, maxRecordSize)
	switch {
	case err == nil:
	case errors.Is(err, fs.ErrNotExist):
		return 0, nil, fmt.Errorf("local: key %q: %w", name, kms.ErrNotFound)
	case errors.Is(err, fsutil.ErrNotRegular), errors.Is(err, fsutil.ErrTooLarge), errors.Is(err, fs.ErrPermission):
		return 0, nil, fmt.Errorf("local: key file %s: %v: %w", p, unwrapPath(err), kms.ErrCorrupt)
	default:
		return 0, nil, unavailable(err)
	}
	rev, value, err := parseRecordFile(b)
	if err != nil {
		return 0, nil, fmt.Errorf("local: key file %s: %v: %w", p, err, kms.ErrCorrupt)
	}
	return rev, value, nil
}

// unwrapPath drops the *fs.PathError wrapper, whose message repeats the path.
func unwrapPath(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// Update implements keyring.Store as a check-and-set under the per-name
// lock: the stored revision must equal rev (else kms.ErrConflict), and the
// new record with revision rev+1 replaces the file by rename, then the
// directory is fsynced. A damaged record cannot be updated (kms.ErrCorrupt):
// its revision is unknown, and overwriting it would hide the damage.
//
// The lock is per process: two processes updating one directory can lose an
// update. Run one Keyward process per key directory.
func (s *FileStore) Update(ctx context.Context, name string, value []byte, rev uint64) (uint64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	p, err := s.path(name)
	if err != nil {
		return 0, err
	}
	if err := checkValue(value); err != nil {
		return 0, err
	}
	mu := lockFor(p)
	mu.Lock()
	defer mu.Unlock()
	if err := s.checkRevision(name, p, rev); err != nil {
		return 0, err
	}
	if rev == math.MaxUint64 {
		return 0, fmt.Errorf("local: key %q: revision counter exhausted: %w", name, kms.ErrConflict)
	}
	if err := fsutil.PublishReplace(s.dir, p, encodeRecord(rev+1, value), s.perm); err != nil {
		return 0, unavailable(err)
	}
	return rev + 1, nil
}

// checkRevision fails unless the stored record of name is at revision rev.
// The caller holds the name's lock.
func (s *FileStore) checkRevision(name, p string, rev uint64) error {
	cur, _, err := s.read(name, p)
	if err != nil {
		return err
	}
	if cur != rev {
		return fmt.Errorf("local: key %q: revision %d is stale (stored %d): %w", name, rev, cur, kms.ErrConflict)
	}
	return nil
}

// Delete implements keyring.Store under the name's lock: the record must
// still be at revision rev (a damaged record, whose revision is unknown,
// is never deleted), destroyMaterial runs, then the file is removed and the
// directory fsynced, so a deleted key stays deleted after a crash.
func (s *FileStore) Delete(ctx context.Context, name string, rev uint64, destroyMaterial func() error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := s.path(name)
	if err != nil {
		return err
	}
	mu := lockFor(p)
	mu.Lock()
	defer mu.Unlock()
	if err := s.checkRevision(name, p, rev); err != nil {
		return err
	}
	if destroyMaterial != nil {
		if err := destroyMaterial(); err != nil {
			return err
		}
	}
	if err := os.Remove(p); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("local: key %q: %w", name, kms.ErrNotFound)
		}
		return unavailable(err)
	}
	if err := fsutil.SyncDir(s.dir); err != nil {
		return unavailable(err)
	}
	return nil
}

// Names implements keyring.NameLister: every record name, sorted, from
// one read of the directory (the keyring's index reads it once at start).
func (s *FileStore) Names(ctx context.Context) ([]string, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, unavailable(err)
	}
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), s.kind.suffix); ok && !e.IsDir() && s.kind.valid(id) {
			names = append(names, id)
		}
	}
	sort.Strings(names)
	return names, nil
}

// Check reports whether the directory is there (the health check: it
// must not cost a read of a directory of 100,000 records).
func (s *FileStore) Check(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	fi, err := os.Stat(s.dir)
	if err != nil {
		return unavailable(err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("local: %s is not a directory: %w", s.dir, kms.ErrUnavailable)
	}
	return nil
}

// List implements keyring.Store. It reads the whole directory on every call
// (the keyring pages keys from its index, not from here; aliases are few)
// and returns record names, i.e. "<id>.key" entries with a valid id,
// whether or not their content is readable: damage is reported by Get, so
// the kms layer can list a damaged key as unreadable instead of dropping it.
// Temp files and foreign files are skipped. after need not be a valid name.
// limit 0 gives an empty page (more tells whether any name follows); a
// negative limit wraps kms.ErrInvalidRequest.
func (s *FileStore) List(ctx context.Context, after string, limit int) ([]string, bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if limit < 0 {
		return nil, false, fmt.Errorf("local: negative list limit: %w", kms.ErrInvalidRequest)
	}
	entries, err := os.ReadDir(s.dir)
	if err != nil {
		return nil, false, unavailable(err)
	}
	var names []string
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), s.kind.suffix)
		if !ok || e.IsDir() || !s.kind.valid(id) || id <= after {
			continue
		}
		names = append(names, id)
	}
	// ReadDir sorts by file name, which is not id order: "a-b.key" sorts
	// before "a.key" but "a" < "a-b".
	sort.Strings(names)
	if len(names) > limit {
		return names[:limit:limit], true, nil
	}
	return names, false, nil
}
