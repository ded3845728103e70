package kesinterop

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/kms-go/kes"
)

// Keyward's API key and identity derivation agree with the library's:
// `keyward identity of` on the library's keys and certificates, and the
// library on the keys `keyward identity new` makes.
func TestIdentityDerivation(t *testing.T) {
	t.Parallel()
	run := func(args ...string) string {
		t.Helper()
		out, err := runKeyward(args...)
		if err != nil {
			t.Fatalf("keyward %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(out)
	}
	for i := 0; i < 5; i++ {
		key, err := kes.GenerateAPIKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := run("identity", "of", key.String()); got != key.Identity().String() {
			t.Errorf("identity of %s: keyward %s, kms-go %s", key, got, key.Identity())
		}
		cert, err := kes.GenerateCertificate(key)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(t.TempDir(), "cert.pem")
		writePEM(t, path, "CERTIFICATE", cert.Certificate[0])
		if got := run("identity", "of", path); got != key.Identity().String() {
			t.Errorf("identity of the library's certificate: keyward %s, kms-go %s", got, key.Identity())
		}
	}
	var made struct {
		APIKey   string `json:"api_key"`
		Identity string `json:"identity"`
	}
	if err := json.Unmarshal([]byte(run("identity", "new", "--json")), &made); err != nil {
		t.Fatal(err)
	}
	key, err := kes.ParseAPIKey(made.APIKey)
	if err != nil {
		t.Fatalf("the library refuses keyward's API key: %v", err)
	}
	if key.Identity().String() != made.Identity || key.String() != made.APIKey {
		t.Errorf("keyward identity new: %s / %s; kms-go reads %s / %s", made.APIKey, made.Identity, key, key.Identity())
	}
}

// TestKESClient drives every supported route with the real client, on the
// local backend and on a Vault backend.
func TestKESClient(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		exercise(t, func(p *pki, iamFile string) *keyward {
			return startKeyward(t, p, "--dev", "--iam-file", iamFile, "--kes-page-size", "2")
		})
	})
	t.Run("vault", func(t *testing.T) {
		t.Parallel()
		addr, token := startVault(t)
		exercise(t, func(p *pki, iamFile string) *keyward {
			k := startKeyward(t, p, "--iam-file", iamFile, "--kes-page-size", "2")
			cfg := filepath.Join(t.TempDir(), "vault.json")
			body, _ := json.Marshal(map[string]any{
				"backend_type": "vault", "address": addr, "auth_method": map[string]string{"token": token},
				"mount_path": "transit", "kv_mount": "secret", "key_path_prefix": "kes-interop", "default_key_id": "kes-default",
			})
			if err := os.WriteFile(cfg, body, 0o600); err != nil {
				t.Fatal(err)
			}
			k.cli(t, "kms", "configure", "--file", cfg)
			k.cli(t, "kms", "start")
			return k
		})
	})
}

// identities are the callers of one server.
type identities struct {
	admin, narrow, unknown kes.APIKey
	certID                 string
	cert                   tls.Certificate
}

func newIdentities(t *testing.T) *identities {
	t.Helper()
	ids := &identities{}
	for _, k := range []*kes.APIKey{&ids.admin, &ids.narrow, &ids.unknown} {
		key, err := kes.GenerateAPIKey(nil)
		if err != nil {
			t.Fatal(err)
		}
		*k = key
	}
	// A certificate identity: an ECDSA key and a self-signed certificate,
	// as an operator's own PKI would issue (not an API key).
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "minio"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &priv.PublicKey, priv)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	sum := sha256.Sum256(leaf.RawSubjectPublicKeyInfo)
	ids.certID = hex.EncodeToString(sum[:])
	ids.cert = tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}
	return ids
}

