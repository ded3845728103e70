package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/vaulttest"
)

// TestAliases drives the alias routes through the real binary on every
// backend: create, use in place of a key id (describe, generate, encrypt,
// decrypt with key_id, re-encrypt destination), list, move, delete, and
// removal with the key; aliases survive a restart.
func TestAliases(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOpts{})
		c := srv.client(t)
		configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "", nil)
		startKMS(t, c)
		runAliases(t, c, func() *client {
			srv.Stop()
			srv2 := startServer(t, serverOpts{DataDir: srv.DataDir, Env: []string{"KEYWARD_ROOT_PASSWORD=" + srv.SecretKey}})
			return srv2.client(t)
		})
	})
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOpts{})
			c := srv.client(t)
			cfg := vaultConfig(v.Addr, backend, vaultPrefix(t), tokenAuth(v.Token))
			if backend == "vault-transit" {
				cfg["mount_path"] = v.NewTransitMount()
			}
			configureVault(t, c, cfg)
			startVaultKMS(t, c)
			runAliases(t, c, nil)
		})
	}
}

func runAliases(t *testing.T, c *client, restart func() *client) {
	createKey(t, c, "app-v1")
	createKey(t, c, "app-v2")
	ctx := map[string]string{"app": "aliases"}
	st, m, raw := c.do("POST", "/kms/aliases", map[string]any{"alias_name": "alias/app/current", "target_key_id": "app-v1"})
	if !wantStatus(t, "create alias", st, raw, 200) || str(obj(m, "alias"), "target_key_id") != "app-v1" {
		t.FailNow()
	}
	for name, body := range map[string]map[string]any{
		"taken name":    {"alias_name": "alias/app/current", "target_key_id": "app-v2"},
		"reserved name": {"alias_name": "alias/aws/s3", "target_key_id": "app-v2"},
		"no prefix":     {"alias_name": "app/current", "target_key_id": "app-v2"},
		"missing key":   {"alias_name": "alias/nothing", "target_key_id": "missing"},
	} {
		st, _, raw := c.do("POST", "/kms/aliases", body)
		want, code := 400, "InvalidRequest"
		switch name {
		case "taken name":
			want, code = 409, "Conflict"
		case "missing key":
			want, code = 404, "NotFound"
		}
		wantError(t, "create alias: "+name, st, raw, want, code)
	}

	// The alias works where a key id does.
	st, m, raw = c.do("GET", "/kms/keys/alias%2Fapp%2Fcurrent", nil)
	if wantStatus(t, "describe by alias", st, raw, 200) {
		md := obj(m, "key_metadata")
		if str(md, "key_id") != "app-v1" || !strings.Contains(string(raw), `"aliases":["alias/app/current"]`) {
			t.Errorf("describe by alias: %s", raw)
		}
	}
	dk := generate(t, c, "alias/app/current", ctx)
	if dk.KeyID != "app-v1" {
		t.Errorf("generate by alias: key %q", dk.KeyID)
	}
	st, m, raw = c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": dk.Blob, "encryption_context": ctx, "key_id": "alias/app/current"})
	wantStatus(t, "decrypt naming the alias", st, raw, 200)
	st, m, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": "alias/app/current", "plaintext": b64([]byte("hi"))})
	if wantStatus(t, "encrypt by alias", st, raw, 200) && str(m, "key_id") != "app-v1" {
		t.Errorf("encrypt by alias: %s", raw)
	}
	st, _, raw = c.do("GET", "/kms/keys/alias%2Fnone", nil)
	wantError(t, "describe a missing alias", st, raw, 404, "NotFound")

	if restart != nil {
		c = restart()
	}
	st, m, raw = c.do("GET", "/kms/aliases", nil)
	if wantStatus(t, "list aliases", st, raw, 200) {
		as, _ := m["aliases"].([]any)
		if len(as) != 1 || str(as[0].(map[string]any), "alias_name") != "alias/app/current" {
			t.Errorf("list aliases: %s", raw)
		}
	}

	// Move it: new data keys go to app-v2, old blobs still open.
	st, _, raw = c.do("POST", "/kms/aliases/update", map[string]any{"alias_name": "alias/app/current", "target_key_id": "app-v2"})
	wantStatus(t, "update alias", st, raw, 200)
	if dk2 := generate(t, c, "alias/app/current", ctx); dk2.KeyID != "app-v2" {
		t.Errorf("generate after the move: key %q", dk2.KeyID)
	}
	if st, _, raw := decrypt(t, c, dk.Blob, ctx); st != 200 {
		t.Errorf("old blob after the move: %d %s", st, raw)
	}
	st, m, raw = c.do("POST", "/kms/re-encrypt", map[string]any{"ciphertext_blob": dk.Blob, "source_encryption_context": ctx, "destination_key_id": "alias/app/current"})
	if wantStatus(t, "re-encrypt to the alias", st, raw, 200) && str(m, "key_id") != "app-v2" {
		t.Errorf("re-encrypt to the alias: %s", raw)
	}
	st, m, raw = c.do("GET", "/kms/aliases?key_id=app-v1", nil)
	if wantStatus(t, "list app-v1's aliases", st, raw, 200) && strings.Contains(string(raw), "alias/app/current") {
		t.Errorf("app-v1 still lists the moved alias: %s", raw)
	}
	_, md, _ := describe(t, c, "app-v1")
	if as, _ := md["aliases"].([]any); len(as) != 0 {
		t.Errorf("app-v1's aliases after the move: %v", as)
	}

	// Delete; and an alias goes with its key.
	st, _, raw = c.do("DELETE", "/kms/aliases", map[string]any{"alias_name": "alias/app/current"})
	wantStatus(t, "delete alias", st, raw, 200)
	st, _, raw = c.do("DELETE", "/kms/aliases", map[string]any{"alias_name": "alias/app/current"})
	wantError(t, "delete it again", st, raw, 404, "NotFound")
	st, _, raw = c.do("POST", "/kms/aliases", map[string]any{"alias_name": "alias/pending", "target_key_id": "app-v1"})
	wantStatus(t, "alias for a key about to be deleted", st, raw, 200)
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "app-v1", "pending_window_in_days": 7})
	wantStatus(t, "schedule deletion", st, raw, 200)
	st, _, raw = c.do("POST", "/kms/aliases", map[string]any{"alias_name": "alias/late", "target_key_id": "app-v1"})
	wantError(t, "alias for a pending key", st, raw, 409, "InvalidKeyState")
}

