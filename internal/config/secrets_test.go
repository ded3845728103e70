package config

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

func TestReferencesParse(t *testing.T) {
	for body, want := range map[string]func(c Config) bool{
		`{"backend_type":"local","master_key_file":"/s/mk"}`: func(c Config) bool {
			return c.Local.MasterKeyFile == "/s/mk" && c.Local.MasterKey == "" && c.Local.MasterKeyEnv == ""
		},
		`{"backend_type":"local","master_key_env":"KEYWARD_SECRET_MK"}`: func(c Config) bool { return c.Local.MasterKeyEnv == "KEYWARD_SECRET_MK" },
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_file":"/s/t"}}`: func(c Config) bool {
			return c.Vault.Auth == VaultAuth{Method: "token", TokenFile: "/s/t"}
		},
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_env":"KEYWARD_SECRET_T"}}`: func(c Config) bool {
			return c.Vault.Auth == VaultAuth{Method: "token", TokenEnv: "KEYWARD_SECRET_T"}
		},
		`{"backend_type":"vault","address":"http://v","auth_method":{"Token":{"token_env":"KEYWARD_SECRET_T"}}}`: func(c Config) bool {
			return c.Vault.Auth == VaultAuth{Method: "token", TokenEnv: "KEYWARD_SECRET_T"}
		},
		`{"backend_type":"vault","address":"http://v","auth_method":{"approle":{"role_id":"r","secret_id_file":"/s/id"}}}`: func(c Config) bool {
			return c.Vault.Auth == VaultAuth{Method: "approle", RoleID: "r", SecretIDFile: "/s/id"}
		},
		`{"backend_type":"vault","address":"http://v","auth_method":{"AppRole":{"role_id":"r","secret_id_env":"KEYWARD_SECRET_ID"}}}`: func(c Config) bool {
			return c.Vault.Auth == VaultAuth{Method: "approle", RoleID: "r", SecretIDEnv: "KEYWARD_SECRET_ID"}
		},
	} {
		c, err := build(t, body)
		if err != nil || !want(c) {
			t.Errorf("%s: %+v %+v %v", body, c.Local, c.Vault, err)
		}
	}
}

func TestReferenceRejections(t *testing.T) {
	for _, body := range []string{
		// Two sources for one secret.
		`{"backend_type":"local","master_key":"x","master_key_file":"/s/mk"}`,
		`{"backend_type":"local","master_key_file":"/s/mk","master_key_env":"KEYWARD_SECRET_MK"}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token":"t","token_file":"/s/t"}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_file":"/s/t","token_env":"KEYWARD_SECRET_T"}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"Token":{"token":"t","token_env":"KEYWARD_SECRET_T"}}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"approle":{"role_id":"r","secret_id":"s","secret_id_env":"KEYWARD_SECRET_S"}}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token":"a","Token":"b"}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_file":"/s/t","approle":{"role_id":"r","secret_id":"s"}}}`,
		// Environment variables outside the prefix.
		`{"backend_type":"local","master_key_env":"PATH"}`,
		`{"backend_type":"local","master_key_env":"HOME"}`,
		`{"backend_type":"local","master_key_env":"KEYWARD_SECRET_"}`,
		`{"backend_type":"local","master_key_env":"KEYWARD_ROOT_PASSWORD"}`,
		`{"backend_type":"local","master_key_env":"KEYWARD_SECRET_A=B"}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_env":"VAULT_TOKEN"}}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"approle":{"role_id":"r","secret_id_env":"HOME"}}}`,
		// Files that are not clean absolute paths.
		`{"backend_type":"local","master_key_file":"mk"}`,
		`{"backend_type":"local","master_key_file":"/s/../etc/hostname"}`,
		`{"backend_type":"local","master_key_file":"/s//mk"}`,
		`{"backend_type":"vault","address":"http://v","auth_method":{"token_file":""}}`,
		// References of the wrong backend.
		`{"backend_type":"vault","address":"http://v","auth_method":{"token":"t"},"master_key_file":"/s/mk"}`,
		// AppRole without a secret source.
		`{"backend_type":"vault","address":"http://v","auth_method":{"approle":{"role_id":"r"}}}`,
	} {
		if _, err := build(t, body); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%s: want ErrInvalidRequest; got %v", body, err)
		}
	}
}

