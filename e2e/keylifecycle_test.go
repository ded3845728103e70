package e2e

import (
	"bytes"
	"encoding/base64"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// The key lifecycle and data plane beyond TestSeedFlow (enable/disable,
// rotation, descriptions and tags, re-encrypt, data keys without plaintext,
// list filters, RustFS legacy routes), over HTTP with the SDK signer.
// runKeyLifecycle takes a configured and started server so that every
// backend can run it; restart restarts the Keyward process on the same data
// dir and returns a client for the new one.

func TestKeyLifecycleLocal(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "lifecycle master key", map[string]any{"default_key_id": "dflt"})
	startKMS(t, c)
	runKeyLifecycle(t, c, func() *client {
		if code := srv.Stop(); code != 0 {
			t.Fatalf("stop exit code %d", code)
		}
		srv = startServer(t, serverOpts{DataDir: srv.DataDir})
		return srv.client(t)
	})
}

func blobVersion(t testing.TB, blob string) int {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(blob)
	if err != nil || len(b) < 6 {
		t.Fatalf("bad blob %q", blob)
	}
	n := int(b[1])
	return int(b[2+n])<<24 | int(b[3+n])<<16 | int(b[4+n])<<8 | int(b[5+n])
}

func runKeyLifecycle(t *testing.T, c *client, restart func() *client) {
	createKey(t, c, "life")
	createKey(t, c, "other")
	ctx := map[string]string{"app": "billing"}

	// Disable: every cryptographic route refuses with 409 InvalidKeyState.
	before := generate(t, c, "life", ctx)
	st, m, raw := c.do("POST", "/kms/keys/disable", map[string]any{"key_id": "life"})
	if wantStatus(t, "disable", st, raw, 200) && (str(obj(m, "key_metadata"), "key_state") != "Disabled" || obj(m, "key_metadata")["enabled"] != false) {
		t.Errorf("disable: %s", short(raw))
	}
	for name, req := range map[string]struct {
		path string
		body map[string]any
	}{
		"generate":          {"/kms/generate-data-key", map[string]any{"key_id": "life"}},
		"without plaintext": {"/kms/generate-data-key-without-plaintext", map[string]any{"key_id": "life"}},
		"encrypt":           {"/kms/encrypt", map[string]any{"key_id": "life", "plaintext": b64([]byte("x"))}},
		"decrypt":           {"/kms/decrypt", map[string]any{"ciphertext_blob": before.Blob, "encryption_context": ctx}},
		"re-encrypt from":   {"/kms/re-encrypt", map[string]any{"ciphertext_blob": before.Blob, "source_encryption_context": ctx, "destination_key_id": "other"}},
		"rotate":            {"/kms/keys/rotate", map[string]any{"key_id": "life"}},
	} {
		st, _, raw := c.do("POST", req.path, req.body)
		wantError(t, name+" on a disabled key", st, raw, 409, "InvalidKeyState")
	}
	st, _, raw = c.do("GET", "/kms/keys?state=Disabled", nil)
	if wantStatus(t, "list state=Disabled", st, raw, 200) && !bytes.Contains(raw, []byte(`"life"`)) || bytes.Contains(raw, []byte(`"other"`)) {
		t.Errorf("list state=Disabled: %s", short(raw))
	}
	st, m, raw = c.do("POST", "/kms/keys/enable", map[string]any{"key_id": "life"})
	if wantStatus(t, "enable", st, raw, 200) && str(obj(m, "key_metadata"), "key_state") != "Enabled" {
		t.Errorf("enable: %s", short(raw))
	}
	if st, pt, raw := decrypt(t, c, before.Blob, ctx); st != 200 || !bytes.Equal(pt, before.Plaintext) {
		t.Errorf("decrypt after enable: %d %s", st, short(raw))
	}

	// Rotation: blobs under versions 1, 2 and 3.
	var blobs []dataKey
	for v := 1; v <= 3; v++ {
		dk := generate(t, c, "life", ctx)
		if got := blobVersion(t, dk.Blob); got != v {
			t.Errorf("blob %d made under key version %d", v, got)
		}
		blobs = append(blobs, dk)
		if v < 3 {
			st, m, raw := c.do("POST", "/kms/keys/rotate", map[string]any{"key_id": "life"})
			md := obj(m, "key_metadata")
			if wantStatus(t, "rotate", st, raw, 200) && (num(md, "key_version") != float64(v+1) || str(md, "rotation_date") == "") {
				t.Errorf("rotate to %d: %s", v+1, short(raw))
			}
		}
	}
	for name, body := range map[string]map[string]any{
		"period 89":          {"key_id": "life", "enabled": true, "period_days": 89},
		"period 2561":        {"key_id": "life", "enabled": true, "period_days": 2561},
		"enabled missing":    {"key_id": "life", "period_days": 90},
		"unknown key":        {"key_id": "nope", "enabled": true, "period_days": 90},
		"unknown field":      {"key_id": "life", "enabled": true, "every": 90},
		"disabled w/ period": {"key_id": "life", "enabled": false, "period_days": 90},
	} {
		st, _, raw := c.do("POST", "/kms/keys/rotation", body)
		want, code := 400, "InvalidRequest"
		if name == "unknown key" {
			want, code = 404, "NotFound"
		}
		wantError(t, "rotation "+name, st, raw, want, code)
	}
	st, m, raw = c.do("POST", "/kms/keys/rotation", map[string]any{"key_id": "life", "enabled": true, "period_days": 90})
	if md := obj(m, "key_metadata"); wantStatus(t, "rotation", st, raw, 200) && (md["rotation_enabled"] != true || num(md, "rotation_period_days") != 90 || str(md, "next_rotation_date") == "") {
		t.Errorf("rotation: %s", short(raw))
	}

	// Description and tags.
	st, _, raw = c.do("POST", "/kms/keys/update-description", map[string]any{"key_id": "life", "description": "rotated thrice"})
	wantStatus(t, "update-description", st, raw, 200)
	st, _, raw = c.do("POST", "/kms/keys/tag", map[string]any{"key_id": "life", "tags": map[string]string{"team": "pay", "tier": "1"}})
	wantStatus(t, "tag", st, raw, 200)
	st, _, raw = c.do("POST", "/kms/keys/untag", map[string]any{"key_id": "life", "tag_keys": []string{"tier"}})
	wantStatus(t, "untag", st, raw, 200)
	st, _, raw = c.do("POST", "/kms/keys/tag", map[string]any{"key_id": "life", "tags": map[string]string{}})
	wantError(t, "tag with no tags", st, raw, 400, "InvalidRequest")

	// Restart: every version still decrypts; metadata persisted.
	c = restart()
	for i, dk := range blobs {
		if st, pt, raw := decrypt(t, c, dk.Blob, ctx); st != 200 || !bytes.Equal(pt, dk.Plaintext) {
			t.Errorf("blob under version %d after restart: %d %s", i+1, st, short(raw))
		}
	}
	st, md, raw := describe(t, c, "life")
	if wantStatus(t, "describe after restart", st, raw, 200) && (str(md, "description") != "rotated thrice" || num(md, "key_version") != 3 ||
		str(obj(md, "tags"), "team") != "pay" || obj(md, "tags")["tier"] != nil || md["rotation_enabled"] != true) {
		t.Errorf("describe after restart: %s", short(raw))
	}

	// Re-encrypt a version-1 blob to the newest version and to another key.
	st, m, raw = c.do("POST", "/kms/re-encrypt", map[string]any{"ciphertext_blob": blobs[0].Blob, "source_encryption_context": ctx,
		"destination_key_id": "life", "destination_encryption_context": map[string]string{"app": "ledger"}})
	if wantStatus(t, "re-encrypt to newest", st, raw, 200) {
		if m["plaintext"] != nil || m["plaintext_key"] != nil || blobVersion(t, str(m, "ciphertext_blob")) != 3 {
			t.Errorf("re-encrypt to newest: %s", short(raw))
		}
		if st, pt, raw := decrypt(t, c, str(m, "ciphertext_blob"), map[string]string{"app": "ledger"}); st != 200 || !bytes.Equal(pt, blobs[0].Plaintext) {
			t.Errorf("decrypt re-encrypted blob: %d %s", st, short(raw))
		}
	}
	st, m, raw = c.do("POST", "/kms/re-encrypt", map[string]any{"ciphertext_blob": blobs[0].Blob, "source_encryption_context": ctx, "destination_key_id": "other"})
	if wantStatus(t, "re-encrypt to other key", st, raw, 200) && str(m, "key_id") != "other" {
		t.Errorf("re-encrypt to other: %s", short(raw))
	} else if st, pt, _ := decrypt(t, c, str(m, "ciphertext_blob"), nil); st != 200 || !bytes.Equal(pt, blobs[0].Plaintext) {
		t.Errorf("decrypt blob moved to other key: %d", st)
	}
	st, _, raw = c.do("POST", "/kms/re-encrypt", map[string]any{"ciphertext_blob": blobs[0].Blob, "destination_key_id": "other"})
	wantError(t, "re-encrypt with the wrong source context", st, raw, 400, "InvalidCiphertext")

	// Data key without plaintext.
	st, m, raw = c.do("POST", "/kms/generate-data-key-without-plaintext", map[string]any{"key_id": "life", "key_spec": "AES_128"})
	if wantStatus(t, "without plaintext", st, raw, 200) && (m["plaintext_key"] != nil || str(m, "ciphertext_blob") == "") {
		t.Errorf("without plaintext: %s", short(raw))
	} else if st, pt, _ := decrypt(t, c, str(m, "ciphertext_blob"), nil); st != 200 || len(pt) != 16 {
		t.Errorf("decrypt the without-plaintext blob: %d, %d bytes", st, len(pt))
	}

	// Pending deletion: enable/disable refused; list filters (state= and RustFS status=).
	c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "other", "pending_window_in_days": 7})
	for _, op := range []string{"enable", "disable"} {
		st, _, raw := c.do("POST", "/kms/keys/"+op, map[string]any{"key_id": "other"})
		wantError(t, op+" a pending key", st, raw, 409, "InvalidKeyState")
	}
	for _, q := range []string{"state=PendingDeletion", "status=PendingDeletion", "state=pending_deletion"} {
		st, m, raw := c.do("GET", "/kms/keys?"+q, nil)
		keys, _ := m["keys"].([]any)
		if wantStatus(t, "list "+q, st, raw, 200) && (len(keys) != 1 || str(keys[0].(map[string]any), "key_id") != "other") {
			t.Errorf("list %s: %s", q, short(raw))
		}
	}
	st, _, raw = c.do("GET", "/kms/keys?state=Frozen", nil)
	wantError(t, "list unknown state", st, raw, 400, "InvalidRequest")

	// RustFS legacy routes and shapes.
	st, m, raw = c.do("POST", "/kms/create-key", map[string]any{"key_usage": "EncryptDecrypt", "tags": map[string]string{"name": "legacy-1"}})
	if wantStatus(t, "create-key", st, raw, 200) && (str(m, "key_id") != "legacy-1" || str(obj(m, "key_metadata"), "key_usage") != "EncryptDecrypt") {
		t.Errorf("create-key: %s", short(raw))
	}
	st, m, raw = c.do("POST", "/kms/key/create?key-id=legacy-2", nil)
	if wantStatus(t, "key/create", st, raw, 200) && str(m, "key_id") != "legacy-2" {
		t.Errorf("key/create: %s", short(raw))
	}
	for _, p := range []string{"/kms/describe-key?keyId=legacy-1", "/kms/key/status?keyId=legacy-1", "/kms/describe-key?key-id=legacy-1"} {
		st, m, raw := c.do("GET", p, nil)
		if md := obj(m, "key_metadata"); wantStatus(t, p, st, raw, 200) && (str(md, "key_id") != "legacy-1" || str(md, "key_state") != "Enabled" || str(md, "origin") == "") {
			t.Errorf("%s: %s", p, short(raw))
		}
	}
	st, _, raw = c.do("GET", "/kms/describe-key", nil)
	wantError(t, "describe-key without keyId", st, raw, 400, "InvalidRequest")
	st, m, raw = c.do("GET", "/kms/list-keys?limit=2", nil)
	if keys, _ := m["keys"].([]any); wantStatus(t, "list-keys", st, raw, 200) && (len(keys) != 2 || m["truncated"] != true || str(keys[0].(map[string]any), "status") != "Active") {
		t.Errorf("list-keys: %s", short(raw))
	}
	st, m, raw = c.do("POST", "/kms/status", nil)
	if wantStatus(t, "POST status", st, raw, 200) && (str(m, "backend_status") != "healthy" || m["cache_enabled"] != true) {
		t.Errorf("POST /kms/status: %s", short(raw))
	}
}

