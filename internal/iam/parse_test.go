package iam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// secretMarker is the secret in every fixture here and in the fuzz seeds;
// no error may ever contain it.
const secretMarker = "SECRETMARKER-7f3a9c"

// userDoc is a one-user file with the given user body and policies.
func userDoc(user, policies string) string {
	if policies == "" {
		policies = "{}"
	}
	return `{"users": [` + user + `], "policies": ` + policies + `}`
}

func policyDoc(stmt string) string {
	return userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "policies": ["p"]}`,
		`{"p": {"Version": "2012-10-17", "Statement": [`+stmt+`]}}`)
}

func TestValidationErrors(t *testing.T) {
	ok := `{"access_key": "u", "secret_key": "` + secretMarker + `"}`
	cases := []struct {
		name, doc, want string
	}{
		{"not JSON", `{"users": [`, "unexpected end of input"},
		{"syntax error position", "{\n \"users\": [}\n", "line 2, column 13"},
		{"syntax error inside a secret", `{"users": [{"access_key": "u", "secret_key": "` + secretMarker + `\q"}]}`, "invalid JSON"},
		{"not an object", `[]`, "must be a JSON object"},
		{"null", `null`, "must be a JSON object"},
		{"unknown top-level field", `{"users": [], "groups": []}`, `top level: unknown field "groups"`},
		{"top-level field case", `{"Users": []}`, `unknown field "Users"`},
		{"duplicate top-level field", `{"users": [], "users": []}`, `duplicate field "users" in the top-level object`},
		{"duplicate user field", `{"users": [{"access_key": "u", "secret_key": "` + secretMarker + `", "secret_key": "x"}]}`, `duplicate field "secret_key" in users[0]`},
		{"duplicate policy", `{"policies": {"p": {"Statement": []}, "p": {"Statement": []}}}`, `duplicate field "p" in policies`},
		{"duplicate statement field", policyDoc(`{"Effect": "Allow", "Effect": "Deny", "Action": "kms:*", "Resource": "*"}`), `duplicate field "Effect" in policies.p.Statement[0]`},
		{"users not a list", `{"users": {}}`, "users must be a list"},
		{"user not an object", `{"users": ["u"]}`, "user 0: must be a JSON object"},
		{"unknown user field", userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "role": "x"}`, ""), `user 0 ("u"): unknown field "role"`},
		{"missing access key", userDoc(`{"secret_key": "`+secretMarker+`"}`, ""), "user 0: missing access_key"},
		{"access key not a string", userDoc(`{"access_key": 7, "secret_key": "`+secretMarker+`"}`, ""), "user 0: access_key must be a string"},
		{"empty access key", userDoc(`{"access_key": "", "secret_key": "`+secretMarker+`"}`, ""), "access key must be 1 to 128"},
		{"access key with slash", userDoc(`{"access_key": "a/b", "secret_key": "`+secretMarker+`"}`, ""), "printable ASCII"},
		{"access key with space", userDoc(`{"access_key": "a b", "secret_key": "`+secretMarker+`"}`, ""), "printable ASCII"},
		{"duplicate access key", `{"users": [` + ok + `, {"access_key": "v", "secret_key": "12345678"}, ` + ok + `]}`, `user 2 ("u"): duplicate access key (also user 0)`},
		{"root access key", userDoc(`{"access_key": "`+rootAK+`", "secret_key": "`+secretMarker+`"}`, ""), "access key is the root user's"},
		{"no secret", userDoc(`{"access_key": "u"}`, ""), "no secret"},
		{"two secrets", userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "secret_key_env": "X"}`, ""), "several secret sources (secret_key, secret_key_env)"},
		{"three secrets", userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "secret_key_env": "X", "secret_key_file": "/f"}`, ""), "several secret sources"},
		{"empty secret", userDoc(`{"access_key": "u", "secret_key": ""}`, ""), "secret_key: empty secret"},
		{"short secret", userDoc(`{"access_key": "u", "secret_key": "1234567"}`, ""), "shorter than 8 characters"},
		{"short multibyte secret", userDoc(`{"access_key": "u", "secret_key": "ééééééé"}`, ""), "shorter than 8 characters"},
		{"null secret", userDoc(`{"access_key": "u", "secret_key": null}`, ""), "secret_key must be a string"},
		{"secret in a list", userDoc(`{"access_key": "u", "secret_key": ["`+secretMarker+`"]}`, ""), "secret_key must be a string"},
		{"numeric secret", userDoc(`{"access_key": "u", "secret_key": 12345678}`, ""), "secret_key must be a string"},
		{"missing secret file", userDoc(`{"access_key": "u", "secret_key_file": "/nonexistent/s"}`, ""), `secret_key_file "/nonexistent/s"`},
		{"empty secret file path", userDoc(`{"access_key": "u", "secret_key_file": ""}`, ""), "secret_key_file: empty path"},
		{"unset env", userDoc(`{"access_key": "u", "secret_key_env": "UNSET_VAR"}`, ""), `secret_key_env "UNSET_VAR": environment variable is unset or empty`},
		{"short env secret", userDoc(`{"access_key": "u", "secret_key_env": "SHORT"}`, ""), `secret_key_env "SHORT": secret is shorter`},
		{"short file secret", userDoc(`{"access_key": "u", "secret_key_file": "short"}`, ""), `secret_key_file "short": secret is shorter`},
		{"undefined policy", userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "policies": ["nope"]}`, ""), `user 0 ("u"): policy "nope" is not defined`},
		{"built-in miscased", userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "policies": ["kmskeyuser"]}`, ""), `did you mean the built-in "KMSKeyUser"`},
		{"policies not a list", userDoc(`{"access_key": "u", "secret_key": "`+secretMarker+`", "policies": "KMSKeyUser"}`, ""), "policies must be a list"},
		{"redefined built-in", `{"policies": {"KMSKeyUser": {"Statement": []}}}`, `redefines the built-in policy "KMSKeyUser"`},
		{"redefined built-in other case", `{"policies": {"consoleadmin": {"Statement": []}}}`, `redefines the built-in policy "consoleAdmin"`},
		{"empty policy name", `{"policies": {"": {"Statement": []}}}`, "empty policy name"},
		{"policy not an object", `{"policies": {"p": []}}`, `policy "p": must be a JSON object`},
		{"unknown policy field", `{"policies": {"p": {"Statement": [], "Statements": []}}}`, `unknown field "Statements"`},
		{"missing Statement", `{"policies": {"p": {"Version": "2012-10-17"}}}`, "missing Statement"},
		{"Statement not a list", `{"policies": {"p": {"Statement": "x"}}}`, "Statement must be"},
		{"bad version", `{"policies": {"p": {"Version": "2024-01-01", "Statement": []}}}`, `Version "2024-01-01"`},
		{"numeric version", `{"policies": {"p": {"Version": 1, "Statement": []}}}`, "Version must be a string"},
		{"bad effect", policyDoc(`{"Effect": "allow", "Action": "kms:*", "Resource": "*"}`), `statement 0: Effect "allow"`},
		{"missing effect", policyDoc(`{"Action": "kms:*", "Resource": "*"}`), "missing Effect"},
		{"sid in context", policyDoc(`{"Sid": "s1", "Effect": "Maybe", "Action": "kms:*", "Resource": "*"}`), `policy "p": statement 0 (Sid "s1")`},
		{"second statement", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "*"}, {"Effect": "Allow", "Action": "kms:Nope", "Resource": "*"}`), `statement 1: unknown action "kms:Nope"`},
		{"NotAction", policyDoc(`{"Effect": "Allow", "NotAction": "kms:Decrypt", "Resource": "*"}`), "NotAction is not supported"},
		{"Condition", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "*", "Condition": {}}`), "Condition is not supported"},
		{"unknown statement field", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "*", "resource": "*"}`), `unknown field "resource"`},
		{"missing action", policyDoc(`{"Effect": "Allow", "Resource": "*"}`), "missing Action"},
		{"empty action list", policyDoc(`{"Effect": "Allow", "Action": [], "Resource": "*"}`), "empty Action list"},
		{"null action", policyDoc(`{"Effect": "Allow", "Action": null, "Resource": "*"}`), "Action must be a string or a list"},
		{"numeric action", policyDoc(`{"Effect": "Allow", "Action": [1], "Resource": "*"}`), "Action must be a string or a list"},
		{"empty action", policyDoc(`{"Effect": "Allow", "Action": "", "Resource": "*"}`), "empty action"},
		{"typo action", policyDoc(`{"Effect": "Allow", "Action": "kms:GenrateDataKey", "Resource": "*"}`), `unknown action "kms:GenrateDataKey"`},
		{"wildcard matching nothing", policyDoc(`{"Effect": "Allow", "Action": "kms:Frob*", "Resource": "*"}`), `action pattern "kms:Frob*" matches no known action`},
		{"s3 action", policyDoc(`{"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"}`), `only "kms:" actions`},
		{"legacy admin action", policyDoc(`{"Effect": "Allow", "Action": "admin:KMSCreateKey", "Resource": "*"}`), `only "kms:" actions`},
		{"missing resource", policyDoc(`{"Effect": "Allow", "Action": "kms:*"}`), "missing Resource"},
		{"empty resource list", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": []}`), "empty Resource list"},
		{"another account", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:us-east-1:123456789012:key/k"}`), `account "123456789012" is not this server's (--aws-account-id 000000000000)`},
		{"another account pattern", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:*:1*:key/k"}`), `account "1*" is not this server's`},
		{"region with a slash", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:us/east:000000000000:key/k"}`), "the region holds a character"},
		{"key resource type pattern", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:::k*"}`), "followed by a key id pattern"},
		{"alias ARN with a dot", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:::alias/a.b"}`), "alias names only hold"},
		{"s3 ARN", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:s3:::bucket"}`), "must be \"*\" or an ARN"},
		{"empty key id", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:::key/"}`), "names nothing"},
		{"impossible key id", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:::key/a/b"}`), "key ids only hold"},
		{"uppercase ARN", policyDoc(`{"Effect": "Allow", "Action": "kms:*", "Resource": "ARN:AWS:KMS:::key/a"}`), "must be \"*\" or an ARN"},
	}
	getenv := func(k string) string {
		return map[string]string{"SHORT": "1234567"}[k]
	}
	readFile := func(p string) ([]byte, error) {
		if p == "short" {
			return []byte("1234567\n"), nil
		}
		return os.ReadFile(p)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			snap, err := ParseFile([]byte(c.doc), rootAK, getenv, readFile)
			if err == nil {
				t.Fatalf("accepted (%d users)", snap.Users())
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Errorf("error %q does not contain %q", err, c.want)
			}
			if !strings.HasPrefix(err.Error(), "iam: ") {
				t.Errorf("error %q lacks the iam: prefix", err)
			}
			if strings.Contains(err.Error(), secretMarker) {
				t.Errorf("error leaks the secret: %q", err)
			}
		})
	}
}

func TestAcceptedForms(t *testing.T) {
	for name, doc := range map[string]string{
		"empty object":      `{}`,
		"null lists":        `{"users": null, "policies": null}`,
		"no version":        `{"policies": {"p": {"Statement": []}}}`,
		"2008 version":      `{"policies": {"p": {"Version": "2008-10-17", "Id": "x", "Statement": []}}}`,
		"single statement":  `{"policies": {"p": {"Statement": {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}}}}`,
		"star action":       policyDoc(`{"Effect": "Allow", "Action": "*", "Resource": "*"}`),
		"user without list": userDoc(`{"access_key": "u", "secret_key": "12345678"}`, ""),
		"spec example": `{"users": [{"access_key": "app1", "secret_key": "app1-secret", "policies": ["KMSKeyUser"]},
		  {"access_key": "ops", "secret_key_file": "ops-file", "policies": ["ops-keys"]},
		  {"access_key": "ci", "secret_key_env": "CI_SECRET", "policies": ["KMSAuditor"]}],
		  "policies": {"ops-keys": {"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
		  "Action": ["kms:GenerateDataKey", "kms:Decrypt"], "Resource": ["arn:aws:kms:::key/app-*"]}]}}}`,
	} {
		_, err := ParseFile([]byte(doc), rootAK,
			func(string) string { return "ci-secret-value" },
			func(string) ([]byte, error) { return []byte("ops-secret\n"), nil })
		if err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestSecretSources(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	nl := write("nl", "file-secret-1\n")
	crlf := write("crlf", "file-secret-2\r\n")
	spaces := write("spaces", "  spaced secret  ")
	big := write("big", strings.Repeat("x", maxSecretSize+1))
	env := map[string]string{"APP_SECRET": "env-secret-1", "PADDED": " env secret\n"}
	doc := `{"users": [
	  {"access_key": "f1", "secret_key_file": "` + nl + `"},
	  {"access_key": "f2", "secret_key_file": "` + crlf + `"},
	  {"access_key": "f3", "secret_key_file": "` + spaces + `"},
	  {"access_key": "e1", "secret_key_env": "APP_SECRET"},
	  {"access_key": "e2", "secret_key_env": "PADDED"}]}`
	path := write("iam.json", doc)
	s := New(rootAK, rootSecret, nil)
	if err := s.LoadFile(path, func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	for ak, want := range map[string]string{
		"f1": "file-secret-1", "f2": "file-secret-2", "f3": "  spaced secret  ",
		"e1": "env-secret-1", "e2": " env secret\n", // environment values are taken verbatim
	} {
		if got, ok := s.SecretKey(ak); !ok || got != want {
			t.Errorf("SecretKey(%q) = %q, %v; want %q", ak, got, ok, want)
		}
	}
	// An oversized secret file is refused (Store reads with a cap).
	bad := write("bad.json", `{"users": [{"access_key": "b", "secret_key_file": "`+big+`"}]}`)
	if err := s.LoadFile(bad, nil); err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("oversized secret file: %v", err)
	}
}

// TestFailedReloadKeepsPrevious: every kind of broken file leaves the
// previous snapshot, and its users, in force.
func TestFailedReloadKeepsPrevious(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "iam.json")
	good := `{"users": [{"access_key": "old", "secret_key": "old-secret", "policies": ["KMSAuditor"]}]}`
	if err := os.WriteFile(path, []byte(good), 0o600); err != nil {
		t.Fatal(err)
	}
	s := New(rootAK, rootSecret, nil)
	if err := s.LoadFile(path, nil); err != nil {
		t.Fatal(err)
	}
	before := s.Current()
	for _, broken := range []string{
		`{"users": [`,
		`{"users": [{"access_key": "new", "secret_key": "new-secret", "policies": ["nope"]}]}`,
		`{"users": [{"access_key": "new", "secret_key": "new-secret"}, {"access_key": "new", "secret_key": "new-secret"}]}`,
		`{"users": [{"access_key": "new", "secret_key_env": "KEYWARD_IAM_TEST_UNSET_VAR"}]}`,
	} {
		if err := os.WriteFile(path, []byte(broken), 0o600); err != nil {
			t.Fatal(err)
		}
		if err := s.LoadFile(path, nil); err == nil {
			t.Fatalf("accepted %s", broken)
		}
		if s.Current() != before {
			t.Fatal("snapshot replaced by a failed load")
		}
		if sec, ok := s.SecretKey("old"); !ok || sec != "old-secret" || !s.Allowed("old", "kms:ListKeys", NoKey) {
			t.Fatal("old user lost after a failed load")
		}
		if _, ok := s.SecretKey("new"); ok {
			t.Fatal("user from a rejected file is live")
		}
	}
	// A missing file is a failed load too.
	if err := s.LoadFile(filepath.Join(dir, "missing.json"), nil); err == nil || s.Current() != before {
		t.Fatalf("missing file: err %v, snapshot kept %v", err, s.Current() == before)
	}
}
