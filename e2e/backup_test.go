package e2e

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"mime/multipart"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"filippo.io/age"

	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/testenv"
	"github.com/keyward/keyward/internal/vaulttest"
)

// backupIAM: "console" has consoleAdmin (kms:*, so kms:Backup and
// kms:Restore); "admin" has KMSKeyAdministrator, which has neither.
const backupIAM = `{
  "users": [
    {"access_key": "console", "secret_key": "console-secret-1234", "policies": ["consoleAdmin"]},
    {"access_key": "admin", "secret_key": "admin-secret-12345", "policies": ["KMSKeyAdministrator"]}
  ]
}`

// sourceKeys is how many keys the source store holds.
const sourceKeys = 200

// madeBlob is a data key made on the source, under one key version.
type madeBlob struct {
	keyID   string
	version int
	blob    string
	plain   []byte
	ctx     map[string]string
}

// TestBackupRestore backs up a local store of 200 keys in every state
// (rotated, disabled, pending deletion, tagged, with a rotation schedule,
// aliased) with the CLI, and restores the archive with the CLI into a
// fresh local store, a vault backend and a vault-transit backend (Transit
// key import), each served by the real binary against a real Vault:
// states, dates, versions and aliases are preserved, a second restore
// changes nothing, a dry run writes nothing, and every blob made before
// the backup (every key, every version) decrypts afterwards with its
// context. The archive holds no key material in the clear, the age
// command line tool opens it, and a wrong identity or passphrase, a
// flipped byte, a truncated archive and a future format version are
// refused with a clear error and nothing written.
func TestBackupRestore(t *testing.T) {
	t.Parallel()
	ageCLI := testenv.Command(t, "age", "apt-get install age")
	v := vaulttest.StartDev(t)
	work := t.TempDir()
	iamPath := filepath.Join(work, "iam.json")
	if err := os.WriteFile(iamPath, []byte(backupIAM), 0o600); err != nil {
		t.Fatal(err)
	}
	srcAudit := filepath.Join(work, "source-audit.log")
	src := startServer(t, serverOpts{Args: []string{"--iam-file", iamPath, "--audit-log", srcAudit}})
	c := src.client(t)
	configureLocal(t, c, filepath.Join(src.DataDir, "keys"), "", nil)
	startKMS(t, c)
	blobs := populateSource(t, c, sourceKeys)
	aliases := aliasNames(sourceKeys)

	// Only kms:Backup and kms:Restore allow them: KMSKeyAdministrator has
	// neither.
	st, _, raw := c.do("POST", "/kms/backup", map[string]any{"recipients": []string{"age1x"}}, withCreds("admin", "admin-secret-12345"))
	wantError(t, "backup as KMSKeyAdministrator", st, raw, 403, "AccessDenied")
	st, _, raw = c.do("POST", "/kms/restore", "--x--", withCreds("admin", "admin-secret-12345"), withBeforeSign(func(r *http.Request) {
		r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	}))
	wantError(t, "restore as KMSKeyAdministrator", st, raw, 403, "AccessDenied")

	// The archive, to an X25519 identity, by a consoleAdmin user.
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	idFile := filepath.Join(work, "identity.txt")
	if err := os.WriteFile(idFile, []byte("# backup identity\n"+id.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	archive := filepath.Join(work, "keys.age")
	out := cli(t, src, "console", "console-secret-1234", 0, "backup", "--to-recipient", id.Recipient().String(), "--out", archive, "--json")
	var made struct {
		Keys, Aliases int
		Material      string
		Digest        string
	}
	if err := json.Unmarshal([]byte(out), &made); err != nil || made.Keys != sourceKeys || made.Aliases != len(aliases) || made.Material != "included" || len(made.Digest) != 64 {
		t.Fatalf("keyward backup: %v: %s", err, out)
	}
	if st, err := os.Stat(archive); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("archive file: %v %v", st, err)
	}
	cli(t, src, "console", "console-secret-1234", 2, "backup", "--to-recipient", id.Recipient().String(), "--out", archive) // never overwritten
	// A passphrase archive of the same store.
	passFile := filepath.Join(work, "pass.txt")
	os.WriteFile(passFile, []byte("a long backup passphrase\n"), 0o600)
	passArchive := filepath.Join(work, "keys-pass.age")
	cli(t, src, "console", "console-secret-1234", 0, "backup", "--passphrase-file", passFile, "--work-factor", "15", "--out", passArchive)

	// The age command line tool opens it: the format is standard.
	plain, err := exec.Command(ageCLI, "-d", "-i", idFile, archive).Output()
	if err != nil {
		t.Fatalf("age -d: %v", err)
	}
	materials := checkPlaintext(t, plain, made.Digest)
	data, err := os.ReadFile(archive)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range materials {
		if bytes.Contains(data, m) || bytes.Contains(data, []byte(base64.StdEncoding.EncodeToString(m))) {
			t.Fatal("key material in the clear in the archive")
		}
	}
	checkMaterialIsReal(t, plain, blobs)
	checkAudit(t, srcAudit, `"route":"/rustfs/admin/v3/kms/backup"`, fmt.Sprintf(`"archive":{"keys":%d,"keys_absent":0,"aliases":%d}`, sourceKeys, len(aliases)))

	sourceMeta := describeAll(t, c, sourceKeys)
	targets := []string{"local", "vault", "vault-transit"}
	for _, target := range targets {
		t.Run(target, func(t *testing.T) {
			t.Parallel()
			dstAudit := filepath.Join(t.TempDir(), "audit.log")
			dst := startServer(t, serverOpts{Args: []string{"--audit-log", dstAudit}})
			dc := dst.client(t)
			if target == "local" {
				configureLocal(t, dc, filepath.Join(dst.DataDir, "keys"), "", nil)
				startKMS(t, dc)
				refusals(t, dst, dc, archive, idFile, passFile, plain, id)
			} else {
				prefix := vaultPrefix(t)
				cfg := vaultConfig(v.Addr, target, prefix, tokenAuth(v.Token))
				if target == "vault-transit" {
					// The documented minimal policy (docs/vault.md) is
					// enough to restore into vault-transit.
					mount := v.NewTransitMount()
					policy := strings.ReplaceAll(minimalPolicy(t, target, prefix), `"transit/`, `"`+mount+`/`)
					writePolicy(t, v, "restore-"+mount, policy)
					cfg["mount_path"] = mount
					cfg["auth_method"] = tokenAuth(createVaultToken(t, v, "restore-"+mount))
				}
				configureVault(t, dc, cfg)
				startVaultKMS(t, dc)
			}
			archiveUsed, secretFlag, secretFile := archive, "--identity", idFile
			if target == "vault" {
				archiveUsed, secretFlag, secretFile = passArchive, "--passphrase-file", passFile
			}
			before, _ := listAll(t, dc, 1000)
			rep := restoreJSON(t, dst, 0, "--in", archiveUsed, secretFlag, secretFile, "--dry-run")
			if rep.Summary.Keys["would_restore"] != sourceKeys || rep.Summary.Aliases["would_restore"] != len(aliases) || !rep.DryRun {
				t.Fatalf("dry run: %+v", rep.Summary)
			}
			if after, _ := listAll(t, dc, 1000); len(after) != len(before) {
				t.Fatalf("the dry run wrote keys: %d before, %d after", len(before), len(after))
			}
			rep = restoreJSON(t, dst, 0, "--in", archiveUsed, secretFlag, secretFile, "--expect-digest", digestOf(t, rep))
			if rep.Summary.Keys["restored"] != sourceKeys || rep.Summary.Aliases["restored"] != len(aliases) || !rep.Complete || rep.Archive.SourceBackend != "local" {
				t.Fatalf("restore: %+v", rep.Summary)
			}
			if target == "local" {
				checkAudit(t, dstAudit, `"route":"/rustfs/admin/v3/kms/restore"`, fmt.Sprintf(`"restored":%d`, sourceKeys))
			}
			// States, dates, versions, tags, rotation schedules, aliases.
			restored := describeAll(t, dc, sourceKeys)
			for id, want := range sourceMeta {
				if got := restored[id]; !reflect.DeepEqual(got, want) {
					t.Errorf("%s after the restore:\n got %v\nwant %v", id, got, want)
				}
			}
			// Idempotent: the second restore changes nothing.
			rep = restoreJSON(t, dst, 0, "--in", archiveUsed, secretFlag, secretFile)
			if rep.Summary.Keys["exists"] != sourceKeys || rep.Summary.Aliases["exists"] != len(aliases) {
				t.Fatalf("second restore: %+v", rep.Summary)
			}
			if target == "vault-transit" {
				checkMetadataOnly(t, dst, dc, work, id, idFile)
			}
			// Every blob made before the backup decrypts, with its context.
			decryptAll(t, dc, blobs)
		})
	}
}

// populateSource creates n keys (with 8 workers): key i is rotated i%4
// times, with a data key made under each version; every 3rd has tags,
// every 7th automatic rotation, every 5th an alias; then i%6 == 1 is
// disabled and i%6 == 2 scheduled for deletion.
func populateSource(t *testing.T, c *client, n int) []madeBlob {
	var (
		mu    sync.Mutex
		blobs []madeBlob
		wg    sync.WaitGroup
		jobs  = make(chan int)
	)
	call := func(what, method, path string, body any) map[string]any {
		r, err := c.send(method, adminPrefix+path, body)
		if err != nil || r.Status != 200 {
			t.Errorf("%s: %v %s", what, err, short(rawOf(r)))
			return nil
		}
		return r.JSON
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				id := fmt.Sprintf("bk-%03d", i)
				body := map[string]any{"key_id": id, "description": "backup test key " + id}
				if i%3 == 0 {
					body["tags"] = map[string]string{"team": fmt.Sprint(i % 5), "env": "e2e"}
				}
				if call("create "+id, "POST", "/kms/keys", body) == nil {
					continue
				}
				for ver := 1; ver <= 1+i%4; ver++ {
					if ver > 1 && call("rotate "+id, "POST", "/kms/keys/rotate", map[string]any{"key_id": id}) == nil {
						break
					}
					ec := map[string]string{"key": id, "version": fmt.Sprint(ver)}
					m := call("generate "+id, "POST", "/kms/generate-data-key", map[string]any{"key_id": id, "encryption_context": ec})
					if m == nil {
						break
					}
					pt, _ := base64.StdEncoding.DecodeString(str(m, "plaintext_key"))
					mu.Lock()
					blobs = append(blobs, madeBlob{id, ver, str(m, "ciphertext_blob"), pt, ec})
					mu.Unlock()
				}
				if i%7 == 0 {
					call("rotation "+id, "POST", "/kms/keys/rotation", map[string]any{"key_id": id, "enabled": true, "period_days": 90 + i})
				}
				if i%5 == 0 {
					call("alias "+id, "POST", "/kms/aliases", map[string]any{"alias_name": fmt.Sprintf("alias/bk/%03d", i), "target_key_id": id})
				}
				switch i % 6 {
				case 1:
					call("disable "+id, "POST", "/kms/keys/disable", map[string]any{"key_id": id})
				case 2:
					call("delete "+id, "DELETE", "/kms/keys/delete", map[string]any{"key_id": id, "pending_window_in_days": 7 + i%20})
				}
			}
		}()
	}
	for i := range n {
		jobs <- i
	}
	close(jobs)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	return blobs
}

