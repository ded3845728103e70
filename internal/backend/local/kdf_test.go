package local

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

// Golden vectors: a fixed passphrase, the test cost and a counting "random"
// source give a fixed parameter file and a fixed sealed value. If these
// change, existing key directories no longer open. Never edit them to make
// a test pass; add a new format version instead.
//
// The AES-GCM, Argon2id and CRC-32C values were cross-checked once against
// independent implementations (Python "cryptography" and a bitwise CRC).
const (
	goldenParams = `{
  "version": 1,
  "kdf": "argon2id",
  "time": 1,
  "memory_kib": 19456,
  "threads": 1,
  "key_len": 32,
  "salt": "AAECAwQFBgcICQoLDA0ODw==",
  "check": "ARAREhMUFRYXGBkaG3JYICh7Xf2yDha1B+vkH6isqS+MWGHuQzyLdB6nDfhxBMeu2++uMoRdIA=="
}
`
	goldenSealed = "011c1d1e1f2021222324252627453a1aae9ca7d10089823f8178661a990f2f8519bc573d84ac9055176e395149419f9e"
	// Root key file: "KWRK", version 1, key bytes 00..1f, CRC-32C.
	goldenRoot       = "4b57524b01000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1fdb14af4f"
	goldenRootSealed = "01202122232425262728292a2bb555ca1409f63a657f0562a3a06c918bb92880145af61bea6e44f701cc44b50ef39bfd"
)

func TestGoldenPassphraseSealer(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultParamsFile)
	rnd := &countingReader{}
	s, err := newPassphraseSealer(path, []byte("keyward golden passphrase"), rnd, testCost)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	params, _ := os.ReadFile(path)
	sealed, err := s.Seal(bg, []byte("golden key material"), []byte("golden-key"))
	if err != nil {
		t.Fatal(err)
	}
	if string(params) != goldenParams {
		t.Errorf("params file:\n%s\nwant:\n%s", params, goldenParams)
	}
	if got := hex.EncodeToString(sealed); got != goldenSealed {
		t.Errorf("sealed = %s\nwant     %s", got, goldenSealed)
	}

	// And the frozen value opens with a sealer built from the frozen file.
	dir := t.TempDir()
	path = filepath.Join(dir, DefaultParamsFile)
	if err := os.WriteFile(path, []byte(goldenParams), 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := NewPassphraseSealer(path, []byte("keyward golden passphrase"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, _ := hex.DecodeString(goldenSealed)
	if pt, err := s2.Open(bg, b, []byte("golden-key")); err != nil || string(pt) != "golden key material" {
		t.Fatalf("golden value: %q %v", pt, err)
	}
}

func TestGoldenRootKeySealer(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultRootKeyFile)
	rnd := &countingReader{}
	s, err := NewRootKeySealer(path, rnd)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	file, _ := os.ReadFile(path)
	sealed, _ := s.Seal(bg, []byte("golden key material"), []byte("golden-key"))
	if got := hex.EncodeToString(file); got != goldenRoot {
		t.Errorf("root key file = %s\nwant            %s", got, goldenRoot)
	}
	if got := hex.EncodeToString(sealed); got != goldenRootSealed {
		t.Errorf("sealed = %s\nwant     %s", got, goldenRootSealed)
	}

	// The frozen file and value open with the production constructor.
	path = filepath.Join(t.TempDir(), DefaultRootKeyFile)
	file, _ = hex.DecodeString(goldenRoot)
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := NewRootKeySealer(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	b, _ := hex.DecodeString(goldenRootSealed)
	if pt, err := s2.Open(bg, b, []byte("golden-key")); err != nil || string(pt) != "golden key material" {
		t.Fatalf("golden value: %q %v", pt, err)
	}
}

func TestParseKDFParamsBounds(t *testing.T) {
	path := filepath.Join(t.TempDir(), DefaultParamsFile)
	passSealer(t, path, "pw")
	good, _ := os.ReadFile(path)
	if _, err := parseKDFParams(good); err != nil {
		t.Fatalf("freshly written file rejected: %v", err)
	}
	p, _ := parseKDFParams(good)
	edit := func(f func(*kdfParams)) kdfParams { q := p; f(&q); return q }
	for name, q := range map[string]kdfParams{
		"version":    edit(func(q *kdfParams) { q.Version = 2 }),
		"kdf":        edit(func(q *kdfParams) { q.KDF = "argon2i" }),
		"time 0":     edit(func(q *kdfParams) { q.Time = 0 }),
		"time big":   edit(func(q *kdfParams) { q.Time = maxKDFTime + 1 }),
		"mem small":  edit(func(q *kdfParams) { q.MemoryKiB = minKDFMemoryKiB - 1 }),
		"mem big":    edit(func(q *kdfParams) { q.MemoryKiB = maxKDFMemoryKiB + 1 }),
		"threads 0":  edit(func(q *kdfParams) { q.Threads = 0 }),
		"key_len 16": edit(func(q *kdfParams) { q.KeyLen = 16 }),
		"salt 15":    edit(func(q *kdfParams) { q.Salt = q.Salt[:15] }),
		"no salt":    edit(func(q *kdfParams) { q.Salt = nil }),
		"check":      edit(func(q *kdfParams) { q.Check = q.Check[1:] }),
	} {
		b, err := jsonMarshal(q)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := parseKDFParams(b); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
	for name, b := range map[string]string{
		"unknown field": `{"version":1,"extra":true}`,
		"not json":      `KWKF`,
		"array":         `[]`,
		"threads 300":   `{"threads":300}`,
		"two objects":   string(good) + string(good),
	} {
		if _, err := parseKDFParams([]byte(b)); !errors.Is(err, kms.ErrCorrupt) {
			t.Errorf("%s: %v, want ErrCorrupt", name, err)
		}
	}
}

// FuzzParseKDFParams: the parameter parser never panics, and whatever it
// accepts is within the bounds that keep start-up cheap and safe.
func FuzzParseKDFParams(f *testing.F) {
	f.Add([]byte(goldenParams))
	f.Add([]byte(`{"version":1,"kdf":"argon2id","time":1,"memory_kib":19456,"threads":1,"key_len":32,"salt":"AAAAAAAAAAAAAAAAAAAAAA==","check":""}`))
	f.Add([]byte(`{}`))
	f.Add([]byte(`null`))
	f.Add([]byte(`{"salt":"!!"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := parseKDFParams(b)
		if err != nil {
			if !errors.Is(err, kms.ErrCorrupt) {
				t.Fatalf("error does not wrap ErrCorrupt: %v", err)
			}
			return
		}
		if p.Time < 1 || p.Time > maxKDFTime || p.MemoryKiB < minKDFMemoryKiB || p.MemoryKiB > maxKDFMemoryKiB ||
			p.Threads < 1 || p.Threads > maxKDFThreads || p.KeyLen != kekSize || len(p.Salt) != kdfSaltSize ||
			len(p.Check) != sealOverhead+len(checkPlaintext) || p.KDF != kdfName {
			t.Fatalf("accepted out-of-bounds parameters %+v", p)
		}
		if !bytes.Contains(b, []byte("{")) {
			t.Fatal("accepted input without an object")
		}
	})
}

func jsonMarshal(p kdfParams) ([]byte, error) { return json.Marshal(&p) }
