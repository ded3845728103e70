package e2e

// End-to-end tests of the Vault backends (docs/vault.md) against
// real Vault v1.14.1 servers (internal/vaulttest): the seed flow on both
// backend types, what Keyward stores in KV, and AppRole with a minimal
// policy. Outages are in vault_outage_test.go, token rotation and two nodes
// in vault_cluster_test.go.

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testbin"
	"github.com/keyward/keyward/internal/vaulttest"
)

// vaultEnv is one Keyward-on-Vault setup for the seed flow.
type vaultEnv struct {
	v        *vaulttest.Server
	backend  string
	prefix   string
	auth     map[string]any
	authType string // auth_method_type in the status summary
	guard    *leakGuard
}

// TestVaultSeedFlow walks the README's walkthrough (the core routes of
// docs/api.md) end to end on both Vault backends (token auth), across a
// Keyward process restart.
func TestVaultSeedFlow(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			tok := createVaultToken(t, v, "root")
			runVaultSeedFlow(t, vaultEnv{
				v: v, backend: backend, prefix: vaultPrefix(t), auth: tokenAuth(tok), authType: "token",
				guard: newLeakGuard(t, tok),
			})
		})
	}
}

// runVaultSeedFlow is the seed flow of seed_test.go on a Vault backend.
func runVaultSeedFlow(t *testing.T, e vaultEnv) {
	srv := startServer(t, serverOpts{})
	c := e.guard.client(t, srv)

	if status, _, raw := kmsStatus(t, c); status != "NotConfigured" {
		t.Errorf("status before configure: want NotConfigured; got %s", short(raw))
	}
	configureVault(t, c, vaultConfig(e.v.Addr, e.backend, e.prefix, e.auth))
	if status, _, raw := kmsStatus(t, c); status != "Configured" {
		t.Errorf("status after configure: want Configured; got %s", short(raw))
	}
	startVaultKMS(t, c)

	// Status: Running, healthy, the Vault summary, no credentials.
	for _, path := range []string{"/kms/status", "/kms/service-status"} {
		st, m, raw := c.do("GET", path, nil)
		wantStatus(t, path, st, raw, 200)
		if str(m, "status") != "Running" || m["healthy"] != true || str(m, "backend_type") != e.backend {
			t.Errorf("%s: want Running, healthy true, backend_type %s; got %s", path, e.backend, short(raw))
		}
		sum := obj(m, "config_summary")
		for k, want := range map[string]any{
			"backend_type": e.backend, "default_key_id": vaultDefaultKey, "timeout_seconds": float64(vaultTimeout),
			"retry_attempts": float64(vaultRetries),
		} {
			if sum[k] != want {
				t.Errorf("%s: config_summary.%s: want %v; got %v", path, k, want, sum[k])
			}
		}
		bs := obj(sum, "backend_summary")
		for k, want := range map[string]any{
			"backend_type": e.backend, "address": e.v.Addr, "auth_method_type": e.authType,
			"mount_path": "transit", "kv_mount": "secret", "key_path_prefix": e.prefix,
		} {
			if bs[k] != want {
				t.Errorf("%s: config_summary.backend_summary.%s: want %v; got %v (%s)", path, k, want, bs[k], short(raw))
			}
		}
		for _, k := range []string{"token", "secret_id", "auth_method"} {
			if _, ok := bs[k]; ok {
				t.Errorf("%s: backend_summary carries %q: %s", path, k, short(raw))
			}
		}
	}
	st, m, raw := c.do("GET", "/kms/config", nil)
	if wantStatus(t, "GET /kms/config", st, raw, 200) && (str(m, "backend") != e.backend || str(m, "default_key_id") != vaultDefaultKey) {
		t.Errorf("GET /kms/config: want backend %s, default_key_id %s; got %s", e.backend, vaultDefaultKey, short(raw))
	}

	// Create: the AWS spellings (KeyUsage, Description, Tags), the RustFS
	// spellings, a duplicate.
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
	if wantStatus(t, "create (RustFS spellings)", st, raw, 200) && str(obj(m, "key_metadata"), "key_usage") != "ENCRYPT_DECRYPT" {
		t.Errorf("create (RustFS spellings): got %s", short(raw))
	}
	st, _, raw = c.do("POST", "/kms/keys", map[string]any{"key_id": "rustfs-style"})
	wantError(t, "create an existing id", st, raw, 409, "Conflict")

	// List and paging.
	for i := 1; i <= 5; i++ {
		createKey(t, c, "page-"+strconv.Itoa(i))
	}
	all, unreadable := listAll(t, c, 1000)
	if len(unreadable) > 0 {
		t.Errorf("list: unreadable keys: %v", unreadable)
	}
	if !sort.StringsAreSorted(all) {
		t.Errorf("list: not sorted by id: %v", all)
	}
	want := []string{keyID, "page-1", "page-2", "page-3", "page-4", "page-5", "rustfs-style", vaultDefaultKey}
	sort.Strings(want)
	if !reflect.DeepEqual(all, want) {
		t.Errorf("list: want exactly %v (the default key created on start); got %v", want, all)
	}
	checkPaging(t, c, all)
	st, m, raw = c.do("GET", "/kms/keys?limit=0", nil)
	if wantStatus(t, "list limit=0", st, raw, 200) {
		if keys, ok := m["keys"].([]any); !ok || len(keys) != 0 {
			t.Errorf("list limit=0: want an empty keys array; got %s", short(raw))
		}
	}
	st, _, raw = c.do("GET", "/kms/keys?limit=abc", nil)
	wantError(t, "list limit=abc", st, raw, 400, "InvalidRequest")

	// Describe.
	st, md, raw = describe(t, c, keyID)
	if wantStatus(t, "describe", st, raw, 200) {
		if str(md, "key_id") != keyID || str(md, "description") != "project-alpha" || md["enabled"] != true ||
			str(md, "key_state") != "Enabled" || md["deletion_date"] != nil || num(md, "key_version") != 1 ||
			!reflect.DeepEqual(md["tags"], seedTags) {
			t.Errorf("describe: unexpected key_metadata: %s", short(raw))
		}
		if created := parseTimestamp(t, "creation_date", str(md, "creation_date")); !near(created, time.Now(), 2*time.Minute) {
			t.Errorf("describe: creation_date %s is not now", created)
		}
	}
	st, _, raw = c.do("GET", "/kms/keys/no-such-key", nil)
	wantError(t, "describe unknown", st, raw, 404, "NotFound")

	// Data keys with a context.
	encCtx := map[string]string{"bucket": "analytics-data", "object": "2024/09/18/report.parquet"}
	dk := generate(t, c, keyID, encCtx)
	blob := unb64(t, "ciphertext_blob", dk.Blob)
	if dk.KeyID != keyID || len(dk.Plaintext) != 32 || len(blob) < 2 || blob[0] != 0x01 {
		t.Errorf("generate AES_256: want key %s, a 32-byte key, blob version 0x01; got %q, %d bytes, blob % x", keyID, dk.KeyID, len(dk.Plaintext), blob[:min(len(blob), 4)])
	}
	if dk2 := generate(t, c, keyID, encCtx); bytes.Equal(dk2.Plaintext, dk.Plaintext) {
		t.Errorf("generate returned the same data key twice")
	}
	st, m, raw = c.do("POST", "/kms/generate-data-key", map[string]any{"key_id": keyID, "key_spec": "AES_128"})
	if wantStatus(t, "generate AES_128", st, raw, 200) {
		if p := unb64(t, "plaintext_key", str(m, "plaintext_key")); len(p) != 16 {
			t.Errorf("generate AES_128: want 16 bytes; got %d", len(p))
		}
	}
	st, m, raw = c.do("POST", "/kms/generate-data-key-without-plaintext", map[string]any{"key_id": keyID, "key_spec": "AES_256"})
	if wantStatus(t, "generate-data-key-without-plaintext", st, raw, 200) {
		if _, ok := m["plaintext_key"]; ok || str(m, "ciphertext_blob") == "" {
			t.Errorf("generate-data-key-without-plaintext: want a blob and no plaintext_key; got %s", short(raw))
		}
	}
	def := generate(t, c, "", nil)
	if def.KeyID != vaultDefaultKey {
		t.Errorf("generate without key_id: want the default key %s; got %q", vaultDefaultKey, def.KeyID)
	}
	if st, p, raw := decrypt(t, c, def.Blob, nil); st != 200 || !bytes.Equal(p, def.Plaintext) {
		t.Errorf("decrypt (default key): got %d %s", st, short(raw))
	}

	// Decrypt: same, reordered, wrong and missing contexts; damaged blobs.
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
	st, _, raw = decrypt(t, c, dk.Blob, nil)
	wantError(t, "decrypt without the context", st, raw, 400, "InvalidCiphertext")
	for name, damaged := range map[string][]byte{
		"middle byte flipped":  flip(blob, len(blob)/2),
		"last byte flipped":    flip(blob, len(blob)-1),
		"version byte flipped": flip(blob, 0),
		"truncated by 5":       blob[:len(blob)-5],
		"truncated to 10":      blob[:min(10, len(blob))],
		"one byte":             blob[:1],
	} {
		st, _, raw = decrypt(t, c, b64(damaged), encCtx)
		wantError(t, "decrypt a blob with "+name, st, raw, 400, "InvalidCiphertext")
	}
	st, _, raw = c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": dk.Blob, "encryption_context": encCtx, "key_id": "page-1"})
	if st == 200 {
		t.Errorf("decrypt with a key_id other than the blob's: want an error; got 200")
	}

	// Encrypt / decrypt, and the 4096-byte limit.
	big := make([]byte, 4096)
	rand.Read(big)
	st, m, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": keyID, "plaintext": b64(big), "encryption_context": encCtx})
	if wantStatus(t, "encrypt 4096 bytes", st, raw, 200) {
		if st, p, raw := decrypt(t, c, str(m, "ciphertext_blob"), encCtx); st != 200 || !bytes.Equal(p, big) {
			t.Errorf("decrypt the 4096-byte ciphertext: got %d %s", st, short(raw))
		}
	}
	st, _, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": keyID, "plaintext": b64(append(big, 'x'))})
	wantError(t, "encrypt 4097 bytes", st, raw, 400, "InvalidRequest")

	// Rotation: new version, old blobs still decrypt.
	st, m, raw = c.do("POST", "/kms/keys/rotate", map[string]any{"key_id": "page-1"})
	rotated := wantStatus(t, "rotate", st, raw, 200)
	if rotated {
		before := generate(t, c, "page-2", nil) // an unrelated key is unaffected
		if st, md, raw := describe(t, c, "page-1"); st != 200 || num(md, "key_version") != 2 {
			t.Errorf("describe after rotate: want key_version 2; got %d %s", st, short(raw))
		}
		if st, p, raw := decrypt(t, c, before.Blob, nil); st != 200 || !bytes.Equal(p, before.Plaintext) {
			t.Errorf("decrypt on another key after a rotation: %d %s", st, short(raw))
		}
	}

	// Disable / enable.
	st, _, raw = c.do("POST", "/kms/keys/disable", map[string]any{"key_id": "page-3"})
	if wantStatus(t, "disable", st, raw, 200) {
		st, _, raw = c.do("POST", "/kms/generate-data-key", map[string]any{"key_id": "page-3"})
		wantError(t, "generate on a disabled key", st, raw, 409, "InvalidKeyState")
		st, _, raw = c.do("POST", "/kms/keys/enable", map[string]any{"key_id": "page-3"})
		wantStatus(t, "enable", st, raw, 200)
		generate(t, c, "page-3", nil)
	}

	// Deletion: schedule, states, cancel.
	st, m, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": keyID, "pending_window_in_days": 7})
	if wantStatus(t, "schedule deletion", st, raw, 200) {
		md := obj(m, "key_metadata")
		if str(md, "key_state") != "PendingDeletion" || md["enabled"] != false || str(m, "key_id") != keyID {
			t.Errorf("schedule deletion: want key_state PendingDeletion; got %s", short(raw))
		}
		due := parseTimestamp(t, "deletion_date", str(md, "deletion_date"))
		if !near(due, time.Now().Add(7*24*time.Hour), 2*time.Minute) {
			t.Errorf("schedule deletion: deletion_date %s is not now+7d", due)
		}
	}
	if st, md, raw := describe(t, c, keyID); st != 200 || str(md, "key_state") != "PendingDeletion" {
		t.Errorf("describe a pending key: got %d %s", st, short(raw))
	}
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "page-4", "pending_window_in_days": 6})
	wantError(t, "schedule deletion with window 6", st, raw, 400, "InvalidRequest")
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
	if st, p, raw := decrypt(t, c, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt after cancel-deletion: got %d %s", st, short(raw))
	}

	// clear-cache: 204, empty body; everything still works from Vault.
	st, _, raw = c.do("POST", "/kms/clear-cache", nil)
	if st != 204 || len(raw) != 0 {
		t.Errorf("clear-cache: want 204 with an empty body; got %d %q", st, short(raw))
	}
	if st, p, raw := decrypt(t, c, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt after clear-cache: got %d %s", st, short(raw))
	}
	if st, md, raw := describe(t, c, keyID); st != 200 || !reflect.DeepEqual(md["tags"], seedTags) || str(md, "key_state") != "Enabled" {
		t.Errorf("describe after clear-cache: got %d %s", st, short(raw))
	}
	if rotated {
		if st, md, raw := describe(t, c, "page-1"); st != 200 || num(md, "key_version") != 2 {
			t.Errorf("describe a rotated key after clear-cache: want key_version 2; got %d %s", st, short(raw))
		}
	}
	afterRotate := generate(t, c, "page-1", nil)

	// Stop the process; a new one on the same data dir comes back Running
	// and decrypts the old blobs.
	if code := srv.Stop(); code != 0 {
		t.Errorf("exit code after SIGTERM: want 0; got %d", code)
	}
	srv2 := startServer(t, serverOpts{DataDir: srv.DataDir})
	c2 := e.guard.client(t, srv2)
	if status, m, raw := kmsStatus(t, c2); status != "Running" || m["healthy"] != true {
		t.Errorf("status after a restart: want Running and healthy; got %s", short(raw))
	}
	if st, p, raw := decrypt(t, c2, dk.Blob, encCtx); st != 200 || !bytes.Equal(p, dk.Plaintext) {
		t.Errorf("decrypt the old blob after a restart: want 200 and the same plaintext; got %d %s", st, short(raw))
	}
	if st, p, raw := decrypt(t, c2, afterRotate.Blob, nil); st != 200 || !bytes.Equal(p, afterRotate.Plaintext) {
		t.Errorf("decrypt a rotated key's blob after a restart: got %d %s", st, short(raw))
	}
	if st, md, raw := describe(t, c2, keyID); st != 200 || !reflect.DeepEqual(md["tags"], seedTags) || str(md, "description") != "project-alpha" {
		t.Errorf("describe after a restart: got %d %s", st, short(raw))
	}
	if ids, _ := listAll(t, c2, 3); !reflect.DeepEqual(ids, want) {
		t.Errorf("list after a restart: want %v; got %v", want, ids)
	}
	generate(t, c2, keyID, encCtx)

	// The persisted configuration holds the Vault credentials: 0600.
	if fi, err := os.Stat(filepath.Join(srv.DataDir, "kms-state.json")); err != nil {
		t.Errorf("kms-state.json: %v", err)
	} else if fi.Mode().Perm() != 0o600 {
		t.Errorf("kms-state.json: want mode 0600; got %#o", fi.Mode().Perm())
	}
}