func rawOf(r *response) []byte {
	if r == nil {
		return nil
	}
	return r.Raw
}

func aliasNames(n int) []string {
	var names []string
	for i := 0; i < n; i += 5 {
		names = append(names, fmt.Sprintf("alias/bk/%03d", i))
	}
	return names
}

// describeAll returns every bk- key's key_metadata.
func describeAll(t *testing.T, c *client, n int) map[string]map[string]any {
	t.Helper()
	out := map[string]map[string]any{}
	for i := range n {
		id := fmt.Sprintf("bk-%03d", i)
		st, md, raw := describe(t, c, id)
		if st != 200 {
			t.Fatalf("describe %s: %d %s", id, st, short(raw))
		}
		out[id] = md
	}
	return out
}

// cli runs `keyward ARGS` against srv with the given credentials and
// checks its exit code; it returns stdout.
func cli(t *testing.T, srv *server, ak, sk string, wantCode int, args ...string) string {
	t.Helper()
	cmd := exec.Command(keywardBin, args...)
	cmd.Env = processEnv("KEYWARD_ENDPOINT="+srv.URL, "KEYWARD_ACCESS_KEY="+ak, "KEYWARD_SECRET_KEY="+sk)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("keyward %v: %v", args, err)
	}
	if code != wantCode {
		t.Fatalf("keyward %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, wantCode, stdout.String(), stderr.String())
	}
	return stdout.String() + stderr.String()
}

