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