func TestMergeReplacesTheSource(t *testing.T) {
	stored, err := build(t, `{"backend_type":"local","master_key":"inline-pass"}`)
	if err != nil {
		t.Fatal(err)
	}
	merge := func(c Config, body string) Config {
		t.Helper()
		r, err := ParseRequest([]byte(body))
		if err != nil {
			t.Fatal(err)
		}
		out, err := r.Merge(c, "/data")
		if err != nil {
			t.Fatalf("%s: %v", body, err)
		}
		return out
	}
	c := merge(stored, `{"master_key_file":"/s/mk"}`)
	if c.Local.MasterKey != "" || c.Local.MasterKeyFile != "/s/mk" || stored.Local.MasterKey != "inline-pass" {
		t.Fatalf("inline → file: %+v (stored %+v)", c.Local, stored.Local)
	}
	c = merge(c, `{"master_key_env":"KEYWARD_SECRET_MK"}`)
	if c.Local.MasterKeyFile != "" || c.Local.MasterKeyEnv != "KEYWARD_SECRET_MK" {
		t.Fatalf("file → env: %+v", c.Local)
	}
	c = merge(c, `{"cache_ttl_seconds":9}`)
	if c.Local.MasterKeyEnv != "KEYWARD_SECRET_MK" {
		t.Fatalf("an unrelated merge dropped the reference: %+v", c.Local)
	}

	// A merge that gives an awaited secret no longer awaits it; one that
	// does not keeps awaiting it.
	sealed := stored
	sealed.Local = &Local{KeyDir: "/data/keys", FilePermissions: 0o600}
	sealed.Awaiting = []string{SecretMasterKey}
	if c := merge(sealed, `{"cache_ttl_seconds":9}`); len(c.Awaiting) != 1 {
		t.Fatalf("awaiting lost: %v", c.Awaiting)
	}
	if c := merge(sealed, `{"master_key":"given"}`); len(c.Awaiting) != 0 || c.Local.MasterKey != "given" || len(sealed.Awaiting) != 1 {
		t.Fatalf("awaiting after the secret was given: %v (stored %v)", c.Awaiting, sealed.Awaiting)
	}
}

// secretsDir makes a secrets dir with a passphrase file, a symlink to it
// (as Kubernetes mounts do, through ..data), and a link leading out.
func secretsDir(t *testing.T) (dir, outside string) {
	t.Helper()
	root := t.TempDir()
	dir = filepath.Join(root, "secrets")
	outside = filepath.Join(root, "outside")
	for _, d := range []string{filepath.Join(dir, "..2026_01_01"), outside} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	write := func(path, content string) {
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(filepath.Join(dir, "..2026_01_01", "master-key"), "k8s-passphrase\n")
	write(filepath.Join(dir, "plain"), "plain-passphrase\r\n\n")
	write(filepath.Join(dir, "empty"), "\n")
	write(filepath.Join(dir, "big"), strings.Repeat("x", MaxSecretFileSize+1))
	write(filepath.Join(dir, "max"), strings.Repeat("y", MaxSecretFileSize))
	write(filepath.Join(outside, "host-secret"), "HOST-SECRET-CONTENT")
	for link, target := range map[string]string{
		filepath.Join(dir, "..data"):     "..2026_01_01",
		filepath.Join(dir, "master-key"): "..data/master-key",
		filepath.Join(dir, "escape"):     "../outside/host-secret",
		filepath.Join(dir, "escape-abs"): filepath.Join(outside, "host-secret"),
	} {
		if err := os.Symlink(target, link); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "subdir"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, outside
}

func localWithFile(path string) Config {
	return Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKeyFile: path, FilePermissions: 0o600}}
}