// restoreReport is the JSON report of keyward restore --json.
type restoreReport struct {
	DryRun   bool `json:"dry_run"`
	Complete bool `json:"complete"`
	Archive  struct {
		SourceBackend string `json:"source_backend"`
		Material      string `json:"material"`
		Digest        string `json:"digest"`
	} `json:"archive"`
	Summary struct {
		Keys    map[string]int `json:"keys"`
		Aliases map[string]int `json:"aliases"`
	} `json:"summary"`
	Keys []struct {
		KeyID  string `json:"key_id"`
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"keys"`
}

func restoreJSON(t *testing.T, srv *server, wantCode int, args ...string) restoreReport {
	t.Helper()
	cmd := exec.Command(keywardBin, append([]string{"restore", "--json"}, args...)...)
	cmd.Env = processEnv("KEYWARD_ENDPOINT="+srv.URL, "KEYWARD_ACCESS_KEY="+srv.AccessKey, "KEYWARD_SECRET_KEY="+srv.SecretKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	}
	var rep restoreReport
	jsonErr := json.Unmarshal(stdout.Bytes(), &rep)
	if code != wantCode {
		var failed []string
		for _, k := range rep.Keys {
			if k.Status != "restored" && k.Status != "exists" && k.Status != "would_restore" {
				failed = append(failed, k.KeyID+": "+k.Status+": "+k.Reason)
			}
		}
		t.Fatalf("keyward restore %v: exit %d, want %d\nnot restored: %s\nstderr: %s", args, code, wantCode, strings.Join(failed[:min(5, len(failed))], "\n"), stderr.String())
	}
	if err := jsonErr; err != nil {
		t.Fatalf("keyward restore %v: %v: %s", args, err, short(stdout.Bytes()))
	}
	return rep
}

func digestOf(t *testing.T, rep restoreReport) string {
	if len(rep.Archive.Digest) != 64 {
		t.Fatalf("no digest in the report: %+v", rep.Archive)
	}
	return rep.Archive.Digest
}

// checkPlaintext reads the archive's plaintext as the age tool gave it:
// a manifest listing every key and alias, one entry each, an end line; it
// returns every version's material.
func checkPlaintext(t *testing.T, plain []byte, digest string) [][]byte {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(plain))
	sc.Buffer(nil, 8<<20)
	var materials [][]byte
	lines := 0
	for sc.Scan() {
		var e struct {
			Type          string `json:"type"`
			FormatVersion int    `json:"format_version"`
			KeyCount      int    `json:"key_count"`
			Material      string `json:"material"`
			Versions      []struct {
				Material []byte `json:"material"`
			} `json:"versions"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			t.Fatalf("archive line %d: %v", lines, err)
		}
		if lines == 0 && (e.Type != "manifest" || e.FormatVersion != 1 || e.KeyCount != sourceKeys || e.Material != "included") {
			t.Fatalf("manifest: %s", short(sc.Bytes()))
		}
		for _, v := range e.Versions {
			if len(v.Material) != 32 {
				t.Fatalf("a version's material of %d bytes", len(v.Material))
			}
			materials = append(materials, v.Material)
		}
		lines++
	}
	if lines != 1+sourceKeys+len(aliasNames(sourceKeys))+1 || len(materials) < sourceKeys {
		t.Fatalf("%d lines, %d materials", lines, len(materials))
	}
	return materials
}

