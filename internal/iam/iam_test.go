package iam

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const (
	rootAK     = "rootuser"
	rootSecret = "rootsecret-123"
)

// noEnv and noFiles make ParseFile hermetic.
func noEnv(string) string { return "" }

func noFiles(p string) ([]byte, error) { return nil, errors.New("no such file: " + p) }

func mustParse(t testing.TB, doc string) *Snapshot {
	t.Helper()
	snap, err := ParseFile([]byte(doc), rootAK, noEnv, noFiles)
	if err != nil {
		t.Fatalf("ParseFile: %v", err)
	}
	return snap
}

// newStore returns a Store loaded from doc (written to a temp file).
func newStore(t testing.TB, doc string) *Store {
	t.Helper()
	s := New(rootAK, rootSecret, nil)
	path := filepath.Join(t.TempDir(), "iam.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadFile(path, noEnv); err != nil {
		t.Fatalf("LoadFile: %v", err)
	}
	return s
}

const matrixFile = `{
 "users": [
  {"access_key": "user",    "secret_key": "secret-user",    "policies": ["KMSKeyUser"]},
  {"access_key": "auditor", "secret_key": "secret-auditor", "policies": ["KMSAuditor"]},
  {"access_key": "keyadm",  "secret_key": "secret-keyadm",  "policies": ["KMSKeyAdministrator"]},
  {"access_key": "console", "secret_key": "secret-console", "policies": ["consoleAdmin"]},
  {"access_key": "ops",     "secret_key": "secret-ops",     "policies": ["ops-keys"]},
  {"access_key": "denier",  "secret_key": "secret-denier",  "policies": ["all-but-other"]},
  {"access_key": "nobody",  "secret_key": "secret-nobody"}
 ],
 "policies": {
  "ops-keys": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
    "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": ["arn:aws:kms:::key/app-*"]}]},
  "all-but-other": {"Statement": [
    {"Sid": "all", "Effect": "Allow", "Action": "kms:*", "Resource": "*"},
    {"Sid": "notother", "Effect": "Deny", "Action": "kms:*", "Resource": "arn:aws:kms:::key/other"}]}
 }
}`

func set(actions ...string) map[string]bool {
	m := map[string]bool{}
	for _, a := range actions {
		m["kms:"+a] = true
	}
	return m
}