func TestResolveFiles(t *testing.T) {
	dir, outside := secretsDir(t)
	r := &SecretResolver{Dir: dir}
	for name, want := range map[string]string{"master-key": "k8s-passphrase", "plain": "plain-passphrase", "max": strings.Repeat("y", MaxSecretFileSize)} {
		c, err := r.Resolve(localWithFile(filepath.Join(dir, name)))
		if err != nil || c.Local.MasterKey != want {
			t.Errorf("%s: got %d bytes, %v", name, len(c.Local.MasterKey), err)
		}
	}
	// Every refusal reads the same (it must not tell which files exist
	// outside the dir) and quotes no content.
	var first string
	for _, path := range []string{
		filepath.Join(outside, "host-secret"), // outside
		"/etc/hostname",                       // outside, exists
		"/no/such/file",                       // outside, missing
		filepath.Join(dir, "missing"),         // inside, missing
		filepath.Join(dir, "escape"),          // a link leading out
		filepath.Join(dir, "escape-abs"),      // an absolute link leading out
		filepath.Join(dir, "subdir"),          // a directory
		filepath.Join(dir, "fifo"),            // not a regular file (must not block)
		filepath.Join(dir, "big"),             // too large
		dir,                                   // the dir itself
	} {
		_, err := r.Resolve(localWithFile(path))
		if !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%s: want ErrInvalidRequest; got %v", path, err)
			continue
		}
		msg := strings.ReplaceAll(err.Error(), `"`+path+`"`, "PATH")
		if first == "" {
			first = msg
		} else if msg != first {
			t.Errorf("%s: the refusal differs from the others:\n  %s\n  %s", path, msg, first)
		}
		if strings.Contains(err.Error(), "HOST-SECRET") || strings.Contains(err.Error(), "passphrase\"") {
			t.Errorf("%s: the error quotes file content: %v", path, err)
		}
	}
	if _, err := r.Resolve(localWithFile(filepath.Join(dir, "empty"))); !errors.Is(err, kms.ErrInvalidRequest) || !strings.Contains(err.Error(), "empty") {
		t.Errorf("empty file: %v", err)
	}
	// Without a secrets dir, file references are refused, with the way to
	// enable them.
	for _, r := range []*SecretResolver{nil, {}} {
		_, err := r.Resolve(localWithFile(filepath.Join(dir, "plain")))
		if !errors.Is(err, kms.ErrInvalidRequest) || !strings.Contains(err.Error(), "--secrets-dir") {
			t.Errorf("no secrets dir: %v", err)
		}
	}
	// A secrets dir named through a link works with paths under either
	// name.
	alias := filepath.Join(t.TempDir(), "alias")
	if err := os.Symlink(dir, alias); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(alias, "plain"), filepath.Join(dir, "plain")} {
		if c, err := (&SecretResolver{Dir: alias}).Resolve(localWithFile(path)); err != nil || c.Local.MasterKey != "plain-passphrase" {
			t.Errorf("secrets dir through a link, %s: %v", path, err)
		}
	}
}

func TestResolveEnvAndVault(t *testing.T) {
	env := map[string]string{"KEYWARD_SECRET_TOKEN": "env-token", "KEYWARD_SECRET_EMPTY": ""}
	r := &SecretResolver{LookupEnv: func(k string) (string, bool) { v, ok := env[k]; return v, ok }}
	c := Config{BackendType: BackendVault, Vault: &Vault{Address: "http://v", MountPath: "transit", KVMount: "secret",
		Auth: VaultAuth{Method: "token", TokenEnv: "KEYWARD_SECRET_TOKEN"}}}
	got, err := r.Resolve(c)
	if err != nil || got.Vault.Auth.Token != "env-token" || c.Vault.Auth.Token != "" {
		t.Fatalf("token_env: %+v %v (input changed: %q)", got.Vault.Auth, err, c.Vault.Auth.Token)
	}
	for _, name := range []string{"KEYWARD_SECRET_EMPTY", "KEYWARD_SECRET_UNSET"} {
		c.Vault.Auth.TokenEnv = name
		if _, err := r.Resolve(c); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	c.Vault.Auth.TokenEnv = "KEYWARD_SECRET_TOKEN"
	if _, err := (&SecretResolver{}).Resolve(c); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("no environment: %v", err)
	}
	dir, _ := secretsDir(t)
	c.Vault.Auth = VaultAuth{Method: "approle", RoleID: "r", SecretIDFile: filepath.Join(dir, "plain")}
	if got, err := (&SecretResolver{Dir: dir}).Resolve(c); err != nil || got.Vault.Auth.SecretID != "plain-passphrase" {
		t.Errorf("secret_id_file: %+v %v", got.Vault, err)
	}
}

