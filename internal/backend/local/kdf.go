package local

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/keyward/keyward/internal/fsutil"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/crypto/argon2"

	"github.com/keyward/keyward/internal/kms"
)

// DefaultParamsFile is the suggested name of the KDF parameter file, inside
// the key directory: the salt belongs to the records it protects, and
// NewPassphraseSealer's guard against regenerating a lost salt only works
// when it sits next to them.
const DefaultParamsFile = "kdf-params.json"

// ErrMasterKeyMismatch means the passphrase does not derive the KEK recorded
// in the parameter file: every record would fail to open, so the backend
// refuses to start instead. NewPassphraseSealer's error matches both this and
// kms.ErrInvalidRequest (the configured master_key is wrong for this key
// directory); map it to something else with errors.Is if that suits better.
var ErrMasterKeyMismatch = errors.New("master key does not match the key directory")

// kdfParams is the KDF parameter file (JSON, mode 0600, not secret):
//
//	{"version": 1, "kdf": "argon2id", "time": 3, "memory_kib": 65536,
//	 "threads": 4, "key_len": 32, "salt": "<base64, 16 bytes>",
//	 "check": "<base64 sealed value>"}
//
// check is checkPlaintext sealed under the derived KEK with checkAAD, so a
// wrong passphrase is caught when the backend opens.
type kdfParams struct {
	Version   int    `json:"version"`
	KDF       string `json:"kdf"`
	Time      uint32 `json:"time"`
	MemoryKiB uint32 `json:"memory_kib"`
	Threads   uint8  `json:"threads"`
	KeyLen    uint32 `json:"key_len"`
	Salt      []byte `json:"salt"`
	Check     []byte `json:"check"`
}

// kdfCost is the part of the parameters chosen when a file is created.
type kdfCost struct {
	Time      uint32
	MemoryKiB uint32
	Threads   uint8
}

// defaultKDFCost is the second recommendation of RFC 9106 §4 (t=3, 64 MiB,
// p=4): roughly 100–200 ms once per start on current hardware, which is the
// only time the KDF runs.
var defaultKDFCost = kdfCost{Time: 3, MemoryKiB: 64 << 10, Threads: 4}

// Bounds of parameters accepted from a file. The minimum memory is OWASP's
// Argon2id floor (19 MiB); the maxima stop a damaged or hostile file from
// turning start-up into a multi-gigabyte, minutes-long computation.
const (
	kdfParamsVersion = 1
	kdfName          = "argon2id"
	minKDFMemoryKiB  = 19 << 10
	maxKDFMemoryKiB  = 4 << 20
	maxKDFTime       = 32
	maxKDFThreads    = 64
	kdfSaltSize      = 16
	maxParamsFile    = 4096
	checkPlaintext   = "keyward local KEK check v1"
	checkAAD         = "keyward:kek-check" // ':' is not allowed in key ids
)

// parseKDFParams strictly decodes and validates a parameter file. Every
// error wraps kms.ErrCorrupt.
func parseKDFParams(b []byte) (kdfParams, error) {
	var p kdfParams
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return kdfParams{}, fmt.Errorf("not a KDF parameter file: %v: %w", err, kms.ErrCorrupt)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return kdfParams{}, fmt.Errorf("trailing data after the parameters: %w", kms.ErrCorrupt)
	}
	var why string
	switch {
	case p.Version != kdfParamsVersion:
		why = "unknown version"
	case p.KDF != kdfName:
		why = "unknown kdf"
	case p.Time < 1 || p.Time > maxKDFTime:
		why = "time out of range"
	case p.MemoryKiB < minKDFMemoryKiB || p.MemoryKiB > maxKDFMemoryKiB:
		why = "memory_kib out of range"
	case p.Threads < 1 || p.Threads > maxKDFThreads:
		why = "threads out of range"
	case p.KeyLen != kekSize:
		why = "key_len must be 32"
	case len(p.Salt) != kdfSaltSize:
		why = "salt must be 16 bytes"
	case len(p.Check) != sealOverhead+len(checkPlaintext):
		why = "check value has the wrong size"
	default:
		return p, nil
	}
	return kdfParams{}, fmt.Errorf("invalid KDF parameters: %s: %w", why, kms.ErrCorrupt)
}

func (p *kdfParams) deriveKEK(passphrase []byte) []byte {
	return argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, p.KeyLen)
}