// checkMaterialIsReal opens some source blobs with the material the
// archive holds for their key version, in the test: the archive holds the
// keys themselves (and so the scan for them above means something).
func checkMaterialIsReal(t *testing.T, plain []byte, blobs []madeBlob) {
	t.Helper()
	byVersion := map[string][]byte{}
	for _, line := range bytes.Split(plain, []byte("\n")) {
		var e struct {
			Key *struct {
				ID string `json:"id"`
			} `json:"key"`
			Versions []struct {
				Version  int    `json:"version"`
				Material []byte `json:"material"`
			} `json:"versions"`
		}
		if json.Unmarshal(line, &e) != nil || e.Key == nil {
			continue
		}
		for _, v := range e.Versions {
			byVersion[fmt.Sprintf("%s/%d", e.Key.ID, v.Version)] = v.Material
		}
	}
	for _, b := range blobs[:20] {
		raw, _ := base64.StdEncoding.DecodeString(b.blob)
		parsed, err := kms.ParseBlob(raw)
		if err != nil {
			t.Fatal(err)
		}
		aad, _ := kms.BlobAssociatedData(parsed.Header(), b.ctx)
		block, _ := aes.NewCipher(byVersion[fmt.Sprintf("%s/%d", b.keyID, parsed.KeyVersion)])
		aead, _ := cipher.NewGCM(block)
		ct := parsed.Ciphertext
		pt, err := aead.Open(nil, ct[:12], ct[12:], aad)
		if err != nil || !bytes.Equal(pt, b.plain) {
			t.Fatalf("blob of %s v%d does not open with the archive's material: %v", b.keyID, parsed.KeyVersion, err)
		}
	}
}