// TestAutomaticRotationOnSchedule runs with a 50 ms day: a key with a
// 90-day rotation period rotates after about 4.5 s.
func TestAutomaticRotationOnSchedule(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Env: []string{"KEYWARD_TEST_DAY_SECONDS=0.05"}})
	c := srv.client(t)
	configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, c)
	createKey(t, c, "auto")
	old := generate(t, c, "auto", nil)
	st, _, raw := c.do("POST", "/kms/keys/rotation", map[string]any{"key_id": "auto", "enabled": true, "period_days": 90})
	wantStatus(t, "rotation", st, raw, 200)
	start := time.Now()
	deadline := start.Add(20 * time.Second)
	for {
		_, md, _ := describe(t, c, "auto")
		if v := num(md, "key_version"); v >= 2 {
			if took := time.Since(start); took < 4*time.Second {
				t.Errorf("rotated after %v, before its 90-day (4.5 s) period", took)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("no automatic rotation within 20 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if got := blobVersion(t, generate(t, c, "auto", nil).Blob); got < 2 {
		t.Errorf("new blob under version %d", got)
	}
	if st, pt, _ := decrypt(t, c, old.Blob, nil); st != 200 || !bytes.Equal(pt, old.Plaintext) {
		t.Errorf("old blob after automatic rotation: %d", st)
	}
}

// TestKeyLifecycleVault runs the same lifecycle on both Vault backends
// against a real Vault server, including the restart that decrypts blobs
// of every key version.
func TestKeyLifecycleVault(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			srv := startServer(t, serverOpts{})
			c := srv.client(t)
			cfg := vaultConfig(v.Addr, backend, vaultPrefix(t), tokenAuth(v.Token))
			cfg["default_key_id"] = "dflt"
			configureVault(t, c, cfg)
			startVaultKMS(t, c)
			runKeyLifecycle(t, c, func() *client {
				if code := srv.Stop(); code != 0 {
					t.Fatalf("stop exit code %d", code)
				}
				srv = startServer(t, serverOpts{DataDir: srv.DataDir})
				return srv.client(t)
			})
		})
	}
}
