package vault

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// TestKWPVectors checks AES key wrap with padding against RFC 5649,
// section 6.
func TestKWPVectors(t *testing.T) {
	kek := unhex(t, "5840df6e29b02af1ab493b705bf16ea1ae8338f4dcc176a8")
	for _, v := range []struct{ key, wrapped string }{
		{"c37b7e6492584340bed12207808941155068f738", "138bdeaa9b8fa7fc61f97742e72248ee5ae6ae5360d1ae6a5f54f373fa543b6a"},
		{"466f7250617369", "afbeb0f07dfbf5419200f2ccb50bb24f"},
	} {
		got, err := kwpWrap(kek, unhex(t, v.key))
		if err != nil || hex.EncodeToString(got) != v.wrapped {
			t.Errorf("kwpWrap(%s) = %x, %v; want %s", v.key, got, err, v.wrapped)
		}
	}
}

func unhex(t *testing.T, s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sealRaw encrypts as Keyward's in-process material does: nonce ||
// AES-256-GCM ciphertext || tag.
func sealRaw(t *testing.T, material, plaintext, aad []byte) []byte {
	block, err := aes.NewCipher(material)
	if err != nil {
		t.Fatal(err)
	}
	aead, _ := cipher.NewGCM(block)
	nonce := make([]byte, aead.NonceSize())
	rand.Read(nonce)
	return aead.Seal(nonce, nonce, plaintext, aad)
}

// TestTransitImport imports a key of three versions made elsewhere into a
// real Vault's Transit (BYOK) and checks that ciphertexts made under each
// version before the import decrypt there, that the imported key is
// Keyward's own (rotated, compared, destroyed), and that a Transit key
// Keyward did not make is never imported into.
func TestTransitImport(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	mount := s.NewTransitMount()
	cfg := testConfig(s.Addr, s.Token, config.BackendVaultTransit, freshPrefix())
	cfg.MountPath = mount
	e := openT(t, cfg, Options{})

	created := time.Now().UTC().Truncate(time.Microsecond).Add(-48 * time.Hour)
	k := kms.ExportedKey{Metadata: kms.Metadata{ID: "moved", State: kms.StateDisabled, Usage: kms.UsageEncryptDecrypt,
		Description: "from local", Tags: map[string]string{"team": "a"}, CreationDate: created, Version: 3, RotationDate: created.Add(2 * time.Hour)}}
	for v := uint32(1); v <= 3; v++ {
		m := make([]byte, 32)
		rand.Read(m)
		k.Versions = append(k.Versions, kms.ExportedVersion{Version: v, Created: created.Add(time.Duration(v-1) * time.Hour), Material: m})
	}
	aad := []byte("header and context")
	var raws [][]byte
	for _, v := range k.Versions {
		raws = append(raws, sealRaw(t, v.Material, []byte("secret of version "+string(rune('0'+v.Version))), aad))
	}

	if cmp, err := e.CompareKey(ctx, &k); err != nil || cmp.Exists {
		t.Fatalf("compare before import: %+v %v", cmp, err)
	}
	if err := e.CheckImport(ctx, &k); err != nil {
		t.Fatalf("check import: %v", err)
	}
	if err := e.ImportKey(ctx, &k); err != nil {
		t.Fatalf("import: %v", err)
	}
	var key struct {
		Data struct {
			LatestVersion int  `json:"latest_version"`
			Exportable    bool `json:"exportable"`
		} `json:"data"`
	}
	mustDo(t, s, "GET", "/v1/"+mount+"/keys/moved", nil, &key)
	if key.Data.LatestVersion != 3 || key.Data.Exportable {
		t.Fatalf("Transit key after import: %+v", key.Data)
	}
	for i, raw := range raws {
		pt, err := e.Unwrap(ctx, "moved", uint32(i+1), raw, aad)
		if err != nil || !bytes.Equal(pt, []byte("secret of version "+string(rune('1'+i)))) {
			t.Errorf("version %d: blob made before the import: %q %v", i+1, pt, err)
		}
		if _, err := e.Unwrap(ctx, "moved", uint32(i+1), raw, []byte("other context")); !errors.Is(err, kms.ErrInvalidCiphertext) {
			t.Errorf("version %d with another context: %v", i+1, err)
		}
	}
	meta, err := e.Describe(ctx, "moved")
	if err != nil || meta.State != kms.StateDisabled || !meta.CreationDate.Equal(created) || meta.Version != 3 || meta.Tags["team"] != "a" {
		t.Fatalf("metadata after import: %+v %v", meta, err)
	}
	if cmp, err := e.CompareKey(ctx, &k); err != nil || !cmp.Identical || !cmp.MaterialCompared {
		t.Fatalf("compare after import: %+v %v", cmp, err)
	}
	other := k
	other.Versions = append([]kms.ExportedVersion(nil), k.Versions...)
	other.Versions[1].Material = make([]byte, 32)
	if cmp, err := e.CompareKey(ctx, &other); err != nil || cmp.Identical || len(cmp.Differences) != 1 {
		t.Fatalf("compare with other material: %+v %v", cmp, err)
	}
	if err := e.ImportKey(ctx, &k); !errors.Is(err, kms.ErrExists) {
		t.Fatalf("import again: %v", err)
	}

	// Keyward's own now: it rotates in Transit, and new blobs are Transit's.
	if _, err := e.Rotate(ctx, "moved", func(kms.Metadata) error { return nil }); err != nil {
		t.Fatalf("rotate the imported key: %v", err)
	}
	ct, err := e.Wrap(ctx, "moved", 4, []byte("new"), aad)
	if err != nil || !bytes.HasPrefix(ct, []byte("vault:v4:")) {
		t.Fatalf("wrap under version 4: %q %v", ct, err)
	}
	if pt, err := e.Unwrap(ctx, "moved", 4, ct, aad); err != nil || string(pt) != "new" {
		t.Fatalf("unwrap version 4: %q %v", pt, err)
	}
	if err := e.Destroy(ctx, "moved", nil); err != nil {
		t.Fatalf("destroy: %v", err)
	}
	if st, _ := s.Do("GET", "/v1/"+mount+"/keys/moved", nil, s.Token); st != 404 {
		t.Fatalf("the imported Transit key outlived its destruction: %d", st)
	}

	// A Transit key someone else made is never imported into.
	mustDo(t, s, "POST", "/v1/"+mount+"/keys/foreign", map[string]any{"type": "aes256-gcm96"}, nil)
	f := k
	f.Metadata.ID = "foreign"
	if err := e.CheckImport(ctx, &f); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("check import over a foreign key: %v", err)
	}
	if err := e.ImportKey(ctx, &f); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("import over a foreign key: %v", err)
	}
	mustDo(t, s, "GET", "/v1/"+mount+"/keys/foreign", nil, &key)
	if key.Data.LatestVersion != 1 {
		t.Fatalf("the foreign key changed: %+v", key.Data)
	}
	if _, err := e.Describe(ctx, "foreign"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("a refused import left a record: %v", err)
	}
}
