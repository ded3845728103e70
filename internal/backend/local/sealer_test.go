package local

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

// testCost is the cheapest cost parseKDFParams accepts (19 MiB, t=1, p=1).
var testCost = kdfCost{Time: 1, MemoryKiB: minKDFMemoryKiB, Threads: 1}

// countingReader is a deterministic "random" source: 0x00, 0x01, 0x02, ...
type countingReader struct{ next byte }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = r.next
		r.next++
	}
	return len(p), nil
}

func passSealer(t *testing.T, path, pass string) *AEADSealer {
	t.Helper()
	s, err := newPassphraseSealer(path, []byte(pass), nil, testCost)
	if err != nil {
		t.Fatalf("newPassphraseSealer: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// testSealer exercises the keyring.Sealer contract on s.
func testSealer(t *testing.T, s *AEADSealer) {
	t.Helper()
	pt := []byte("thirty-two bytes of key material")
	aad := []byte("key-1")
	sealed, err := s.Seal(bg, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	if len(sealed) != len(pt)+sealOverhead || sealed[0] != sealVersion {
		t.Fatalf("sealed layout: %d bytes, version %d", len(sealed), sealed[0])
	}
	if bytes.Contains(sealed, pt[:8]) {
		t.Fatal("sealed bytes contain the plaintext")
	}
	got, err := s.Open(bg, sealed, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("Open: %q %v", got, err)
	}
	again, _ := s.Seal(bg, pt, aad)
	if bytes.Equal(again, sealed) {
		t.Fatal("two seals of one plaintext are identical (nonce reuse)")
	}
	for _, wrong := range [][]byte{[]byte("key-2"), nil, []byte("key-1\x00")} {
		if _, err := s.Open(bg, sealed, wrong); !errors.Is(err, kms.ErrCorrupt) {
			t.Fatalf("Open with aad %q: %v, want ErrCorrupt", wrong, err)
		}
	}
	for i := range len(sealed) * 8 {
		b := bytes.Clone(sealed)
		b[i/8] ^= 1 << (i % 8)
		if _, err := s.Open(bg, b, aad); !errors.Is(err, kms.ErrCorrupt) {
			t.Fatalf("bit %d flipped: %v, want ErrCorrupt", i, err)
		}
	}
	for _, n := range []int{0, 1, sealOverhead - 1, len(sealed) - 1} {
		if _, err := s.Open(bg, sealed[:n], aad); !errors.Is(err, kms.ErrCorrupt) {
			t.Fatalf("truncated to %d: %v", n, err)
		}
	}
	if _, err := s.Open(bg, append(bytes.Clone(sealed), 0), aad); !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("extended: %v", err)
	}
	_, err = s.Open(bg, sealed, []byte("key-2"))
	if strings.Contains(err.Error(), string(pt)) || strings.Contains(err.Error(), hex.EncodeToString(s.kek)) {
		t.Fatalf("error leaks secrets: %v", err)
	}
	ctx, cancel := context.WithCancel(bg)
	cancel()
	if _, err := s.Seal(ctx, pt, aad); !errors.Is(err, context.Canceled) {
		t.Fatalf("Seal with cancelled ctx: %v", err)
	}
}

func TestPassphraseSealer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "keys", DefaultParamsFile)
	s := passSealer(t, path, "correct horse")
	testSealer(t, s)
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("params file mode %04o, want 0600", m)
	}
	sealed, err := s.Seal(bg, []byte("old record"), []byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(path)

	// Same passphrase later: same salt, so old records open.
	s2 := passSealer(t, path, "correct horse")
	if pt, err := s2.Open(bg, sealed, []byte("k")); err != nil || string(pt) != "old record" {
		t.Fatalf("reopened sealer cannot open an old record: %q %v", pt, err)
	}
	if after, _ := os.ReadFile(path); !bytes.Equal(before, after) {
		t.Fatal("params file rewritten on reopen")
	}

	// Wrong passphrase: refused at open time, with a clear error.
	_, err = newPassphraseSealer(path, []byte("correct horsf"), nil, testCost)
	if !errors.Is(err, ErrMasterKeyMismatch) || !errors.Is(err, kms.ErrInvalidRequest) ||
		!strings.Contains(err.Error(), "master key does not match the key directory") {
		t.Fatalf("wrong passphrase: %v", err)
	}
	if strings.Contains(err.Error(), "correct horsf") {
		t.Fatalf("error leaks the passphrase: %v", err)
	}
	if _, err := newPassphraseSealer(filepath.Join(dir, "x.json"), nil, nil, testCost); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("empty passphrase: %v", err)
	}
}

func TestPassphraseSealerRefusesNewSaltOverRecords(t *testing.T) {
	st, dir := openStore(t)
	path := filepath.Join(dir, DefaultParamsFile)
	s := passSealer(t, path, "pw")
	sealed, _ := s.Seal(bg, []byte("m"), []byte("k"))
	if _, err := st.Create(bg, "k", sealed); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	_, err := newPassphraseSealer(path, []byte("pw"), nil, testCost)
	if !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("missing params with records present: %v, want ErrCorrupt", err)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Fatal("a new params file was created over existing records")
	}
}

func TestPassphraseSealerConcurrentFirstUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultParamsFile)
	const n = 6
	sealers := make([]*AEADSealer, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { sealers[i], errs[i] = newPassphraseSealer(path, []byte("pw"), nil, testCost) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("sealer %d: %v", i, err)
		}
		defer sealers[i].Close()
	}
	sealed, _ := sealers[0].Seal(bg, []byte("x"), nil)
	for i, s := range sealers {
		if _, err := s.Open(bg, sealed, nil); err != nil {
			t.Fatalf("sealer %d derived a different KEK: %v", i, err)
		}
	}
}

// TestPassphraseSealerDefaults runs the real default cost once.
func TestPassphraseSealerDefaults(t *testing.T) {
	if testing.Short() {
		t.Skip("64 MiB Argon2id")
	}
	path := filepath.Join(t.TempDir(), DefaultParamsFile)
	s, err := NewPassphraseSealer(path, []byte("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	b, _ := os.ReadFile(path)
	p, err := parseKDFParams(b)
	if err != nil {
		t.Fatal(err)
	}
	if p.Time != 3 || p.MemoryKiB != 64<<10 || p.Threads != 4 || p.KeyLen != 32 || len(p.Salt) != 16 {
		t.Fatalf("default params %+v", p)
	}
	testSealer(t, s)
	s2, err := NewPassphraseSealer(path, []byte("pw"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s2.Close()
}

func TestCorruptParamsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, DefaultParamsFile)
	passSealer(t, path, "pw")
	good, _ := os.ReadFile(path)
	for name, b := range map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)/2],
		"trailing":  append(bytes.Clone(good), "{}"...),
		"unknown":   bytes.Replace(good, []byte(`"kdf"`), []byte(`"kdf2"`), 1),
		"scrypt":    bytes.Replace(good, []byte(`"argon2id"`), []byte(`"scrypt"`), 1),
		"time 0":    bytes.Replace(good, []byte(`"time": 1`), []byte(`"time": 0`), 1),
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := newPassphraseSealer(path, []byte("pw"), nil, testCost); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestRootKeySealer(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "data", DefaultRootKeyFile)
	s, err := NewRootKeySealer(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	testSealer(t, s)
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("root key mode %04o, want 0600", m)
	}
	if tf := tempFiles(t, filepath.Dir(path)); len(tf) != 0 {
		t.Fatalf("temp files left: %v", tf)
	}
	sealed, _ := s.Seal(bg, []byte("old"), []byte("k"))

	if err := os.Chmod(path, 0o644); err != nil {
		t.Fatal(err)
	}
	s2, err := NewRootKeySealer(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if pt, err := s2.Open(bg, sealed, []byte("k")); err != nil || string(pt) != "old" {
		t.Fatalf("reopened root key sealer: %q %v", pt, err)
	}
	if m := mode(t, path); m != 0o600 {
		t.Fatalf("loose root key mode not narrowed: %04o", m)
	}

	other, _ := NewRootKeySealer(filepath.Join(dir, "other"), nil)
	defer other.Close()
	if _, err := other.Open(bg, sealed, []byte("k")); !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("foreign root key opened a record: %v", err)
	}

	good, _ := os.ReadFile(path)
	for name, b := range map[string][]byte{
		"raw 32 bytes": good[5:37],
		"flipped":      append(append(bytes.Clone(good[:10]), good[10]^1), good[11:]...),
		"wrong magic":  append([]byte("XXXX"), good[4:]...),
		"trailing":     append(bytes.Clone(good), '\n'),
		"empty":        nil,
	} {
		if err := os.WriteFile(path, b, 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := NewRootKeySealer(path, nil); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

func TestSealerClose(t *testing.T) {
	s, err := NewRootKeySealer(filepath.Join(t.TempDir(), "rk"), nil)
	if err != nil {
		t.Fatal(err)
	}
	sealed, _ := s.Seal(bg, []byte("x"), nil)
	kek := s.kek
	s.Close()
	if !bytes.Equal(kek, make([]byte, kekSize)) {
		t.Fatal("KEK not wiped by Close")
	}
	if _, err := s.Seal(bg, []byte("x"), nil); !errors.Is(err, ErrSealerClosed) {
		t.Fatalf("Seal after Close: %v", err)
	}
	if _, err := s.Open(bg, sealed, nil); !errors.Is(err, ErrSealerClosed) {
		t.Fatalf("Open after Close: %v", err)
	}
	s.Close() // idempotent
}

// TestStoreAndSealer: records sealed with their id as aad cannot be swapped.
func TestStoreAndSealer(t *testing.T) {
	st, dir := openStore(t)
	s := passSealer(t, filepath.Join(dir, DefaultParamsFile), "pw")
	for _, id := range []string{"alpha", "beta"} {
		sealed, err := s.Seal(bg, []byte("material of "+id), []byte(id))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := st.Create(bg, id, sealed); err != nil {
			t.Fatal(err)
		}
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "alpha.key"))
	if bytes.Contains(raw, []byte("material")) {
		t.Fatal("record file holds plaintext")
	}
	if err := os.WriteFile(filepath.Join(dir, "beta.key"), raw, 0o600); err != nil {
		t.Fatal(err)
	}
	e, err := st.Get(bg, "beta")
	if err != nil {
		t.Fatal(err) // the copy is a well-formed record file
	}
	if _, err := s.Open(bg, e.Value, []byte("beta")); !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("swapped record opened: %v", err)
	}
	names, _, _ := st.List(bg, "", 10)
	if len(names) != 2 {
		t.Fatalf("params file listed as a key: %v", names)
	}
}
