package kesid

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Vectors made by github.com/minio/kms-go/kes v0.3.1 (ParseAPIKey and
// APIKey.Identity); interop/kes checks the same against the library.
var apiKeyVectors = []struct{ key, identity string }{
	{"kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs", "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"},
	{"kes:v1:ACQpoGqx3rHHjT938Hfu5hVVQJHZWSqVI2Xp1KlYxFVw", "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"},
	{"kes:v1:AMxvd2uV1l5dDSRwuKZxSjuM5BDemlr+685+JAHA1TuJ", "ab785e3b95d80d72cc9c27cb9fde886a0bf9068a69d40e3bd08a54e68c3f2bf7"},
}

func TestAPIKeyVectors(t *testing.T) {
	for _, v := range apiKeyVectors {
		k, err := ParseAPIKey(v.key)
		if err != nil {
			t.Fatalf("%s: %v", v.key, err)
		}
		if got := k.Identity(); got != v.identity {
			t.Errorf("%s: identity %s, want %s", v.key, got, v.identity)
		}
		if got := k.String(); got != v.key {
			t.Errorf("String() = %s, want %s", got, v.key)
		}
		// The prefix may be left out, as with KES.
		k2, err := ParseAPIKey(strings.TrimPrefix(v.key, APIKeyPrefix))
		if err != nil || k2.Identity() != v.identity {
			t.Errorf("without the prefix: %v", err)
		}
		// Every certificate made for the key has the key's identity.
		cert, err := k.Certificate(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := Of(cert.Leaf); got != v.identity {
			t.Errorf("certificate identity %s, want %s", got, v.identity)
		}
		if cert.Leaf.Subject.CommonName != v.identity || cert.Leaf.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
			t.Errorf("certificate subject %q, usage %v", cert.Leaf.Subject.CommonName, cert.Leaf.ExtKeyUsage)
		}
		keyPEM, certPEM, err := k.PEM(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		if id, err := OfPEM(append(keyPEM, certPEM...)); err != nil || id != v.identity {
			t.Errorf("OfPEM = %s, %v", id, err)
		}
	}
}

func TestParseAPIKeyRejects(t *testing.T) {
	for _, s := range []string{
		"",
		"kes:v1:",
		"v1:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E",     // KES refuses these three too
		"kes:AM0F5TP43FYEShMzA42f2drFYGnBOiNx7UH4DK0nm08E",    //
		"kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW", // type byte 0xb1
		"kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NA",  // bad padding
		"kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAsAA==",
		"kes:v1:" + strings.Repeat("A", 1<<20),
	} {
		_, err := ParseAPIKey(s)
		if !errors.Is(err, ErrInvalidAPIKey) {
			t.Errorf("%.60q: err = %v", s, err)
			continue
		}
		if len(s) > 12 && strings.Contains(err.Error(), s[7:12]) {
			t.Errorf("error quotes the key: %v", err)
		}
	}
}

func TestGenerateAPIKey(t *testing.T) {
	// From a fixed source: the seed is the first 32 bytes, as with
	// ed25519.GenerateKey (and so with the KES client's GenerateAPIKey).
	seed := bytes.Repeat([]byte{7}, 32)
	k, err := GenerateAPIKey(bytes.NewReader(seed))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kes:v1:AAcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH"; k.String() != want {
		t.Errorf("String() = %s, want %s", k.String(), want)
	}
	a, _ := GenerateAPIKey(nil)
	b, _ := GenerateAPIKey(nil)
	if a.Identity() == b.Identity() {
		t.Error("two random keys share an identity")
	}
	if _, err := GenerateAPIKey(bytes.NewReader(seed[:10])); err == nil {
		t.Error("short randomness accepted")
	}
	k.Wipe()
	if !bytes.Equal(k.key, make([]byte, len(k.key))) {
		t.Error("Wipe left key bytes")
	}
}

// Any certificate's identity is the hash of its public key alone: two
// certificates for one key agree, and other keys differ.
func TestIdentityOfCertificates(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	mk := func(cn string) *x509.Certificate {
		tmpl := &x509.Certificate{SerialNumber: bigOne(), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
		tmpl.Subject.CommonName = cn
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
		if err != nil {
			t.Fatal(err)
		}
		c, _ := x509.ParseCertificate(der)
		return c
	}
	a, b := Of(mk("one")), Of(mk("two"))
	want, _ := OfPublicKey(&priv.PublicKey)
	if a != b || a != want || len(a) != 64 || strings.ToLower(a) != a {
		t.Errorf("identities %s %s %s", a, b, want)
	}
	if _, err := OfPEM([]byte("not pem")); err == nil {
		t.Error("OfPEM accepted garbage")
	}
	if _, err := OfPEM(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte{1, 2}})); err == nil {
		t.Error("OfPEM accepted a bad certificate")
	}
}

func FuzzParseAPIKey(f *testing.F) {
	for _, v := range apiKeyVectors {
		f.Add(v.key)
	}
	f.Add("kes:v1:sbDvZFqUPFFwxRS4EkuoEb2nyyInkdKSUEYHXFHeTouW")
	f.Add("AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs")
	f.Add("kes:v1:kes:v1:AGaV6VXHasF0FnaB60WdCOeTZ8eTIDikL4zlN16c8NAs")
	f.Fuzz(func(t *testing.T, s string) {
		k, err := ParseAPIKey(s)
		if err != nil {
			if !errors.Is(err, ErrInvalidAPIKey) {
				t.Fatalf("error does not wrap ErrInvalidAPIKey: %v", err)
			}
			if len(s) >= 8 && strings.Contains(err.Error(), s) {
				t.Fatalf("error quotes the key: %v", err)
			}
			return
		}
		// An accepted key has one canonical form, which parses to itself.
		// (Go's base64 decoder skips CR and LF, as it does for KES.)
		out := k.String()
		if out != APIKeyPrefix+strings.NewReplacer("\r", "", "\n", "").Replace(strings.TrimPrefix(s, APIKeyPrefix)) {
			t.Fatalf("%q re-encodes as %q", s, out)
		}
		k2, err := ParseAPIKey(out)
		if err != nil || k2.Identity() != k.Identity() {
			t.Fatalf("canonical form %q: %v", out, err)
		}
	})
}

func bigOne() *big.Int { return big.NewInt(1) }
