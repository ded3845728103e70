package e2e

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"
)

// TestLifecycleRules checks the service state machine of docs/api.md,
// "Service lifecycle".
func TestLifecycleRules(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	keyDir := filepath.Join(srv.DataDir, "lc-keys")
	const master = "lifecycle master passphrase"

	st, _, raw := c.do("POST", "/kms/start", nil)
	wantError(t, "start when NotConfigured", st, raw, 409, "Conflict")

	// Invalid configurations, while NotConfigured (nothing else can apply).
	for name, body := range map[string]string{
		"unknown backend_type": `{"backend_type":"floppy","key_dir":"` + keyDir + `"}`,
		"unknown field":        `{"backend_type":"local","key_dir":"` + keyDir + `","enable_cahce":true}`,
		"malformed JSON":       `{"backend_type":"local",`,
		"not an object":        `["local"]`,
		"wrong type":           `{"backend_type":"local","cache_ttl_seconds":"600"}`,
		"missing backend_type": `{"key_dir":"` + keyDir + `"}`,
		"empty body":           ``,
	} {
		st, _, raw := c.do("POST", "/kms/configure", body)
		wantError(t, "configure with "+name, st, raw, 400, "InvalidRequest")
	}
	if st, m, raw := c.do("GET", "/kms/status", nil); str(m, "status") != "NotConfigured" {
		t.Errorf("a rejected configure changed the status: %d %s", st, short(raw))
	}

	configureLocal(t, c, keyDir, master, map[string]any{"default_key_id": "lc-default", "max_cached_keys": 77, "cache_ttl_seconds": 600})
	// The persisted configuration holds the master key: 0600.
	if fi, err := os.Stat(filepath.Join(srv.DataDir, "kms-state.json")); err != nil {
		t.Errorf("kms-state.json: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("kms-state.json: want mode 0600; got %#o", fi.Mode().Perm())
	}
	startKMS(t, c)

	st, _, raw = c.do("POST", "/kms/configure", map[string]any{"backend_type": "local", "key_dir": keyDir, "master_key": master})
	wantError(t, "configure while running", st, raw, 409, "Conflict")
	st, _, raw = c.do("POST", "/kms/start", nil)
	wantError(t, "start while running", st, raw, 409, "Conflict")

	createKey(t, c, "lc-key")
	before := generate(t, c, "lc-key", map[string]string{"app": "lc"})

	// Partial reconfigure: only cache_ttl_seconds changes.
	st, m, raw := c.do("POST", "/kms/reconfigure", map[string]any{"cache_ttl_seconds": 42})
	if wantStatus(t, "reconfigure cache_ttl_seconds", st, raw, 200) && (m["success"] != true || str(m, "status") != "Running") {
		t.Errorf("reconfigure: want {success:true, status:Running}; got %s", short(raw))
	}
	st, m, raw = c.do("GET", "/kms/config", nil)
	if wantStatus(t, "GET /kms/config", st, raw, 200) {
		var keys []string
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		if want := []string{"backend", "cache_enabled", "cache_max_keys", "cache_ttl_seconds", "default_key_id"}; !reflect.DeepEqual(keys, want) {
			t.Errorf("GET /kms/config: want exactly the fields %v; got %v", want, keys)
		}
		if str(m, "backend") != "local" || m["cache_enabled"] != true || num(m, "cache_max_keys") != 77 ||
			num(m, "cache_ttl_seconds") != 42 || str(m, "default_key_id") != "lc-default" {
			t.Errorf("GET /kms/config after a partial reconfigure: want local, true, 77, 42, lc-default; got %s", short(raw))
		}
	}
	if st, m, raw := c.do("GET", "/kms/status", nil); str(m, "status") != "Running" || num(obj(obj(m, "config_summary"), "cache_summary"), "ttl_seconds") != 42 {
		t.Errorf("status after a partial reconfigure: want Running with ttl_seconds 42; got %d %s", st, short(raw))
	}
	if st, p, raw := decrypt(t, c, before.Blob, map[string]string{"app": "lc"}); st != 200 || !bytes.Equal(p, before.Plaintext) {
		t.Errorf("decrypt after a partial reconfigure: got %d %s", st, short(raw))
	}
	generate(t, c, "lc-key", nil)

	// Reconfigure that would strand the keys: 409, and the service serves on.
	st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"master_key": "a different passphrase"})
	wantError(t, "reconfigure with another master_key while keys exist", st, raw, 409, "Conflict")
	if bytes.Contains(raw, []byte("a different passphrase")) || bytes.Contains(raw, []byte(master)) {
		t.Errorf("the reconfigure error echoes a master key: %s", short(raw))
	}
	st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"key_dir": filepath.Join(srv.DataDir, "elsewhere")})
	wantError(t, "reconfigure with another key_dir while keys exist", st, raw, 409, "Conflict")
	st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"backend_type": "floppy"})
	wantError(t, "reconfigure with an unknown backend_type", st, raw, 400, "InvalidRequest")
	st, _, raw = c.do("POST", "/kms/reconfigure", `{"cache_ttl_seconds":`)
	wantError(t, "reconfigure with malformed JSON", st, raw, 400, "InvalidRequest")
	if st, m, raw := c.do("GET", "/kms/status", nil); str(m, "status") != "Running" || m["healthy"] != true {
		t.Errorf("status after refused reconfigures: want Running and healthy; got %d %s", st, short(raw))
	}
	if st, p, raw := decrypt(t, c, before.Blob, map[string]string{"app": "lc"}); st != 200 || !bytes.Equal(p, before.Plaintext) {
		t.Errorf("decrypt after a refused reconfigure: got %d %s", st, short(raw))
	}
	generate(t, c, "", nil)
	if st, m, _ := c.do("GET", "/kms/config", nil); num(m, "cache_ttl_seconds") != 42 {
		t.Errorf("a refused reconfigure changed the configuration: %d %v", st, m)
	}

	// stop keeps the configuration; stopping twice is harmless.
	st, _, raw = c.do("POST", "/kms/stop", nil)
	wantStatus(t, "stop", st, raw, 200)
	if st, m, raw := c.do("GET", "/kms/config", nil); st != 200 || num(m, "cache_ttl_seconds") != 42 {
		t.Errorf("GET /kms/config after stop: got %d %s", st, short(raw))
	}
	startKMS(t, c)
	if st, p, raw := decrypt(t, c, before.Blob, map[string]string{"app": "lc"}); st != 200 || !bytes.Equal(p, before.Plaintext) {
		t.Errorf("decrypt after stop/start: got %d %s", st, short(raw))
	}
}

