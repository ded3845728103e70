package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestConcurrentDataKeys: 64 concurrent generate-data-key calls give 64
// distinct keys and blobs, and each blob opens to its own key.
func TestConcurrentDataKeys(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev"}})
	c := srv.client(t)
	const n = 64
	type result struct {
		status    int
		plaintext string
		blob      string
		err       error
		raw       []byte
	}
	results := make([]result, n)
	ctxOf := func(i int) map[string]string { return map[string]string{"request": strconv.Itoa(i)} }
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			r, err := c.send("POST", adminPrefix+"/kms/generate-data-key", map[string]any{"key_spec": "AES_256", "encryption_context": ctxOf(i)})
			if err != nil {
				results[i].err = err
				return
			}
			results[i] = result{status: r.Status, plaintext: str(r.JSON, "plaintext_key"), blob: str(r.JSON, "ciphertext_blob"), raw: r.Raw}
		}()
	}
	close(start)
	wg.Wait()
	plaintexts, blobs := map[string]int{}, map[string]int{}
	for i, r := range results {
		if r.err != nil || r.status != 200 {
			t.Errorf("generate #%d: want 200; got %d %v %s", i, r.status, r.err, short(r.raw))
			continue
		}
		if p := unb64(t, "plaintext_key", r.plaintext); len(p) != 32 {
			t.Errorf("generate #%d: %d-byte key", i, len(p))
		}
		if j, dup := plaintexts[r.plaintext]; dup {
			t.Errorf("generate #%d and #%d returned the same data key", j, i)
		}
		if j, dup := blobs[r.blob]; dup {
			t.Errorf("generate #%d and #%d returned the same blob", j, i)
		}
		plaintexts[r.plaintext], blobs[r.blob] = i, i
	}
	if t.Failed() {
		return
	}
	// Decrypt them all concurrently too.
	errs := make([]string, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := c.send("POST", adminPrefix+"/kms/decrypt", map[string]any{"ciphertext_blob": results[i].blob, "encryption_context": ctxOf(i)})
			switch {
			case err != nil:
				errs[i] = err.Error()
			case r.Status != 200:
				errs[i] = fmt.Sprintf("status %d: %s", r.Status, short(r.Raw))
			case str(r.JSON, "plaintext") != results[i].plaintext:
				errs[i] = "a different plaintext"
			}
		}()
	}
	wg.Wait()
	for i, e := range errs {
		if e != "" {
			t.Errorf("decrypt #%d: %s", i, e)
		}
	}
	// A blob does not open under another request's context.
	st, _, raw := decrypt(t, c, results[0].blob, ctxOf(1))
	wantError(t, "decrypt #0 with the context of #1", st, raw, 400, "InvalidCiphertext")
}

