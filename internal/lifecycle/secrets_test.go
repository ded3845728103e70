package lifecycle

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
)

func newSecretManager(dir string, b Backends, secrets *config.SecretResolver, sealed bool) *Manager {
	return New(Options{DataDir: dir, Backends: b, Now: time.Now, Rand: rand.Reader, SweepInterval: time.Hour,
		Secrets: secrets, NoPersistSecrets: sealed})
}

// stateBytes is everything under the data dir, concatenated.
func stateBytes(t *testing.T, dir string) []byte {
	t.Helper()
	var all []byte
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			b, _ := os.ReadFile(path)
			all = append(all, b...)
		}
		return nil
	})
	return all
}

func readState(t *testing.T, dir string) persisted {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		t.Fatal(err)
	}
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestReferencePersistsOnlyThePath(t *testing.T) {
	dataDir, secretsDir, fb := t.TempDir(), t.TempDir(), &fakeBackends{}
	const pass = "passphrase-from-a-file"
	mkFile := filepath.Join(secretsDir, "master-key")
	if err := os.WriteFile(mkFile, []byte(pass+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	res := &config.SecretResolver{Dir: secretsDir}
	m := newSecretManager(dataDir, fb, res, false)
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/kd","default_key_id":"dk","master_key_file":"`+mkFile+`"}`)); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(bg); err != nil {
		t.Fatal(err)
	}
	if got := fb.masters["/kd"]; got != pass {
		t.Fatalf("the backend was opened with %q", got)
	}
	if all := stateBytes(t, dataDir); bytes.Contains(all, []byte(pass)) || !bytes.Contains(all, []byte(mkFile)) {
		t.Fatalf("state: %s", all)
	}
	// Same passphrase inline: same identity, allowed although keys exist.
	if err := m.Reconfigure(bg, request(`{"master_key":"`+pass+`"}`)); err != nil {
		t.Fatalf("inline master key equal to the file's: %v", err)
	}
	if err := m.Reconfigure(bg, request(`{"master_key_file":"`+mkFile+`"}`)); err != nil {
		t.Fatalf("back to the file: %v", err)
	}
	// A file holding another passphrase would strand the keys.
	other := filepath.Join(secretsDir, "other")
	os.WriteFile(other, []byte("another passphrase"), 0o600)
	if err := m.Reconfigure(bg, request(`{"master_key_file":"`+other+`"}`)); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("another passphrase by file: %v", err)
	}
	// A restarted process reads the file again.
	m.Shutdown()
	m2 := newSecretManager(dataDir, fb, res, false)
	if err := m2.Restore(bg); err != nil {
		t.Fatal(err)
	}
	if st := m2.Status(bg); st.Status != StatusRunning {
		t.Fatalf("after restart: %+v", st)
	}
	// A file that no longer resolves fails the next start, with a message
	// that quotes nothing of it.
	m2.Shutdown()
	os.WriteFile(mkFile, []byte("rotated-and-wrong"), 0o600)
	m3 := newSecretManager(dataDir, fb, res, false)
	if err := m3.Restore(bg); err != nil {
		t.Fatal(err)
	}
	if st := m3.Status(bg); st.Status != StatusError || strings.Contains(st.ErrorMsg, "rotated") {
		t.Fatalf("after the file changed: %+v", st)
	}
	// Without a secrets dir, the reference is refused at configure.
	m4 := newSecretManager(t.TempDir(), fb, nil, false)
	if err := m4.Configure(bg, request(`{"backend_type":"local","master_key_file":"`+mkFile+`"}`)); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("file reference without a secrets dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m4.opts.DataDir, stateFile)); !os.IsNotExist(err) {
		t.Fatalf("a refused configure persisted something: %v", err)
	}
}

