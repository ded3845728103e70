package local

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	crand "crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"github.com/keyward/keyward/internal/fsutil"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sync"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// Sealed value layout (see doc.go). The version byte is also the first byte
// of the GCM associated data, so it cannot be altered without detection.
const (
	sealVersion  = 1
	nonceSize    = 12
	tagSize      = 16
	sealOverhead = 1 + nonceSize + tagSize
	kekSize      = 32 // AES-256
)

// ErrSealerClosed is returned by Seal and Open after Close. It wraps
// kms.ErrUnavailable: the record is fine, the backend is shut down.
var ErrSealerClosed = fmt.Errorf("local: sealer is closed: %w", kms.ErrUnavailable)

// AEADSealer is a keyring.Sealer using AES-256-GCM with random 96-bit nonces
// under one key-encryption key (KEK). Random nonces are safe here because a
// KEK seals key records, not bulk data: the 2^32-message bound for random
// GCM nonces is far away.
//
// The KEK bytes are owned by the sealer and overwritten by Close. The AES key
// schedule inside crypto/aes cannot be wiped from Go; Close drops the last
// reference to it. Safe for concurrent use.
type AEADSealer struct {
	mu   sync.RWMutex
	kek  []byte
	aead cipher.AEAD
	rand io.Reader
}

var _ keyring.Sealer = (*AEADSealer)(nil)

// newAEADSealer takes ownership of kek (and wipes it if it fails).
func newAEADSealer(kek []byte, rand io.Reader) (*AEADSealer, error) {
	if len(kek) != kekSize {
		clear(kek)
		return nil, fmt.Errorf("local: key-encryption key must be %d bytes: %w", kekSize, kms.ErrInvalidRequest)
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		clear(kek)
		return nil, fmt.Errorf("local: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		clear(kek)
		return nil, fmt.Errorf("local: %w", err)
	}
	if rand == nil {
		rand = crand.Reader
	}
	return &AEADSealer{kek: kek, aead: aead, rand: rand}, nil
}

// additionalData is the GCM associated data: the version byte, then aad.
func additionalData(aad []byte) []byte {
	ad := make([]byte, 0, 1+len(aad))
	return append(append(ad, sealVersion), aad...)
}

// Seal implements keyring.Sealer. Output: version (1) | nonce | ciphertext+tag.
func (s *AEADSealer) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.aead == nil {
		return nil, ErrSealerClosed
	}
	out := make([]byte, 1+nonceSize, sealOverhead+len(plaintext))
	out[0] = sealVersion
	nonce := out[1 : 1+nonceSize]
	if _, err := io.ReadFull(s.rand, nonce); err != nil {
		return nil, fmt.Errorf("local: reading a nonce: %v: %w", err, kms.ErrUnavailable)
	}
	return s.aead.Seal(out, nonce, plaintext, additionalData(aad)), nil
}

// errSealedCorrupt is the single message for every Open failure: telling a
// caller which check failed would not help them and could help an attacker.
var errSealedCorrupt = fmt.Errorf("local: sealed record cannot be opened (damaged, bound to another key id, or sealed under another master key): %w", kms.ErrCorrupt)

// Open implements keyring.Sealer. Any failure wraps kms.ErrCorrupt (after
// Close: ErrSealerClosed). The returned plaintext belongs to the caller, who
// should wipe it when done.
func (s *AEADSealer) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.aead == nil {
		return nil, ErrSealerClosed
	}
	if len(sealed) < sealOverhead || sealed[0] != sealVersion {
		return nil, errSealedCorrupt
	}
	pt, err := s.aead.Open(nil, sealed[1:1+nonceSize], sealed[1+nonceSize:], additionalData(aad))
	if err != nil {
		return nil, errSealedCorrupt
	}
	return pt, nil
}

// Close overwrites the KEK with zeros and makes later Seal and Open calls
// fail with ErrSealerClosed. It waits for calls in progress. Idempotent.
func (s *AEADSealer) Close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.kek)
	s.kek = nil
	s.aead = nil
}

// Root key file: "KWRK" | version 1 | 32-byte key | CRC-32C of the first 37
// bytes, 41 bytes in all. The magic and checksum make a truncated, damaged
// or unrelated file fail loudly at start-up instead of silently becoming a
// wrong KEK under which every record "is corrupt".
const (
	rootKeyMagic    = "KWRK"
	rootKeyVersion  = 1
	rootKeyFileSize = 4 + 1 + kekSize + 4
)

