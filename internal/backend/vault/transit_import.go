package vault

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/binary"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// Restoring into vault-transit imports each key's material into Transit
// (Transit's "bring your own key", Vault 1.11 and later): the material of
// version 1 through POST {mount}/keys/{id}/import, every further version
// through import_version, each wrapped for Transit as its documentation
// prescribes (a fresh AES-256 key wraps the material with AES-KWP, RFC
// 5649, and is itself encrypted with RSA-OAEP SHA-256 to the mount's
// wrapping key). The import creates the key, and fails if one of that name
// exists: Keyward owns an imported key exactly as one it created, and
// never imports into a key it did not make.
//
// Blobs made under a key while it lived in another backend carry the raw
// AES-256-GCM ciphertext (nonce, ciphertext, tag); Transit's own
// ciphertext of an aes256-gcm96 key is the same bytes in base64 behind
// "vault:v<N>:". Unwrap turns the one into the other for imported keys, so
// every blob made before the move still decrypts, now inside Transit.

// transitImported is the material state of a key whose Transit key
// Keyward imported (owned, and possibly holding blobs in the raw format).
const transitImported = "imported"

var _ keyring.MaterialImporter = (*transitMaterial)(nil)

// owned reports whether a material state proves the Transit key is
// Keyward's.
func owned(state string) bool { return state == transitOwned || state == transitImported }

// CheckImport refuses an id whose Transit key exists: it is not Keyward's
// (Keyward's own keys have records, and the caller checked there is none).
func (m *transitMaterial) CheckImport(ctx context.Context, id string) error {
	if id == recordKEK {
		return fmt.Errorf("%w: %q is Keyward's record key, not a key of the API", kms.ErrConflict, id)
	}
	err := m.conn.call(ctx, http.MethodGet, m.keyPath(id), nil, nil)
	switch {
	case err == nil:
		return m.foreign(id)
	case isStatus(err, http.StatusNotFound, ""):
		return nil
	}
	return err
}

// Import creates the Transit key from material[0] and adds the further
// versions in order, then checks that Transit holds exactly that many.
func (m *transitMaterial) Import(ctx context.Context, id string, material [][]byte) (string, error) {
	if err := m.CheckImport(ctx, id); err != nil {
		return "", err
	}
	wrapKey, err := m.wrappingKey(ctx)
	if err != nil {
		return "", err
	}
	for i, mat := range material {
		ct, err := wrapForTransit(m.rand, wrapKey, mat)
		if err != nil {
			return stateAfter(i), err
		}
		body := map[string]any{"ciphertext": ct, "hash_function": "SHA256"}
		path := m.keyPath(id) + "/import_version"
		if i == 0 {
			path = m.keyPath(id) + "/import"
			body["type"] = "aes256-gcm96"
			body["exportable"] = false
			// Keyward rotates its keys in Transit (a new version is made
			// there, as for a key Keyward created).
			body["allow_rotation"] = true
		}
		err = m.conn.call(ctx, http.MethodPut, path, body, nil)
		if i == 0 && isStatus(err, http.StatusBadRequest, "existing key") {
			return "", m.foreign(id) // made by someone else since the check
		}
		if err != nil {
			return stateAfter(i), fmt.Errorf("vault: importing version %d of key %q into Transit: %w", i+1, id, err)
		}
	}
	var out struct {
		Data struct {
			LatestVersion int  `json:"latest_version"`
			Imported      bool `json:"imported_key"`
		} `json:"data"`
	}
	if err := m.conn.call(ctx, http.MethodGet, m.keyPath(id), nil, &out); err != nil {
		return transitImported, err
	}
	if out.Data.LatestVersion != len(material) {
		return transitImported, fmt.Errorf("vault: Transit key %q has %d versions after importing %d", id, out.Data.LatestVersion, len(material))
	}
	return transitImported, nil
}

// stateAfter is the material state to undo with once i versions were
// imported: from the first one on, the Transit key is Keyward's.
func stateAfter(i int) string {
	if i == 0 {
		return ""
	}
	return transitImported
}

// wrappingKeyTimeout bounds the read of the wrapping key. Vault makes the
// mount's 4096-bit RSA wrapping key on the first read, which takes seconds
// (longer than a usual timeout_seconds), and stores it only if the request
// that made it is still there: a read cut short by a short timeout makes
// the next one start over.
const wrappingKeyTimeout = 2 * time.Minute