// TestVaultKVRecordsHoldNoMaterial reads what Keyward wrote into KV v2
// directly from Vault: no key material in the clear (docs/vault.md).
func TestVaultKVRecordsHoldNoMaterial(t *testing.T) {
	t.Parallel()
	checkBlobOpenerItself(t)
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			prefix := vaultPrefix(t)
			tok := createVaultToken(t, v, "root")
			srv := startServer(t, serverOpts{})
			c := newLeakGuard(t, tok).client(t, srv)
			configureVault(t, c, vaultConfig(v.Addr, backend, prefix, tokenAuth(tok)))
			startVaultKMS(t, c)
			createKey(t, c, "kv-a")
			createKey(t, c, "kv-b")

			// Data keys before and after a rotation, with and without a
			// context; an encrypted value.
			type made struct {
				dk     dataKey
				encCtx map[string]string
			}
			var dks []made
			for _, id := range []string{"kv-a", "kv-b", vaultDefaultKey} {
				dks = append(dks, made{generate(t, c, id, nil), nil})
			}
			dks = append(dks, made{generate(t, c, "kv-a", map[string]string{"b": "c"}), map[string]string{"b": "c"}})
			st, _, raw := c.do("POST", "/kms/keys/rotate", map[string]any{"key_id": "kv-a"})
			wantStatus(t, "rotate kv-a", st, raw, 200)
			dks = append(dks, made{generate(t, c, "kv-a", nil), nil})
			secretValue := []byte("kv-record-secret-value-" + randomHex(8))
			st, _, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": "kv-b", "plaintext": b64(secretValue)})
			wantStatus(t, "encrypt", st, raw, 200)

			ids := kvList(t, v, prefix)
			sort.Strings(ids)
			for _, id := range []string{"kv-a", "kv-b", vaultDefaultKey} {
				if !contains(ids, id) {
					t.Errorf("LIST secret/metadata/%s: want a record for %s; got %v", prefix, id, ids)
				}
			}
			var records []kvRecord
			for _, id := range ids {
				records = append(records, kvVersions(t, v, prefix+"/"+id)...)
			}
			if len(records) == 0 {
				t.Fatalf("no KV record under secret/%s", prefix)
			}
			sawTransitCiphertext := false
			for _, rec := range records {
				where := fmt.Sprintf("secret/data/%s (version %d)", rec.Path, rec.Version)
				keys := map[string]bool{}
				jsonKeys(rec.Data, keys)
				for k := range keys {
					switch strings.ToLower(k) {
					case "material", "key_material", "plaintext", "plaintext_key", "master_key":
						t.Errorf("%s has a %q field: %s", where, k, short(rec.Raw))
					}
				}
				for i, d := range dks {
					for _, form := range [][]byte{
						d.dk.Plaintext, []byte(base64.StdEncoding.EncodeToString(d.dk.Plaintext)),
						[]byte(base64.RawURLEncoding.EncodeToString(d.dk.Plaintext)), []byte(hex.EncodeToString(d.dk.Plaintext)),
					} {
						if bytes.Contains(rec.Raw, form) {
							t.Errorf("%s contains data key %d in the clear", where, i)
						}
					}
				}
				if bytes.Contains(rec.Raw, secretValue) || bytes.Contains(rec.Raw, []byte(b64(secretValue))) {
					t.Errorf("%s contains an encrypted value in the clear", where)
				}
				var strs []string
				jsonStrings(rec.Data, &strs)
				for _, s := range strs {
					for _, d := range decodings(s, 0) {
						if transitPrefix.Match(d) {
							sawTransitCiphertext = true
						}
					}
				}
				if backend == "vault" {
					// The local-style blob is AES-256-GCM under the master
					// material: no 32 bytes anywhere in the record may open it.
					for i, d := range dks {
						pb, ok := parseBlobV1(unb64(t, "blob", d.dk.Blob))
						if !ok {
							t.Errorf("data key %d: not a version-1 blob", i)
							continue
						}
						if how, found := findUnwrappingKey(rec.Data, pb, d.encCtx); found {
							t.Errorf("%s holds master key material in the clear: %s opens data key %d's blob", where, how, i)
						}
					}
				}
			}
			if backend == "vault" && !sawTransitCiphertext {
				t.Errorf("vault: no value in the KV records is (or encodes) a Transit ciphertext vault:vN:...: the material is not sealed by Transit (docs/vault.md): %s", short(records[0].Raw))
			}
			t.Logf("%d KV record versions checked under secret/%s; first: %s", len(records), prefix, short(records[0].Raw))

			// Transit: no key on the mount is exportable.
			st, tk := v.Do("LIST", "/v1/transit/keys", nil, v.Token)
			var tl struct {
				Data struct {
					Keys []string `json:"keys"`
				} `json:"data"`
			}
			if st != 200 || json.Unmarshal(tk, &tl) != nil || len(tl.Data.Keys) == 0 {
				t.Fatalf("LIST transit/keys: %d %s", st, tk)
			}
			for _, name := range tl.Data.Keys {
				if st, raw := v.Do("GET", "/v1/transit/export/encryption-key/"+name, nil, v.Token); st < 400 {
					t.Errorf("transit key %q is exportable: GET transit/export/encryption-key: %d %s", name, st, short(raw))
				}
			}
			if backend == "vault-transit" {
				for _, id := range []string{"kv-a", "kv-b", vaultDefaultKey} {
					st, raw := v.Do("GET", "/v1/transit/keys/"+id, nil, v.Token)
					if st != 200 {
						t.Errorf("vault-transit: want a Transit key named %q: GET transit/keys/%s: %d %s", id, id, st, short(raw))
						continue
					}
					var k struct {
						Data struct {
							Exportable           bool           `json:"exportable"`
							AllowPlaintextBackup bool           `json:"allow_plaintext_backup"`
							Keys                 map[string]any `json:"keys"`
						} `json:"data"`
					}
					json.Unmarshal(raw, &k)
					if k.Data.Exportable || k.Data.AllowPlaintextBackup {
						t.Errorf("vault-transit: Transit key %s is exportable (%v) or allows plaintext backup (%v)", id, k.Data.Exportable, k.Data.AllowPlaintextBackup)
					}
					if id == "kv-a" && len(k.Data.Keys) != 2 {
						t.Errorf("vault-transit: kv-a was rotated once: want 2 Transit key versions; got %d", len(k.Data.Keys))
					}
				}
			}
			// Everything still decrypts.
			for i, d := range dks {
				if st, p, raw := decrypt(t, c, d.dk.Blob, d.encCtx); st != 200 || !bytes.Equal(p, d.dk.Plaintext) {
					t.Errorf("decrypt data key %d: %d %s", i, st, short(raw))
				}
			}
		})
	}
}

