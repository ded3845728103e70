package e2e

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// dirSnapshot records every entry of dir (mode and content) and the
// directory's own mode, to show that a refused request changed nothing.
func dirSnapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		fi, _ := os.Stat(p)
		b, _ := os.ReadFile(p)
		out[e.Name()] = fmt.Sprintf("%04o %q", fi.Mode().Perm(), b)
	}
	fi, _ := os.Stat(dir)
	out["."] = fmt.Sprintf("%04o", fi.Mode().Perm())
	return out
}

// TestKeyDirIsNoWayIntoTheHost reproduces an attack through the configure
// API: key_dir pointing at an existing directory of the host made Keyward
// chmod it to 0700 and delete a foreign ".tmp-*" file in it, and a forced
// immediate deletion of key "server" removed a foreign "server.key". Now a
// directory Keyward did not create (and that is neither empty nor
// Keyward's) is refused and left exactly as it was, and an immediate
// destruction opens the record before it removes anything.
func TestKeyDirIsNoWayIntoTheHost(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--allow-immediate-deletion"}})
	c := srv.client(t)

	host := filepath.Join(t.TempDir(), "etc-app")
	os.Mkdir(host, 0o755)
	os.WriteFile(filepath.Join(host, ".tmp-4242"), []byte("another program's temp file"), 0o644)
	os.WriteFile(filepath.Join(host, "server.key"), []byte("-----BEGIN PRIVATE KEY-----\nMIIE...\n"), 0o600)
	os.WriteFile(filepath.Join(host, "app.conf"), []byte("port=8080\n"), 0o644)
	before := dirSnapshot(t, host)

	configureLocal(t, c, host, "", nil)
	st, _, raw := c.do("POST", "/kms/start", nil)
	wantError(t, "start on a host directory", st, raw, 400, "InvalidRequest")
	if !strings.Contains(string(raw), "chmod 700") {
		t.Errorf("the refusal does not say how to fix the mode: %s", raw)
	}
	os.Chmod(host, 0o700)
	before["."] = "0700"
	st, _, raw = c.do("POST", "/kms/start", nil)
	wantError(t, "start on a private host directory with foreign files", st, raw, 400, "InvalidRequest")
	if !strings.Contains(string(raw), "did not create") {
		t.Errorf("the refusal does not say why: %s", raw)
	}
	if after := dirSnapshot(t, host); !maps.Equal(before, after) {
		t.Fatalf("a refused key_dir changed:\nbefore %v\nafter  %v", before, after)
	}

	// A key directory of Keyward's own with a foreign file dropped in it:
	// destroying the key of that name refuses and deletes nothing.
	keys := filepath.Join(srv.DataDir, "keys")
	st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"backend_type": "local", "key_dir": keys})
	wantStatus(t, "reconfigure to a fresh key_dir", st, raw, 200)
	startKMS(t, c)
	createKey(t, c, "app")
	foreign := filepath.Join(keys, "server.key")
	os.WriteFile(foreign, []byte("-----BEGIN PRIVATE KEY-----\n"), 0o600)
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "server", "force_immediate": true, "confirm_key_id": "server"})
	wantError(t, "immediate deletion of a foreign file's name", st, raw, 409, "Conflict")
	// The answer names the key, not where it lives on the server (a
	// caller has no business learning the server's paths).
	if strings.Contains(string(raw), srv.DataDir) || strings.Contains(string(raw), "server.key") {
		t.Errorf("the refusal discloses a server path: %s", raw)
	}
	if b, err := os.ReadFile(foreign); err != nil || !strings.HasPrefix(string(b), "-----BEGIN PRIVATE KEY") {
		t.Fatalf("the foreign file was removed or changed: %v", err)
	}
	_, unreadable := listAll(t, c, 100)
	if !contains(unreadable, "server") {
		t.Errorf("the foreign file is not reported as unreadable: %v", unreadable)
	}
	// Keyward's own keys are still destroyed on request.
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "app", "force_immediate": true, "confirm_key_id": "app"})
	wantStatus(t, "immediate deletion of Keyward's key", st, raw, 200)
	if _, err := os.Stat(filepath.Join(keys, "app.key")); !os.IsNotExist(err) {
		t.Errorf("app.key still there: %v", err)
	}
}

// TestDataDirModeIsNotChanged: an existing data directory that others can
// enter is refused at start with a hint, and its mode is left alone.
func TestDataDirModeIsNotChanged(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data")
	os.Mkdir(dir, 0o755)
	s := launch(t, serverOpts{DataDir: dir})
	<-s.Done()
	if code := s.cmd.ProcessState.ExitCode(); code == 0 || !strings.Contains(s.Stderr(), "chmod 700") {
		t.Fatalf("start on a 0755 data dir: exit %d\n%s", code, s.Logs())
	}
	if fi, _ := os.Stat(dir); fi.Mode().Perm() != 0o755 {
		t.Fatalf("the data dir mode was changed to %04o", fi.Mode().Perm())
	}
}
