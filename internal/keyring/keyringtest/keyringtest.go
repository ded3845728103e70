// Package keyringtest has in-memory stand-ins for unit tests of the logic
// above a Store (the kms Service, the keyring). They are never the only
// test of a backend: the real stores have their own tests.
package keyringtest

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// MemStore is a keyring.Store in memory. It counts the reads made of it
// (Gets and Lists), so that a test can tell what a call cost.
type MemStore struct {
	mu   sync.Mutex
	recs map[string]keyring.Entry

	Gets, Lists atomic.Int64
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{recs: map[string]keyring.Entry{}} }

func (m *MemStore) Create(_ context.Context, name string, value []byte) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[name]; ok {
		return 0, fmt.Errorf("%w: %s", kms.ErrExists, name)
	}
	m.recs[name] = keyring.Entry{Value: bytes.Clone(value), Revision: 1}
	return 1, nil
}

func (m *MemStore) Get(_ context.Context, name string) (keyring.Entry, error) {
	m.Gets.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.recs[name]
	if !ok {
		return keyring.Entry{}, fmt.Errorf("%w: %s", kms.ErrNotFound, name)
	}
	return keyring.Entry{Value: bytes.Clone(e.Value), Revision: e.Revision}, nil
}

func (m *MemStore) Update(_ context.Context, name string, value []byte, rev uint64) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(name, rev); err != nil {
		return 0, err
	}
	m.recs[name] = keyring.Entry{Value: bytes.Clone(value), Revision: rev + 1}
	return rev + 1, nil
}

func (m *MemStore) check(name string, rev uint64) error {
	e, ok := m.recs[name]
	if !ok {
		return fmt.Errorf("%w: %s", kms.ErrNotFound, name)
	}
	if e.Revision != rev {
		return fmt.Errorf("%w: %s changed", kms.ErrConflict, name)
	}
	return nil
}

func (m *MemStore) Delete(_ context.Context, name string, rev uint64, destroyMaterial func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check(name, rev); err != nil {
		return err
	}
	if destroyMaterial != nil {
		if err := destroyMaterial(); err != nil {
			return err
		}
	}
	delete(m.recs, name)
	return nil
}