func TestSealedModeWaitsForSecrets(t *testing.T) {
	dataDir, fb := t.TempDir(), &fakeBackends{}
	const pass = "sealed-mode-passphrase"
	m := newSecretManager(dataDir, fb, nil, true)
	// A local backend without a master key would keep its root key on disk.
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/kd"}`)); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("sealed local without master key: %v", err)
	}
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/kd","default_key_id":"dk","master_key":"`+pass+`"}`)); err != nil {
		t.Fatal(err)
	}
	if st := m.Status(bg); len(st.SecretsRequired) != 0 {
		t.Fatalf("secrets required right after configure: %v", st.SecretsRequired)
	}
	if err := m.Start(bg); err != nil {
		t.Fatal(err)
	}
	if err := m.Reconfigure(bg, request(`{"cache_ttl_seconds":42}`)); err != nil { // merges onto the in-memory secret
		t.Fatal(err)
	}
	if st := readState(t, dataDir); !slices.Equal(st.SecretsWithheld, []string{config.SecretMasterKey}) || !st.Running {
		t.Fatalf("state: %+v", st)
	}
	if bytes.Contains(stateBytes(t, dataDir), []byte(pass)) {
		t.Fatal("the passphrase reached the data dir")
	}
	// Stop and start within the process need nothing.
	if err := m.Stop(bg); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(bg); err != nil {
		t.Fatalf("start after stop: %v", err)
	}

	m.Shutdown()
	m2 := newSecretManager(dataDir, fb, nil, true)
	if err := m2.Restore(bg); err != nil {
		t.Fatal(err)
	}
	st := m2.Status(bg)
	if st.Status != StatusConfigured || !slices.Equal(st.SecretsRequired, []string{config.SecretMasterKey}) || st.Config.CacheTTLSeconds != 42 {
		t.Fatalf("after restart: %+v", st)
	}
	if _, _, err := m2.Acquire(); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("acquire while waiting: %v", err)
	}
	s := func(v string) *string { return &v }
	for name, c := range map[string]struct {
		given config.Secrets
		want  error
	}{
		"nothing":        {config.Secrets{}, kms.ErrConflict},
		"a wrong secret": {config.Secrets{Token: s("t")}, kms.ErrInvalidRequest},
		"a wrong key":    {config.Secrets{MasterKey: s("wrong passphrase")}, kms.ErrInvalidRequest},
	} {
		if err := m2.StartWith(bg, c.given); !errors.Is(err, c.want) {
			t.Errorf("start with %s: want %v; got %v", name, c.want, err)
		}
		if st := m2.Status(bg); st.Status != StatusConfigured || len(st.SecretsRequired) != 1 {
			t.Errorf("after start with %s: %+v", name, st)
		}
	}
	// Changing what seals the keys while waiting: refused.
	if err := m2.Reconfigure(bg, request(`{"master_key":"`+pass+`"}`)); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("reconfigure the master key while waiting: %v", err)
	}
	// A settings change while waiting keeps waiting.
	if err := m2.Reconfigure(bg, request(`{"cache_ttl_seconds":7}`)); err != nil {
		t.Fatal(err)
	}
	if st := m2.Status(bg); len(st.SecretsRequired) != 1 || st.Config.CacheTTLSeconds != 7 {
		t.Fatalf("after a reconfigure while waiting: %+v", st)
	}
	if err := m2.StartWith(bg, config.Secrets{MasterKey: s(pass)}); err != nil {
		t.Fatalf("start with the right master key: %v", err)
	}
	if st := m2.Status(bg); st.Status != StatusRunning || len(st.SecretsRequired) != 0 {
		t.Fatalf("after the secret was given: %+v", st)
	}
	if bytes.Contains(stateBytes(t, dataDir), []byte(pass)) {
		t.Fatal("the passphrase reached the data dir")
	}
	m2.Shutdown()
}

// A data dir written without --no-persist-secrets holds the passphrase; a
// process started with the flag rewrites it without.
func TestSealedModeRewritesAnOldStateFile(t *testing.T) {
	dataDir, fb := t.TempDir(), &fakeBackends{}
	const pass = "persisted-before-the-flag"
	m := newSecretManager(dataDir, fb, nil, false)
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/kd","master_key":"`+pass+`"}`)); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(bg); err != nil {
		t.Fatal(err)
	}
	m.Shutdown()
	if !bytes.Contains(stateBytes(t, dataDir), []byte(pass)) {
		t.Fatal("without the flag the passphrase is persisted (the RustFS way)")
	}
	m2 := newSecretManager(dataDir, fb, nil, true)
	if err := m2.Restore(bg); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(stateBytes(t, dataDir), []byte(pass)) {
		t.Fatal("the old state file still holds the passphrase")
	}
	if st := m2.Status(bg); st.Status != StatusRunning {
		t.Fatalf("the process that read the secret runs on: %+v", st)
	}
	m2.Shutdown()
	m3 := newSecretManager(dataDir, fb, nil, true)
	m3.Restore(bg)
	if st := m3.Status(bg); st.Status != StatusConfigured || len(st.SecretsRequired) != 1 {
		t.Fatalf("the next process waits: %+v", st)
	}
}
