package vault

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/kms/kmstest"
	"github.com/keyward/keyward/internal/vaulttest"
)

// The minimal policies, verbatim as in docs/vault.md (default mounts and
// key_path_prefix "keyward/keys").
const policyVault = `# Keyward "vault" backend: key records in KV v2, sealed by one Transit key.
path "secret/data/keyward/keys/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/keyward/keys/*" {
  capabilities = ["read", "list", "delete"]
}
path "secret/destroy/keyward/keys/*" {
  capabilities = ["update"]
}
path "transit/keys/keyward-record-kek" {
  capabilities = ["read", "create", "update"]
}
path "transit/encrypt/keyward-record-kek" {
  capabilities = ["update"]
}
path "transit/decrypt/keyward-record-kek" {
  capabilities = ["update"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
`

const policyTransit = `# Keyward "vault-transit" backend: one Transit key per master key,
# metadata in KV v2. Give Keyward a Transit mount of its own.
path "secret/data/keyward/keys/*" {
  capabilities = ["create", "read", "update"]
}
path "secret/metadata/keyward/keys/*" {
  capabilities = ["read", "list", "delete"]
}
path "secret/destroy/keyward/keys/*" {
  capabilities = ["update"]
}
path "transit/keys/*" {
  capabilities = ["create", "read", "update", "delete"]
}
path "transit/encrypt/*" {
  capabilities = ["update"]
}
path "transit/decrypt/*" {
  capabilities = ["update"]
}
# Restores into this backend import key material (docs/backup.md).
path "transit/wrapping_key" {
  capabilities = ["read"]
}
path "auth/token/lookup-self" {
  capabilities = ["read"]
}
path "auth/token/renew-self" {
  capabilities = ["update"]
}
`

// setupAppRole creates the policy and a role using only it (no default
// policy), and returns a role id and a fresh secret id.
func setupAppRole(t *testing.T, s *vaulttest.Server, name, policy, ttl, maxTTL string) (roleID, secretID string) {
	t.Helper()
	mustDo(t, s, "PUT", "/v1/sys/policies/acl/"+name, map[string]string{"policy": policy}, nil)
	if st, b := s.Do("POST", "/v1/sys/auth/approle", map[string]string{"type": "approle"}, s.Token); st >= 300 && !strings.Contains(string(b), "path is already in use") {
		t.Fatalf("enable approle: %d %s", st, b)
	}
	mustDo(t, s, "POST", "/v1/auth/approle/role/"+name, map[string]any{
		"token_policies": []string{name}, "token_no_default_policy": true,
		"token_ttl": ttl, "token_max_ttl": maxTTL,
	}, nil)
	var rid, sid struct {
		Data struct {
			RoleID   string `json:"role_id"`
			SecretID string `json:"secret_id"`
		} `json:"data"`
	}
	mustDo(t, s, "GET", "/v1/auth/approle/role/"+name+"/role-id", nil, &rid)
	mustDo(t, s, "POST", "/v1/auth/approle/role/"+name+"/secret-id", nil, &sid)
	return rid.Data.RoleID, sid.Data.SecretID
}

func appRoleConfig(s *vaulttest.Server, typ, roleID, secretID, prefix string) Config {
	cfg := testConfig(s.Addr, "", typ, prefix)
	cfg.Auth = Auth{Method: "approle", RoleID: roleID, SecretID: secretID}
	return cfg
}

