package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"io"
	"sync"

	"github.com/keyward/keyward/internal/kms"
)

// Material makes, uses and destroys the key material of a key's versions.
// The Keyring keeps the records and calls it; it knows a key only by id,
// version number and its own state string (Record.MaterialState, stored
// sealed in the key's record), never the record itself.
//
// There are two kinds. Material kept in the record (InRecord: the local
// and vault backends, SealedMaterial) is made by NewVersion before the
// record is written and lives and dies with the record. Material kept by
// the backend (vault-transit: Vault Transit keys) is made by Commit after
// the record naming the version is durable, and destroyed by Destroy.
type Material interface {
	// InRecord reports whether versions' material is kept in the record.
	InRecord() bool
	// NewVersion returns fresh material for a new version to keep in the
	// record, or nil when the backend keeps the material.
	NewVersion(ctx context.Context) ([]byte, error)
	// Commit makes version v of key id exist in the backend, after the
	// record naming it is durable, and returns the key's material state
	// from then on (when it differs from state, the Keyring stores it).
	// Material kept in the record has nothing to do.
	Commit(ctx context.Context, id string, v uint32, state string) (string, error)
	// Usable reports why a key whose material state is state must not be
	// used, rotated or destroyed by the backend (nil: it may).
	Usable(id, state string) error
	// Wrap encrypts plaintext under version k, binding aad.
	Wrap(ctx context.Context, k *Version, plaintext, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap; any mismatch is kms.ErrInvalidCiphertext.
	Unwrap(ctx context.Context, k *Version, ciphertext, aad []byte) ([]byte, error)
	// Destroy destroys what the backend keeps of key id, if state proves
	// it is the backend's. It runs after the record's deletion is decided
	// and before the record is removed.
	Destroy(ctx context.Context, id, state string) error
}

// Version is one version of a cached key, as the Keyring hands it to the
// Material.
type Version struct {
	KeyID  string
	Number uint32
	// State is the key's material state.
	State string
	// material is the version's material when the record keeps it (nil
	// otherwise). It is wiped when the key leaves the cache.
	material []byte

	// aead is built from material once and kept while the key is cached.
	// Go's AES and GCM keep the expanded key schedule and the GHASH key in
	// opaque structures that cannot be wiped. Built per call, as Keyward
	// did at first, every request left one such copy of key-derived state
	// in freed heap memory until the garbage collector reused it (tens of
	// thousands a second under load), and paid 1.2 KB and two allocations
	// for it. Built once per cached version there is one copy, alive
	// exactly as long as the cached record, whose raw material is wiped on
	// eviction.
	once sync.Once
	aead cipher.AEAD
	err  error
}

// AEAD returns the AES-256-GCM of the version's material (built once).
func (v *Version) AEAD() (cipher.AEAD, error) {
	v.once.Do(func() {
		if v.material == nil {
			v.err = fmt.Errorf("keyring: key %q version %d has no material in its record", v.KeyID, v.Number)
			return
		}
		block, err := aes.NewCipher(v.material)
		if err != nil {
			v.err = fmt.Errorf("keyring: %w", err)
			return
		}
		if v.aead, err = cipher.NewGCM(block); err != nil {
			v.err = fmt.Errorf("keyring: %w", err)
		}
	})
	return v.aead, v.err
}

func (v *Version) wipe() {
	clear(v.material)
	v.aead = nil // unwipeable (see Version): let it go at least
}

// SealedMaterial is material kept in the record: a random AES-256 key per
// version, sealed with the record by the Keyring's Sealer. Wrap seals with
// AES-256-GCM under it: nonce (12 bytes) || ciphertext || tag.
type SealedMaterial struct {
	// Rand is the source of material and nonces.
	Rand io.Reader
}

var _ Material = SealedMaterial{}

const nonceSize = 12

func (SealedMaterial) InRecord() bool { return true }

func (m SealedMaterial) NewVersion(context.Context) ([]byte, error) {
	material := make([]byte, MaterialSize)
	if _, err := io.ReadFull(m.Rand, material); err != nil {
		return nil, fmt.Errorf("keyring: reading randomness: %w", err)
	}
	return material, nil
}

func (SealedMaterial) Commit(_ context.Context, _ string, _ uint32, state string) (string, error) {
	return state, nil
}

func (SealedMaterial) Usable(string, string) error { return nil }

func (SealedMaterial) Destroy(context.Context, string, string) error { return nil }

func (m SealedMaterial) Wrap(_ context.Context, k *Version, plaintext, aad []byte) ([]byte, error) {
	aead, err := k.AEAD()
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+aead.Overhead())
	if _, err := io.ReadFull(m.Rand, nonce); err != nil {
		return nil, fmt.Errorf("keyring: reading randomness: %w", err)
	}
	return aead.Seal(nonce, nonce, plaintext, aad), nil
}

func (SealedMaterial) Unwrap(_ context.Context, k *Version, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < nonceSize+16 {
		return nil, fmt.Errorf("%w: ciphertext too short", kms.ErrInvalidCiphertext)
	}
	aead, err := k.AEAD()
	if err != nil {
		return nil, err
	}
	out, err := aead.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed (tampered blob or wrong encryption context)", kms.ErrInvalidCiphertext)
	}
	return out, nil
}