// aliasIAM: "teams" may manage aliases under alias/team-a/ for keys
// team-a-*, and use those keys; nothing else.
const aliasIAM = `{
  "users": [{"access_key": "teams", "secret_key": "teams-secret", "policies": ["team-a"]}],
  "policies": {"team-a": {"Statement": [
    {"Effect": "Allow", "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
     "Resource": ["arn:aws:kms:::alias/team-a/*", "arn:aws:kms:::key/team-a-*"]},
    {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:DescribeKey"], "Resource": "arn:aws:kms:::key/team-a-*"}]}}
}`

// TestAliasAuthorization: alias routes are authorized on the alias and on
// every key they touch, and using an alias is authorized on its key; a
// caller without rights learns nothing about an alias's existence.
func TestAliasAuthorization(t *testing.T) {
	t.Parallel()
	iamPath := filepath.Join(t.TempDir(), "iam.json")
	os.WriteFile(iamPath, []byte(aliasIAM), 0o600)
	srv := startServer(t, serverOpts{Args: []string{"--iam-file", iamPath}})
	root := srv.client(t)
	configureLocal(t, root, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, root)
	for _, id := range []string{"team-a-1", "team-a-2", "team-b-1"} {
		createKey(t, root, id)
	}
	st, _, raw := root.do("POST", "/kms/aliases", map[string]any{"alias_name": "alias/team-b/main", "target_key_id": "team-b-1"})
	wantStatus(t, "root creates team-b's alias", st, raw, 200)

	u := srv.client(t)
	u.creds.AccessKeyID, u.creds.SecretAccessKey = "teams", "teams-secret"
	st, _, raw = u.do("POST", "/kms/aliases", map[string]any{"alias_name": "alias/team-a/main", "target_key_id": "team-a-1"})
	wantStatus(t, "create an own alias", st, raw, 200)
	for what, req := range map[string][]any{
		"alias outside the allowed names":  {"POST", "/kms/aliases", map[string]any{"alias_name": "alias/team-b/other", "target_key_id": "team-a-1"}},
		"own alias name, other team's key": {"POST", "/kms/aliases", map[string]any{"alias_name": "alias/team-a/evil", "target_key_id": "team-b-1"}},
		"move own alias to another key":    {"POST", "/kms/aliases/update", map[string]any{"alias_name": "alias/team-a/main", "target_key_id": "team-b-1"}},
		"delete another team's alias":      {"DELETE", "/kms/aliases", map[string]any{"alias_name": "alias/team-b/main"}},
		"list aliases":                     {"GET", "/kms/aliases", nil},
		"generate by another's alias":      {"POST", "/kms/generate-data-key", map[string]any{"key_id": "alias/team-b/main"}},
		"generate by a missing alias":      {"POST", "/kms/generate-data-key", map[string]any{"key_id": "alias/team-b/none"}},
		"describe by a missing alias":      {"GET", "/kms/keys/alias%2Fteam-a%2Fnone", nil},
	} {
		st, _, raw := u.do(req[0].(string), req[1].(string), req[2])
		wantError(t, what, st, raw, 403, "AccessDenied")
	}
	st, _, raw = u.do("POST", "/kms/aliases/update", map[string]any{"alias_name": "alias/team-a/main", "target_key_id": "team-a-2"})
	wantStatus(t, "move own alias between own keys", st, raw, 200)
	if dk := generate(t, u, "alias/team-a/main", nil); dk.KeyID != "team-a-2" {
		t.Errorf("generate by own alias: %q", dk.KeyID)
	}
	if st, m, _ := describe(t, root, "team-b-1"); st != 200 || !strings.Contains(strings.Join(func() []string {
		var out []string
		for _, a := range m["aliases"].([]any) {
			out = append(out, a.(string))
		}
		return out
	}(), ","), "alias/team-b/main") {
		t.Errorf("team-b's alias changed: %v", m)
	}
}