// checkAudit finds an audit line with every fragment.
func checkAudit(t *testing.T, path string, fragments ...string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		ok := true
		for _, f := range fragments {
			ok = ok && strings.Contains(line, f)
		}
		if ok {
			return
		}
	}
	t.Errorf("no audit line with %q in:\n%s", fragments, tail(string(data), 2000))
}

// refusals: on a fresh local target, every bad archive or secret is
// refused with a clear error, and nothing is written.
func refusals(t *testing.T, dst *server, dc *client, archive, idFile, passFile string, plain []byte, id *age.X25519Identity) {
	t.Helper()
	dir := t.TempDir()
	data, _ := os.ReadFile(archive)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	other, _ := age.GenerateX25519Identity()
	otherID := write("other.txt", []byte(other.String()+"\n"))
	wrongPass := write("wrong-pass.txt", []byte("not the passphrase at all\n"))
	flipped := bytes.Clone(data)
	flipped[len(flipped)/2] ^= 0x04
	var future bytes.Buffer
	w, _ := age.Encrypt(&future, id.Recipient())
	w.Write(bytes.Replace(plain, []byte(`"format_version":1`), []byte(`"format_version":2`), 1))
	w.Close()
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"wrong identity", []string{"--in", archive, "--identity", otherID}, "no identity given opens this archive"},
		{"passphrase for an X25519 archive", []string{"--in", archive, "--passphrase-file", passFile}, "passphrase does not open"},
		{"wrong passphrase", []string{"--in", filepath.Join(filepath.Dir(archive), "keys-pass.age"), "--passphrase-file", wrongPass}, "passphrase does not open"},
		{"flipped byte", []string{"--in", write("flipped.age", flipped), "--identity", idFile}, "damaged or truncated"},
		{"truncated", []string{"--in", write("truncated.age", data[:len(data)*2/3]), "--identity", idFile}, "damaged or truncated"},
		{"future format version", []string{"--in", write("future.age", future.Bytes()), "--identity", idFile}, "archive format version 2 is newer"},
		{"another archive's digest", []string{"--in", archive, "--identity", idFile, "--expect-digest", strings.Repeat("ab", 32)}, "not the archive that backup produced"},
	} {
		out := cli(t, dst, dst.AccessKey, dst.SecretKey, 1, append([]string{"restore"}, c.args...)...)
		if !strings.Contains(out, c.want) || !strings.Contains(out, "HTTP 400") {
			t.Errorf("%s: want %q: %s", c.name, c.want, out)
		}
		if ids, _ := listAll(t, dc, 1000); len(ids) != 0 {
			t.Fatalf("%s: refused, yet %d keys were written", c.name, len(ids))
		}
	}
	// A streamed body must declare its hash: it is authenticated before
	// it is read.
	st, _, raw := dc.do("POST", "/kms/restore", "--x--", withoutPayloadHeader(), withBeforeSign(func(r *http.Request) {
		r.Header.Set("Content-Type", "multipart/form-data; boundary=x")
	}))
	wantError(t, "restore without x-amz-content-sha256", st, raw, 400, "InvalidRequest")
	// A body that does not match its signed hash (altered on the way) is
	// refused as such, even when it is a good archive, and nothing is
	// written.
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	req, _ := json.Marshal(map[string]any{"identity": id.String()})
	mw.WriteField("request", string(req))
	part, _ := mw.CreateFormFile("archive", "keys.age")
	part.Write(data)
	mw.Close()
	st, _, raw = dc.do("POST", "/kms/restore", body.Bytes(), withPayloadHash(strings.Repeat("0", 64)), withBeforeSign(func(r *http.Request) {
		r.Header.Set("Content-Type", mw.FormDataContentType())
	}))
	wantError(t, "restore with a wrong payload hash", st, raw, 401, "SignatureDoesNotMatch")
	if ids, _ := listAll(t, dc, 1000); len(ids) != 0 {
		t.Fatalf("a restore whose body does not match its signature wrote %d keys", len(ids))
	}
}

