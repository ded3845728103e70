package backend

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
)

// The golden local key directory (testdata/golden-local-v1) was written by
// the first release: key "golden-local" under master key "golden
// passphrase", rotated once, with one blob under each version. Every later
// release must open it and decrypt both blobs: it freezes the key file
// format, the KDF parameter file, the sealed record format and the blob
// format together. Never regenerate it; add a new fixture for a new format.
var goldenLocalV1 = []struct{ plaintext, blob string }{
	{"d901e7cd2f67442f94282b503d3634065432f389edccb0279f4756c84a21137d",
		"AQxnb2xkZW4tbG9jYWwAAAABY4J/vdLU07ajIr8DMmNhvRQW7OTr9LlrgtIJ8uGwhu5xmG4zx1jum+vjynrzYhQ6zFwoqSMmz9sCWV1g"},
	{"9da8f96335a904397b5ac1fe2c60228bf1631a1ab28d4df432d51a4f77a80985",
		"AQxnb2xkZW4tbG9jYWwAAAACV9ESFA3L4onCPotv28PXPHj4Si5AaaYH7hWmVFxS2J7xIPKqOFWTXQZikaQhwEjOozac9E3qZgUah/FB"},
}

func TestGoldenLocalKeyDirectoryV1(t *testing.T) {
	dir := t.TempDir()
	keys := filepath.Join(dir, "keys")
	if err := os.MkdirAll(keys, 0o700); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"golden-local.key", "kdf-params.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", "golden-local-v1", "keys", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(keys, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	env := Env{DataDir: dir, Rand: rand.Reader, Now: time.Now}
	b, _, err := env.Open(context.Background(), config.Config{BackendType: config.BackendLocal, EnableCache: true, CacheTTLSeconds: 60, MaxCachedKeys: 10,
		Local: &config.Local{KeyDir: keys, MasterKey: "golden passphrase", FilePermissions: 0o600}})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	svc := kms.NewService(b, kms.Options{Now: time.Now, Rand: rand.Reader})
	m, err := svc.DescribeKey(context.Background(), "golden-local")
	if err != nil || m.Version != 2 || m.Description != "golden fixture" {
		t.Fatalf("golden key metadata: %+v %v", m, err)
	}
	for i, g := range goldenLocalV1 {
		blob, _ := base64.StdEncoding.DecodeString(g.blob)
		_, pt, err := svc.Decrypt(context.Background(), blob, map[string]string{"object": "v1", "bucket": "golden"}, "")
		want, _ := hex.DecodeString(g.plaintext)
		if err != nil || !bytes.Equal(pt, want) {
			t.Fatalf("golden blob under version %d: %v", i+1, err)
		}
	}
}