// checkBlobOpenerItself proves that findUnwrappingKey would find master
// key material: it opens the golden vector of docs/blob-format.md with the
// material hidden, base64 encoded, in a record.
func checkBlobOpenerItself(t *testing.T) {
	t.Helper()
	golden, _ := hex.DecodeString("010a676f6c64656e2d6b657900000001404142434445464748494a4b" +
		"c2988c000219a124e5ed3d1db7493d7449f7606f830039144f7e74deab2ed3e4b08da6f36f2bca0ff53fd4edccf62d77")
	material := make([]byte, 32)
	for i := range material {
		material[i] = byte(i)
	}
	pb, ok := parseBlobV1(golden)
	if !ok {
		t.Fatal("the golden blob does not parse")
	}
	encCtx := map[string]string{"bucket": "analytics-data", "object": "2024/09/18/report.parquet"}
	inner, _ := json.Marshal(map[string]any{"versions": []any{map[string]any{"v": 1, "m": base64.StdEncoding.EncodeToString(material)}}})
	record := map[string]any{"sealed": base64.StdEncoding.EncodeToString(inner)}
	if _, found := findUnwrappingKey(record, pb, encCtx); !found {
		t.Fatal("findUnwrappingKey cannot find the material of the golden vector: the KV check would be vacuous")
	}
	if _, found := findUnwrappingKey(map[string]any{"x": "vault:v1:" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 60))}, pb, encCtx); found {
		t.Fatal("findUnwrappingKey opens the golden vector with a wrong key")
	}
}