func TestForDiskKeepsSecretsOff(t *testing.T) {
	const secret = "SECRET-VALUE-123"
	byRef := []Config{
		{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKey: secret, MasterKeyFile: "/s/mk"}},
		{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKey: secret, MasterKeyEnv: "KEYWARD_SECRET_MK"}},
		{BackendType: BackendVault, Vault: &Vault{Auth: VaultAuth{Method: "token", Token: secret, TokenEnv: "KEYWARD_SECRET_T"}}},
		{BackendType: BackendVault, Vault: &Vault{Auth: VaultAuth{Method: "approle", RoleID: "r", SecretID: secret, SecretIDFile: "/s/id"}}},
	}
	for _, c := range byRef {
		for _, withhold := range []bool{false, true} {
			disk, withheld := c.ForDisk(withhold)
			b, _ := json.Marshal(disk)
			if strings.Contains(string(b), secret) || len(withheld) != 0 {
				t.Errorf("by reference (withhold %v): %s, withheld %v", withhold, b, withheld)
			}
			if !strings.Contains(string(b), "KEYWARD_SECRET_") && !strings.Contains(string(b), "/s/") {
				t.Errorf("the reference was not kept: %s", b)
			}
		}
	}
	inline := map[string]Config{
		SecretMasterKey: {BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKey: secret}},
		SecretToken:     {BackendType: BackendVault, Vault: &Vault{Auth: VaultAuth{Method: "token", Token: secret}}},
		SecretSecretID:  {BackendType: BackendVault, Vault: &Vault{Auth: VaultAuth{Method: "approle", RoleID: "r", SecretID: secret}}},
	}
	for name, c := range inline {
		disk, withheld := c.ForDisk(true)
		if b, _ := json.Marshal(disk); strings.Contains(string(b), secret) || len(withheld) != 1 || withheld[0] != name {
			t.Errorf("sealed %s: %s, withheld %v", name, b, withheld)
		}
		b, _ := json.Marshal(c) // the in-memory configuration is untouched
		if !strings.Contains(string(b), secret) {
			t.Errorf("ForDisk changed its receiver: %s", b)
		}
		if disk, withheld := c.ForDisk(false); len(withheld) != 0 {
			t.Errorf("unsealed %s: withheld %v", name, withheld)
		} else if b, _ := json.Marshal(disk); !strings.Contains(string(b), secret) {
			t.Errorf("unsealed %s: the inline secret is not persisted: %s", name, b)
		}
	}
	// An awaited secret stays withheld, once.
	c := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k"}, Awaiting: []string{SecretMasterKey}}
	if disk, withheld := c.ForDisk(true); len(withheld) != 1 || disk.Awaiting != nil {
		t.Errorf("awaited: withheld %v, disk %v", withheld, disk.Awaiting)
	}
}

func TestIdentityUsesTheResolvedSecret(t *testing.T) {
	dir, _ := secretsDir(t)
	inline := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKey: "plain-passphrase"}}
	byFile, err := (&SecretResolver{Dir: dir}).Resolve(localWithFile(filepath.Join(dir, "plain")))
	if err != nil {
		t.Fatal(err)
	}
	byFile.Local.KeyDir = "/k"
	if inline.Identity() != byFile.Identity() {
		t.Error("the same passphrase from a file has another identity than inline")
	}
	other := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKey: "another"}}
	unresolved := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKeyFile: filepath.Join(dir, "plain")}}
	awaited := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k"}, Awaiting: []string{SecretMasterKey}}
	rootKey := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k"}}
	ids := map[[32]byte]string{}
	for name, c := range map[string]Config{"inline": inline, "other": other, "unresolved": unresolved, "awaited": awaited, "root key": rootKey} {
		if prev, dup := ids[c.Identity()]; dup {
			t.Errorf("%s and %s share an identity", name, prev)
		}
		ids[c.Identity()] = name
	}
	awaited2 := awaited
	awaited2.CacheTTLSeconds = 9
	if awaited.Identity() != awaited2.Identity() {
		t.Error("a cache change while awaiting changed the identity")
	}
}

