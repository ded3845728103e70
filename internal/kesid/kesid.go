// Package kesid holds the identities of the KES API (docs/kes-api.md): a
// KES client authenticates with a TLS client certificate, and its identity
// is the lowercase hex SHA-256 of the certificate's DER-encoded
// SubjectPublicKeyInfo. An API key ("kes:v1:" and the standard base64 of a
// type byte 0x00 followed by a 32-byte Ed25519 seed) is a compact way to
// hold such a key: the client derives the Ed25519 key pair from the seed
// and makes itself a self-signed certificate for it, so the identity of an
// API key is the identity of every certificate made from it.
//
// The format is KES's (github.com/minio/kms-go/kes), written here from its
// description so that Keyward does not depend on that library; vectors
// made by it are checked in the tests (and against the library itself in
// the interop/kes module).
package kesid

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"strings"
	"time"
)

// APIKeyPrefix starts every API key's text form.
const APIKeyPrefix = "kes:v1:"

// ed25519Type is the only key type byte of a v1 API key.
const ed25519Type = 0x00

// ErrInvalidAPIKey is wrapped by every API key parsing error. The error
// never quotes the key: it is a secret.
var ErrInvalidAPIKey = errors.New("invalid API key")

// APIKey is a parsed API key: an Ed25519 private key.
type APIKey struct {
	key ed25519.PrivateKey
}

// GenerateAPIKey makes a new API key from random (crypto/rand when nil).
func GenerateAPIKey(random io.Reader) (*APIKey, error) {
	if random == nil {
		random = rand.Reader
	}
	var seed [ed25519.SeedSize]byte
	defer clear(seed[:])
	if _, err := io.ReadFull(random, seed[:]); err != nil {
		return nil, fmt.Errorf("reading randomness: %w", err)
	}
	return &APIKey{key: ed25519.NewKeyFromSeed(seed[:])}, nil
}

// ParseAPIKey reads an API key. As KES does, the "kes:v1:" prefix may be
// left out; what follows is standard base64 (with padding) of 33 bytes: the
// type 0x00 and the Ed25519 seed.
func ParseAPIKey(s string) (*APIKey, error) {
	raw := strings.TrimPrefix(s, APIKeyPrefix)
	if base64.StdEncoding.DecodedLen(len(raw)) > 64 {
		return nil, fmt.Errorf("%w: too long", ErrInvalidAPIKey)
	}
	b, err := base64.StdEncoding.DecodeString(raw)
	defer clear(b)
	switch {
	case err != nil:
		return nil, fmt.Errorf("%w: not %q followed by base64", ErrInvalidAPIKey, APIKeyPrefix)
	case len(b) != 1+ed25519.SeedSize:
		return nil, fmt.Errorf("%w: %d bytes, want %d", ErrInvalidAPIKey, len(b), 1+ed25519.SeedSize)
	case b[0] != ed25519Type:
		return nil, fmt.Errorf("%w: unsupported key type %d", ErrInvalidAPIKey, b[0])
	}
	return &APIKey{key: ed25519.NewKeyFromSeed(b[1:])}, nil
}

// String is the API key's text form (a secret).
func (k *APIKey) String() string {
	b := make([]byte, 0, 1+ed25519.SeedSize)
	b = append(b, ed25519Type)
	b = append(b, k.key.Seed()...)
	defer clear(b)
	return APIKeyPrefix + base64.StdEncoding.EncodeToString(b)
}

// PublicKey is the key's Ed25519 public key.
func (k *APIKey) PublicKey() ed25519.PublicKey {
	return bytes.Clone(k.key[ed25519.SeedSize:])
}

// PrivateKey is (a copy of) the key's Ed25519 private key.
func (k *APIKey) PrivateKey() ed25519.PrivateKey { return bytes.Clone(k.key) }

// Identity is the identity of every certificate made for this key.
func (k *APIKey) Identity() string {
	id, _ := OfPublicKey(ed25519.PublicKey(k.key[ed25519.SeedSize:]))
	return id
}

// Wipe overwrites the private key.
func (k *APIKey) Wipe() { clear(k.key) }

// CertificateTemplate is what Certificate signs: a client certificate
// whose subject names the identity, valid from now for 90 days (as the
// KES client makes one).
func (k *APIKey) CertificateTemplate(now time.Time, random io.Reader) (*x509.Certificate, error) {
	if random == nil {
		random = rand.Reader
	}
	serial, err := rand.Int(random, new(big.Int).Lsh(big.NewInt(1), 128))
	if err != nil {
		return nil, err
	}
	return &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: k.Identity()},
		NotBefore:             now.UTC(),
		NotAfter:              now.UTC().Add(90 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
		BasicConstraintsValid: true,
	}, nil
}

// Certificate makes a self-signed TLS client certificate for the key from
// tmpl (CertificateTemplate when nil).
func (k *APIKey) Certificate(tmpl *x509.Certificate, random io.Reader) (tls.Certificate, error) {
	if random == nil {
		random = rand.Reader
	}
	if tmpl == nil {
		var err error
		if tmpl, err = k.CertificateTemplate(time.Now(), random); err != nil {
			return tls.Certificate{}, err
		}
	}
	der, err := x509.CreateCertificate(random, tmpl, tmpl, k.PublicKey(), k.key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: k.PrivateKey(), Leaf: leaf}, nil
}

// PEM returns the key as a PKCS #8 "PRIVATE KEY" PEM block and tmpl's
// self-signed certificate as a "CERTIFICATE" block, for a client that
// takes a key file and a certificate file (MinIO's
// MINIO_KMS_KES_KEY_FILE and MINIO_KMS_KES_CERT_FILE).
func (k *APIKey) PEM(tmpl *x509.Certificate, random io.Reader) (keyPEM, certPEM []byte, err error) {
	cert, err := k.Certificate(tmpl, random)
	if err != nil {
		return nil, nil, err
	}
	der, err := x509.MarshalPKCS8PrivateKey(k.key)
	if err != nil {
		return nil, nil, err
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Certificate[0]}), nil
}

// Of is the identity of a certificate: the lowercase hex SHA-256 of its
// DER SubjectPublicKeyInfo. Nothing else of the certificate counts: a new
// certificate for the same key has the same identity.
func Of(cert *x509.Certificate) string {
	return OfSPKI(cert.RawSubjectPublicKeyInfo)
}

// OfSPKI is the identity of a DER SubjectPublicKeyInfo.
func OfSPKI(spki []byte) string {
	sum := sha256.Sum256(spki)
	return hex.EncodeToString(sum[:])
}

// OfPublicKey is the identity of a public key (any type x509 can encode).
func OfPublicKey(pub any) (string, error) {
	spki, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", err
	}
	return OfSPKI(spki), nil
}

// OfPEM is the identity of the first certificate in PEM data.
func OfPEM(data []byte) (string, error) {
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			return "", errors.New("no PEM CERTIFICATE block found")
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("parsing the certificate: %w", err)
		}
		return Of(cert), nil
	}
}
