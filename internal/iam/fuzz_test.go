package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"unicode/utf8"
)

// Secrets the fuzz target's getenv and readFile hand out.
const (
	envMarker  = "ENVSECRETMARKER-41c2"
	fileMarker = "FILESECRETMARKER-90d7"
)

func fuzzGetenv(name string) string {
	if name == "UNSET" {
		return ""
	}
	return envMarker
}

func fuzzReadFile(p string) ([]byte, error) {
	if p == "missing" {
		return nil, errors.New("no such file")
	}
	return []byte(fileMarker + "\n"), nil
}

// markerOnlyInSecrets reports whether secretMarker occurs in b only inside
// "secret_key" values (of any JSON type), so an error quoting it would be quoting a secret.
// Invalid JSON counts as true: its errors carry a position, never text.
func markerOnlyInSecrets(b []byte) bool {
	var v any
	if json.Unmarshal(b, &v) != nil {
		return true
	}
	var walk func(v any, secret bool) bool
	walk = func(v any, secret bool) bool {
		switch v := v.(type) {
		case string:
			return secret || !strings.Contains(v, secretMarker)
		case []any:
			for _, e := range v {
				if !walk(e, secret) {
					return false
				}
			}
		case map[string]any:
			for k, e := range v {
				if !secret && strings.Contains(k, secretMarker) || !walk(e, secret || k == "secret_key") {
					return false
				}
			}
		}
		return true
	}
	return walk(v, false)
}

func FuzzParseFile(f *testing.F) {
	sk := `"secret_key": "` + secretMarker + `"`
	for _, seed := range []string{
		matrixFile,
		`{}`,
		`{"users": [{"access_key": "a", ` + sk + `, "policies": ["KMSKeyUser", "p"]}],
		  "policies": {"p": {"Version": "2012-10-17", "Statement": [
		   {"Sid": "x", "Effect": "Deny", "Action": ["kms:Decrypt", "kms:?ncrypt"], "Resource": ["arn:aws:kms:::key/a*b?"]},
		   {"Effect": "Allow", "Action": "kms:*", "Resource": "*"}]}}}`,
		`{"users": [{"access_key": "f", "secret_key_file": "/run/secrets/f"}, {"access_key": "e", "secret_key_env": "E"}]}`,
		`{"users": [{"access_key": "f", "secret_key_file": "missing"}, {"access_key": "e", "secret_key_env": "UNSET"}]}`,
		`{"users": [{"access_key": "a", ` + sk + `, "secret_key_env": "E"}]}`,
		`{"users": [{"access_key": "a", ` + sk + `, ` + sk + `}]}`,
		`{"users": [{"access_key": "a", "secret_key": ["` + secretMarker + `"]}]}`,
		`{"users": [{"access_key": "a", "secret_key": {"` + secretMarker + `": 1}}]}`,
		`{"users": [{"access_key": "a", "secret_key": "` + secretMarker + `\q"}]}`,
		`{"users": [{"access_key": "a", ` + sk + `, "policies": ["nope"]}]}`,
		`{"users": [{"access_key": "` + rootAK + `", ` + sk + `}]}`,
		`{"users": [{"access_key": "a", "secret_key": "short"}]}`,
		`{"users": [{"access_key": "a", ` + sk + `}, {"access_key": "a", ` + sk + `}]}`,
		`{"policies": {"p": {"Statement": {"Effect": "Allow", "NotAction": "kms:*", "Resource": "*"}}}}`,
		`{"policies": {"p": {"Statement": [{"Effect": "Allow", "Action": "kms:Nope", "Resource": "arn:aws:kms:::*"}]}}}`,
		`{"policies": {"KMSKeyUser": {"Statement": []}}}`,
		`{"users": [`,
		`{"identities": [{"identity": "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6", "policies": ["KMSKeyUser", "p"]}],
		  "policies": {"p": {"Statement": {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:::key/a*"}}}}`,
		`{"identities": [{"identity": "EA9826089311FE44D7590408EDE9150F7C637B6CAB0A91EE6FE1AA5D9FB366F6"}, {"identity": "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"}]}`,
		`{"identities": [{"identity": "xyz", "policies": ["nope"]}]}`,
		`{"identities": {"identity": 1}}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		snap, err := ParseFile(b, rootAK, fuzzGetenv, fuzzReadFile)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "iam: ") {
				t.Fatalf("error without prefix: %q", msg)
			}
			for _, m := range []string{envMarker, fileMarker} {
				if strings.Contains(msg, m) && !bytes.Contains(b, []byte(m)) {
					t.Fatalf("error leaks a resolved secret: %q", msg)
				}
			}
			if strings.Contains(msg, secretMarker) && markerOnlyInSecrets(b) {
				t.Fatalf("error leaks a secret_key: %q", msg)
			}
			if _, err2 := ParseFile(b, rootAK, fuzzGetenv, fuzzReadFile); err2 == nil || err2.Error() != msg {
				t.Fatalf("nondeterministic: %q then %v", msg, err2)
			}
			return
		}
		for ak, u := range snap.users {
			if validAccessKey(ak) != nil || ak == rootAK || utf8.RuneCountInString(u.secret) < MinSecretLength {
				t.Fatalf("accepted a bad user %q", ak)
			}
		}
		// An accepted file re-validates, independent of formatting and
		// member order, with the same decisions.
		var v any
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("accepted invalid JSON: %v", err)
		}
		b2, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		snap2, err := ParseFile(b2, rootAK, fuzzGetenv, fuzzReadFile)
		if err != nil {
			t.Fatalf("re-encoded file rejected: %v\n%s", err, b2)
		}
		if snap2.Users() != snap.Users() || snap2.Policies() != snap.Policies() {
			t.Fatalf("re-encoded: %d/%d users, %d/%d policies", snap2.Users(), snap.Users(), snap2.Policies(), snap.Policies())
		}
		if snap2.Identities() != snap.Identities() {
			t.Fatalf("re-encoded: %d/%d identities", snap2.Identities(), snap.Identities())
		}
		resources := []string{NoKey, KeyResource("a"), KeyResource("ab1"), KeyResource("app-1"), KeyResource("other")}
		for id := range snap.identities {
			if !ValidIdentity(id) || strings.ToLower(id) != id {
				t.Fatalf("accepted a bad identity %q", id)
			}
			for _, a := range knownActions {
				for _, r := range resources {
					if snap.IdentityAllowed(id, a, r) != snap2.IdentityAllowed(id, a, r) {
						t.Fatalf("identity %q %s %s: decision changed on re-encode", id, a, r)
					}
				}
			}
		}
		for ak := range snap.users {
			if s1, _ := snap.SecretKey(ak); s1 != snap2.users[ak].secret {
				t.Fatalf("%q: secret changed on re-encode", ak)
			}
			for _, a := range knownActions {
				for _, r := range resources {
					if snap.Allowed(ak, a, r) != snap2.Allowed(ak, a, r) {
						t.Fatalf("%q %s %s: decision changed on re-encode", ak, a, r)
					}
				}
			}
		}
	})
}
