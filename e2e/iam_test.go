package e2e

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// iamFile holds the identities of the policy matrix; each secret is the
// access key plus "-secret", from the file itself, an environment variable
// or a secret file.
const iamFile = `{
  "users": [
    {"access_key": "user-keyuser",  "secret_key": "user-keyuser-secret",  "policies": ["KMSKeyUser"]},
    {"access_key": "user-auditor",  "secret_key": "user-auditor-secret",  "policies": ["KMSAuditor"]},
    {"access_key": "user-admin",    "secret_key": "user-admin-secret",    "policies": ["KMSKeyAdministrator"]},
    {"access_key": "user-app",      "secret_key_env": "E2E_APP_SECRET",   "policies": ["app-keys"]},
    {"access_key": "user-denied",   "secret_key_file": "%s",              "policies": ["all-but-secret"]}
  ],
  "policies": {
    "app-keys": {"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": ["arn:aws:kms:::key/app-*"]}]},
    "all-but-secret": {"Version": "2012-10-17", "Statement": [
      {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
      {"Effect": "Deny", "Action": "kms:*", "Resource": "arn:aws:kms:::key/secret-1"}]}
  }
}`

// TestPolicyMatrix signs as each user and checks 200 (or any non-403
// outcome of the operation itself) versus 403 AccessDenied per route and key.
func TestPolicyMatrix(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "denied.secret")
	os.WriteFile(secretFile, []byte("user-denied-secret\n"), 0o600)
	iamPath := filepath.Join(dir, "iam.json")
	os.WriteFile(iamPath, []byte(strings.Replace(iamFile, "%s", secretFile, 1)), 0o600)

	srv := startServer(t, serverOpts{Args: []string{"--iam-file", iamPath}, Env: []string{"E2E_APP_SECRET=user-app-secret"}})
	root := srv.client(t)
	configureLocal(t, root, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, root)
	for _, id := range []string{"app-1", "other", "secret-1"} {
		createKey(t, root, id)
	}
	blob := map[string]string{}
	for _, id := range []string{"app-1", "other", "secret-1"} {
		blob[id] = generate(t, root, id, nil).Blob
	}
	as := func(user string) *client {
		c := srv.client(t)
		c.creds.AccessKeyID, c.creds.SecretAccessKey = user, user+"-secret"
		return c
	}

	type op struct {
		name, method, path string
		body               func(key string) any
	}
	ops := []op{
		{"generate", "POST", "/kms/generate-data-key", func(k string) any { return map[string]any{"key_id": k} }},
		{"decrypt", "POST", "/kms/decrypt", func(k string) any { return map[string]any{"ciphertext_blob": blob[k]} }},
		{"encrypt", "POST", "/kms/encrypt", func(k string) any { return map[string]any{"key_id": k, "plaintext": b64([]byte("x"))} }},
		{"describe", "GET", "/kms/keys/{id}", nil},
		{"disable", "POST", "/kms/keys/disable", func(k string) any { return map[string]any{"key_id": k} }},
		{"tag", "POST", "/kms/keys/tag", func(k string) any { return map[string]any{"key_id": k, "tags": map[string]string{"t": "v"}} }},
		{"list", "GET", "/kms/keys", nil},
		{"create", "POST", "/kms/keys", func(k string) any { return map[string]any{"key_id": "new-" + randomHex(4)} }},
		{"status", "GET", "/kms/status", nil},
		{"configure", "POST", "/kms/reconfigure", func(string) any { return map[string]any{"cache_ttl_seconds": 300} }},
	}
	// allowed[user][op] lists the keys (or "*" for key-less ops) that user may use.
	allowed := map[string]map[string][]string{
		"user-keyuser": {"generate": {"app-1", "other", "secret-1"}, "decrypt": {"app-1", "other", "secret-1"}, "encrypt": {"app-1", "other", "secret-1"}, "describe": {"app-1", "other", "secret-1"}},
		"user-auditor": {"describe": {"app-1", "other", "secret-1"}, "list": {"*"}},
		"user-admin":   {"describe": {"app-1", "other", "secret-1"}, "disable": {"app-1", "other", "secret-1"}, "tag": {"app-1", "other", "secret-1"}, "list": {"*"}, "create": {"*"}},
		"user-app":     {"generate": {"app-1"}, "decrypt": {"app-1"}},
		"user-denied": {"generate": {"app-1", "other"}, "decrypt": {"app-1", "other"}, "encrypt": {"app-1", "other"}, "describe": {"app-1", "other"},
			"disable": {"app-1", "other"}, "tag": {"app-1", "other"}, "list": {"*"}, "status": {"*"}, "configure": {"*"}, "create": {"*"}},
	}
	for user, perms := range allowed {
		c := as(user)
		for _, o := range ops {
			keys := []string{"app-1", "other", "secret-1"}
			if o.body == nil && !strings.Contains(o.path, "{id}") || o.name == "create" || o.name == "configure" {
				keys = []string{"*"}
			}
			for _, k := range keys {
				path := strings.Replace(o.path, "{id}", k, 1)
				var body any
				if o.body != nil {
					body = o.body(k)
				}
				st, _, raw := c.do(o.method, path, body)
				want := contains(perms[o.name], k)
				what := user + " " + o.name + " " + k
				switch {
				case want && st == 403:
					t.Errorf("%s: want allowed; got 403 %s", what, short(raw))
				case !want:
					wantError(t, what, st, raw, 403, "AccessDenied")
				}
			}
		}
	}
	// A user without permission learns nothing about key existence.
	st, _, raw := as("user-app").do("GET", "/kms/keys/no-such-key", nil)
	wantError(t, "describe a missing key without permission", st, raw, 403, "AccessDenied")
	// Root keeps every permission.
	st, _, raw = root.do("POST", "/kms/keys/enable", map[string]any{"key_id": "other"})
	wantStatus(t, "root enable", st, raw, 200)
}

