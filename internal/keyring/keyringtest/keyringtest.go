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

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// MemStore is a keyring.Store in memory.
type MemStore struct {
	mu   sync.Mutex
	recs map[string]keyring.Entry
}

// NewMemStore returns an empty store.
func NewMemStore() *MemStore { return &MemStore{recs: map[string]keyring.Entry{}} }

func (m *MemStore) Create(_ context.Context, name string, value []byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[name]; ok {
		return fmt.Errorf("%w: %s", kms.ErrExists, name)
	}
	m.recs[name] = keyring.Entry{Value: bytes.Clone(value), Revision: 1}
	return nil
}

func (m *MemStore) Get(_ context.Context, name string) (keyring.Entry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.recs[name]
	if !ok {
		return keyring.Entry{}, fmt.Errorf("%w: %s", kms.ErrNotFound, name)
	}
	return keyring.Entry{Value: bytes.Clone(e.Value), Revision: e.Revision}, nil
}

func (m *MemStore) Update(_ context.Context, name string, value []byte, rev uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.recs[name]
	if !ok {
		return fmt.Errorf("%w: %s", kms.ErrNotFound, name)
	}
	if e.Revision != rev {
		return fmt.Errorf("%w: %s changed", kms.ErrConflict, name)
	}
	m.recs[name] = keyring.Entry{Value: bytes.Clone(value), Revision: rev + 1}
	return nil
}

func (m *MemStore) Delete(_ context.Context, name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.recs[name]; !ok {
		return fmt.Errorf("%w: %s", kms.ErrNotFound, name)
	}
	delete(m.recs, name)
	return nil
}

func (m *MemStore) List(_ context.Context, after string, limit int) ([]string, bool, error) {
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