// TestSecretsStayOffDiskAndLogs: no data key, plaintext, master key or
// root secret reaches the data dir or the logs; modes are private.
func TestSecretsStayOffDiskAndLogs(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Env: []string{"KEYWARD_LOG_LEVEL=debug"}})
	c := srv.client(t)
	master := "master-passphrase-" + randomHex(8)
	marker := []byte("TOP-SECRET-MARKER-" + randomHex(8))
	keyDir := filepath.Join(srv.DataDir, "keys")

	// Error answers never echo the master key.
	for name, body := range map[string]string{
		"an unknown field":     `{"backend_type":"local","master_key":"` + master + `","bogus_field":1}`,
		"a wrong type":         `{"backend_type":"local","master_key":"` + master + `","cache_ttl_seconds":"x"}`,
		"a bad backend":        `{"backend_type":"floppy","master_key":"` + master + `"}`,
		"malformed JSON":       `{"backend_type":"local","master_key":"` + master + `",`,
		"bad file_permissions": `{"backend_type":"local","master_key":"` + master + `","file_permissions":"0777"}`,
		"a master_key number":  `{"backend_type":"local","master_key":12345}`,
	} {
		st, _, raw := c.do("POST", "/kms/configure", body)
		wantError(t, "configure with "+name, st, raw, 400, "InvalidRequest")
		if bytes.Contains(raw, []byte(master)) {
			t.Errorf("configure with %s: the error echoes the master key: %s", name, short(raw))
		}
	}

	configureLocal(t, c, keyDir, master, nil)
	startKMS(t, c)
	st, _, raw := c.do("POST", "/kms/reconfigure", `{"master_key":"`+master+`","cache_ttl_seconds":-5}`)
	wantError(t, "reconfigure with a bad value next to the master key", st, raw, 400, "InvalidRequest")
	if bytes.Contains(raw, []byte(master)) {
		t.Errorf("reconfigure error echoes the master key: %s", short(raw))
	}
	for _, path := range []string{"/kms/status", "/kms/service-status", "/kms/config"} {
		if _, _, raw := c.do("GET", path, nil); bytes.Contains(raw, []byte(master)) {
			t.Errorf("GET %s shows the master key: %s", path, short(raw))
		}
	}

	createKey(t, c, "secret-test")
	var secrets [][]byte
	for i := range 20 {
		dk := generate(t, c, "secret-test", map[string]string{"i": strconv.Itoa(i)})
		secrets = append(secrets, dk.Plaintext)
		if st, p, raw := decrypt(t, c, dk.Blob, map[string]string{"i": strconv.Itoa(i)}); st != 200 || !bytes.Equal(p, dk.Plaintext) {
			t.Errorf("decrypt data key %d: %d %s", i, st, short(raw))
		}
	}
	st, m, raw := c.do("POST", "/kms/encrypt", map[string]any{"key_id": "secret-test", "plaintext": b64(marker)})
	if wantStatus(t, "encrypt the marker", st, raw, 200) {
		if st, p, raw := decrypt(t, c, str(m, "ciphertext_blob"), nil); st != 200 || !bytes.Equal(p, marker) {
			t.Errorf("decrypt the marker: %d %s", st, short(raw))
		}
		// A failing decrypt must not echo anything either.
		st, _, raw = decrypt(t, c, str(m, "ciphertext_blob"), map[string]string{"wrong": "context"})
		wantError(t, "decrypt the marker with a wrong context", st, raw, 400, "InvalidCiphertext")
	}
	st, _, raw = c.do("POST", "/kms/encrypt", map[string]any{"key_id": "no-such-key", "plaintext": b64(marker)})
	wantError(t, "encrypt the marker under an unknown key", st, raw, 404, "NotFound")
	if bytes.Contains(raw, marker) || bytes.Contains(raw, []byte(b64(marker))) {
		t.Errorf("an encrypt error echoes the plaintext: %s", short(raw))
	}
	st, _, raw = c.do("POST", "/kms/encrypt", `{"key_id":"secret-test","plaintext":"`+b64(marker)+`","bogus":1}`)
	wantError(t, "encrypt with an unknown field next to the plaintext", st, raw, 400, "InvalidRequest")
	if bytes.Contains(raw, marker) || bytes.Contains(raw, []byte(b64(marker))) {
		t.Errorf("an encrypt error echoes the plaintext: %s", short(raw))
	}
	if code := srv.Stop(); code != 0 {
		t.Errorf("exit code after SIGTERM: %d", code)
	}

	// Forbidden strings: every data key and the marker, in the encodings a
	// careless log or file might use.
	type needle struct {
		name string
		b    []byte
	}
	var onDisk []needle
	for i, p := range secrets {
		onDisk = append(onDisk,
			needle{fmt.Sprintf("data key %d (raw)", i), p},
			needle{fmt.Sprintf("data key %d (base64)", i), []byte(b64(p))},
			needle{fmt.Sprintf("data key %d (hex)", i), []byte(hex.EncodeToString(p))},
		)
	}
	onDisk = append(onDisk,
		needle{"marker (raw)", marker},
		needle{"marker (base64)", []byte(b64(marker))},
		needle{"marker (base64url)", []byte(base64.RawURLEncoding.EncodeToString(marker))},
	)
	inLogs := append([]needle{}, onDisk...)
	inLogs = append(inLogs, needle{"master key", []byte(master)}, needle{"root secret", []byte(srv.SecretKey)})

	// Walk the data dir: modes and contents.
	sawKeyFile, sawState := false, false
	err := filepath.WalkDir(srv.DataDir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(srv.DataDir, path)
		if d.IsDir() {
			if fi.Mode().Perm() != 0o700 {
				t.Errorf("directory %s: want mode 0700; got %#o", rel, fi.Mode().Perm())
			}
			return nil
		}
		if !fi.Mode().IsRegular() {
			t.Errorf("%s: unexpected file type %s", rel, fi.Mode().Type())
			return nil
		}
		switch {
		case strings.HasSuffix(rel, ".key"):
			sawKeyFile = true
		case rel == "kms-state.json":
			sawState = true
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("file %s: want mode 0600; got %#o", rel, fi.Mode().Perm())
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		for _, n := range onDisk {
			if bytes.Contains(data, n.b) {
				t.Errorf("file %s contains %s", rel, n.name)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the data dir: %v", err)
	}
	if !sawKeyFile || !sawState {
		t.Errorf("the data dir lacks key files (%v) or kms-state.json (%v): the walk checked the wrong place", sawKeyFile, sawState)
	}
	if fi, err := os.Stat(keyDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("key dir: want mode 0700; got %v %v", fi.Mode().Perm(), err)
	}
	logs := []byte(srv.Stdout() + srv.Stderr())
	for _, n := range inLogs {
		if bytes.Contains(logs, n.b) {
			t.Errorf("the server logs contain the %s", n.name)
		}
	}
}

// TestSweeperDestroysKey: with KEYWARD_TEST_DAY_SECONDS=1 a key scheduled
// for deletion in 7 "days" is destroyed after about 7 seconds.
func TestSweeperDestroysKey(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev"}, Env: []string{"KEYWARD_TEST_DAY_SECONDS=1"}})
	c := srv.client(t)

	warned := false
	for _, l := range logLines(srv.Stderr()) {
		if str(l, "level") == "WARN" && strings.Contains(str(l, "msg"), "KEYWARD_TEST_DAY_SECONDS") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no WARN log line about KEYWARD_TEST_DAY_SECONDS:\n%s", tail(srv.Stderr(), 2000))
	}

	createKey(t, c, "doomed")
	createKey(t, c, "survivor")
	dk := generate(t, c, "doomed", map[string]string{"a": "b"})
	keep := generate(t, c, "survivor", nil)
	st, m, raw := c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "doomed", "pending_window_in_days": 7})
	if !wantStatus(t, "schedule deletion", st, raw, 200) {
		t.FailNow()
	}
	scheduled := time.Now()
	due := parseTimestamp(t, "deletion_date", str(obj(m, "key_metadata"), "deletion_date"))
	if !near(due, scheduled.Add(7*time.Second), 3*time.Second) {
		t.Errorf("deletion_date with 1-second days: want about now+7s; got %s (now %s)", due, scheduled.UTC())
	}

	var gone time.Duration
	for gone == 0 {
		st, md, raw := describe(t, c, "doomed")
		switch {
		case st == 404:
			gone = time.Since(scheduled)
		case st != 200 || str(md, "key_state") != "PendingDeletion":
			t.Fatalf("describe a pending key: %d %s", st, short(raw))
		case time.Since(scheduled) > 14*time.Second:
			t.Fatalf("the key was not destroyed within 14 s of a 7-second window: %s", short(raw))
		}
		time.Sleep(200 * time.Millisecond)
	}
	if gone < 6*time.Second {
		t.Errorf("the key was destroyed %s after scheduling, before its 7-second window ended", gone)
	}
	st, _, raw = c.do("GET", "/kms/keys/doomed", nil)
	wantError(t, "describe a destroyed key", st, raw, 404, "NotFound")
	st, _, raw = decrypt(t, c, dk.Blob, map[string]string{"a": "b"})
	wantError(t, "decrypt under a destroyed key", st, raw, 404, "NotFound")
	st, _, raw = c.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": "doomed"})
	wantError(t, "cancel deletion of a destroyed key", st, raw, 404, "NotFound")
	if st, p, raw := decrypt(t, c, keep.Blob, nil); st != 200 || !bytes.Equal(p, keep.Plaintext) {
		t.Errorf("the sweeper harmed another key: %d %s", st, short(raw))
	}
	if ids, _ := listAll(t, c, 100); contains(ids, "doomed") {
		t.Errorf("a destroyed key is still listed: %v", ids)
	}
	if left := findFiles(t, srv.DataDir, func(name string) bool { return strings.HasPrefix(name, "doomed.") }); len(left) > 0 {
		t.Errorf("the destroyed key's files are still on disk: %v", left)
	}
}

// findFiles lists the files under dir whose base name matches.
func findFiles(t testing.TB, dir string, match func(name string) bool) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && match(d.Name()) {
			out = append(out, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking %s: %v", dir, err)
	}
	return out
}