// TestVaultAppRole runs the seed flow through AppRole credentials whose
// policy allows only what Keyward needs (docs/vault.md; the role has no
// default policy), on both backends.
func TestVaultAppRole(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			prefix := vaultPrefix(t)
			policy := minimalPolicy(t, backend, prefix)
			name := "keyward-" + strings.ReplaceAll(backend, "-", "") + "-" + randomHex(3)
			writePolicy(t, v, name, policy)
			roleID, secretID := createAppRole(t, v, name, name)
			t.Logf("policy %s:\n%s", name, policy)
			runVaultSeedFlow(t, vaultEnv{
				v: v, backend: backend, prefix: prefix, auth: approleAuth(roleID, secretID), authType: "approle",
				guard: newLeakGuard(t, secretID),
			})
			// The credentials really are limited: the AppRole token cannot
			// read outside the prefix.
			login := vaultOK(t, v, "POST", "/v1/auth/approle/login", map[string]any{"role_id": roleID, "secret_id": secretID}, "")
			tok := str(obj(login, "auth"), "client_token")
			vaultOK(t, v, "POST", "/v1/secret/data/elsewhere/x", map[string]any{"data": map[string]any{"a": "b"}}, v.Token)
			if st, _ := v.Do("GET", "/v1/secret/data/elsewhere/x", nil, tok); st != 403 {
				t.Errorf("the AppRole policy is not minimal: reading secret/data/elsewhere/x answered %d", st)
			}
		})
	}
}