// TestIAMReload changes the IAM file while the server runs: a new user
// works within a few seconds; a broken file is refused and the previous
// users stay in force.
func TestIAMReload(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iamPath := filepath.Join(dir, "iam.json")
	write := func(v any) {
		b, _ := json.Marshal(v)
		os.WriteFile(iamPath+".tmp", b, 0o600)
		os.Rename(iamPath+".tmp", iamPath)
	}
	user := func(ak string) map[string]any {
		return map[string]any{"access_key": ak, "secret_key": ak + "-secret", "policies": []string{"KMSAuditor"}}
	}
	write(map[string]any{"users": []any{user("first")}})
	srv := startServer(t, serverOpts{Args: []string{"--iam-file", iamPath}})
	root := srv.client(t)
	configureLocal(t, root, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, root)
	as := func(ak string) int {
		c := srv.client(t)
		c.creds.AccessKeyID, c.creds.SecretAccessKey = ak, ak+"-secret"
		st, _, _ := c.do("GET", "/kms/keys", nil)
		return st
	}
	if st := as("first"); st != 200 {
		t.Fatalf("first user: %d", st)
	}
	write(map[string]any{"users": []any{user("first"), user("second")}})
	deadline := time.Now().Add(10 * time.Second)
	for as("second") != 200 {
		if time.Now().After(deadline) {
			t.Fatal("new user not picked up within 10 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	os.WriteFile(iamPath, []byte(`{"users": [{"access_key": "third"`), 0o600)
	time.Sleep(3 * time.Second)
	if as("first") != 200 || as("second") != 200 {
		t.Fatal("a broken IAM file replaced the working one")
	}
	if !strings.Contains(srv.Stderr(), "IAM file rejected") {
		t.Errorf("no log line about the broken IAM file: %s", tail(srv.Stderr(), 5))
	}
}

// listerIAM: "lister" may list keys and describe every key but secret-*;
// "mover" holds the kms:ReEncrypt of older policies on every key (which
// now means ReEncryptFrom and ReEncryptTo) and everything on its own key,
// but no Decrypt on "victim"; "to-only" may re-encrypt to its own key but
// not from others.
const listerIAM = `{
  "users": [
    {"access_key": "lister", "secret_key": "lister-secret", "policies": ["list-not-secret"]},
    {"access_key": "mover",  "secret_key": "mover-secret",  "policies": ["legacy-reencrypt", "own-key"]},
    {"access_key": "to-only", "secret_key": "to-only-secret", "policies": ["reencrypt-to-own", "own-key"]}
  ],
  "policies": {
    "list-not-secret": {"Statement": [
      {"Effect": "Allow", "Action": ["kms:ListKeys", "kms:DescribeKey"], "Resource": "*"},
      {"Effect": "Deny", "Action": "kms:DescribeKey", "Resource": "arn:aws:kms:::key/secret-*"}]},
    "legacy-reencrypt": {"Statement": {"Effect": "Allow", "Action": "kms:ReEncrypt", "Resource": "*"}},
    "reencrypt-to-own": {"Statement": {"Effect": "Allow", "Action": "kms:ReEncryptTo", "Resource": "arn:aws:kms:::key/own"}},
    "own-key": {"Statement": {"Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": "arn:aws:kms:::key/own"}}
  }
}`

// TestListingHidesDeniedKeys reproduces a leak: a user allowed ListKeys
// and DescribeKey on "*" but denied DescribeKey on key/secret-* read a
// denied key's description and tags in both list routes. Such entries now
// show the id only, and a state filter never returns them (their presence
// would tell their state).
func TestListingHidesDeniedKeys(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iamPath := filepath.Join(dir, "iam.json")
	os.WriteFile(iamPath, []byte(listerIAM), 0o600)
	srv := startServer(t, serverOpts{Args: []string{"--iam-file", iamPath}})
	root := srv.client(t)
	configureLocal(t, root, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, root)
	for _, id := range []string{"public-1", "secret-1"} {
		st, _, raw := root.do("POST", "/kms/keys", map[string]any{"key_id": id, "Description": "desc-of-" + id, "Tags": map[string]string{"owner": "tag-of-" + id}})
		wantStatus(t, "create "+id, st, raw, 200)
	}
	st, _, raw := root.do("POST", "/kms/keys/disable", map[string]any{"key_id": "secret-1"})
	wantStatus(t, "disable secret-1", st, raw, 200)

	lister := srv.client(t)
	lister.creds.AccessKeyID, lister.creds.SecretAccessKey = "lister", "lister-secret"
	for _, path := range []string{"/kms/keys", "/kms/list-keys"} {
		st, body, raw := lister.do("GET", path, nil)
		if !wantStatus(t, "list "+path, st, raw, 200) {
			continue
		}
		if strings.Contains(string(raw), "desc-of-secret-1") || strings.Contains(string(raw), "tag-of-secret-1") || strings.Contains(string(raw), "Disabled") {
			t.Errorf("%s: a denied key's metadata leaked: %s", path, raw)
		}
		if !strings.Contains(string(raw), "desc-of-public-1") {
			t.Errorf("%s: an allowed key's description is missing: %s", path, raw)
		}
		keys, _ := body["keys"].([]any)
		var ids []string
		for _, k := range keys {
			m := k.(map[string]any)
			ids = append(ids, str(m, "key_id"))
			if str(m, "key_id") == "secret-1" && len(m) != 1 {
				t.Errorf("%s: the denied key is listed with more than its id: %v", path, m)
			}
		}
		if !contains(ids, "secret-1") || !contains(ids, "public-1") {
			t.Errorf("%s: want both ids listed, got %v", path, ids)
		}
	}
	// A state filter does not reveal the denied key's state.
	for _, state := range []string{"Disabled", "Enabled"} {
		st, _, raw := lister.do("GET", "/kms/keys?state="+state, nil)
		if wantStatus(t, "list state="+state, st, raw, 200) && strings.Contains(string(raw), "secret-1") {
			t.Errorf("state=%s lists the denied key: %s", state, raw)
		}
	}
	// Root still sees everything.
	st, _, raw = root.do("GET", "/kms/keys?state=Disabled", nil)
	if wantStatus(t, "root list Disabled", st, raw, 200) && !strings.Contains(string(raw), "desc-of-secret-1") {
		t.Errorf("root: the disabled key is missing: %s", raw)
	}
	st, _, raw = lister.do("GET", "/kms/keys/secret-1", nil)
	wantError(t, "describe the denied key", st, raw, 403, "AccessDenied")
}

// TestReEncryptNeedsSourceRight reproduces a privilege escalation:
// kms:ReEncrypt on "*" without Decrypt let a user move a blob of a key it
// may not decrypt to its own key, then decrypt it there. Re-encryption is
// now authorized as AWS does (ReEncryptFrom on the source key,
// ReEncryptTo on the destination): a user with only ReEncryptTo on its
// own key is refused, and the older kms:ReEncrypt, which grants both, is
// documented as being as strong as Decrypt on every key it covers.
func TestReEncryptNeedsSourceRight(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iamPath := filepath.Join(dir, "iam.json")
	os.WriteFile(iamPath, []byte(listerIAM), 0o600)
	srv := startServer(t, serverOpts{Args: []string{"--iam-file", iamPath}})
	root := srv.client(t)
	configureLocal(t, root, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, root)
	createKey(t, root, "victim")
	createKey(t, root, "own")
	victimKey := generate(t, root, "victim", map[string]string{"app": "payroll"})

	as := func(user string) *client {
		c := srv.client(t)
		c.creds.AccessKeyID, c.creds.SecretAccessKey = user, user+"-secret"
		return c
	}
	toOnly := as("to-only")
	st, _, raw := toOnly.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": victimKey.Blob, "encryption_context": map[string]string{"app": "payroll"}})
	wantError(t, "to-only decrypts the victim's blob", st, raw, 403, "AccessDenied")
	st, _, raw = toOnly.do("POST", "/kms/re-encrypt", map[string]any{
		"ciphertext_blob": victimKey.Blob, "source_encryption_context": map[string]string{"app": "payroll"}, "destination_key_id": "own"})
	wantError(t, "to-only moves the victim's blob to its own key", st, raw, 403, "AccessDenied")
	// A request without a destination is malformed whoever sends it: 400,
	// not an authorization answer about the default key.
	st, _, raw = toOnly.do("POST", "/kms/re-encrypt", map[string]any{"ciphertext_blob": victimKey.Blob})
	wantError(t, "re-encrypt without a destination", st, raw, 400, "InvalidRequest")

	// The legacy action still grants both halves (its documented meaning).
	mover := as("mover")
	st, body, raw := mover.do("POST", "/kms/re-encrypt", map[string]any{
		"ciphertext_blob": victimKey.Blob, "source_encryption_context": map[string]string{"app": "payroll"}, "destination_key_id": "own"})
	if wantStatus(t, "legacy kms:ReEncrypt", st, raw, 200) {
		_, plain, _ := decrypt(t, mover, str(body, "ciphertext_blob"), nil)
		if string(plain) != string(victimKey.Plaintext) {
			t.Errorf("re-encrypted blob does not open to the data key")
		}
	}
}
