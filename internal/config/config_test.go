package config

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

func build(t *testing.T, body string) (Config, error) {
	t.Helper()
	r, err := ParseRequest([]byte(body))
	if err != nil {
		return Config{}, err
	}
	return r.Build("/data")
}

func TestBuildDefaultsAndSpellings(t *testing.T) {
	c, err := build(t, `{"backend_type":"Local","master_key":"pw","file_permissions":"0640"}`)
	if err != nil {
		t.Fatal(err)
	}
	if c.BackendType != BackendLocal || c.Local.KeyDir != "/data/keys" || c.Local.FilePermissions != 0o640 ||
		!c.EnableCache || c.CacheTTLSeconds != 300 || c.MaxCachedKeys != 1000 || c.TimeoutSeconds != 30 || c.RetryAttempts != 3 {
		t.Fatalf("%+v %+v", c, c.Local)
	}
	c, err = build(t, `{"backend_type":"local","key_dir":"rel/dir","file_permissions":384}`)
	if err != nil || c.Local.KeyDir != "/data/rel/dir" || c.Local.FilePermissions != 0o600 {
		t.Fatalf("%+v %v", c.Local, err)
	}
	for _, body := range []string{
		`{"backend_type":"vault","address":"https://v:8200","auth_method":{"token":"s.XYZ"}}`,
		`{"backend_type":"VaultKV2","address":"https://v:8200","auth_method":{"Token":{"token":"s.XYZ"}}}`,
	} {
		c, err := build(t, body)
		if err != nil || c.BackendType != BackendVault || c.Vault.Auth != (VaultAuth{Method: "token", Token: "s.XYZ"}) ||
			c.Vault.MountPath != "transit" || c.Vault.KVMount != "secret" {
			t.Fatalf("%s: %+v %v", body, c.Vault, err)
		}
	}
	c, err = build(t, `{"backend_type":"vault_transit","address":"http://v","auth_method":{"AppRole":{"role_id":"r","secret_id":"s"}}}`)
	if err != nil || c.BackendType != BackendVaultTransit || c.Vault.Auth.Method != "approle" || c.Vault.Auth.SecretID != "s" {
		t.Fatalf("%+v %v", c, err)
	}
}

func TestRejections(t *testing.T) {
	for _, body := range []string{
		``, `{`, `[]`, `{"backend_type":"s3"}`, `{}`, `{"backend_type":"local","enable_cahce":true}`,
		`{"backend_type":"local","cache_ttl_seconds":0}`, `{"backend_type":"local","file_permissions":511}`,
		`{"backend_type":"local","file_permissions":"rwx"}`, `{"backend_type":"local","default_key_id":"a/b"}`,
		`{"backend_type":"local","address":"http://v"}`, `{"backend_type":"vault","address":"ftp://v","auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","address":"http://v"}`, `{"backend_type":"vault","address":"http://v","auth_method":{"token":""}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"kerberos":{}}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"approle":{"role_id":"r"}}}`,
		`{"backend_type":"local"} {}`, `{"backend_type":"local","timeout_seconds":"30"}`,
	} {
		if _, err := build(t, body); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%q: %v", body, err)
		}
	}
}

func TestMergeIsPartial(t *testing.T) {
	stored, err := build(t, `{"backend_type":"vault","address":"https://v:8200","auth_method":{"token":"old"},"default_key_id":"k","cache_ttl_seconds":600}`)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := ParseRequest([]byte(`{"auth_method":{"token":"new"}}`))
	merged, err := r.Merge(stored, "/data")
	if err != nil || merged.Vault.Auth.Token != "new" || merged.CacheTTLSeconds != 600 || merged.DefaultKeyID != "k" || merged.Vault.Address != "https://v:8200" {
		t.Fatalf("%+v %v", merged, err)
	}
	if stored.Vault.Auth.Token != "old" {
		t.Fatal("merge changed the stored configuration")
	}
}

// TestMergeKeepsTheCredentialWhereItWasGiven: a reconfigure that points
// the stored Vault credential at another server (address, namespace, CA,
// or TLS checks off) must give the credential again; otherwise a caller
// allowed to reconfigure could collect the token with a Vault of its own.
func TestMergeKeepsTheCredentialWhereItWasGiven(t *testing.T) {
	stored, err := build(t, `{"backend_type":"vault","address":"https://v:8200","auth_method":{"token":"old"}}`)
	if err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{
		`{"address":"https://attacker:8200"}`,
		`{"namespace":"other"}`,
		`{"ca_cert":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}`,
		`{"skip_tls_verify":true}`,
	} {
		r, err := ParseRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Merge(stored, "/data"); !errors.Is(err, kms.ErrInvalidRequest) || !strings.Contains(err.Error(), "auth_method") {
			t.Errorf("%s without auth_method: %v", body, err)
		}
		// With the credential given again, the change is accepted.
		r, _ = ParseRequest([]byte(strings.TrimSuffix(body, "}") + `,"auth_method":{"token":"new"}}`))
		if _, err := r.Merge(stored, "/data"); err != nil && strings.Contains(err.Error(), "auth_method") {
			t.Errorf("%s with auth_method: %v", body, err)
		}
	}
	// The same address again, or settings that do not move the
	// credential, need nothing.
	for _, body := range []string{`{"address":"https://v:8200"}`, `{"cache_ttl_seconds":60}`, `{"skip_tls_verify":false}`, `{"key_path_prefix":"p2"}`} {
		r, _ := ParseRequest([]byte(body))
		if _, err := r.Merge(stored, "/data"); err != nil {
			t.Errorf("%s: %v", body, err)
		}
	}
}