// policyHCL matches a fenced ```hcl block in docs/vault.md.
var policyHCL = regexp.MustCompile("(?s)```(?:hcl)?\n(.*?)```")

// minimalPolicy is the Keyward policy for prefix: taken from docs/vault.md
// when it documents one for the backend (its default prefix and mounts
// substituted), else written here.
func minimalPolicy(t *testing.T, backend, prefix string) string {
	t.Helper()
	if p := docsPolicy(t, backend, prefix); p != "" {
		return p
	}
	t.Logf("docs/vault.md documents no %s policy: using the test's own", backend)
	p := fmt.Sprintf(`
path "secret/data/%[1]s/*" { capabilities = ["create", "read", "update", "delete"] }
path "secret/metadata/%[1]s/*" { capabilities = ["read", "list", "delete"] }
path "secret/metadata/%[1]s" { capabilities = ["list"] }
path "secret/metadata/%[1]s/" { capabilities = ["list"] }
path "auth/token/lookup-self" { capabilities = ["read"] }
path "auth/token/renew-self" { capabilities = ["update"] }
`, prefix)
	if backend == "vault" {
		p += `
path "transit/keys/*" { capabilities = ["create", "read", "update"] }
path "transit/encrypt/*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
`
	} else {
		p += `
path "transit/keys/*" { capabilities = ["create", "read", "update", "delete"] }
path "transit/keys/+/config" { capabilities = ["update"] }
path "transit/keys/+/rotate" { capabilities = ["update"] }
path "transit/encrypt/*" { capabilities = ["update"] }
path "transit/decrypt/*" { capabilities = ["update"] }
path "transit/datakey/*" { capabilities = ["update"] }
path "transit/rewrap/*" { capabilities = ["update"] }
`
	}
	return p
}