// TestAppRoleMinimalPolicy logs in with AppRole roles holding only the
// documented policies: the conformance suite passes under them, and over
// a run longer than the token max TTL (3 s TTL, 6 s max) tokens are
// renewed and replaced by fresh logins without a single failed call.
func TestAppRoleMinimalPolicy(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	var seq atomic.Int64
	for _, c := range []struct{ typ, policy string }{
		{config.BackendVault, policyVault},
		{config.BackendVaultTransit, policyTransit},
	} {
		t.Run(c.typ, func(t *testing.T) {
			t.Parallel()
			roleID, secretID := setupAppRole(t, s, "keyward-"+c.typ, c.policy, "3s", "6s")
			sub := func() string { return fmt.Sprintf("keyward/keys/c%d", seq.Add(1)) }

			t.Run("Conformance", func(t *testing.T) {
				kmstest.Run(t, func(t *testing.T) (kms.Engine, func() kms.Engine) {
					cfg := appRoleConfig(s, c.typ, roleID, secretID, sub())
					return openT(t, cfg, Options{}), func() kms.Engine { return openT(t, cfg, Options{}) }
				})
			})

			t.Run("ReuseAfterInterruptedDestroy", func(t *testing.T) {
				prefix := sub()
				clk := newClock()
				cfg := appRoleConfig(s, c.typ, roleID, secretID, prefix)
				b := openT(t, cfg, Options{Now: clk.Now})
				b.Create(ctx, testMeta("t"))
				interruptedDestroy(t, s, cfg, Options{Now: clk.Now}, "t")
				clk.Advance(2 * tombstoneGrace)
				if c.typ == config.BackendVaultTransit { // its Transit key is left for an operator to remove
					mustDo(t, s, "POST", "/v1/transit/keys/t/config", map[string]any{"deletion_allowed": true}, nil)
					mustDo(t, s, "DELETE", "/v1/transit/keys/t", nil, nil)
				}
				if _, err := b.Create(ctx, testMeta("t")); err != nil {
					t.Fatalf("create over an old tombstone with the minimal policy: %v", err)
				}
			})

			t.Run("Rotate", func(t *testing.T) {
				b := openT(t, appRoleConfig(s, c.typ, roleID, secretID, sub()), Options{})
				b.Create(ctx, testMeta("r2")) // "r" is the conformance suite's, on the same mount
				ct, _ := b.Wrap(ctx, "r2", 1, []byte("v1"), nil)
				m, err := b.Rotate(ctx, "r2", func(kms.Metadata) error { return nil })
				if err != nil || m.Version != 2 {
					t.Fatalf("rotate with the minimal policy: %+v %v", m, err)
				}
				if _, err := b.Wrap(ctx, "r2", 2, []byte("v2"), nil); err != nil {
					t.Fatal(err)
				}
				if got, err := b.Unwrap(ctx, "r2", 1, ct, nil); err != nil || string(got) != "v1" {
					t.Fatalf("v1 after rotation: %v", err)
				}
			})

			t.Run("RenewalAndRelogin", func(t *testing.T) {
				b := openT(t, appRoleConfig(s, c.typ, roleID, secretID, sub()), Options{})
				cn := connOf(b)
				if _, err := b.Create(ctx, testMeta("renew")); err != nil {
					t.Fatal(err)
				}
				ct, err := b.Wrap(ctx, "renew", 1, []byte("data key"), nil)
				if err != nil {
					t.Fatal(err)
				}
				for end := time.Now().Add(8 * time.Second); time.Now().Before(end); time.Sleep(250 * time.Millisecond) {
					b.ClearCache() // every round trips to Vault with the current token
					if got, err := b.Unwrap(ctx, "renew", 1, ct, nil); err != nil || string(got) != "data key" {
						t.Fatalf("unwrap at %v: %v", time.Until(end), err)
					}
				}
				if cn.logins.Load() < 2 || cn.renewals.Load() < 1 || cn.reauths.Load() != 0 {
					t.Fatalf("logins %d, renewals %d, forced re-logins %d: expected renewals and a timely re-login", cn.logins.Load(), cn.renewals.Load(), cn.reauths.Load())
				}
				t.Logf("logins %d, renewals %d", cn.logins.Load(), cn.renewals.Load())

				// A revoked token: the next call is refused, logs in again and
				// succeeds.
				before := cn.logins.Load()
				mustDo(t, s, "POST", "/v1/auth/token/revoke", map[string]string{"token": cn.client.Token()}, nil)
				b.ClearCache()
				if _, err := b.Describe(ctx, "renew"); err != nil {
					t.Fatalf("after revocation: %v", err)
				}
				// (Usually the refused call logs in again; the maintenance
				// loop may get there first.)
				if cn.logins.Load() <= before {
					t.Fatalf("logins %d -> %d", before, cn.logins.Load())
				}
			})
		})
	}
}

// TestTokenAuth: a renewable token is renewed at two thirds of its TTL and
// keeps working past it; the root token needs no renewal.
func TestTokenAuth(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	mustDo(t, s, "PUT", "/v1/sys/policies/acl/kw-transit", map[string]string{"policy": policyTransit}, nil)
	var tok struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	mustDo(t, s, "POST", "/v1/auth/token/create", map[string]any{"policies": []string{"kw-transit"}, "no_default_policy": true, "ttl": "3s", "renewable": true}, &tok)

	b := openT(t, testConfig(s.Addr, tok.Auth.ClientToken, config.BackendVaultTransit, "keyward/keys/token"), Options{})
	b.Create(ctx, testMeta("k"))
	time.Sleep(5 * time.Second)
	if _, err := b.Wrap(ctx, "k", 1, []byte("x"), nil); err != nil {
		t.Fatalf("after the first TTL: %v", err)
	}
	if n := connOf(b).renewals.Load(); n < 2 {
		t.Fatalf("renewals: %d", n)
	}
	ttlOf := func(b kms.Engine) (time.Duration, bool) { return connOf(b).TokenTTL() }
	if ttl, ok := ttlOf(b); !ok || ttl <= 0 || ttl > 3*time.Second {
		t.Fatalf("TokenTTL of a renewed 3 s token: %v %v", ttl, ok)
	}

	root := openT(t, testConfig(s.Addr, s.Token, config.BackendVaultTransit, freshPrefix()), Options{})
	if n := connOf(root).renewals.Load() + connOf(root).logins.Load(); n != 0 {
		t.Fatalf("root token renewed or re-logged: %d", n)
	}
	if _, ok := ttlOf(root); ok {
		t.Fatal("the root token never expires, but TokenTTL reports a TTL")
	}
}

