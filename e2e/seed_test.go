package e2e

import (
	"bytes"
	"crypto/rand"
	"net/url"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	timestampRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$`)
	uuidV4RE    = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
)

const seedMasterKey = "correct horse battery staple"

// parseTimestamp checks the format of docs/api.md, "Timestamps" (RFC 3339,
// UTC, microseconds).
func parseTimestamp(t testing.TB, what, s string) time.Time {
	t.Helper()
	if !timestampRE.MatchString(s) {
		t.Errorf("%s: %q is not RFC 3339 UTC with 6 fractional digits", what, s)
	}
	ts, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		t.Errorf("%s: %q: %v", what, s, err)
	}
	return ts
}

func near(a, b time.Time, d time.Duration) bool {
	diff := a.Sub(b)
	return diff < d && diff > -d
}

// TestSeedFlow walks the README's walkthrough (the core routes of
// docs/api.md) end to end on one data dir, across a process restart.
func TestSeedFlow(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	keyDir := filepath.Join(srv.DataDir, "seed-keys")

	// NotConfigured → configure → start.
	st, m, raw := c.do("GET", "/kms/status", nil)
	if wantStatus(t, "status before configure", st, raw, 200) && str(m, "status") != "NotConfigured" {
		t.Errorf("status before configure: want NotConfigured; got %s", short(raw))
	}
	configureLocal(t, c, keyDir, seedMasterKey, map[string]any{
		"default_key_id": "rustfs-master", "enable_cache": true, "cache_ttl_seconds": 600,
	})
	startKMS(t, c)

	// Status: Running, healthy, config_summary as docs/api.md shows it, no secret.
	st, m, raw = c.do("GET", "/kms/status", nil)
	wantStatus(t, "status", st, raw, 200)
	if str(m, "status") != "Running" || m["healthy"] != true || str(m, "backend_type") != "local" {
		t.Errorf("status: want Running, healthy true, backend_type local; got %s", short(raw))
	}
	sum := obj(m, "config_summary")
	if sum == nil {
		t.Errorf("status: no config_summary: %s", short(raw))
	} else {
		for k, want := range map[string]any{
			"backend_type": "local", "default_key_id": "rustfs-master", "timeout_seconds": 30.0,
			"retry_attempts": 3.0, "enable_cache": true,
		} {
			if sum[k] != want {
				t.Errorf("config_summary.%s: want %v; got %v", k, want, sum[k])
			}
		}
		cs := obj(sum, "cache_summary")
		if cs == nil || num(cs, "ttl_seconds") != 600 || num(cs, "max_keys") <= 0 {
			t.Errorf("config_summary.cache_summary: want {max_keys>0, ttl_seconds:600, ...}; got %v", sum["cache_summary"])
		} else if _, ok := cs["enable_metrics"].(bool); !ok {
			t.Errorf("config_summary.cache_summary.enable_metrics missing: %v", cs)
		}
		bs := obj(sum, "backend_summary")
		if bs == nil || str(bs, "backend_type") != "local" {
			t.Errorf("config_summary.backend_summary: want backend_type local; got %v", sum["backend_summary"])
		}
	}
	if bytes.Contains(raw, []byte(seedMasterKey)) || bytes.Contains(raw, []byte(`"master_key"`)) {
		t.Errorf("status leaks the master key: %s", short(raw))
	}
	st, _, raw = c.do("GET", "/kms/service-status", nil)
	if wantStatus(t, "service-status", st, raw, 200) && bytes.Contains(raw, []byte(seedMasterKey)) {
		t.Errorf("service-status leaks the master key")
	}

	// Create with the AWS spellings (KeyUsage, Description, Tags) and with the
	// RustFS spellings.
	seedTags := map[string]any{"owner": "security", "env": "prod"}
	st, m, raw = c.do("POST", "/kms/keys", map[string]any{
		"KeyUsage": "ENCRYPT_DECRYPT", "Description": "project-alpha", "Tags": seedTags,
	})
	if !wantStatus(t, "create (seed body)", st, raw, 200) {
		t.FailNow()
	}
	keyID := str(m, "key_id")
	md := obj(m, "key_metadata")
	if !uuidV4RE.MatchString(keyID) || str(md, "key_id") != keyID || str(md, "description") != "project-alpha" ||
		md["enabled"] != true || str(md, "key_usage") != "ENCRYPT_DECRYPT" || !reflect.DeepEqual(md["tags"], seedTags) {
		t.Errorf("create (seed body): want a UUID v4 key_id and the seed's metadata; got %s", short(raw))
	}
	st, m, raw = c.do("POST", "/kms/keys", map[string]any{
		"key_id": "rustfs-style", "key_usage": "EncryptDecrypt", "description": "from rustfs", "tags": map[string]any{"team": "storage"},
	})
	if wantStatus(t, "create (RustFS spellings)", st, raw, 200) {
		md := obj(m, "key_metadata")
		if str(m, "key_id") != "rustfs-style" || str(md, "key_usage") != "ENCRYPT_DECRYPT" || str(md, "description") != "from rustfs" ||
			!reflect.DeepEqual(md["tags"], map[string]any{"team": "storage"}) {
			t.Errorf("create (RustFS spellings): got %s", short(raw))
		}
	}
	st, _, raw = c.do("POST", "/kms/keys", map[string]any{"key_id": "rustfs-style"})
	wantError(t, "create an existing id", st, raw, 409, "Conflict")

	// List and paging.
	for i := 1; i <= 5; i++ {
		createKey(t, c, "page-"+strconv.Itoa(i))
	}
	all, unreadable := listAll(t, c, 1000)
	if len(unreadable) > 0 {
		t.Errorf("list: unreadable keys on a clean key dir: %v", unreadable)
	}
	if !sort.StringsAreSorted(all) {
		t.Errorf("list: not sorted by id: %v", all)
	}
	for _, id := range []string{"rustfs-master", keyID, "rustfs-style", "page-1", "page-5"} {
		if !contains(all, id) {
			t.Errorf("list: %s missing from %v", id, all)
		}
	}
	checkPaging(t, c, all)
	st, m, raw = c.do("GET", "/kms/keys?limit=0", nil)
	if wantStatus(t, "list limit=0", st, raw, 200) {
		if keys, ok := m["keys"].([]any); !ok || len(keys) != 0 {
			t.Errorf("list limit=0: want an empty keys array; got %s", short(raw))
		}
	}
	for _, bad := range []string{"abc", "-1", "1.5"} {
		st, _, raw = c.do("GET", "/kms/keys?limit="+bad, nil)
		wantError(t, "list limit="+bad, st, raw, 400, "InvalidRequest")
	}
	st, m, raw = c.do("GET", "/kms/keys?limit=5000", nil)
	if wantStatus(t, "list limit=5000", st, raw, 200) {
		if keys, _ := m["keys"].([]any); len(keys) != len(all) || m["truncated"] != false {
			t.Errorf("list limit=5000: want all %d keys, not truncated; got %s", len(all), short(raw))
		}
	}

	// Describe.
	st, md, raw = describe(t, c, keyID)
	if wantStatus(t, "describe", st, raw, 200) {
		for _, f := range []string{"key_id", "description", "enabled", "key_state", "key_usage", "creation_date", "deletion_date", "rotation_enabled", "key_version", "tags"} {
			if _, ok := md[f]; !ok {
				t.Errorf("describe: key_metadata lacks %q: %s", f, short(raw))
			}
		}
		if str(md, "key_id") != keyID || str(md, "description") != "project-alpha" || md["enabled"] != true ||
			str(md, "key_state") != "Enabled" || str(md, "key_usage") != "ENCRYPT_DECRYPT" || md["deletion_date"] != nil ||
			md["rotation_enabled"] != false || num(md, "key_version") != 1 || !reflect.DeepEqual(md["tags"], seedTags) {
			t.Errorf("describe: unexpected key_metadata: %s", short(raw))
		}
		if created := parseTimestamp(t, "creation_date", str(md, "creation_date")); !near(created, time.Now(), 2*time.Minute) {
			t.Errorf("describe: creation_date %s is not now", created)
		}
	}
	st, _, raw = c.do("GET", "/kms/keys/no-such-key", nil)
	wantError(t, "describe unknown", st, raw, 404, "NotFound")

	// Data keys.
	encCtx := map[string]string{"bucket": "analytics-data", "object": "2024/09/18/report.parquet"}
	dk := generate(t, c, keyID, encCtx)
	blob := unb64(t, "ciphertext_blob", dk.Blob)
	if dk.KeyID != keyID || len(dk.Plaintext) != 32 || len(blob) == 0 || blob[0] != 0x01 {
		t.Errorf("generate AES_256: want key %s, 32-byte key, blob version 0x01; got key %q, %d bytes, blob % x", keyID, dk.KeyID, len(dk.Plaintext), blob[:min(len(blob), 4)])
	}
	st, m, raw = c.do("POST", "/kms/generate-data-key", map[string]any{"key_id": keyID, "key_spec": "AES_128"})
	if wantStatus(t, "generate AES_128", st, raw, 200) {
		if p := unb64(t, "plaintext_key", str(m, "plaintext_key")); len(p) != 16 {
			t.Errorf("generate AES_128: want 16 bytes; got %d", len(p))
		}
	}
	def := generate(t, c, "", nil)
	if def.KeyID != "rustfs-master" || len(def.Plaintext) != 32 {
		t.Errorf("generate with the default key: want key_id rustfs-master; got %q (%d bytes)", def.KeyID, len(def.Plaintext))
	}
	if st, p, raw := decrypt(t, c, def.Blob, nil); st != 200 || !bytes.Equal(p, def.Plaintext) {
		t.Errorf("decrypt (default key): want 200 and the plaintext; got %d %s", st, short(raw))
	}

	// Decrypt: right, reordered, wrong and missing contexts; damaged blobs.
	if st, p, raw := decrypt(t, c, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt with the same context: want 200 and the plaintext; got %d %s", st, short(raw))
	}
	reordered := `{"encryption_context":{"object":"2024/09/18/report.parquet","bucket":"analytics-data"},"ciphertext_blob":"` + dk.Blob + `"}`
	st, m, raw = c.do("POST", "/kms/decrypt", reordered)
	if wantStatus(t, "decrypt with a reordered context", st, raw, 200) && !bytes.Equal(unb64(t, "plaintext", str(m, "plaintext")), dk.Plaintext) {
		t.Errorf("decrypt with a reordered context: wrong plaintext")
	}
	st, _, raw = decrypt(t, c, dk.Blob, map[string]string{"bucket": "analytics-data", "object": "other"})
	wantError(t, "decrypt with a wrong context", st, raw, 400, "InvalidCiphertext")
	st, _, raw = decrypt(t, c, dk.Blob, map[string]string{"bucket": "analytics-data"})
	wantError(t, "decrypt with a partial context", st, raw, 400, "InvalidCiphertext")
	st, _, raw = decrypt(t, c, dk.Blob, nil)
	wantError(t, "decrypt without the context", st, raw, 400, "InvalidCiphertext")
	for name, damaged := range map[string][]byte{
		"middle byte flipped":  flip(blob, len(blob)/2),
		"last byte flipped":    flip(blob, len(blob)-1),
		"version byte flipped": flip(blob, 0),
		"truncated by 5":       blob[:len(blob)-5],
		"truncated to 10":      blob[:10],
		"one byte":             blob[:1],
	} {
		st, _, raw = decrypt(t, c, b64(damaged), encCtx)
		wantError(t, "decrypt a blob with "+name, st, raw, 400, "InvalidCiphertext")
	}
	st, _, raw = c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": "!!not base64**"})
	wantError(t, "decrypt a non-base64 blob", st, raw, 400, "InvalidRequest", "InvalidCiphertext")

	// Encrypt: 4096 bytes is the limit.
	big := make([]byte, 4096)
	rand.Read(big)
	st, m, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": keyID, "plaintext": b64(big)})
	if wantStatus(t, "encrypt 4096 bytes", st, raw, 200) {
		if st, p, raw := decrypt(t, c, str(m, "ciphertext_blob"), nil); st != 200 || !bytes.Equal(p, big) {
			t.Errorf("decrypt the 4096-byte ciphertext: got %d %s", st, short(raw))
		}
	}
	st, _, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": keyID, "plaintext": b64(append(big, 'x'))})
	wantError(t, "encrypt 4097 bytes", st, raw, 400, "InvalidRequest")

	// Deletion: schedule, bad windows, states, cancel.
	st, m, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": keyID, "pending_window_in_days": 7})
	if wantStatus(t, "schedule deletion", st, raw, 200) {
		md := obj(m, "key_metadata")
		if str(md, "key_state") != "PendingDeletion" || md["enabled"] != false {
			t.Errorf("schedule deletion: want key_state PendingDeletion; got %s", short(raw))
		}
		due := parseTimestamp(t, "deletion_date", str(md, "deletion_date"))
		if !near(due, time.Now().Add(7*24*time.Hour), 2*time.Minute) {
			t.Errorf("schedule deletion: deletion_date %s is not now+7d", due)
		}
		if str(m, "key_id") != keyID || str(m, "deletion_date") != str(md, "deletion_date") {
			t.Errorf("schedule deletion: want top-level key_id and deletion_date; got %s", short(raw))
		}
	}
	st, md, raw = describe(t, c, keyID)
	if st != 200 || str(md, "key_state") != "PendingDeletion" || md["deletion_date"] == nil {
		t.Errorf("describe a pending key: got %d %s", st, short(raw))
	}
	for _, w := range []int{6, 31} {
		st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "page-1", "pending_window_in_days": w})
		wantError(t, "schedule deletion with window "+strconv.Itoa(w), st, raw, 400, "InvalidRequest")
	}
	if st, md, _ := describe(t, c, "page-1"); st != 200 || str(md, "key_state") != "Enabled" {
		t.Errorf("a rejected deletion changed page-1: %d %v", st, md)
	}
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": keyID, "pending_window_in_days": 7})
	wantError(t, "schedule deletion twice", st, raw, 409, "InvalidKeyState")
	st, _, raw = c.do("POST", "/kms/generate-data-key", map[string]any{"key_id": keyID, "key_spec": "AES_256"})
	wantError(t, "generate on a pending key", st, raw, 409, "InvalidKeyState")
	st, _, raw = decrypt(t, c, dk.Blob, encCtx)
	wantError(t, "decrypt on a pending key", st, raw, 409, "InvalidKeyState")
	st, m, raw = c.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": keyID})
	if wantStatus(t, "cancel deletion", st, raw, 200) {
		md := obj(m, "key_metadata")
		if str(md, "key_state") != "Enabled" || md["enabled"] != true || md["deletion_date"] != nil {
			t.Errorf("cancel deletion: want Enabled with a null deletion_date; got %s", short(raw))
		}
	}
	st, _, raw = c.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": keyID})
	wantError(t, "cancel deletion twice", st, raw, 409, "InvalidKeyState")
	st, _, raw = c.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": "no-such-key"})
	wantError(t, "cancel deletion of an unknown key", st, raw, 404, "NotFound")

	// clear-cache: 204, empty body.
	st, _, raw = c.do("POST", "/kms/clear-cache", nil)
	if st != 204 || len(raw) != 0 {
		t.Errorf("clear-cache: want 204 with an empty body; got %d %q", st, short(raw))
	}
	if st, p, raw := decrypt(t, c, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt after clear-cache: got %d %s", st, short(raw))
	}

	// stop: key routes 503, status Configured; start again.
	st, m, raw = c.do("POST", "/kms/stop", nil)
	if wantStatus(t, "stop", st, raw, 200) && (m["success"] != true || str(m, "status") != "Configured") {
		t.Errorf("stop: want {success:true, status:Configured}; got %s", short(raw))
	}
	for _, r := range []struct{ method, path string }{
		{"GET", "/kms/keys"}, {"GET", "/kms/keys/" + keyID}, {"POST", "/kms/generate-data-key"}, {"POST", "/kms/decrypt"},
	} {
		var body any
		if r.method == "POST" {
			body = map[string]any{"key_id": keyID, "ciphertext_blob": dk.Blob}
			if strings.HasSuffix(r.path, "generate-data-key") {
				body = map[string]any{"key_id": keyID}
			}
		}
		st, _, raw = c.do(r.method, r.path, body)
		wantError(t, r.method+" "+r.path+" while stopped", st, raw, 503, "ServiceUnavailable")
	}
	if st, m, raw = c.do("GET", "/kms/status", nil); str(m, "status") != "Configured" {
		t.Errorf("status after stop: want Configured; got %d %s", st, short(raw))
	}
	startKMS(t, c)

	// SIGTERM: exit 0, stop line logged; a new process restores Running.
	if code := srv.Stop(); code != 0 {
		t.Errorf("exit code after SIGTERM: want 0; got %d", code)
	}
	if !strings.Contains(srv.Stderr(), `"keyward stopped"`) {
		t.Errorf("no \"keyward stopped\" log line after SIGTERM:\n%s", tail(srv.Stderr(), 2000))
	}
	srv2 := startServer(t, serverOpts{DataDir: srv.DataDir})
	c2 := srv2.client(t)
	st, m, raw = c2.do("GET", "/kms/status", nil)
	if st != 200 || str(m, "status") != "Running" {
		t.Errorf("status after a restart: want Running; got %d %s", st, short(raw))
	}
	if st, p, raw := decrypt(t, c2, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt the old blob after a restart: want 200 and the same plaintext; got %d %s", st, short(raw))
	}
	if st, md, raw := describe(t, c2, keyID); st != 200 || !reflect.DeepEqual(md["tags"], seedTags) {
		t.Errorf("describe after a restart: got %d %s", st, short(raw))
	}
}

// checkPaging walks the listing two keys at a time and compares it with
// the full listing.
func checkPaging(t *testing.T, c *client, all []string) {
	t.Helper()
	var got []string
	marker := ""
	for i := 0; i < len(all)+2; i++ {
		path := "/kms/keys?limit=2"
		if marker != "" {
			path += "&marker=" + url.QueryEscape(marker)
		}
		st, m, raw := c.do("GET", path, nil)
		if !wantStatus(t, "list "+path, st, raw, 200) {
			return
		}
		keys, _ := m["keys"].([]any)
		if len(keys) > 2 {
			t.Errorf("list %s: %d keys on a page of 2", path, len(keys))
		}
		for _, k := range keys {
			got = append(got, str(k.(map[string]any), "key_id"))
		}
		more := len(got) < len(all)
		if m["truncated"] != more {
			t.Errorf("list %s: truncated=%v after %d of %d keys: %s", path, m["truncated"], len(got), len(all), short(raw))
		}
		if m["truncated"] != true {
			if _, ok := m["next_marker"]; !ok || m["next_marker"] != nil {
				t.Errorf("list %s: last page must have next_marker null: %s", path, short(raw))
			}
			break
		}
		marker = str(m, "next_marker")
		if marker == "" {
			t.Errorf("list %s: truncated without next_marker: %s", path, short(raw))
			return
		}
	}
	if !reflect.DeepEqual(got, all) {
		t.Errorf("paging by 2: got %v; want %v", got, all)
	}
}

// flip returns a copy of b with byte i inverted.
func flip(b []byte, i int) []byte {
	out := append([]byte(nil), b...)
	out[i] ^= 0xff
	return out
}