// TestDevMode checks --dev without root credentials, and that the server
// refuses to start without them otherwise.
func TestDevMode(t *testing.T) {
	t.Parallel()
	t.Run("dev", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOpts{Args: []string{"--dev"}, NoRootEnv: true})
		if !strings.Contains(srv.Stdout(), "access key:") || !strings.Contains(srv.Stdout(), "secret key:") {
			t.Fatalf("--dev did not print the credentials:\n%s", srv.Stdout())
		}
		if srv.AccessKey == "" || len(srv.SecretKey) < 8 {
			t.Fatalf("--dev printed unusable credentials: %q / %q", srv.AccessKey, srv.SecretKey)
		}
		c := srv.client(t)
		st, m, raw := c.do("GET", "/kms/status", nil)
		if st != 200 || str(m, "status") != "Running" || m["healthy"] != true {
			t.Errorf("--dev status: want Running and healthy; got %d %s", st, short(raw))
		}
		dk := generate(t, c, "", nil)
		if dk.KeyID != "keyward-default" || len(dk.Plaintext) != 32 {
			t.Errorf("--dev generate without key_id: want keyward-default; got %q (%d bytes)", dk.KeyID, len(dk.Plaintext))
		}
		if st, p, raw := decrypt(t, c, dk.Blob, nil); st != 200 || !bytes.Equal(p, dk.Plaintext) {
			t.Errorf("--dev decrypt: got %d %s", st, short(raw))
		}
		st, _, raw = c.do("GET", "/kms/status", nil, withCreds(srv.AccessKey, srv.SecretKey+"x"))
		wantError(t, "--dev with a wrong secret", st, raw, 401, "SignatureDoesNotMatch")
		// The secret key belongs to the banner, never to the log stream.
		if strings.Contains(srv.Stderr(), srv.SecretKey) {
			t.Errorf("--dev logged the generated secret key on stderr")
		}
	})
	t.Run("no credentials", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, keywardBin, "server", "--data-dir", filepath.Join(t.TempDir(), "data"), "--address", "127.0.0.1:0")
		cmd.Env = processEnv()
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if ctx.Err() != nil {
			t.Fatalf("keyward without root credentials kept running (want a refusal):\n%s", out.String())
		}
		if err == nil || cmd.ProcessState.ExitCode() == 0 {
			t.Errorf("keyward without root credentials: want a non-zero exit; got %v", err)
		}
		if !strings.Contains(out.String(), "KEYWARD_ROOT_USER") || !strings.Contains(out.String(), "KEYWARD_ROOT_PASSWORD") {
			t.Errorf("keyward without root credentials: want a message naming KEYWARD_ROOT_USER and KEYWARD_ROOT_PASSWORD; got:\n%s", out.String())
		}
		if strings.Contains(out.String(), "keyward ready") {
			t.Errorf("keyward without root credentials logged ready")
		}
	})
}