func TestSupply(t *testing.T) {
	s := func(v string) *string { return &v }
	sealed := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", FilePermissions: 0o600}, Awaiting: []string{SecretMasterKey},
		CacheTTLSeconds: 1, MaxCachedKeys: 1, TimeoutSeconds: 1}
	if err := sealed.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := sealed.Supply(Secrets{}); !errors.Is(err, kms.ErrConflict) || !strings.Contains(err.Error(), "master_key") {
		t.Errorf("nothing given: %v", err)
	}
	if _, err := sealed.Supply(Secrets{MasterKey: s("pw"), Token: s("t")}); !errors.Is(err, kms.ErrInvalidRequest) || !strings.Contains(err.Error(), "token") {
		t.Errorf("a secret not awaited: %v", err)
	}
	if _, err := sealed.Supply(Secrets{MasterKey: s("")}); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("an empty secret: %v", err)
	}
	got, err := sealed.Supply(Secrets{MasterKey: s("pw")})
	if err != nil || got.Local.MasterKey != "pw" || len(got.Awaiting) != 0 || sealed.Local.MasterKey != "" || len(sealed.Awaiting) != 1 {
		t.Fatalf("supplied: %+v %v %v (input %+v)", got.Local, got.Awaiting, err, sealed.Local)
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := got.Supply(Secrets{MasterKey: s("pw")}); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("a secret given when none is awaited: %v", err)
	}
	// Awaiting what a configuration cannot await is invalid (a damaged
	// state file).
	for _, c := range []Config{
		{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", FilePermissions: 0o600}, Awaiting: []string{SecretToken}},
		{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", FilePermissions: 0o600, MasterKeyFile: "/s/mk"}, Awaiting: []string{SecretMasterKey}},
		{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", FilePermissions: 0o600}, Awaiting: []string{SecretMasterKey, SecretMasterKey}},
		{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", FilePermissions: 0o600}, Awaiting: []string{"root_password"}},
	} {
		c.CacheTTLSeconds, c.MaxCachedKeys, c.TimeoutSeconds = 1, 1, 1
		if err := c.Validate(); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("awaiting %v: %v", c.Awaiting, err)
		}
	}
}

func TestParseStartRequest(t *testing.T) {
	for body, want := range map[string]StartRequest{
		``:                   {},
		`{}`:                 {},
		`{"force":true}`:     {Force: true},
		`{"master_key":"m"}`: {Secrets: Secrets{MasterKey: new("m")}},
		`{"token":"t"}`:      {Secrets: Secrets{Token: new("t")}},
		`{"secret_id":"s"}`:  {Secrets: Secrets{SecretID: new("s")}},
	} {
		got, err := ParseStartRequest([]byte(body))
		if err != nil || got.Force != want.Force || !sameSecret(got.Secrets.MasterKey, want.Secrets.MasterKey) ||
			!sameSecret(got.Secrets.Token, want.Secrets.Token) || !sameSecret(got.Secrets.SecretID, want.Secrets.SecretID) {
			t.Errorf("%q: %+v %v", body, got, err)
		}
	}
	for _, body := range []string{`{"master_key":"m","bogus":1}`, `{"master_key":1}`, `[]`, `{"force":true}{}`} {
		if _, err := ParseStartRequest([]byte(body)); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%q: %v", body, err)
		} else if strings.Contains(err.Error(), `"m"`) {
			t.Errorf("%q: the error quotes the secret: %v", body, err)
		}
	}
}

func sameSecret(a, b *string) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }

func TestSummaryShowsReferencesNotValues(t *testing.T) {
	c := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", MasterKey: "SECRET-PASS", MasterKeyFile: "/s/mk"}}
	b, _ := json.Marshal(c.Summary())
	if strings.Contains(string(b), "SECRET") || !strings.Contains(string(b), `"master_key_file":"/s/mk"`) || !strings.Contains(string(b), `"has_master_key":true`) {
		t.Errorf("local summary: %s", b)
	}
	c = Config{BackendType: BackendVault, Vault: &Vault{Auth: VaultAuth{Method: "token", Token: "SECRET-TOKEN", TokenEnv: "KEYWARD_SECRET_T"}}}
	b, _ = json.Marshal(c.Summary())
	if strings.Contains(string(b), "SECRET-TOKEN") || !strings.Contains(string(b), `"token_env":"KEYWARD_SECRET_T"`) {
		t.Errorf("vault summary: %s", b)
	}
	c = Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k"}, Awaiting: []string{SecretMasterKey}}
	if b, _ := json.Marshal(c.Summary()); !strings.Contains(string(b), `"has_master_key":true`) {
		t.Errorf("awaited master key: %s", b)
	}
}

func FuzzParseStartRequest(f *testing.F) {
	for _, s := range []string{``, `{}`, `{"force":true}`, `{"master_key":"m"}`, `{"token":"t","secret_id":"s"}`, `null`, `{"a":1}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		r, err := ParseStartRequest(body)
		if err != nil {
			if !errors.Is(err, kms.ErrInvalidRequest) {
				t.Fatalf("rejection without ErrInvalidRequest: %v", err)
			}
			return
		}
		sealed := Config{BackendType: BackendLocal, Local: &Local{KeyDir: "/k", FilePermissions: 0o600}, Awaiting: []string{SecretMasterKey},
			CacheTTLSeconds: 1, MaxCachedKeys: 1, TimeoutSeconds: 1}
		c, err := sealed.Supply(r.Secrets)
		if err != nil {
			if !errors.Is(err, kms.ErrInvalidRequest) && !errors.Is(err, kms.ErrConflict) {
				t.Fatalf("supply error of another kind: %v", err)
			}
			return
		}
		if err := c.Validate(); err != nil || len(c.Awaiting) != 0 || c.Local.MasterKey == "" {
			t.Fatalf("supplied configuration: %+v %v", c.Local, err)
		}
	})
}