// NewPassphraseSealer returns a sealer whose KEK is derived from passphrase
// (the `master_key`) with Argon2id. The parameters, a random 16-byte salt and
// a check value live in paramsPath (see kdfParams; DefaultParamsFile in the
// key directory is the intended place). On first use the file is created
// with mode 0600, salt and nonce drawn from rand (nil: crypto/rand), and
// published without clobbering, so concurrent first starts agree on one
// salt. Afterwards it is only read, which keeps the salt, and so the KEK,
// stable.
//
// A wrong passphrase fails here with ErrMasterKeyMismatch. A damaged or
// implausible file fails with kms.ErrCorrupt. If the file is missing while
// its directory already holds "*.key" records, the call fails with
// kms.ErrCorrupt rather than invent a new salt that would orphan them.
//
// passphrase stays the caller's (wipe it when done); the derived KEK is
// owned by the sealer and wiped by Close. Argon2id's internal memory is
// garbage collected, not wiped: x/crypto offers no way to.
func NewPassphraseSealer(paramsPath string, passphrase []byte, rand io.Reader) (*AEADSealer, error) {
	return newPassphraseSealer(paramsPath, passphrase, rand, defaultKDFCost)
}

// newPassphraseSealer is NewPassphraseSealer with the cost used when the
// file is created (tests use the cheapest accepted one).
func newPassphraseSealer(path string, passphrase []byte, rand io.Reader, cost kdfCost) (*AEADSealer, error) {
	if path == "" {
		return nil, fmt.Errorf("local: empty KDF parameter path: %w", kms.ErrInvalidRequest)
	}
	if len(passphrase) == 0 {
		return nil, fmt.Errorf("local: empty master key: %w", kms.ErrInvalidRequest)
	}
	if rand == nil {
		rand = crand.Reader
	}
	for range 2 {
		b, err := fsutil.ReadSmallFile(path, maxParamsFile)
		switch {
		case err == nil:
			p, err := parseKDFParams(b)
			if err != nil {
				return nil, fmt.Errorf("local: KDF parameter file %s: %w", path, err)
			}
			return openWithParams(path, &p, passphrase, rand)
		case errors.Is(err, fs.ErrNotExist):
			s, err := createParams(path, passphrase, rand, cost)
			if !errors.Is(err, fs.ErrExist) {
				return s, err
			}
			// Another process created it first: use theirs.
		case errors.Is(err, fsutil.ErrNotRegular), errors.Is(err, fsutil.ErrTooLarge):
			return nil, fmt.Errorf("local: KDF parameter file %s: %v: %w", path, err, kms.ErrCorrupt)
		default:
			return nil, unavailable(err)
		}
	}
	return nil, fmt.Errorf("local: KDF parameter file %s keeps disappearing: %w", path, kms.ErrUnavailable)
}

func openWithParams(path string, p *kdfParams, passphrase []byte, rand io.Reader) (*AEADSealer, error) {
	s, err := newAEADSealer(p.deriveKEK(passphrase), rand)
	if err != nil {
		return nil, err
	}
	pt, err := s.Open(context.Background(), p.Check, []byte(checkAAD))
	ok := err == nil && subtle.ConstantTimeCompare(pt, []byte(checkPlaintext)) == 1
	clear(pt)
	if !ok {
		s.Close()
		return nil, fmt.Errorf("local: %w (parameter file %s): %w", ErrMasterKeyMismatch, path, kms.ErrInvalidRequest)
	}
	return s, nil
}

func createParams(path string, passphrase []byte, rand io.Reader, cost kdfCost) (*AEADSealer, error) {
	dir := filepath.Dir(path)
	if n, err := countRecords(dir); err != nil {
		return nil, unavailable(err)
	} else if n > 0 {
		return nil, fmt.Errorf("local: KDF parameter file %s is missing but %s holds %d key records; "+
			"restore the file (a new salt would make them unreadable): %w", path, dir, n, kms.ErrCorrupt)
	}
	p := kdfParams{
		Version: kdfParamsVersion, KDF: kdfName,
		Time: cost.Time, MemoryKiB: cost.MemoryKiB, Threads: cost.Threads, KeyLen: kekSize,
		Salt: make([]byte, kdfSaltSize),
	}
	if _, err := io.ReadFull(rand, p.Salt); err != nil {
		return nil, fmt.Errorf("local: generating a salt: %v: %w", err, kms.ErrUnavailable)
	}
	s, err := newAEADSealer(p.deriveKEK(passphrase), rand)
	if err != nil {
		return nil, err
	}
	if p.Check, err = s.Seal(context.Background(), []byte(checkPlaintext), []byte(checkAAD)); err != nil {
		s.Close()
		return nil, err
	}
	b, err := json.MarshalIndent(&p, "", "  ")
	if err != nil {
		s.Close()
		return nil, fmt.Errorf("local: %w", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.Close()
		return nil, unavailable(err)
	}
	if err := fsutil.PublishExclusive(dir, path, append(b, '\n'), 0o600); err != nil {
		s.Close()
		if errors.Is(err, fs.ErrExist) {
			return nil, err
		}
		return nil, unavailable(err)
	}
	return s, nil
}

// countRecords counts "<id>.key" entries in dir (0 if dir does not exist).
func countRecords(dir string) (int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	n := 0
	for _, e := range entries {
		if id, ok := strings.CutSuffix(e.Name(), keySuffix); ok && ValidName(id) {
			n++
		}
	}
	return n, nil
}
