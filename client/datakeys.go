package client

import (
	"context"
	"net/http"
)

// Data key specs.
const (
	KeySpecAES256 = "AES_256"
	KeySpecAES128 = "AES_128"
)

// GenerateDataKeyRequest asks for a fresh data key.
type GenerateDataKeyRequest struct {
	// KeyID is the master key; "" means the configured default key.
	KeyID string
	// KeySpec is AES_256 (the default) or AES_128; NumberOfBytes (1–1024)
	// asks for another size instead.
	KeySpec       string
	NumberOfBytes int
	// EncryptionContext is bound to the blob: Decrypt needs exactly the
	// same map.
	EncryptionContext map[string]string
}

func (r *GenerateDataKeyRequest) body() []byte {
	o := newJSONObject(64)
	if r.KeyID != "" {
		o.String("key_id", r.KeyID)
	}
	if r.KeySpec != "" {
		o.String("key_spec", r.KeySpec)
	}
	if r.NumberOfBytes != 0 {
		o.Int("number_of_bytes", int64(r.NumberOfBytes))
	}
	if len(r.EncryptionContext) > 0 {
		o.StringMap("encryption_context", r.EncryptionContext)
	}
	return o.Done()
}

// DataKey is a data key: use Plaintext to encrypt locally, store
// CiphertextBlob next to the data, and call Wipe as soon as the plaintext
// key is no longer needed (defer dk.Wipe()). The client never keeps a copy
// of Plaintext: the response buffer it was decoded from is wiped.
type DataKey struct {
	KeyID          string
	Plaintext      []byte
	CiphertextBlob []byte
}

// Wipe overwrites the plaintext key with zeros and drops it.
func (d *DataKey) Wipe() {
	if d != nil {
		clear(d.Plaintext)
		d.Plaintext = nil
	}
}

// Ciphertext is a blob and the key that wrapped it.
type Ciphertext struct {
	KeyID          string `json:"key_id"`
	CiphertextBlob []byte `json:"ciphertext_blob"`
}

// GenerateDataKey returns a fresh data key, in plaintext and wrapped under
// the master key. Retried: nothing is stored on the server, so a retry
// only returns another key. The caller must Wipe the result.
func (c *Client) GenerateDataKey(ctx context.Context, req GenerateDataKeyRequest) (*DataKey, error) {
	var out struct {
		KeyID          string `json:"key_id"`
		PlaintextKey   []byte `json:"plaintext_key"`
		CiphertextBlob []byte `json:"ciphertext_blob"`
	}
	if err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/generate-data-key"), body: req.body(), retry: true}, &out); err != nil {
		return nil, err
	}
	return &DataKey{KeyID: out.KeyID, Plaintext: out.PlaintextKey, CiphertextBlob: out.CiphertextBlob}, nil
}

// GenerateDataKeyWithoutPlaintext returns only the wrapped data key (for
// a party that will decrypt it later). Retried.
func (c *Client) GenerateDataKeyWithoutPlaintext(ctx context.Context, req GenerateDataKeyRequest) (*Ciphertext, error) {
	var out Ciphertext
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/generate-data-key-without-plaintext"), body: req.body(), retry: true}, &out)
	return ret(&out, err)
}

// EncryptRequest encrypts a small secret directly under a master key.
type EncryptRequest struct {
	// KeyID is the master key; "" means the configured default key.
	KeyID string
	// Plaintext is at most 4096 bytes. The client does not modify it; the
	// request buffer carrying it is wiped after the call.
	Plaintext         []byte
	EncryptionContext map[string]string
}

// Encrypt encrypts req.Plaintext under a master key. Retried (each attempt
// only produces another valid blob).
func (c *Client) Encrypt(ctx context.Context, req EncryptRequest) (*Ciphertext, error) {
	o := newJSONObject(len(req.Plaintext)*4/3 + 64)
	if req.KeyID != "" {
		o.String("key_id", req.KeyID)
	}
	o.Bytes("plaintext", req.Plaintext)
	if len(req.EncryptionContext) > 0 {
		o.StringMap("encryption_context", req.EncryptionContext)
	}
	var out Ciphertext
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/encrypt"), body: o.Done(), retry: true}, &out)
	return ret(&out, err)
}

// DecryptRequest unwraps a blob.
type DecryptRequest struct {
	CiphertextBlob []byte
	// EncryptionContext must be exactly the one the blob was made with,
	// else ErrInvalidCiphertext.
	EncryptionContext map[string]string
	// KeyID, when set, must be the blob's key (a guard against using a
	// blob from the wrong place).
	KeyID string
}

// Plaintext is a decrypted value. Call Wipe when done with it.
type Plaintext struct {
	KeyID     string
	Plaintext []byte
}

// Wipe overwrites the plaintext with zeros and drops it.
func (p *Plaintext) Wipe() {
	if p != nil {
		clear(p.Plaintext)
		p.Plaintext = nil
	}
}

// Decrypt unwraps a blob (a data key from GenerateDataKey, or a value from
// Encrypt). A wrong context or a damaged blob is ErrInvalidCiphertext; a
// disabled key is ErrInvalidKeyState. Retried. The caller must Wipe the
// result.
func (c *Client) Decrypt(ctx context.Context, req DecryptRequest) (*Plaintext, error) {
	o := newJSONObject(len(req.CiphertextBlob)*4/3 + 64)
	o.Bytes("ciphertext_blob", req.CiphertextBlob)
	if len(req.EncryptionContext) > 0 {
		o.StringMap("encryption_context", req.EncryptionContext)
	}
	if req.KeyID != "" {
		o.String("key_id", req.KeyID)
	}
	var out struct {
		KeyID     string `json:"key_id"`
		Plaintext []byte `json:"plaintext"`
	}
	if err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/decrypt"), body: o.Done(), retry: true}, &out); err != nil {
		return nil, err
	}
	return &Plaintext{KeyID: out.KeyID, Plaintext: out.Plaintext}, nil
}

// ReEncryptRequest moves a blob to another key and/or context; the
// plaintext never leaves the server.
type ReEncryptRequest struct {
	CiphertextBlob          []byte
	SourceEncryptionContext map[string]string
	// SourceKeyID, when set, must be the blob's key.
	SourceKeyID string
	// DestinationKeyID: "" means the configured default key.
	DestinationKeyID             string
	DestinationEncryptionContext map[string]string
}

// ReEncrypt re-wraps a blob under DestinationKeyID (for instance after a
// rotation, or to move data to another key). Retried.
func (c *Client) ReEncrypt(ctx context.Context, req ReEncryptRequest) (*Ciphertext, error) {
	o := newJSONObject(len(req.CiphertextBlob)*4/3 + 64)
	o.Bytes("ciphertext_blob", req.CiphertextBlob)
	if len(req.SourceEncryptionContext) > 0 {
		o.StringMap("source_encryption_context", req.SourceEncryptionContext)
	}
	if req.SourceKeyID != "" {
		o.String("source_key_id", req.SourceKeyID)
	}
	if req.DestinationKeyID != "" {
		o.String("destination_key_id", req.DestinationKeyID)
	}
	if len(req.DestinationEncryptionContext) > 0 {
		o.StringMap("destination_encryption_context", req.DestinationEncryptionContext)
	}
	var out Ciphertext
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/re-encrypt"), body: o.Done(), retry: true}, &out)
	return ret(&out, err)
}
