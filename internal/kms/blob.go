// This file defines the ciphertext blob that Keyward hands out for a
// wrapped data key or an encrypted value, and the canonical encoding of an
// encryption context.
//
// Blob format version 1 (all integers big-endian):
//
//	offset  size  field
//	0       1     format version (0x01)
//	1       1     key id length L (1..128)
//	2       L     key id (ASCII, [A-Za-z0-9._-])
//	2+L     4     key version (>= 1)
//	6+L     ...   backend ciphertext (opaque here; for in-process backends
//	              a 12-byte nonce, the AES-256-GCM ciphertext and 16-byte tag)
//
// The header (bytes 0 .. 6+L) is authenticated: it is part of the
// associated data given to the backend's AEAD, followed by the canonical
// encoding of the encryption context (see BlobAssociatedData). Changing any
// header byte, the key id, the version or the context makes decryption fail.
//
// The format is documented in docs/blob-format.md; golden vectors in the
// tests must decrypt forever.

package kms

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
)

// BlobVersion1 is the first (and current) blob format version.
const BlobVersion1 byte = 0x01

// MaxContextEntries and MaxContextBytes bound an encryption context so a
// request cannot make the server build an unbounded associated data.
const (
	MaxContextEntries = 64
	MaxContextBytes   = 8192
)

// Blob is a parsed ciphertext blob. Ciphertext aliases the input.
type Blob struct {
	KeyID      string
	KeyVersion uint32
	Ciphertext []byte
	header     []byte
}

// Header returns the authenticated header bytes.
func (b *Blob) Header() []byte { return b.header }

// ErrMalformedBlob is wrapped (together with ErrInvalidCiphertext) by ParseBlob.
var ErrMalformedBlob = errors.New("malformed ciphertext blob")

// minCiphertext is the shortest backend ciphertext accepted: anything
// shorter cannot hold even an AEAD tag.
const minCiphertext = 16

// BlobHeader builds the header of a version 1 blob.
func BlobHeader(keyID string, keyVersion uint32) ([]byte, error) {
	return AppendBlobHeader(make([]byte, 0, 6+len(keyID)), keyID, keyVersion)
}

// maxBlobHeader is the longest header: version, id length, id, key version.
const maxBlobHeader = 2 + MaxKeyIDLength + 4

// AppendBlobHeader appends the header of a version 1 blob to dst (a
// buffer of maxBlobHeader bytes on the caller's stack, say: the data
// plane builds one per call and copies it into the blob).
func AppendBlobHeader(dst []byte, keyID string, keyVersion uint32) ([]byte, error) {
	if err := ValidateKeyID(keyID); err != nil {
		return nil, err
	}
	if keyVersion == 0 {
		return nil, fmt.Errorf("%w: key version 0", ErrInvalidRequest)
	}
	dst = append(dst, BlobVersion1, byte(len(keyID)))
	dst = append(dst, keyID...)
	return binary.BigEndian.AppendUint32(dst, keyVersion), nil
}

// MarshalBlob joins a header (from BlobHeader) and the backend ciphertext.
func MarshalBlob(header, ciphertext []byte) []byte {
	out := make([]byte, 0, len(header)+len(ciphertext))
	out = append(out, header...)
	return append(out, ciphertext...)
}

// ParseBlob reads a blob. It never panics on any input; every rejection wraps
// ErrInvalidCiphertext.
func ParseBlob(b []byte) (*Blob, error) {
	if len(b) < 2 {
		return nil, malformed("too short")
	}
	if b[0] != BlobVersion1 {
		return nil, malformed(fmt.Sprintf("unknown format version %d", b[0]))
	}
	n := int(b[1])
	if n == 0 || n > MaxKeyIDLength {
		return nil, malformed("bad key id length")
	}
	if len(b) < 2+n+4+minCiphertext {
		return nil, malformed("truncated")
	}
	id := string(b[2 : 2+n])
	if ValidateKeyID(id) != nil {
		return nil, malformed("bad key id")
	}
	ver := binary.BigEndian.Uint32(b[2+n:])
	if ver == 0 {
		return nil, malformed("key version 0")
	}
	return &Blob{KeyID: id, KeyVersion: ver, Ciphertext: b[6+n:], header: b[:6+n]}, nil
}

func malformed(why string) error {
	return fmt.Errorf("%w: %w: %s", ErrInvalidCiphertext, ErrMalformedBlob, why)
}

// BlobAssociatedData is what the backend AEAD authenticates: the blob header,
// then the canonical encoding of the encryption context. The canonical
// encoding sorts entries by key (byte order) and length-prefixes every
// string, so it is independent of map order and unambiguous:
//
//	uvarint(count) { uvarint(len(k)) k uvarint(len(v)) v }...
//
// An empty or nil context encodes as the single byte 0x00.
func BlobAssociatedData(header []byte, ctx map[string]string) ([]byte, error) {
	if len(ctx) > MaxContextEntries {
		return nil, fmt.Errorf("%w: encryption context has more than %d entries", ErrInvalidRequest, MaxContextEntries)
	}
	raw := 0
	keys := make([]string, 0, len(ctx))
	for k, v := range ctx {
		keys = append(keys, k)
		raw += len(k) + len(v)
	}
	if raw > MaxContextBytes {
		return nil, fmt.Errorf("%w: encryption context larger than %d bytes", ErrInvalidRequest, MaxContextBytes)
	}
	sort.Strings(keys)
	out := make([]byte, 0, len(header)+raw+binary.MaxVarintLen64*(1+2*len(keys)))
	out = append(out, header...)
	out = binary.AppendUvarint(out, uint64(len(keys)))
	for _, k := range keys {
		v := ctx[k]
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
		out = binary.AppendUvarint(out, uint64(len(v)))
		out = append(out, v...)
	}
	return out, nil
}
