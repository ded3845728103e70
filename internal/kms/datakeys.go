package kms

import (
	"context"
	"fmt"
	"io"
)

// Data key specs.
const (
	SpecAES256 = "AES_256"
	SpecAES128 = "AES_128"
)

// MaxEncryptPlaintext bounds Encrypt's input (as in AWS KMS).
const MaxEncryptPlaintext = 4096

// maxDataKeyBytes bounds number_of_bytes (as in AWS KMS).
const maxDataKeyBytes = 1024

// DataKeySize resolves key_spec and number_of_bytes to a size in bytes.
// Either may be given (both must then agree); neither means AES_256.
func DataKeySize(spec string, numberOfBytes int) (int, error) {
	size := 0
	switch normalizeEnum(spec) {
	case "":
	case "aes256":
		size = 32
	case "aes128":
		size = 16
	default:
		return 0, fmt.Errorf("%w: unknown key_spec %q (expected AES_256 or AES_128)", ErrInvalidRequest, spec)
	}
	if numberOfBytes != 0 {
		if numberOfBytes < 1 || numberOfBytes > maxDataKeyBytes {
			return 0, fmt.Errorf("%w: number_of_bytes must be between 1 and %d", ErrInvalidRequest, maxDataKeyBytes)
		}
		if size != 0 && size != numberOfBytes {
			return 0, fmt.Errorf("%w: key_spec and number_of_bytes disagree", ErrInvalidRequest)
		}
		size = numberOfBytes
	}
	if size == 0 {
		size = 32
	}
	return size, nil
}

// MaxRandomBytes bounds GenerateRandom (as in AWS KMS).
const MaxRandomBytes = 1024

// GenerateRandom returns n (1 to MaxRandomBytes) random bytes from the
// service's source of randomness. The caller owns them and wipes them.
func (s *Service) GenerateRandom(n int) ([]byte, error) {
	if n < 1 || n > MaxRandomBytes {
		return nil, fmt.Errorf("%w: NumberOfBytes must be between 1 and %d", ErrInvalidRequest, MaxRandomBytes)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(s.opts.Rand, b); err != nil {
		clear(b)
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return b, nil
}

// GenerateDataKey returns a fresh data key and its blob under the key's
// current version. The caller owns plaintext and must wipe it.
func (s *Service) GenerateDataKey(ctx context.Context, keyID string, size int, encCtx map[string]string) (id string, plaintext, blob []byte, err error) {
	plaintext = make([]byte, size)
	if _, err := io.ReadFull(s.opts.Rand, plaintext); err != nil {
		return "", nil, nil, fmt.Errorf("reading randomness: %w", err)
	}
	id, blob, err = s.wrap(ctx, keyID, plaintext, encCtx)
	if err != nil {
		clear(plaintext)
		return "", nil, nil, err
	}
	return id, plaintext, blob, nil
}

// Encrypt encrypts up to MaxEncryptPlaintext bytes under the key.
func (s *Service) Encrypt(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (string, []byte, error) {
	if len(plaintext) == 0 || len(plaintext) > MaxEncryptPlaintext {
		return "", nil, fmt.Errorf("%w: plaintext must be 1-%d bytes", ErrInvalidRequest, MaxEncryptPlaintext)
	}
	return s.wrap(ctx, keyID, plaintext, encCtx)
}

// Decrypt opens a blob. If keyID is not empty the blob must name that key.
// The caller owns the returned plaintext and must wipe it.
func (s *Service) Decrypt(ctx context.Context, blob []byte, encCtx map[string]string, keyID string) (string, []byte, error) {
	b, err := ParseBlob(blob)
	if err != nil {
		return "", nil, err
	}
	if keyID != "" && keyID != b.KeyID {
		return "", nil, fmt.Errorf("%w: the blob was not made under key_id %q", ErrIncorrectKey, keyID)
	}
	if _, err := s.usableKey(ctx, b.KeyID); err != nil {
		return "", nil, err
	}
	aad, err := BlobAssociatedData(b.Header(), encCtx)
	if err != nil {
		return "", nil, err
	}
	plaintext, err := s.keys.Unwrap(ctx, b.KeyID, b.KeyVersion, b.Ciphertext, aad)
	if err != nil {
		return "", nil, err
	}
	return b.KeyID, plaintext, nil
}

func (s *Service) wrap(ctx context.Context, keyID string, plaintext []byte, encCtx map[string]string) (string, []byte, error) {
	if keyID == "" {
		keyID = s.opts.DefaultKeyID
		if keyID == "" {
			return "", nil, fmt.Errorf("%w: key_id is required (no default key is configured)", ErrInvalidRequest)
		}
	}
	meta, err := s.usableKey(ctx, keyID)
	if err != nil {
		return "", nil, err
	}
	var headerBuf [maxBlobHeader]byte
	header, err := AppendBlobHeader(headerBuf[:0], keyID, meta.Version)
	if err != nil {
		return "", nil, err
	}
	aad, err := BlobAssociatedData(header, encCtx)
	if err != nil {
		return "", nil, err
	}
	ct, err := s.keys.Wrap(ctx, keyID, meta.Version, plaintext, aad)
	if err != nil {
		return "", nil, err
	}
	return keyID, MarshalBlob(header, ct), nil
}

// usableKey returns the key's metadata if its state allows cryptographic
// operations (only Enabled keys do, as in AWS KMS).
func (s *Service) usableKey(ctx context.Context, id string) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	meta, err := s.keys.Describe(ctx, id)
	if err != nil {
		return Metadata{}, err
	}
	if meta.State != StateEnabled {
		kind := ErrInvalidKeyState
		if meta.State == StateDisabled {
			kind = ErrKeyDisabled
		}
		return Metadata{}, fmt.Errorf("%w: key %q is %s", kind, id, meta.State)
	}
	return meta, nil
}

// GenerateDataKeyWithoutPlaintext returns only the blob of a fresh data
// key; the plaintext is wiped before returning.
func (s *Service) GenerateDataKeyWithoutPlaintext(ctx context.Context, keyID string, size int, encCtx map[string]string) (string, []byte, error) {
	id, plaintext, blob, err := s.GenerateDataKey(ctx, keyID, size, encCtx)
	clear(plaintext)
	return id, blob, err
}

// ReEncrypt opens a blob and seals its plaintext under another key (or the
// same key's current version) and context, without the plaintext leaving
// the server. sourceKeyID, if set, must name the blob's key.
func (s *Service) ReEncrypt(ctx context.Context, blob []byte, srcCtx map[string]string, sourceKeyID, dstKeyID string, dstCtx map[string]string) (string, []byte, error) {
	if dstKeyID == "" {
		return "", nil, fmt.Errorf("%w: destination_key_id is required", ErrInvalidRequest)
	}
	_, plaintext, err := s.Decrypt(ctx, blob, srcCtx, sourceKeyID)
	if err != nil {
		return "", nil, err
	}
	defer clear(plaintext)
	return s.wrap(ctx, dstKeyID, plaintext, dstCtx)
}