func (m *MemStore) List(_ context.Context, after string, limit int) ([]string, bool, error) {
	m.Lists.Add(1)
	m.mu.Lock()
	defer m.mu.Unlock()
	var names []string
	for n := range m.recs {
		if n > after {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	if len(names) > limit {
		return names[:limit], true, nil
	}
	return names, false, nil
}

// Raw returns the stored bytes (for tamper tests).
func (m *MemStore) Raw(name string) []byte {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.recs[name].Value
}

// SetRaw overwrites the stored bytes (for tamper tests).
func (m *MemStore) SetRaw(name string, v []byte) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.recs[name]
	m.recs[name] = keyring.Entry{Value: v, Revision: e.Revision + 1}
}

// GCMSealer is a keyring.Sealer with a fixed key and a zero-based counter
// nonce: deterministic, for tests only.
type GCMSealer struct {
	aead cipher.AEAD
	mu   sync.Mutex
	n    uint64
}

// NewGCMSealer returns a sealer under a fixed test key.
func NewGCMSealer() *GCMSealer {
	block, _ := aes.NewCipher(bytes.Repeat([]byte{0x42}, 32))
	aead, _ := cipher.NewGCM(block)
	return &GCMSealer{aead: aead}
}

func (s *GCMSealer) Seal(_ context.Context, plaintext, aad []byte) ([]byte, error) {
	s.mu.Lock()
	s.n++
	nonce := make([]byte, 12)
	for i, n := 0, s.n; i < 8; i, n = i+1, n>>8 {
		nonce[11-i] = byte(n)
	}
	s.mu.Unlock()
	return s.aead.Seal(nonce, nonce, plaintext, aad), nil
}

func (s *GCMSealer) Open(_ context.Context, sealed, aad []byte) ([]byte, error) {
	if len(sealed) < 12 {
		return nil, fmt.Errorf("%w: too short", kms.ErrCorrupt)
	}
	out, err := s.aead.Open(nil, sealed[:12], sealed[12:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: authentication failed", kms.ErrCorrupt)
	}
	return out, nil
}

// ExternalMaterial is a keyring.Material that keeps every version's
// material itself, as Vault Transit does: a stand-in for unit tests of the
// engine's commit, ownership and destruction paths. A key that exists in
// it before the keyring creates it is "someone else's".
type ExternalMaterial struct {
	mu   sync.Mutex
	keys map[string]map[uint32][]byte
	// FailCommit, when set, fails the next Commit.
	FailCommit error
}

// NewExternalMaterial returns an empty ExternalMaterial.
func NewExternalMaterial() *ExternalMaterial {
	return &ExternalMaterial{keys: map[string]map[uint32][]byte{}}
}

// Owned is the material state of a key ExternalMaterial made.
const Owned = "owned"

// Plant makes a key the keyring did not create.
func (m *ExternalMaterial) Plant(id string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.keys[id] = map[uint32][]byte{1: bytes.Repeat([]byte{7}, 32)}
}

// Has reports whether id exists and how many versions it has.
func (m *ExternalMaterial) Has(id string) (bool, int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	k, ok := m.keys[id]
	return ok, len(k)
}

func (*ExternalMaterial) InRecord() bool { return false }

func (*ExternalMaterial) NewVersion(context.Context) ([]byte, error) { return nil, nil }

func (m *ExternalMaterial) Commit(_ context.Context, id string, v uint32, state string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.FailCommit; err != nil {
		m.FailCommit = nil
		return state, err
	}
	if v == 1 && state != Owned {
		if _, ok := m.keys[id]; ok {
			return state, fmt.Errorf("%w: %s is someone else's", kms.ErrConflict, id)
		}
		m.keys[id] = map[uint32][]byte{}
		state = Owned
	}
	if state != Owned {
		return state, fmt.Errorf("%w: not owned", kms.ErrConflict)
	}
	k := m.keys[id]
	for n := uint32(len(k)) + 1; n <= v; n++ {
		k[n] = bytes.Repeat([]byte{byte(n)}, 32)
	}
	return state, nil
}

func (*ExternalMaterial) Usable(id, state string) error {
	if state != Owned {
		return fmt.Errorf("%w: %s is not owned", kms.ErrConflict, id)
	}
	return nil
}

func (m *ExternalMaterial) Destroy(_ context.Context, id, state string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if state == Owned {
		delete(m.keys, id)
	}
	return nil
}

func (m *ExternalMaterial) aead(k *keyring.Version) (cipher.AEAD, error) {
	m.mu.Lock()
	key := m.keys[k.KeyID][k.Number]
	m.mu.Unlock()
	if key == nil {
		return nil, fmt.Errorf("%w: no version %d", kms.ErrNotFound, k.Number)
	}
	block, _ := aes.NewCipher(key)
	return cipher.NewGCM(block)
}

func (m *ExternalMaterial) Wrap(_ context.Context, k *keyring.Version, plaintext, aad []byte) ([]byte, error) {
	a, err := m.aead(k)
	if err != nil {
		return nil, err
	}
	nonce := make([]byte, 12)
	nonce[0] = byte(len(plaintext)) // deterministic is fine for a test stand-in
	return a.Seal(nonce, nonce, plaintext, aad), nil
}

func (m *ExternalMaterial) Unwrap(_ context.Context, k *keyring.Version, ciphertext, aad []byte) ([]byte, error) {
	a, err := m.aead(k)
	if err != nil {
		return nil, err
	}
	if len(ciphertext) < 12 {
		return nil, fmt.Errorf("%w: short", kms.ErrInvalidCiphertext)
	}
	out, err := a.Open(nil, ciphertext[:12], ciphertext[12:], aad)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", kms.ErrInvalidCiphertext, err)
	}
	return out, nil
}