func TestSummariesCarryNoSecret(t *testing.T) {
	for _, body := range []string{
		`{"backend_type":"local","master_key":"SECRET-PASSPHRASE"}`,
		`{"backend_type":"vault","address":"https://v","auth_method":{"token":"SECRET-TOKEN"}}`,
		`{"backend_type":"vault","address":"https://v","auth_method":{"approle":{"role_id":"r","secret_id":"SECRET-ID"}}}`,
	} {
		c, err := build(t, body)
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range []any{c.Summary(), c.View(), c.Redacted()} {
			b, _ := json.Marshal(v)
			if strings.Contains(string(b), "SECRET") {
				t.Fatalf("secret leaked: %s", b)
			}
		}
	}
}

func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		`{"backend_type":"local","key_dir":"/k","master_key":"m","file_permissions":"0600"}`,
		`{"backend_type":"vault","address":"https://v","auth_method":{"Token":{"token":"t"}},"namespace":"ns"}`,
		`{"auth_method":{"approle":{"role_id":"r","secret_id":"s"}}}`, `{"file_permissions":384}`, `null`, `{"a":1}`,
		`{"backend_type":"local","master_key_file":"/run/secrets/mk"}`, `{"backend_type":"local","master_key_env":"KEYWARD_SECRET_MK"}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_file":"/s/t"}}`,
		`{"backend_type":"vault","address":"http://a:8200, http://b:8200,","auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","addresses":["http://a","https://b"],"auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"Token":{"token_env":"KEYWARD_SECRET_T"}}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"approle":{"role_id":"r","secret_id_env":"KEYWARD_SECRET_S"}}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseRequest(body)
		if err != nil {
			if !errors.Is(err, kms.ErrInvalidRequest) {
				t.Fatalf("rejection without ErrInvalidRequest: %v", err)
			}
			return
		}
		c, err := r.Build("/data")
		if err != nil {
			if !errors.Is(err, kms.ErrInvalidRequest) {
				t.Fatalf("build error without ErrInvalidRequest: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("built config does not validate: %v", err)
		}
	})
}

// TestVaultAddresses: address takes one URL or a comma-separated list of
// the nodes of one cluster, addresses a JSON array of them; both are kept
// as one canonical address string. Configurations that share a node reach
// the same keys (SameKeys), whatever else the lists hold.
func TestVaultAddresses(t *testing.T) {
	for body, want := range map[string]string{
		`{"backend_type":"vault","address":" http://a:8200 ,http://b:8200,, ","auth_method":{"token":"t"}}`: "http://a:8200,http://b:8200",
		`{"backend_type":"vault","addresses":["http://a:8200","https://b"],"auth_method":{"token":"t"}}`:    "http://a:8200,https://b",
		`{"backend_type":"vault","address":"https://v:8200","auth_method":{"token":"t"}}`:                   "https://v:8200",
	} {
		c, err := build(t, body)
		if err != nil || c.Vault.Address != want {
			t.Errorf("%s: %q %v, want %q", body, c.Vault.Address, err, want)
		}
	}
	for _, body := range []string{
		`{"backend_type":"vault","address":"http://a","addresses":["http://b"],"auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","addresses":[],"auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","address":"http://a,ftp://b","auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","address":"http://a,HTTP://A/","auth_method":{"token":"t"}}`,
		`{"backend_type":"vault","address":"` + strings.Repeat("http://n,", 16) + `http://last","auth_method":{"token":"t"}}`,
	} {
		if _, err := build(t, body); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%s: %v, want ErrInvalidRequest", body, err)
		}
	}
	vault := func(addr, prefix string) Config {
		c, err := build(t, `{"backend_type":"vault","address":"`+addr+`","auth_method":{"token":"t"},"key_path_prefix":"`+prefix+`"}`)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	one := vault("http://a:8200", "p")
	for _, tc := range []struct {
		c    Config
		same bool
	}{
		{vault("http://a:8200,http://b:8200,http://c:8200", "p"), true},
		{vault("http://c:8200,HTTP://A:8200/", "p"), true},
		{vault("http://b:8200,http://c:8200", "p"), false},
		{vault("http://a:8200", "other"), false},
	} {
		if got := SameKeys(one, tc.c); got != tc.same || SameKeys(tc.c, one) != tc.same {
			t.Errorf("SameKeys(%s, %s/%s) = %v, want %v", one.Vault.Address, tc.c.Vault.Address, tc.c.Vault.KeyPathPrefix, got, tc.same)
		}
	}
}