// checkMetadataOnly: a vault-transit backup says it holds metadata only,
// holds no material, and restores into a fresh local store only after
// refusing (nothing written).
func checkMetadataOnly(t *testing.T, dst *server, dc *client, work string, id *age.X25519Identity, idFile string) {
	t.Helper()
	archive := filepath.Join(t.TempDir(), "transit.age")
	out := cli(t, dst, dst.AccessKey, dst.SecretKey, 0, "backup", "--to-recipient", id.Recipient().String(), "--out", archive)
	if !strings.Contains(out, "METADATA ONLY") || !strings.Contains(out, "metadata only") {
		t.Errorf("a vault-transit backup does not say it is metadata only:\n%s", out)
	}
	plain, err := exec.Command("age", "-d", "-i", idFile, archive).Output()
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte(`"material":"`+"included")) || !bytes.Contains(plain, []byte(`"material":"metadata-only"`)) ||
		strings.Count(string(plain), `"material":`) != 1 {
		t.Errorf("the vault-transit archive is not metadata only: %s", short(plain))
	}
	// Restoring it where its keys exist: every key is confirmed, nothing
	// changes.
	rep := restoreJSON(t, dst, 0, "--in", archive, "--identity", idFile)
	if rep.Archive.Material != "metadata-only" || rep.Summary.Keys["exists"] < sourceKeys {
		t.Errorf("metadata-only archive into its own backend: %+v", rep.Summary)
	}
	// Into a fresh store it can recreate nothing: refused, nothing written.
	fresh := startServer(t, serverOpts{})
	fc := fresh.client(t)
	configureLocal(t, fc, filepath.Join(fresh.DataDir, "keys"), "", nil)
	startKMS(t, fc)
	out = cli(t, fresh, fresh.AccessKey, fresh.SecretKey, 5, "restore", "--in", archive, "--identity", idFile)
	if !strings.Contains(out, "no key material") || !strings.Contains(out, "HTTP 409") {
		t.Errorf("metadata-only archive into a fresh store: %s", short([]byte(out)))
	}
	if ids, _ := listAll(t, fc, 1000); len(ids) != 0 {
		t.Errorf("a refused restore wrote %d keys", len(ids))
	}
}

// decryptAll re-enables the restored keys that are disabled or pending
// deletion (as on the source, they refuse to decrypt), then decrypts every
// blob with its context (8 workers).
func decryptAll(t *testing.T, c *client, blobs []madeBlob) {
	t.Helper()
	for i := range sourceKeys {
		id := fmt.Sprintf("bk-%03d", i)
		switch i % 6 {
		case 1:
			if st, _, raw := c.do("POST", "/kms/keys/enable", map[string]any{"key_id": id}); st != 200 {
				t.Fatalf("enable %s: %d %s", id, st, short(raw))
			}
		case 2:
			if st, _, raw := c.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": id}); st != 200 {
				t.Fatalf("cancel deletion of %s: %d %s", id, st, short(raw))
			}
		}
	}
	var wg sync.WaitGroup
	jobs := make(chan madeBlob)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for b := range jobs {
				r, err := c.send("POST", adminPrefix+"/kms/decrypt", map[string]any{"ciphertext_blob": b.blob, "encryption_context": b.ctx})
				if err != nil || r.Status != 200 {
					t.Errorf("decrypt the blob of %s v%d: %v %s", b.keyID, b.version, err, short(rawOf(r)))
					continue
				}
				if pt, _ := base64.StdEncoding.DecodeString(str(r.JSON, "plaintext")); !bytes.Equal(pt, b.plain) {
					t.Errorf("the blob of %s v%d decrypts to another key", b.keyID, b.version)
				}
				if b.version != 1 {
					continue
				}
				wrong := map[string]string{"key": b.keyID, "version": "other"}
				if r, err := c.send("POST", adminPrefix+"/kms/decrypt", map[string]any{"ciphertext_blob": b.blob, "encryption_context": wrong}); err != nil || r.Status != 400 {
					t.Errorf("the blob of %s v%d with another context: %v %d", b.keyID, b.version, err, r.Status)
				}
			}
		}()
	}
	for _, b := range blobs {
		jobs <- b
	}
	close(jobs)
	wg.Wait()
}