// DefaultRootKeyFile is the suggested name of the root key file in the data
// directory. It deliberately does not end in ".key": a root key placed in
// the key directory must not be listed as a key record.
const DefaultRootKeyFile = "local-root-key.bin"

func encodeRootKey(key []byte) []byte {
	b := make([]byte, 0, rootKeyFileSize)
	b = append(append(append(b, rootKeyMagic...), rootKeyVersion), key...)
	return binary.BigEndian.AppendUint32(b, crc32.Checksum(b, castagnoli))
}

// parseRootKey returns the key bytes (aliasing b) or a reason.
func parseRootKey(b []byte) ([]byte, error) {
	switch {
	case len(b) != rootKeyFileSize:
		return nil, errors.New("wrong size")
	case !bytes.HasPrefix(b, []byte(rootKeyMagic)):
		return nil, errors.New("bad magic (not a Keyward root key file)")
	case b[4] != rootKeyVersion:
		return nil, errors.New("unknown root key format version")
	case binary.BigEndian.Uint32(b[rootKeyFileSize-4:]) != crc32.Checksum(b[:rootKeyFileSize-4], castagnoli):
		return nil, errors.New("checksum mismatch")
	}
	return b[5 : 5+kekSize], nil
}

// NewRootKeySealer returns a sealer whose KEK is a random root key kept in
// rootKeyPath: the `local` backend without a master_key. On first use the
// key is drawn from rand (nil: crypto/rand), written durably with mode 0600
// and published without clobbering, so concurrent first starts agree on one
// key. An existing file must be a valid root key file (else an error wrapping
// kms.ErrCorrupt; it is never regenerated, which would orphan every record);
// if it is readable by group or others its mode is narrowed to 0600.
//
// Anyone who can read the file can open every record: it protects a copied
// key directory, not a compromised data directory.
func NewRootKeySealer(rootKeyPath string, rand io.Reader) (*AEADSealer, error) {
	if rootKeyPath == "" {
		return nil, fmt.Errorf("local: empty root key path: %w", kms.ErrInvalidRequest)
	}
	if rand == nil {
		rand = crand.Reader
	}
	for range 2 {
		b, err := fsutil.ReadSmallFile(rootKeyPath, 4096)
		switch {
		case err == nil:
			return openRootKey(rootKeyPath, b, rand)
		case errors.Is(err, fs.ErrNotExist):
			if err := createRootKey(rootKeyPath, rand); err != nil && !errors.Is(err, fs.ErrExist) {
				return nil, err
			}
			// Created, or lost the race to another creator: read it back.
		case errors.Is(err, fsutil.ErrNotRegular), errors.Is(err, fsutil.ErrTooLarge):
			return nil, fmt.Errorf("local: root key file %s: %v: %w", rootKeyPath, err, kms.ErrCorrupt)
		default:
			return nil, unavailable(err)
		}
	}
	return nil, fmt.Errorf("local: root key file %s keeps disappearing: %w", rootKeyPath, kms.ErrUnavailable)
}

func openRootKey(path string, b []byte, rand io.Reader) (*AEADSealer, error) {
	defer clear(b)
	key, err := parseRootKey(b)
	if err != nil {
		return nil, fmt.Errorf("local: root key file %s: %v: %w", path, err, kms.ErrCorrupt)
	}
	if err := narrowMode(path); err != nil {
		return nil, unavailable(err)
	}
	return newAEADSealer(bytes.Clone(key), rand)
}

func createRootKey(path string, rand io.Reader) error {
	key := make([]byte, kekSize)
	defer clear(key)
	if _, err := io.ReadFull(rand, key); err != nil {
		return fmt.Errorf("local: generating the root key: %v: %w", err, kms.ErrUnavailable)
	}
	b := encodeRootKey(key)
	defer clear(b)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return unavailable(err)
	}
	err := fsutil.PublishExclusive(dir, path, b, 0o600)
	if err != nil && !errors.Is(err, fs.ErrExist) {
		return unavailable(err)
	}
	return err
}

// narrowMode makes a secret file 0600 if group or others have any access.
func narrowMode(path string) error {
	fi, err := os.Lstat(path)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return os.Chmod(path, 0o600)
	}
	return nil
}
