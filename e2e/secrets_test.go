package e2e

// Secrets at rest (docs/operations.md): secrets given by reference are
// persisted as the reference only; with --no-persist-secrets a restarted
// server waits for its secrets; and a caller with kms:Configure cannot use
// references to read server files or variables.

import (
	"bytes"
	"context"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// noSecretInDir fails the test when any file under dir holds one of the
// secrets, and returns the content of kms-state.json.
func noSecretInDir(t testing.TB, dir string, secrets ...string) []byte {
	t.Helper()
	var state []byte
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		for _, s := range secrets {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s holds a secret (%.6s...)", path, s)
			}
		}
		if d.Name() == "kms-state.json" {
			state = b
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	if state == nil {
		t.Errorf("no kms-state.json under %s (%d files)", dir, files)
	}
	return state
}

// k8sSecretsDir lays out a secrets dir as a Kubernetes secret volume does:
// each name a link to ..data/NAME, ..data a link to a timestamped dir.
func k8sSecretsDir(t testing.TB, secrets map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "secrets")
	stamp := filepath.Join(dir, "..2026_03_01_10_00_00.123")
	if err := os.MkdirAll(stamp, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Base(stamp), filepath.Join(dir, "..data")); err != nil {
		t.Fatal(err)
	}
	for name, v := range secrets {
		if err := os.WriteFile(filepath.Join(stamp, name), []byte(v+"\n"), 0o400); err != nil {
			t.Fatal(err)
		}
		if err := os.Symlink(filepath.Join("..data", name), filepath.Join(dir, name)); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// TestSecretsByReferenceLocal: master_key_file in a Kubernetes-style
// secrets dir; only the path is persisted; a restart reads it again.
func TestSecretsByReferenceLocal(t *testing.T) {
	t.Parallel()
	pass := "file-passphrase-" + randomHex(12)
	guard := newLeakGuard(t, pass)
	secrets := k8sSecretsDir(t, map[string]string{"master-key": pass})
	mkFile := filepath.Join(secrets, "master-key")
	opts := serverOpts{Args: []string{"--secrets-dir", secrets}, Env: []string{"KEYWARD_LOG_LEVEL=debug"}}
	srv := startServer(t, opts)
	c := guard.client(t, srv)
	keyDir := filepath.Join(srv.DataDir, "keys")

	configureLocal(t, c, keyDir, "", map[string]any{"master_key_file": mkFile, "default_key_id": "ref-default"})
	_, m, raw := kmsStatus(t, c)
	bs := obj(obj(m, "config_summary"), "backend_summary")
	if str(bs, "master_key_file") != mkFile || bs["has_master_key"] != true {
		t.Errorf("status: want master_key_file %s and has_master_key; got %s", mkFile, short(raw))
	}
	startKMS(t, c)
	createKey(t, c, "ref-key")
	encCtx := map[string]string{"app": "ref"}
	dk := generate(t, c, "ref-key", encCtx)

	// Moving to the same passphrase inline is not a change of identity
	// (the keys stay reachable), and back to the file neither.
	st, _, raw := c.do("POST", "/kms/reconfigure", map[string]any{"master_key": pass})
	wantStatus(t, "reconfigure to the same passphrase inline", st, raw, 200)
	st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"master_key_file": mkFile})
	wantStatus(t, "reconfigure back to the file", st, raw, 200)
	// A file with another passphrase would strand the keys: 409.
	other := filepath.Join(secrets, "other")
	if err := os.WriteFile(other, []byte("another-passphrase-"+randomHex(8)), 0o400); err != nil {
		t.Fatal(err)
	}
	st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"master_key_file": filepath.Join(secrets, "other")})
	wantError(t, "reconfigure to a file with another passphrase", st, raw, 409, "Conflict")

	srv.Stop()
	state := noSecretInDir(t, srv.DataDir, pass)
	if !bytes.Contains(state, []byte(`"master_key_file": "`+mkFile+`"`)) {
		t.Errorf("kms-state.json does not name the file: %s", state)
	}

	opts.DataDir = srv.DataDir
	srv2 := startServer(t, opts)
	c2 := guard.client(t, srv2)
	if status, _, raw := kmsStatus(t, c2); status != "Running" {
		t.Fatalf("after a restart: want Running; got %s", short(raw))
	}
	if st, p, raw := decrypt(t, c2, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt after a restart: %d %s", st, short(raw))
	}
	generate(t, c2, "", nil)
}