func TestPolicyMatrix(t *testing.T) {
	s := newStore(t, matrixFile)
	every := map[string]bool{}
	for _, a := range knownActions {
		every[a] = true
	}
	resources := []string{KeyResource("app-1"), KeyResource("other"), NoKey}
	// expect[user][resource index] is the set of allowed actions.
	// kms:GenerateDataKey, kms:DeleteKey and kms:RotateKey bring their AWS
	// operations along.
	keyUser := set("Encrypt", "Decrypt", "ReEncryptFrom", "ReEncryptTo", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "DescribeKey")
	auditor := set("DescribeKey", "ListKeys", "ListAliases", "ListResourceTags", "GetKeyRotationStatus", "ListKeyRotations")
	keyAdm := set("CreateKey", "DescribeKey", "ListKeys", "EnableKey", "DisableKey", "RotateKey",
		"DeleteKey", "UpdateKeyDescription", "TagResource", "UntagResource",
		"CreateAlias", "UpdateAlias", "DeleteAlias", "ListAliases",
		"ScheduleKeyDeletion", "CancelKeyDeletion", "RotateKeyOnDemand", "EnableKeyRotation", "DisableKeyRotation",
		"ListResourceTags", "GetKeyRotationStatus", "ListKeyRotations")
	ops := set("GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "Decrypt")
	none := set()
	expect := map[string][3]map[string]bool{
		rootAK:    {every, every, every},
		"user":    {keyUser, keyUser, keyUser},
		"auditor": {auditor, auditor, auditor},
		"keyadm":  {keyAdm, keyAdm, keyAdm},
		"console": {every, every, every},
		"ops":     {ops, none, none}, // key/app-* covers neither key/other nor key-less routes
		"denier":  {every, none, every},
		"nobody":  {none, none, none},
		"unknown": {none, none, none},
		"":        {none, none, none},
	}
	allowedCount := 0
	for ak, want := range expect {
		for ri, res := range resources {
			for _, action := range knownActions {
				got := s.Allowed(ak, action, res)
				if got != want[ri][action] {
					t.Errorf("Allowed(%q, %s, %q) = %v, want %v", ak, action, res, got, want[ri][action])
				}
				if got {
					allowedCount++
				}
			}
		}
	}
	// every action x 3 resources x (root + console) + the rest: guards
	// against a matrix that trivially passes.
	n := len(knownActions)
	if want := n*3*2 + len(keyUser)*3 + len(auditor)*3 + len(keyAdm)*3 + len(ops) + n*2; allowedCount != want || n != 34 {
		t.Errorf("allowed %d decisions, want %d", allowedCount, want)
	}
	// Unknown actions are denied to everyone but root.
	if s.Allowed("console", "kms:Frobnicate", NoKey) || !s.Allowed(rootAK, "kms:Frobnicate", NoKey) {
		t.Error("unknown action: console allowed or root denied")
	}
}

func TestSecretKey(t *testing.T) {
	s := newStore(t, matrixFile)
	for ak, want := range map[string]string{rootAK: rootSecret, "ops": "secret-ops", "user": "secret-user"} {
		if got, ok := s.SecretKey(ak); !ok || got != want {
			t.Errorf("SecretKey(%q) = %q, %v", ak, got, ok)
		}
	}
	for _, ak := range []string{"unknown", "", "OPS", rootAK + " "} {
		if _, ok := s.SecretKey(ak); ok {
			t.Errorf("SecretKey(%q) found", ak)
		}
	}
	// An empty root access key disables root; it does not make "" root.
	empty := New("", "whatever-secret", nil)
	if _, ok := empty.SecretKey(""); ok || empty.Allowed("", "kms:ListKeys", NoKey) {
		t.Error("empty root access key became an identity")
	}
}

func TestWildcardsAndCase(t *testing.T) {
	snap := mustParse(t, `{"users": [{"access_key": "u", "secret_key": "12345678", "policies": ["p"]}],
	 "policies": {"p": {"Statement": [
	  {"Effect": "Allow", "Action": "kms:Generate*", "Resource": "arn:aws:kms:::key/gen-?"},
	  {"Effect": "Allow", "Action": "kms:?ecrypt", "Resource": "arn:aws:kms:::key/*-prod"},
	  {"Effect": "Allow", "Action": ["KMS:DESCRIBEKEY", "kms:listkeys"], "Resource": "arn:aws:kms:::key/Case*"},
	  {"Effect": "Allow", "Action": "kms:*Tag*", "Resource": "arn:aws:kms:::key/a*b?c*"}]}}}`)
	cases := []struct {
		action, key string
		want        bool
	}{
		{"kms:GenerateDataKey", "gen-1", true},
		{"kms:GenerateDataKey", "gen-12", false}, // ? is exactly one character
		{"kms:GenerateDataKey", "gen-", false},
		{"kms:Encrypt", "gen-1", false},
		{"kms:Decrypt", "db-prod", true},
		{"kms:Decrypt", "-prod", true}, // * matches the empty string
		{"kms:Decrypt", "db-prod2", false},
		{"kms:Encrypt", "db-prod", false}, // ?ecrypt: one character then "ecrypt"
		{"kms:ReEncryptFrom", "db-prod", false},
		{"kms:decrypt", "db-prod", true}, // requested actions are case-insensitive too
		{"kms:DescribeKey", "Case-1", true},
		{"kms:DescribeKey", "case-1", false}, // resources are case-sensitive
		{"kms:ListKeys", "Case", true},
		{"kms:TagResource", "aXbYc", true},
		{"kms:UntagResource", "ab-c-zzz", true},
		{"kms:TagResource", "abc", false},
		{"kms:CreateKey", "aXbYc", false},
	}
	for _, c := range cases {
		if got := snap.Allowed("u", c.action, KeyResource(c.key)); got != c.want {
			t.Errorf("%s on key/%s = %v, want %v", c.action, c.key, got, c.want)
		}
	}
}

// TestReEncryptActions: re-encryption is two actions, as in AWS:
// ReEncryptFrom on the source key and ReEncryptTo on the destination. The
// older single name kms:ReEncrypt still parses and grants (or denies)
// both, so existing policies keep their meaning; "kms:ReEncrypt*" is AWS's
// way to write both.
func TestReEncryptActions(t *testing.T) {
	snap := mustParse(t, `{"users": [
	  {"access_key": "legacy", "secret_key": "12345678", "policies": ["old"]},
	  {"access_key": "split", "secret_key": "12345678", "policies": ["new"]},
	  {"access_key": "glob", "secret_key": "12345678", "policies": ["star"]},
	  {"access_key": "denied", "secret_key": "12345678", "policies": ["star", "deny-old"]}],
	 "policies": {
	  "old": {"Statement": {"Effect": "Allow", "Action": "kms:ReEncrypt", "Resource": "*"}},
	  "new": {"Statement": [{"Effect": "Allow", "Action": "kms:ReEncryptFrom", "Resource": "arn:aws:kms:::key/src"},
	                        {"Effect": "Allow", "Action": "kms:reencryptto", "Resource": "arn:aws:kms:::key/dst"}]},
	  "star": {"Statement": {"Effect": "Allow", "Action": "kms:ReEncrypt*", "Resource": "*"}},
	  "deny-old": {"Statement": {"Effect": "Deny", "Action": "kms:ReEncrypt", "Resource": "arn:aws:kms:::key/src"}}}}`)
	cases := []struct {
		user, action, key string
		want              bool
	}{
		{"legacy", "kms:ReEncryptFrom", "src", true},
		{"legacy", "kms:ReEncryptTo", "dst", true},
		{"legacy", "kms:Decrypt", "src", false},
		{"split", "kms:ReEncryptFrom", "src", true},
		{"split", "kms:ReEncryptTo", "src", false},
		{"split", "kms:ReEncryptFrom", "dst", false},
		{"split", "kms:ReEncryptTo", "dst", true},
		{"glob", "kms:ReEncryptFrom", "any", true},
		{"glob", "kms:ReEncryptTo", "any", true},
		{"denied", "kms:ReEncryptFrom", "src", false}, // the legacy name denies both halves
		{"denied", "kms:ReEncryptTo", "src", false},
		{"denied", "kms:ReEncryptTo", "dst", true},
	}
	for _, c := range cases {
		if got := snap.Allowed(c.user, c.action, KeyResource(c.key)); got != c.want {
			t.Errorf("%s: %s on key/%s = %v, want %v", c.user, c.action, c.key, got, c.want)
		}
	}
}

// TestKeylessRule pins the rule in the package doc: a statement applies to
// NoKey only through a resource that covers every key.
func TestKeylessRule(t *testing.T) {
	snap := mustParse(t, `{"users": [
	  {"access_key": "all-keys", "secret_key": "12345678", "policies": ["all-keys"]},
	  {"access_key": "stars", "secret_key": "12345678", "policies": ["stars"]},
	  {"access_key": "scoped", "secret_key": "12345678", "policies": ["scoped"]},
	  {"access_key": "deny-scoped", "secret_key": "12345678", "policies": ["KMSAuditor", "deny-app"]},
	  {"access_key": "deny-all-keys", "secret_key": "12345678", "policies": ["KMSAuditor", "deny-all-keys"]}],
	 "policies": {
	  "all-keys": {"Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "arn:aws:kms:::key/*"}]},
	  "stars": {"Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "arn:aws:kms:::key/**"}]},
	  "scoped": {"Statement": [{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:::key/app-*"}]},
	  "deny-app": {"Statement": [{"Effect": "Deny", "Action": "kms:*", "Resource": "arn:aws:kms:::key/app-*"}]},
	  "deny-all-keys": {"Statement": [{"Effect": "Deny", "Action": "kms:ListKeys", "Resource": "arn:aws:kms:::key/*"}]}}}`)
	cases := []struct {
		ak, action, res string
		want            bool
	}{
		{"all-keys", "kms:ListKeys", NoKey, true},
		{"all-keys", "kms:ListKeys", KeyResource("x"), true},
		{"stars", "kms:ListKeys", NoKey, true},
		{"scoped", "kms:ListKeys", NoKey, false},
		{"scoped", "kms:CreateKey", NoKey, false},
		{"scoped", "kms:Configure", NoKey, false},
		{"scoped", "kms:Backup", NoKey, false},
		{"scoped", "kms:Decrypt", KeyResource("app-1"), true},
		{"scoped", "kms:Decrypt", NoKey, false},
		{"deny-scoped", "kms:ListKeys", NoKey, true},                    // a scoped Deny does not block key-less routes
		{"deny-scoped", "kms:DescribeKey", KeyResource("app-1"), false}, // but does block its keys
		{"deny-scoped", "kms:DescribeKey", KeyResource("b"), true},
		{"deny-all-keys", "kms:ListKeys", NoKey, false},
		{"deny-all-keys", "kms:DescribeKey", NoKey, true},
	}
	for _, c := range cases {
		if got := snap.Allowed(c.ak, c.action, c.res); got != c.want {
			t.Errorf("Allowed(%q, %s, %q) = %v, want %v", c.ak, c.action, c.res, got, c.want)
		}
	}
}

func TestGlob(t *testing.T) {
	cases := []struct {
		p, s string
		want bool
	}{
		{"", "", true}, {"", "a", false}, {"*", "", true}, {"*", "abc", true},
		{"a*", "a", true}, {"a*c", "abbbc", true}, {"a*c", "abbb", false},
		{"?", "", false}, {"?", "x", true}, {"a?c", "abc", true}, {"a?c", "ac", false},
		{"*a*b*", "xxaxxbxx", true}, {"*a*b*", "xxbxxaxx", false},
		{"a*b*c", "aXbYbZc", true}, {"**", "x", true}, {"*?", "", false},
	}
	for _, c := range cases {
		if got := glob(c.p, c.s); got != c.want {
			t.Errorf("glob(%q, %q) = %v", c.p, c.s, got)
		}
	}
}

// TestAllowedNoAlloc pins the hot path's zero allocations.
func TestAllowedNoAlloc(t *testing.T) {
	s := newStore(t, matrixFile)
	res := KeyResource("app-1")
	n := testing.AllocsPerRun(100, func() {
		s.Allowed("ops", "kms:Decrypt", res)
		s.Allowed("denier", "kms:Decrypt", KeyResource("other"))
		s.Allowed("user", "kms:GenerateDataKey", NoKey)
		s.SecretKey("ops")
	})
	if n != 0 {
		t.Errorf("%v allocations per run", n)
	}
}

// TestConcurrentReload runs the hot path while files are swapped (run with
// -race): every decision is one of the two files' answers.
func TestConcurrentReload(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "iam.json")
	a := `{"users": [{"access_key": "u", "secret_key": "secret-a1", "policies": ["KMSKeyUser"]}]}`
	b := `{"users": [{"access_key": "u", "secret_key": "secret-b1", "policies": ["KMSAuditor"]}]}`
	s := New(rootAK, rootSecret, nil)
	if err := os.WriteFile(path, []byte(a), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadFile(path, nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				sec, ok := s.SecretKey("u")
				if !ok || (sec != "secret-a1" && sec != "secret-b1") {
					t.Errorf("SecretKey = %q, %v", sec, ok)
					return
				}
				if !s.Allowed("u", "kms:DescribeKey", NoKey) {
					t.Error("DescribeKey denied mid-reload")
					return
				}
			}
		})
	}
	for i := range 50 {
		doc := a
		if i%2 == 0 {
			doc = b
		}
		if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.LoadFile(path, nil); err != nil {
			t.Fatal(err)
		}
	}
	close(stop)
	wg.Wait()
}