// wrappingKey returns the mount's RSA wrapping key, read once and then
// kept (Vault does not rotate it).
func (m *transitMaterial) wrappingKey(ctx context.Context) (*rsa.PublicKey, error) {
	m.wrapMu.Lock()
	defer m.wrapMu.Unlock()
	if m.wrapKey != nil {
		return m.wrapKey, nil
	}
	var out struct {
		Data struct {
			PublicKey string `json:"public_key"`
		} `json:"data"`
	}
	c := m.conn
	if err := c.attemptWithin(ctx, max(c.timeout, wrappingKeyTimeout), c.client, http.MethodGet, m.mount+"/wrapping_key", nil, &out); err != nil {
		return nil, fmt.Errorf("vault: reading the Transit wrapping key (Vault 1.11 or later is needed to import keys): %w", err)
	}
	block, _ := pem.Decode([]byte(out.Data.PublicKey))
	if block == nil {
		return nil, errors.New("vault: the Transit wrapping key is not PEM")
	}
	pub, err := x509.ParsePKIXPublicKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("vault: the Transit wrapping key: %w", err)
	}
	rsaPub, ok := pub.(*rsa.PublicKey)
	if !ok || rsaPub.Size() != 512 {
		return nil, errors.New("vault: the Transit wrapping key is not a 4096-bit RSA key")
	}
	m.wrapKey = rsaPub
	return rsaPub, nil
}

// wrapForTransit wraps material as Transit's import expects:
// RSA-OAEP-SHA256(ephemeral AES-256 key) || AES-KWP(ephemeral, material),
// base64.
func wrapForTransit(rand io.Reader, pub *rsa.PublicKey, material []byte) (string, error) {
	eph := make([]byte, 32)
	defer clear(eph)
	if _, err := io.ReadFull(rand, eph); err != nil {
		return "", fmt.Errorf("vault: reading randomness: %w", err)
	}
	wrappedEph, err := rsa.EncryptOAEP(sha256.New(), rand, pub, eph, nil)
	if err != nil {
		return "", fmt.Errorf("vault: wrapping for import: %w", err)
	}
	wrappedKey, err := kwpWrap(eph, material)
	if err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(append(wrappedEph, wrappedKey...)), nil
}

// kwpWrap is AES Key Wrap with Padding (RFC 5649).
func kwpWrap(kek, plaintext []byte) ([]byte, error) {
	if len(plaintext) == 0 || len(plaintext) > 1<<20 {
		return nil, errors.New("vault: key wrap: bad plaintext length")
	}
	block, err := aes.NewCipher(kek)
	if err != nil {
		return nil, fmt.Errorf("vault: key wrap: %w", err)
	}
	n := (len(plaintext) + 7) / 8 // semiblocks
	var aiv [8]byte
	binary.BigEndian.PutUint32(aiv[:4], 0xA65959A6)
	binary.BigEndian.PutUint32(aiv[4:], uint32(len(plaintext)))
	out := make([]byte, 8+8*n)
	copy(out[8:], plaintext) // zero padding
	var buf [16]byte
	if n == 1 {
		copy(buf[:8], aiv[:])
		copy(buf[8:], out[8:16])
		block.Encrypt(out, buf[:])
		clear(buf[:])
		return out, nil
	}
	a := aiv
	for j := 0; j < 6; j++ {
		for i := 1; i <= n; i++ {
			copy(buf[:8], a[:])
			copy(buf[8:], out[8*i:8*i+8])
			block.Encrypt(buf[:], buf[:])
			t := uint64(n*j + i)
			binary.BigEndian.PutUint64(a[:], binary.BigEndian.Uint64(buf[:8])^t)
			copy(out[8*i:], buf[8:])
		}
	}
	copy(out[:8], a[:])
	clear(buf[:])
	return out, nil
}

// rawToTransit turns a raw AES-256-GCM ciphertext (nonce || ciphertext ||
// tag, as Keyward's in-process material makes it) into Transit's
// ciphertext of key version ver.
func rawToTransit(raw []byte, ver uint32) string {
	return "vault:v" + strconv.FormatUint(uint64(ver), 10) + ":" + base64.StdEncoding.EncodeToString(raw)
}

// Matches encrypts a random probe under material, in process, and asks
// Transit to decrypt it with version k: it decrypts only if Transit holds
// that material. The material never leaves the process.
func (m *transitMaterial) Matches(ctx context.Context, k *keyring.Version, material []byte) (bool, error) {
	block, err := aes.NewCipher(material)
	if err != nil {
		return false, fmt.Errorf("vault: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return false, fmt.Errorf("vault: %w", err)
	}
	probe := make([]byte, 16+aead.NonceSize())
	if _, err := io.ReadFull(m.rand, probe); err != nil {
		return false, fmt.Errorf("vault: reading randomness: %w", err)
	}
	nonce, secret := probe[16:], probe[:16]
	aad := []byte("keyward/restore-probe/v1")
	ct := aead.Seal(append([]byte(nil), nonce...), nonce, secret, aad)
	pt, err := m.conn.transitCall(ctx, m.mount+"/decrypt/"+k.KeyID, transitPayload(nil, rawToTransit(ct, k.Number), aad, 0), "plaintext", true)
	defer clear(pt)
	if isStatus(err, http.StatusBadRequest, "") {
		return false, nil
	}
	if err != nil {
		return false, transitError(k.KeyID, err)
	}
	return string(pt) == string(secret), nil
}