// TestSecretsByReferenceVault: a Vault token from KEYWARD_SECRET_VAULT_TOKEN
// and an AppRole secret id from a file, with a real Vault: no credential
// anywhere in the data dir, and a restart runs on the reference.
func TestSecretsByReferenceVault(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	cases := []struct {
		backend string
		auth    func(t *testing.T) (auth map[string]any, secret string, opts serverOpts)
	}{
		{"vault", func(t *testing.T) (map[string]any, string, serverOpts) {
			token := createVaultToken(t, v, "root")
			return map[string]any{"token_env": "KEYWARD_SECRET_VAULT_TOKEN"}, token,
				serverOpts{Env: []string{"KEYWARD_SECRET_VAULT_TOKEN=" + token}}
		}},
		{"vault-transit", func(t *testing.T) (map[string]any, string, serverOpts) {
			writePolicy(t, v, "kw-ref", `path "*" { capabilities = ["create", "read", "update", "delete", "list", "sudo"] }`)
			roleID, secretID := createAppRole(t, v, "kw-ref", "kw-ref")
			dir := k8sSecretsDir(t, map[string]string{"secret-id": secretID})
			return map[string]any{"approle": map[string]any{"role_id": roleID, "secret_id_file": filepath.Join(dir, "secret-id")}}, secretID,
				serverOpts{Args: []string{"--secrets-dir", dir}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.backend, func(t *testing.T) {
			t.Parallel()
			auth, secret, opts := tc.auth(t)
			guard := newLeakGuard(t, secret)
			srv := startServer(t, opts)
			c := guard.client(t, srv)
			configureVault(t, c, vaultConfig(v.Addr, tc.backend, vaultPrefix(t), auth))
			startVaultKMS(t, c)
			createKey(t, c, "ref-key")
			dk := generate(t, c, "ref-key", nil)
			_, m, raw := kmsStatus(t, c)
			bs := obj(obj(m, "config_summary"), "backend_summary")
			if str(bs, "token_env") == "" && str(bs, "secret_id_file") == "" {
				t.Errorf("status does not say where the credential comes from: %s", short(raw))
			}
			srv.Stop()
			noSecretInDir(t, srv.DataDir, secret)

			opts.DataDir = srv.DataDir
			srv2 := startServer(t, opts)
			c2 := guard.client(t, srv2)
			if status, _, raw := kmsStatus(t, c2); status != "Running" {
				t.Fatalf("after a restart: want Running; got %s", short(raw))
			}
			if st, p, raw := decrypt(t, c2, dk.Blob, nil); st != 200 || !bytes.Equal(p, dk.Plaintext) {
				t.Errorf("decrypt after a restart: %d %s", st, short(raw))
			}
			if rotate, ok := auth["approle"].(map[string]any); ok {
				// Rotation: a new secret id in the file, the old one
				// destroyed; a reconfigure with nothing in it reads the
				// file again and logs in with the new one.
				path := rotate["secret_id_file"].(string)
				_, fresh := createAppRole(t, v, "kw-ref", "kw-ref")
				guard.add(fresh)
				real, err := filepath.EvalSymlinks(path)
				if err != nil {
					t.Fatal(err)
				}
				os.Remove(real) // 0400: replaced, not rewritten
				if err := os.WriteFile(real, []byte(fresh+"\n"), 0o400); err != nil {
					t.Fatal(err)
				}
				vaultOK(t, v, "POST", "/v1/auth/approle/role/kw-ref/secret-id/destroy", map[string]any{"secret_id": secret}, v.Token)
				st, _, raw := c2.do("POST", "/kms/reconfigure", map[string]any{})
				wantStatus(t, "reconfigure after the secret id file was rotated", st, raw, 200)
				c2.do("POST", "/kms/clear-cache", nil)
				if st, p, raw := decrypt(t, c2, dk.Blob, nil); st != 200 || !bytes.Equal(p, dk.Plaintext) {
					t.Errorf("decrypt after the rotation: %d %s", st, short(raw))
				}
				secret = fresh
			}
			srv2.Stop()
			noSecretInDir(t, srv.DataDir, secret)
		})
	}
}

// waitingStatus checks that the service waits Configured for want.
func waitingStatus(t testing.TB, c *client, what, want string) {
	t.Helper()
	status, m, raw := kmsStatus(t, c)
	req, _ := m["secrets_required"].([]any)
	if status != "Configured" || len(req) != 1 || req[0] != want {
		t.Errorf("%s: want Configured with secrets_required [%s]; got %s", what, want, short(raw))
	}
}

// TestSealedMode: with --no-persist-secrets the inline secret never reaches
// the data dir; a restarted server waits Configured until kms start gives
// it; a wrong one is refused and changes nothing.
func TestSealedMode(t *testing.T) {
	t.Parallel()
	t.Run("local", func(t *testing.T) {
		t.Parallel()
		pass, wrong := "sealed-passphrase-"+randomHex(12), "wrong-passphrase-"+randomHex(12)
		guard := newLeakGuard(t, pass, wrong)
		opts := serverOpts{Args: []string{"--no-persist-secrets"}, Env: []string{"KEYWARD_LOG_LEVEL=debug"}}
		srv := startServer(t, opts)
		c := guard.client(t, srv)
		keyDir := filepath.Join(srv.DataDir, "keys")
		// A local backend without a master key would keep its root key in
		// the data dir.
		st, _, raw := c.do("POST", "/kms/configure", map[string]any{"backend_type": "local", "key_dir": keyDir})
		wantError(t, "configure local without a master key", st, raw, 400, "InvalidRequest")

		configureLocal(t, c, keyDir, pass, map[string]any{"default_key_id": "sealed-default"})
		startKMS(t, c)
		createKey(t, c, "sealed-key")
		encCtx := map[string]string{"app": "sealed"}
		dk := generate(t, c, "sealed-key", encCtx)
		srv.Stop()
		state := noSecretInDir(t, srv.DataDir, pass)
		if !bytes.Contains(state, []byte(`"secrets_withheld"`)) {
			t.Errorf("kms-state.json does not note the withheld secret: %s", state)
		}

		opts.DataDir = srv.DataDir
		srv2 := startServer(t, opts)
		c2 := guard.client(t, srv2)
		waitingStatus(t, c2, "after a restart", "master_key")
		if !strings.Contains(srv2.Stderr(), "waits for secrets") {
			t.Errorf("no log line says the service waits for its secrets")
		}
		st, _, raw = c2.do("POST", "/kms/generate-data-key", map[string]any{"key_id": "sealed-key"})
		wantError(t, "generate while waiting", st, raw, 503, "ServiceUnavailable")
		st, _, raw = c2.do("POST", "/kms/start", nil)
		wantError(t, "start without the secret", st, raw, 409, "Conflict")
		st, _, raw = c2.do("POST", "/kms/start", map[string]any{"master_key": wrong})
		if wantError(t, "start with a wrong master key", st, raw, 400, "InvalidRequest") && !strings.Contains(string(raw), "master key does not match") {
			t.Errorf("start with a wrong master key: want a message saying so; got %s", short(raw))
		}
		waitingStatus(t, c2, "after a wrong master key", "master_key")
		st, _, raw = c2.do("POST", "/kms/start", map[string]any{"token": "hvs.not-awaited-" + randomHex(8)})
		wantError(t, "start with a secret not awaited", st, raw, 400, "InvalidRequest")
		st, m, raw := c2.do("POST", "/kms/start", map[string]any{"master_key": pass})
		if wantStatus(t, "start with the master key", st, raw, 200) && str(m, "status") != "Running" {
			t.Errorf("start with the master key: want Running; got %s", short(raw))
		}
		if st, p, raw := decrypt(t, c2, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
			t.Errorf("decrypt after the unseal: %d %s", st, short(raw))
		}
		generate(t, c2, "", nil)
		if _, m, raw := kmsStatus(t, c2); m["secrets_required"] != nil {
			t.Errorf("running: secrets_required still shown: %s", short(raw))
		}
		srv2.Stop()
		noSecretInDir(t, srv.DataDir, pass, wrong)
	})
	t.Run("vault", func(t *testing.T) {
		t.Parallel()
		v := vaulttest.StartDev(t)
		token := createVaultToken(t, v, "root")
		wrong := "hvs.wrong-" + randomHex(12)
		guard := newLeakGuard(t, token, wrong)
		opts := serverOpts{Args: []string{"--no-persist-secrets"}}
		srv := startServer(t, opts)
		c := guard.client(t, srv)
		configureVault(t, c, vaultConfig(v.Addr, "vault", vaultPrefix(t), tokenAuth(token)))
		startVaultKMS(t, c)
		createKey(t, c, "sealed-key")
		dk := generate(t, c, "sealed-key", nil)
		srv.Stop()
		noSecretInDir(t, srv.DataDir, token)

		opts.DataDir = srv.DataDir
		srv2 := startServer(t, opts)
		c2 := guard.client(t, srv2)
		waitingStatus(t, c2, "after a restart", "token")
		st, _, raw := c2.do("POST", "/kms/generate-data-key", map[string]any{"key_id": "sealed-key"})
		wantError(t, "generate while waiting", st, raw, 503, "ServiceUnavailable")
		st, _, raw = c2.do("POST", "/kms/start", map[string]any{"token": wrong})
		wantError(t, "start with a token Vault refuses", st, raw, 400, "InvalidRequest")
		waitingStatus(t, c2, "after a wrong token", "token")
		st, _, raw = c2.do("POST", "/kms/start", map[string]any{"token": token})
		wantStatus(t, "start with the token", st, raw, 200)
		if st, p, raw := decrypt(t, c2, dk.Blob, nil); st != 200 || !bytes.Equal(p, dk.Plaintext) {
			t.Errorf("decrypt after the unseal: %d %s", st, short(raw))
		}
		srv2.Stop()
		noSecretInDir(t, srv.DataDir, token, wrong)
	})
}

// TestSecretReferenceAttacks: a caller with kms:Configure tries to make
// Keyward read a server file or variable (to send it to a Vault of its
// choosing). Each attempt is a 400 that persists nothing, quotes no file
// content, and reaches no Vault.
func TestSecretReferenceAttacks(t *testing.T) {
	t.Parallel()
	marker := "HOST-SECRET-" + randomHex(12)
	outside := filepath.Join(t.TempDir(), "host-secret")
	if err := os.WriteFile(outside, []byte(marker+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	secrets := k8sSecretsDir(t, map[string]string{"legit": "legit-" + randomHex(8)})
	for name, target := range map[string]string{"escape": outside, "escape-rel": "../../" + filepath.Base(filepath.Dir(outside)) + "/host-secret", "hostname": "/etc/hostname"} {
		if err := os.Symlink(target, filepath.Join(secrets, name)); err != nil {
			t.Fatal(err)
		}
	}
	hostname, _ := os.ReadFile("/etc/hostname")
	hostname = bytes.TrimSpace(hostname)

	// The attacker's "Vault" counts what it receives.
	var hits atomic.Int64
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer evil.Close()

	guard := newLeakGuard(t, marker)
	withDir := startServer(t, serverOpts{Args: []string{"--secrets-dir", secrets}, Env: []string{"KEYWARD_LOG_LEVEL=debug"}})
	noDir := startServer(t, serverOpts{Env: []string{"KEYWARD_LOG_LEVEL=debug"}})
	local := func(ref map[string]any) map[string]any {
		body := map[string]any{"backend_type": "local"}
		for k, v := range ref {
			body[k] = v
		}
		return body
	}
	vault := func(auth map[string]any) map[string]any {
		return map[string]any{"backend_type": "vault", "address": evil.URL, "auth_method": auth}
	}
	attacks := []struct {
		name string
		srv  *server
		body map[string]any
		want string // a word the message must hold
	}{
		{"master_key_file outside the secrets dir (/etc/hostname)", withDir, local(map[string]any{"master_key_file": "/etc/hostname"}), "secrets dir"},
		{"master_key_file outside the secrets dir (a host secret)", withDir, local(map[string]any{"master_key_file": outside}), "secrets dir"},
		{"master_key_file: a link in the secrets dir leading out", withDir, local(map[string]any{"master_key_file": filepath.Join(secrets, "escape")}), "secrets dir"},
		{"master_key_file: a relative link leading out", withDir, local(map[string]any{"master_key_file": filepath.Join(secrets, "escape-rel")}), "secrets dir"},
		{"token_file: a link to /etc/hostname", withDir, vault(map[string]any{"token_file": filepath.Join(secrets, "hostname")}), "secrets dir"},
		{"token_file climbing out with ..", withDir, vault(map[string]any{"token_file": secrets + "/../../" + filepath.Base(outside)}), "clean absolute path"},
		{"token_env PATH", withDir, vault(map[string]any{"token_env": "PATH"}), "KEYWARD_SECRET_"},
		{"token_env HOME", withDir, vault(map[string]any{"token_env": "HOME"}), "KEYWARD_SECRET_"},
		{"token_env KEYWARD_ROOT_PASSWORD", withDir, vault(map[string]any{"token_env": "KEYWARD_ROOT_PASSWORD"}), "KEYWARD_SECRET_"},
		{"secret_id_env HOME", withDir, vault(map[string]any{"approle": map[string]any{"role_id": "r", "secret_id_env": "HOME"}}), "KEYWARD_SECRET_"},
		{"master_key_env PATH", withDir, local(map[string]any{"master_key_env": "PATH"}), "KEYWARD_SECRET_"},
		{"a file reference without --secrets-dir", noDir, local(map[string]any{"master_key_file": outside}), "--secrets-dir"},
		{"a token_file without --secrets-dir", noDir, vault(map[string]any{"token_file": "/etc/hostname"}), "--secrets-dir"},
	}
	clients := map[*server]*client{withDir: guard.client(t, withDir), noDir: guard.client(t, noDir)}
	var messages []string
	for _, a := range attacks {
		c := clients[a.srv]
		for _, route := range []string{"/kms/configure", "/kms/reconfigure"} {
			st, _, raw := c.do("POST", route, a.body)
			if wantError(t, route+" with "+a.name, st, raw, 400, "InvalidRequest") && !strings.Contains(string(raw), a.want) {
				t.Errorf("%s with %s: want a message naming %q; got %s", route, a.name, a.want, short(raw))
			}
			if len(hostname) >= 6 && bytes.Contains(raw, hostname) {
				t.Errorf("%s with %s: the answer holds the content of /etc/hostname: %s", route, a.name, short(raw))
			}
			messages = append(messages, string(raw))
		}
	}
	// The file refusals read alike whether the file exists or not.
	st, _, missing := clients[withDir].do("POST", "/kms/configure", local(map[string]any{"master_key_file": "/no/such/file"}))
	wantError(t, "configure with a missing file outside", st, missing, 400, "InvalidRequest")
	for _, m := range messages[:2] {
		if norm(m, "/etc/hostname") != norm(string(missing), "/no/such/file") {
			t.Errorf("the refusal of an existing file outside differs from a missing one:\n  %s\n  %s", short([]byte(m)), short(missing))
		}
	}
	// Nothing was stored: there is nothing to start.
	for _, srv := range []*server{withDir, noDir} {
		c := clients[srv]
		if status, _, raw := kmsStatus(t, c); status != "NotConfigured" {
			t.Errorf("after the refused attacks: want NotConfigured; got %s", short(raw))
		}
		st, _, raw := c.do("POST", "/kms/start", nil)
		wantError(t, "start after the refused attacks", st, raw, 409, "Conflict")
		if _, err := os.Stat(filepath.Join(srv.DataDir, "kms-state.json")); !os.IsNotExist(err) {
			t.Errorf("a refused configure persisted kms-state.json (%v)", err)
		}
	}
	if n := hits.Load(); n != 0 {
		t.Errorf("the attacker's Vault received %d requests", n)
	}
	for _, srv := range []*server{withDir, noDir} {
		if len(hostname) >= 6 && strings.Contains(srv.Logs(), string(hostname)) {
			t.Errorf("the logs hold the content of /etc/hostname")
		}
	}
}

// norm replaces the path quoted in an error body, so that two refusals
// can be compared.
func norm(body, path string) string {
	i := strings.Index(body, `"request_id"`)
	if i >= 0 {
		body = body[:i]
	}
	return strings.ReplaceAll(body, path, "PATH")
}

// TestSecretsServerFlags: --dev keeps a generated root key in the data dir,
// so it refuses --no-persist-secrets; a --secrets-dir that is not a
// directory stops the server.
func TestSecretsServerFlags(t *testing.T) {
	t.Parallel()
	notADir := filepath.Join(t.TempDir(), "file")
	os.WriteFile(notADir, []byte("x"), 0o600)
	for name, c := range map[string]struct {
		args []string
		env  []string
		want string
	}{
		"--dev --no-persist-secrets":         {[]string{"--dev", "--no-persist-secrets"}, nil, "--no-persist-secrets"},
		"--dev, KEYWARD_NO_PERSIST_SECRETS":  {[]string{"--dev"}, []string{"KEYWARD_NO_PERSIST_SECRETS=true"}, "--no-persist-secrets"},
		"--secrets-dir missing":              {[]string{"--secrets-dir", filepath.Join(t.TempDir(), "none")}, nil, "--secrets-dir"},
		"--secrets-dir a file":               {[]string{"--secrets-dir", notADir}, nil, "not a directory"},
		"KEYWARD_NO_PERSIST_SECRETS=perhaps": {nil, []string{"KEYWARD_NO_PERSIST_SECRETS=perhaps"}, "KEYWARD_NO_PERSIST_SECRETS"},
		// A secrets dir over the data dir would let a configure caller
		// name the state file or the root key as a secret.
		"--secrets-dir holding the data dir": {[]string{"--secrets-dir", "PARENT"}, nil, "holds the data dir"},
		"--secrets-dir /":                    {[]string{"--secrets-dir", "/"}, nil, "holds the data dir"},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
			defer cancel()
			parent := t.TempDir()
			args := []string{"server", "--data-dir", filepath.Join(parent, "data"), "--address", "127.0.0.1:0"}
			for _, a := range c.args {
				args = append(args, strings.ReplaceAll(a, "PARENT", parent))
			}
			cmd := exec.CommandContext(ctx, keywardBin, args...)
			cmd.Env = processEnv(append(c.env, "KEYWARD_ROOT_USER=root", "KEYWARD_ROOT_PASSWORD=root-secret-"+randomHex(8))...)
			out, err := cmd.CombinedOutput()
			if ctx.Err() != nil {
				t.Fatalf("keyward kept running (want a refusal):\n%s", out)
			}
			if err == nil {
				t.Errorf("want a non-zero exit; got success:\n%s", out)
			}
			if !strings.Contains(string(out), c.want) || strings.Contains(string(out), "keyward ready") {
				t.Errorf("want a refusal naming %q before ready; got:\n%s", c.want, out)
			}
		})
	}
}