// TestErrorsNameNoSecrets: a denied call names the path (and is not
// "unavailable"); failed logins and denials never echo tokens or ids.
func TestErrorsNameNoSecrets(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	noDecrypt := strings.Replace(policyTransit, "transit/decrypt/*", "transit/nothing/*", 1)
	mustDo(t, s, "PUT", "/v1/sys/policies/acl/no-decrypt", map[string]string{"policy": noDecrypt}, nil)
	var tok struct {
		Auth struct {
			ClientToken string `json:"client_token"`
		} `json:"auth"`
	}
	mustDo(t, s, "POST", "/v1/auth/token/create", map[string]any{"policies": []string{"no-decrypt"}, "ttl": "1h"}, &tok)
	token := tok.Auth.ClientToken
	b := openT(t, testConfig(s.Addr, token, config.BackendVaultTransit, "keyward/keys/denied"), Options{})
	b.Create(ctx, testMeta("k"))
	ct, _ := b.Wrap(ctx, "k", 1, []byte("x"), nil)
	_, err := b.Unwrap(ctx, "k", 1, ct, nil)
	if err == nil || !strings.Contains(err.Error(), "permission denied") || !strings.Contains(err.Error(), "transit/decrypt/k") ||
		errors.Is(err, kms.ErrUnavailable) || errors.Is(err, kms.ErrInvalidCiphertext) || strings.Contains(err.Error(), token) {
		t.Fatalf("denied unwrap: %v", err)
	}

	roleID, secretID := setupAppRole(t, s, "kw-bad", policyTransit, "1h", "1h")
	_, err = Open(ctx, appRoleConfig(s, config.BackendVaultTransit, roleID, secretID+"x", freshPrefix()), Options{})
	if !errors.Is(err, kms.ErrInvalidRequest) || strings.Contains(err.Error(), secretID) || strings.Contains(err.Error(), roleID) {
		t.Fatalf("bad secret id: %v", err)
	}
	if _, err = Open(ctx, testConfig(s.Addr, "not-a-token", config.BackendVault, freshPrefix()), Options{}); !errors.Is(err, kms.ErrInvalidRequest) || strings.Contains(err.Error(), "not-a-token") {
		t.Fatalf("bad token: %v", err)
	}

	// With AppRole, a call refused for lack of a capability logs in again
	// once (the token might have died), not on every refusal.
	roleID, secretID = setupAppRole(t, s, "kw-no-decrypt", noDecrypt, "1h", "1h")
	ab := openT(t, appRoleConfig(s, config.BackendVaultTransit, roleID, secretID, "keyward/keys/denied2"), Options{})
	ab.Create(ctx, testMeta("k2")) // "k" is the Transit key of the first backend above
	ct, _ = ab.Wrap(ctx, "k2", 1, []byte("x"), nil)
	for i := 0; i < 5; i++ {
		if _, err := ab.Unwrap(ctx, "k2", 1, ct, nil); err == nil || !strings.Contains(err.Error(), "permission denied") {
			t.Fatalf("denied unwrap with AppRole: %v", err)
		}
	}
	if n := connOf(ab).logins.Load(); n != 2 {
		t.Fatalf("logins after 5 refusals: %d (want the first login and one forced re-login)", n)
	}
	if _, err = Open(ctx, func() Config {
		c := testConfig(s.Addr, s.Token, config.BackendVault, freshPrefix())
		c.KVMount = "transit"
		return c
	}(), Options{}); err == nil || !strings.Contains(err.Error(), "kv_mount") {
		t.Fatalf("transit mount as kv_mount: %v", err)
	}
}

// TestPoliciesMatchDocs keeps docs/vault.md and the policies tested here
// identical.
func TestPoliciesMatchDocs(t *testing.T) {
	doc, err := os.ReadFile(filepath.Join("..", "..", "..", "docs", "vault.md"))
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]string{"vault": policyVault, "vault-transit": policyTransit} {
		if !strings.Contains(string(doc), "```hcl\n"+p+"```") {
			t.Errorf("docs/vault.md does not hold the tested %s policy verbatim", name)
		}
	}
}
