package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"math"
	"net/http"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// recordKEK is the Transit key that seals the key records of both Vault
// backends. It is created (aes256-gcm96, not exportable) on first Open,
// and its name is a reserved key id (kms.ReservedKeyID), so that on a mount
// vault-transit also uses, no API key can be it.
const recordKEK = "keyward-record-kek"

// kvRecords is the keyring.Store over KV v2. It only ever sees sealed
// bytes (the keyring seals before storing), which it keeps base64 in the
// record's "sealed" field; the revision is the KV version.
type kvRecords struct {
	kv *kvStore
}

var _ keyring.Store = kvRecords{}

func (r kvRecords) Create(ctx context.Context, name string, value []byte) (uint64, error) {
	return r.kv.create(ctx, name, kvRecord{Format: recordFormat, Sealed: base64.StdEncoding.EncodeToString(value)})
}

// Get returns the sealed record. Anything else at the path (another
// application's data, a record of Keyward 0.1's vault-transit backend that
// migrateTransit01 did not convert) is kms.ErrCorrupt: never used, never
// deleted.
func (r kvRecords) Get(ctx context.Context, name string) (keyring.Entry, error) {
	rec, ver, err := r.kv.get(ctx, name)
	if err != nil {
		return keyring.Entry{}, err
	}
	value, err := base64.StdEncoding.DecodeString(rec.Sealed)
	if err != nil || len(value) == 0 {
		return keyring.Entry{}, fmt.Errorf("%w: key %q: the KV record holds no sealed value", kms.ErrCorrupt, name)
	}
	return keyring.Entry{Value: value, Revision: ver}, nil
}

func (r kvRecords) Update(ctx context.Context, name string, value []byte, rev uint64) (uint64, error) {
	return r.kv.update(ctx, name, kvRecord{Format: recordFormat, Sealed: base64.StdEncoding.EncodeToString(value)}, rev)
}

// Delete tombstones revision rev (exactly one of concurrent destroyers on
// any node gets past that), runs destroyMaterial, then deletes every
// version (see kvStore.remove). A KV object that is not a Keyward record
// is never deleted: the keyring opened this one before.
func (r kvRecords) Delete(ctx context.Context, name string, rev uint64, destroyMaterial func() error) error {
	rec, ver, err := r.kv.get(ctx, name)
	if err != nil {
		return err
	}
	if ver != rev {
		return fmt.Errorf("%w: key %q changed since it was checked", kms.ErrConflict, name)
	}
	return r.kv.remove(ctx, name, rec, rev, destroyMaterial)
}

func (r kvRecords) List(ctx context.Context, after string, limit int) ([]string, bool, error) {
	return r.kv.list(ctx, after, limit)
}

// Names implements keyring.NameLister: one LIST of the prefix.
func (r kvRecords) Names(ctx context.Context) ([]string, error) {
	names, _, err := r.kv.list(ctx, "", math.MaxInt)
	return names, err
}

// transitSealer seals key records with the record KEK through Transit,
// binding the keyring's aad (the key id) as associated data. The sealed
// value is Transit's "vault:vN:..." ciphertext, so the KEK can be rotated
// in Vault and old records still open.
type transitSealer struct {
	c     *conn
	mount string
}

var _ keyring.Sealer = (*transitSealer)(nil)

// ensureKEK reads the record KEK, creating it when missing; an existing key
// of another type is refused (associated data needs an AEAD key).
func (s *transitSealer) ensureKEK(ctx context.Context) error {
	keyPath := s.mount + "/keys/" + recordKEK
	var out struct {
		Data struct {
			Type string `json:"type"`
		} `json:"data"`
	}
	err := s.c.call(ctx, http.MethodGet, keyPath, nil, &out)
	if isStatus(err, http.StatusNotFound, "") {
		if err := s.c.call(ctx, http.MethodPut, keyPath, map[string]string{"type": "aes256-gcm96"}, nil); err != nil {
			return fmt.Errorf("vault: creating the record key %s: %w", keyPath, err)
		}
		return nil
	}
	if err != nil {
		return fmt.Errorf("vault: reading the record key %s: %w", keyPath, err)
	}
	if out.Data.Type != "aes256-gcm96" {
		return fmt.Errorf("vault: the record key %s is of type %q, not aes256-gcm96", keyPath, out.Data.Type)
	}
	return nil
}

// Seal and Open go through the Transit hot path (fast.go), so that
// concurrent ones are coalesced into batch requests (batch.go): loading
// the index of many keys opens every record, and creating many keys
// seals one record each.
func (s *transitSealer) Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error) {
	payload := transitPayload(plaintext, "", aad, 0)
	defer clear(payload)
	ct, err := s.c.transitCall(ctx, s.mount+"/encrypt/"+recordKEK, payload, "ciphertext", false)
	if err != nil {
		return nil, err
	}
	if !bytes.HasPrefix(ct, []byte("vault:v")) {
		return nil, fmt.Errorf("vault: Transit returned no ciphertext")
	}
	return ct, nil
}

// Open: a value Transit refuses (damaged, another KEK, other aad) is
// kms.ErrCorrupt; an unreachable Vault stays kms.ErrUnavailable.
func (s *transitSealer) Open(ctx context.Context, sealed, aad []byte) ([]byte, error) {
	if !bytes.HasPrefix(sealed, []byte("vault:v")) {
		return nil, fmt.Errorf("%w: the sealed value is not a Transit ciphertext", kms.ErrCorrupt)
	}
	pt, err := s.c.transitCall(ctx, s.mount+"/decrypt/"+recordKEK, transitPayload(nil, string(sealed), aad, 0), "plaintext", true)
	if isStatus(err, http.StatusBadRequest, "") {
		clear(pt)
		return nil, fmt.Errorf("%w: the record does not open under the record key (damaged, sealed elsewhere, or moved from another id)", kms.ErrCorrupt)
	}
	if err != nil {
		clear(pt)
		return nil, err
	}
	if pt == nil {
		return nil, fmt.Errorf("%w: Transit returned no plaintext for the record", kms.ErrCorrupt)
	}
	return pt, nil
}