// iamFile pins the identities: admin may do everything, narrow only use
// app-* keys, the certificate is a KMSKeyUser.
func (ids *identities) iamFile(t *testing.T) string {
	t.Helper()
	doc := `{"identities": [
	  {"identity": "` + ids.admin.Identity().String() + `", "policies": ["consoleAdmin"]},
	  {"identity": "` + ids.narrow.Identity().String() + `", "policies": ["app-only"]},
	  {"identity": "` + ids.certID + `", "policies": ["KMSKeyUser"]}],
	 "policies": {"app-only": {"Statement": [{"Effect": "Allow",
	   "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey", "kms:ListKeys"],
	   "Resource": "arn:aws:kms:::key/app-*"}]}}}`
	path := filepath.Join(t.TempDir(), "iam.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func exercise(t *testing.T, start func(p *pki, iamFile string) *keyward) {
	ctx := context.Background()
	ids := newIdentities(t)
	k := start(newPKI(t), ids.iamFile(t))
	admin := k.apiKeyClient(t, ids.admin)
	narrow := k.apiKeyClient(t, ids.narrow)
	unknown := k.apiKeyClient(t, ids.unknown)
	byCert := k.client(ids.cert)

	t.Run("server", func(t *testing.T) {
		if v, err := admin.Version(ctx); err != nil || v == "" {
			t.Errorf("Version: %q %v", v, err)
		}
		if ok, err := admin.IsReady(ctx); !ok || err != nil {
			t.Errorf("IsReady: %v %v", ok, err)
		}
		st, err := admin.Status(ctx)
		if err != nil || !st.KeyStoreReachable || !st.KeystoreAvailable || st.OS == "" || st.CPUs < 1 || st.KeyStoreLatency <= 0 {
			t.Errorf("Status: %+v %v", st, err)
		}
		apis, err := admin.APIs(ctx)
		if err != nil || !slices.ContainsFunc(apis, func(a kes.API) bool { return a.Method == "POST" && a.Path == "/v1/key/decrypt/" && a.Timeout > 0 }) {
			t.Errorf("APIs: %+v %v", apis, err)
		}
		info, _, err := admin.DescribeSelf(ctx)
		if err != nil || info.Identity != ids.admin.Identity() || info.Policy != "consoleAdmin" || info.IsAdmin {
			t.Errorf("DescribeSelf: %+v %v", info, err)
		}
		info, _, err = byCert.DescribeSelf(ctx)
		if err != nil || info.Identity.String() != ids.certID || info.Policy != "KMSKeyUser" {
			t.Errorf("DescribeSelf with a certificate: %+v %v", info, err)
		}
		m, err := admin.Metrics(ctx)
		if err != nil || m.RequestOK == 0 || m.CPUs < 1 || len(m.LatencyHistogram) == 0 {
			t.Errorf("Metrics: %+v %v", m, err)
		}
		// An identity the IAM file does not pin, and a narrow one, get
		// ErrNotAllowed from the KES routes they may not use.
		if _, err := unknown.Version(ctx); !errors.Is(err, kes.ErrNotAllowed) {
			t.Errorf("unknown identity: Version: %v", err)
		}
		if _, err := unknown.Status(ctx); !errors.Is(err, kes.ErrNotAllowed) {
			t.Errorf("unknown identity: Status: %v", err)
		}
		if _, err := narrow.Metrics(ctx); !errors.Is(err, kes.ErrNotAllowed) {
			t.Errorf("narrow identity: Metrics: %v", err)
		}
		// A KES API Keyward does not have: 501.
		var kerr kes.Error
		if _, _, err := admin.ListPolicies(ctx, "*", 0); !errors.As(err, &kerr) || kerr.Status() != 501 {
			t.Errorf("ListPolicies: %v", err)
		}
		if err := admin.ImportKey(ctx, "app-imported", &kes.ImportKeyRequest{Key: make([]byte, 32), Cipher: kes.AES256}); !errors.As(err, &kerr) || kerr.Status() != 501 {
			t.Errorf("ImportKey: %v", err)
		}
	})

	t.Run("keys", func(t *testing.T) {
		if err := admin.CreateKey(ctx, "app-k1"); err != nil {
			t.Fatalf("CreateKey: %v", err)
		}
		if err := admin.CreateKey(ctx, "app-k1"); !errors.Is(err, kes.ErrKeyExists) {
			t.Errorf("CreateKey twice: %v", err)
		}
		info, err := admin.DescribeKey(ctx, "app-k1")
		if err != nil || info.Name != "app-k1" || info.Algorithm != kes.AES256 || info.CreatedBy != ids.admin.Identity() || time.Since(info.CreatedAt) > time.Hour {
			t.Errorf("DescribeKey: %+v %v", info, err)
		}
		if _, err := admin.DescribeKey(ctx, "app-missing"); !errors.Is(err, kes.ErrKeyNotFound) {
			t.Errorf("DescribeKey of a missing key: %v", err)
		}
		if _, err := admin.GenerateKey(ctx, "app-missing", nil); !errors.Is(err, kes.ErrKeyNotFound) {
			t.Errorf("GenerateKey with a missing key: %v", err)
		}
		kesCtx := []byte(`{"bucket/object":""}`)
		dek, err := narrow.GenerateKey(ctx, "app-k1", kesCtx)
		if err != nil || len(dek.Plaintext) != 32 {
			t.Fatalf("GenerateKey: %v", err)
		}
		for _, c := range []*kes.Client{narrow, admin, byCert} {
			if pt, err := c.Decrypt(ctx, "app-k1", dek.Ciphertext, kesCtx); err != nil || !bytes.Equal(pt, dek.Plaintext) {
				t.Errorf("Decrypt: %v", err)
			}
		}
		if _, err := narrow.Decrypt(ctx, "app-k1", dek.Ciphertext, []byte("another context")); !errors.Is(err, kes.ErrDecrypt) {
			t.Errorf("Decrypt with another context: %v", err)
		}
		if _, err := narrow.Decrypt(ctx, "app-k1", dek.Ciphertext[:len(dek.Ciphertext)-1], kesCtx); !errors.Is(err, kes.ErrDecrypt) {
			t.Errorf("Decrypt of a cut ciphertext: %v", err)
		}
		dek2, err := admin.GenerateKey(ctx, "app-k1", nil)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := byCert.Decrypt(ctx, "app-k1", dek2.Ciphertext, nil); err != nil || !bytes.Equal(pt, dek2.Plaintext) {
			t.Errorf("Decrypt without context: %v", err)
		}
		ct, err := admin.Encrypt(ctx, "app-k1", []byte("a short secret"), kesCtx)
		if err != nil {
			t.Fatal(err)
		}
		if pt, err := admin.Decrypt(ctx, "app-k1", ct, kesCtx); err != nil || string(pt) != "a short secret" {
			t.Errorf("Decrypt of Encrypt: %q %v", pt, err)
		}
		// The narrow identity, and the certificate's KMSKeyUser, outside
		// their policies.
		if err := admin.CreateKey(ctx, "other-k"); err != nil {
			t.Fatal(err)
		}
		for what, err := range map[string]error{
			"narrow CreateKey":          narrow.CreateKey(ctx, "app-new"),
			"narrow DeleteKey":          narrow.DeleteKey(ctx, "app-k1"),
			"narrow GenerateKey other":  second(narrow.GenerateKey(ctx, "other-k", nil)),
			"narrow DescribeKey other":  second(narrow.DescribeKey(ctx, "other-k")),
			"narrow Encrypt":            second(narrow.Encrypt(ctx, "app-k1", []byte("x"), nil)),
			"narrow Decrypt other":      second(narrow.Decrypt(ctx, "other-k", dek.Ciphertext, kesCtx)),
			"narrow GenerateKey absent": second(narrow.GenerateKey(ctx, "other-absent", nil)),
			"cert CreateKey":            byCert.CreateKey(ctx, "cert-new"),
		} {
			if !errors.Is(err, kes.ErrNotAllowed) {
				t.Errorf("%s: %v, want ErrNotAllowed", what, err)
			}
		}
		// A ciphertext of app-k1 presented as other-k's is not authentic.
		if _, err := admin.Decrypt(ctx, "other-k", dek.Ciphertext, kesCtx); !errors.Is(err, kes.ErrDecrypt) {
			t.Errorf("Decrypt under another key: %v", err)
		}
	})

	t.Run("listing", func(t *testing.T) {
		for _, n := range []string{"list-a1", "list-a2", "list-a3", "list-a4", "list-a5", "list-b1", "list-"} {
			if err := admin.CreateKey(ctx, n); err != nil {
				t.Fatal(err)
			}
		}
		if err := admin.DeleteKey(ctx, "list-a4"); err != nil {
			t.Fatal(err)
		}
		names, next, err := admin.ListKeys(ctx, "list-a", 0)
		if err != nil || !slices.Equal(names, []string{"list-a1", "list-a2"}) || next == "" {
			t.Fatalf("ListKeys first page: %v %q %v", names, next, err)
		}
		iter := kes.ListIter[string]{NextFunc: admin.ListKeys}
		var all []string
		for name, err := iter.SeekTo(ctx, "list-a"); err != io.EOF; name, err = iter.Next(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, name)
		}
		if !slices.Equal(all, []string{"list-a1", "list-a2", "list-a3", "list-a5"}) {
			t.Errorf("listing list-a across pages: %v", all)
		}
		all = nil
		iter = kes.ListIter[string]{NextFunc: admin.ListKeys}
		for name, err := iter.SeekTo(ctx, "list-*"); err != io.EOF; name, err = iter.Next(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, name)
		}
		if !slices.Equal(all, []string{"list-", "list-a1", "list-a2", "list-a3", "list-a5", "list-b1"}) {
			t.Errorf("listing list-*: %v", all)
		}
		// The narrow identity lists only the keys it may use.
		iter = kes.ListIter[string]{NextFunc: narrow.ListKeys}
		all = nil
		for name, err := iter.Next(ctx); err != io.EOF; name, err = iter.Next(ctx) {
			if err != nil {
				t.Fatal(err)
			}
			all = append(all, name)
		}
		if len(all) == 0 || slices.ContainsFunc(all, func(n string) bool { return !strings.HasPrefix(n, "app-") }) {
			t.Errorf("narrow listing: %v", all)
		}
	})

	t.Run("cross door", func(t *testing.T) {
		if err := admin.CreateKey(ctx, "app-door"); err != nil {
			t.Fatal(err)
		}
		kesCtx := []byte{0, 1, 2, 3, 0xfe, 'c'}
		docCtx := "kes:context=" + base64.StdEncoding.EncodeToString(kesCtx)
		dek, err := admin.GenerateKey(ctx, "app-door", kesCtx)
		if err != nil {
			t.Fatal(err)
		}
		// A KES ciphertext is a Keyward blob: the admin API opens it with
		// the documented encryption context.
		out := k.cli(t, "datakey", "decrypt", base64.StdEncoding.EncodeToString(dek.Ciphertext), "--key", "app-door", "--context", docCtx, "--show-plaintext")
		if out["plaintext"] != base64.StdEncoding.EncodeToString(dek.Plaintext) {
			t.Errorf("admin decrypt of a KES ciphertext: %v", out)
		}
		if _, code, _ := k.cliRaw("datakey", "decrypt", base64.StdEncoding.EncodeToString(dek.Ciphertext), "--key", "app-door"); code == 0 {
			t.Error("admin decrypt without the context succeeded")
		}
		// And back: an admin blob made with that context opens through KES.
		out = k.cli(t, "datakey", "generate", "--key", "app-door", "--context", docCtx, "--show-plaintext")
		blob, _ := base64.StdEncoding.DecodeString(out["ciphertext_blob"].(string))
		pt, err := admin.Decrypt(ctx, "app-door", blob, kesCtx)
		if err != nil || base64.StdEncoding.EncodeToString(pt) != out["plaintext_key"] {
			t.Errorf("KES decrypt of an admin blob: %v", err)
		}
		// KES-made keys are ordinary keys.
		md := k.cli(t, "key", "describe", "app-door")
		if md["key_state"] != "Enabled" || md["tags"].(map[string]any)["kes:created-by"] != ids.admin.Identity().String() {
			t.Errorf("admin describe: %v", md)
		}
		// DeleteKey schedules the deletion: gone for KES clients at once,
		// recoverable through the admin API.
		if err := admin.DeleteKey(ctx, "app-door"); err != nil {
			t.Fatal(err)
		}
		if _, err := admin.DescribeKey(ctx, "app-door"); !errors.Is(err, kes.ErrKeyNotFound) {
			t.Errorf("DescribeKey after DeleteKey: %v", err)
		}
		if _, err := admin.Decrypt(ctx, "app-door", dek.Ciphertext, kesCtx); !errors.Is(err, kes.ErrKeyNotFound) {
			t.Errorf("Decrypt after DeleteKey: %v", err)
		}
		if err := admin.DeleteKey(ctx, "app-door"); !errors.Is(err, kes.ErrKeyNotFound) {
			t.Errorf("DeleteKey twice: %v", err)
		}
		if md := k.cli(t, "key", "describe", "app-door"); md["key_state"] != "PendingDeletion" {
			t.Errorf("admin describe after DeleteKey: %v", md)
		}
		k.cli(t, "key", "cancel-deletion", "app-door")
		if pt, err := admin.Decrypt(ctx, "app-door", dek.Ciphertext, kesCtx); err != nil || !bytes.Equal(pt, dek.Plaintext) {
			t.Errorf("Decrypt after the deletion was cancelled: %v", err)
		}
	})
}

func second[T any](_ T, err error) error { return err }
