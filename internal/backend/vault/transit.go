package vault

import (
	"bytes"
	"context"
	"crypto/rsa"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// transitMaterial is the material of the vault-transit backend: each key's
// material is the Transit key {mount}/keys/{id} (aes256-gcm96, never
// exportable), and every wrap or unwrap is one Transit call (coalesced
// with concurrent calls on the same key into batch requests, batch.go).
//
// Keyward uses, rotates and deletes only Transit keys it created itself:
// the key's material state (keyring.Record.MaterialState, sealed in the
// key's record) is transitOwned once Keyward made the Transit key
// (transitImported once it imported it, transit_import.go), and empty
// before. A Transit key of that name that already exists is another
// application's, and is never touched (docs/vault.md).
type transitMaterial struct {
	conn  *conn
	mount string
	// rand wraps imported material, and wrapKey is the mount's wrapping
	// key once read (transit_import.go).
	rand    io.Reader
	wrapMu  sync.Mutex
	wrapKey *rsa.PublicKey
}

var _ keyring.Material = (*transitMaterial)(nil)

// transitOwned is the material state of a key whose Transit key Keyward
// created.
const transitOwned = "owned"

func (m *transitMaterial) keyPath(id string) string { return m.mount + "/keys/" + id }

func (*transitMaterial) InRecord() bool { return false }

// NewVersion: Transit makes the material (in Commit).
func (*transitMaterial) NewVersion(context.Context) ([]byte, error) { return nil, nil }

// Commit creates the Transit key for version 1, or rotates it up to
// version v.
func (m *transitMaterial) Commit(ctx context.Context, id string, v uint32, state string) (string, error) {
	if id == recordKEK {
		return state, m.Usable(id, state)
	}
	if v == 1 && !owned(state) {
		return transitOwned, m.create(ctx, id)
	}
	if err := m.Usable(id, state); err != nil {
		return state, err
	}
	return state, m.ensureVersion(ctx, id, v)
}

// create makes a fresh Transit key for id, after the key's record has
// claimed the id. A key that already has that name is another
// application's: kms.ErrConflict, and nothing in Vault changes. Vault's
// transit code answers the creation of an existing key with the warning
// "key <name> already existed" (Vault 1.14.1 drops it; later releases send
// it): a key created by someone else between the check and the creation is
// caught by it where Vault sends it.
func (m *transitMaterial) create(ctx context.Context, id string) error {
	err := m.conn.call(ctx, http.MethodGet, m.keyPath(id), nil, nil)
	switch {
	case err == nil:
		return m.foreign(id)
	case !isStatus(err, http.StatusNotFound, ""):
		return err
	}
	var out struct {
		Warnings []string `json:"warnings"`
	}
	if err := m.conn.call(ctx, http.MethodPut, m.keyPath(id), map[string]any{"type": "aes256-gcm96", "exportable": false}, &out); err != nil {
		return err
	}
	for _, w := range out.Warnings {
		if strings.Contains(w, "already existed") {
			return m.foreign(id)
		}
	}
	return nil
}

func (m *transitMaterial) foreign(id string) error {
	return fmt.Errorf("%w: a Transit key named %q already exists on mount %q and Keyward did not create it; Keyward never uses, changes or deletes a Transit key it did not create. Choose another key id, or give Keyward a mount of its own",
		kms.ErrConflict, id, m.mount)
}

// Usable refuses a key whose creation did not complete: Keyward cannot
// prove a Transit key of that name is its own.
func (*transitMaterial) Usable(id, state string) error {
	if id == recordKEK {
		// Never a key's material, whatever a record says (it is reserved).
		return fmt.Errorf("%w: %q is Keyward's record key, not a key of the API", kms.ErrConflict, id)
	}
	if !owned(state) {
		return fmt.Errorf("%w: the creation of key %q did not complete, so Keyward cannot prove its Transit key is its own; schedule its deletion and create it again", kms.ErrConflict, id)
	}
	return nil
}

// Destroy deletes the Transit key if Keyward created it (deletion_allowed,
// then DELETE); a key already gone is fine. A record whose creation did not
// complete leaves any Transit key of that name alone.
func (m *transitMaterial) Destroy(ctx context.Context, id, state string) error {
	if !owned(state) || id == recordKEK {
		return nil
	}
	err := m.conn.call(ctx, http.MethodPut, m.keyPath(id)+"/config", map[string]bool{"deletion_allowed": true}, nil)
	if isStatus(err, http.StatusBadRequest, "no existing key") {
		return nil
	}
	if err != nil {
		return err
	}
	err = m.conn.call(ctx, http.MethodDelete, m.keyPath(id), nil, nil)
	if isStatus(err, http.StatusBadRequest, "not found") {
		return nil
	}
	return err
}

// ensureVersion rotates the Transit key until it has version ver. Racing
// callers may add a spare version; an unused Transit version is harmless
// (Keyward always names the version it encrypts under).
func (m *transitMaterial) ensureVersion(ctx context.Context, id string, ver uint32) error {
	var out struct {
		Data struct {
			LatestVersion uint32 `json:"latest_version"`
		} `json:"data"`
	}
	if err := m.conn.call(ctx, http.MethodGet, m.keyPath(id), nil, &out); err != nil {
		return transitError(id, err)
	}
	for latest := out.Data.LatestVersion; latest < ver; latest++ {
		if err := m.conn.call(ctx, http.MethodPut, m.keyPath(id)+"/rotate", nil, nil); err != nil {
			return transitError(id, err)
		}
	}
	return nil
}

// Wrap encrypts under the key version in Transit, with aad as associated
// data. The result is Transit's "vault:vN:..." ciphertext.
func (m *transitMaterial) Wrap(ctx context.Context, k *keyring.Version, plaintext, aad []byte) ([]byte, error) {
	payload := transitPayload(plaintext, "", aad, k.Number)
	defer clear(payload) // plaintext, in base64
	p := m.mount + "/encrypt/" + k.KeyID
	ct, err := m.conn.transitCall(ctx, p, payload, "ciphertext", false)
	if isStatus(err, http.StatusBadRequest, "higher than the latest key version") {
		// A rotation recorded in the record whose Transit half has not
		// happened (yet, or because its node failed): complete it, retry.
		if err = m.ensureVersion(ctx, k.KeyID, k.Number); err == nil {
			ct, err = m.conn.transitCall(ctx, p, payload, "ciphertext", false)
		}
	}
	if err != nil {
		return nil, transitError(k.KeyID, err)
	}
	if !hasVersionPrefix(ct, k.Number) {
		return nil, fmt.Errorf("vault: Transit encrypted under another key version than %d", k.Number)
	}
	return ct, nil
}

// Unwrap decrypts in Transit. The ciphertext must name the requested
// version ("vault:v<ver>:"); anything Transit refuses is
// kms.ErrInvalidCiphertext.
func (m *transitMaterial) Unwrap(ctx context.Context, k *keyring.Version, ciphertext, aad []byte) ([]byte, error) {
	if k.State == transitImported && !bytes.HasPrefix(ciphertext, []byte("vault:")) {
		// A blob made while the key lived in another backend
		// (transit_import.go).
		ciphertext = []byte(rawToTransit(ciphertext, k.Number))
	}
	if !hasVersionPrefix(ciphertext, k.Number) || !printable(ciphertext) {
		return nil, fmt.Errorf("%w: not a Transit ciphertext of key version %d", kms.ErrInvalidCiphertext, k.Number)
	}
	pt, err := m.conn.transitCall(ctx, m.mount+"/decrypt/"+k.KeyID, transitPayload(nil, string(ciphertext), aad, 0), "plaintext", true)
	if err != nil {
		clear(pt)
		err = transitError(k.KeyID, err)
		if isStatus(err, http.StatusBadRequest, "") {
			return nil, fmt.Errorf("%w: Transit could not decrypt it (tampered blob or wrong encryption context)", kms.ErrInvalidCiphertext)
		}
		return nil, err
	}
	return pt, nil
}

// transitError maps a missing Transit key to kms.ErrNotFound.
func transitError(id string, err error) error {
	if isStatus(err, http.StatusBadRequest, "key not found") {
		return fmt.Errorf("%w: key %q has no Transit key", kms.ErrNotFound, id)
	}
	return err
}

func hasVersionPrefix(ct []byte, ver uint32) bool {
	p := "vault:v" + strconv.FormatUint(uint64(ver), 10) + ":"
	return len(ct) > len(p) && string(ct[:len(p)]) == p
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}