// docsPolicy extracts the policy for backend from docs/vault.md: the first
// HCL block after the line "Policy for the `<backend>` backend", with the
// documented default prefix replaced by prefix.
func docsPolicy(t *testing.T, backend, prefix string) string {
	t.Helper()
	root, err := testbin.ModuleRoot()
	if err != nil {
		return ""
	}
	doc, err := os.ReadFile(filepath.Join(root, "docs", "vault.md"))
	if err != nil {
		return ""
	}
	text := string(doc)
	i := strings.Index(text, "Policy for the `"+backend+"` backend")
	if i < 0 {
		return ""
	}
	m := policyHCL.FindStringSubmatch(text[i:])
	if m == nil || !strings.Contains(m[1], "capabilities") {
		return ""
	}
	return strings.ReplaceAll(m[1], "keyward/keys", prefix)
}

// TestVaultTransitForeignKeyUntouched reproduces, through the real server
// and a real Vault, the data loss found in review: an application's own
// Transit key "payments" on the mount Keyward uses, with a ciphertext;
// POST /kms/keys {"key_id":"payments"} answered 200, logged "deleting a
// leftover Transit key", and Vault could no longer decrypt the
// application's ciphertext. Now the answer is 409 Conflict and the
// application's key and ciphertext are untouched.
func TestVaultTransitForeignKeyUntouched(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	vaultOK(t, v, "POST", "/v1/transit/keys/payments", map[string]any{"type": "aes256-gcm96"}, v.Token)
	enc := vaultOK(t, v, "POST", "/v1/transit/encrypt/payments", map[string]any{"plaintext": b64([]byte("card 4111"))}, v.Token)
	appCiphertext := str(obj(enc, "data"), "ciphertext")

	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	configureVault(t, c, vaultConfig(v.Addr, "vault-transit", vaultPrefix(t), tokenAuth(v.Token)))
	startVaultKMS(t, c)
	st, _, raw := c.do("POST", "/kms/keys", map[string]any{"key_id": "payments"})
	wantError(t, "create over the application's Transit key", st, raw, 409, "Conflict")
	if !strings.Contains(string(raw), "did not create") {
		t.Errorf("the refusal does not say why: %s", raw)
	}
	st, _, raw = c.do("GET", "/kms/keys/payments", nil)
	wantError(t, "describe the refused key", st, raw, 404, "NotFound")
	st, _, raw = c.do("POST", "/kms/keys/rotate", map[string]any{"key_id": "payments"})
	wantError(t, "rotate the refused key", st, raw, 404, "NotFound")

	dec := vaultOK(t, v, "POST", "/v1/transit/decrypt/payments", map[string]any{"ciphertext": appCiphertext}, v.Token)
	if pt := unb64(t, "plaintext", str(obj(dec, "data"), "plaintext")); string(pt) != "card 4111" {
		t.Fatalf("the application's ciphertext no longer decrypts to its plaintext: %q", pt)
	}
	key := obj(vaultOK(t, v, "GET", "/v1/transit/keys/payments", nil, v.Token), "data")
	if key["deletion_allowed"] != false || key["latest_version"] != float64(1) {
		t.Errorf("the application's Transit key was changed: %v", key)
	}
	if strings.Contains(srv.Stderr(), "leftover") {
		t.Errorf("the server treated the application's key as a leftover:\n%s", srv.Stderr())
	}
	// The record key of the vault backend is no key id.
	st, _, raw = c.do("POST", "/kms/keys", map[string]any{"key_id": "keyward-record-kek"})
	wantError(t, "create keyward-record-kek", st, raw, 400, "InvalidRequest")
}
