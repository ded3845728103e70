package iam

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// Two KES identities (hex SHA-256 of a certificate's public key).
const (
	identA = "ea9826089311fe44d7590408ede9150f7c637b6cab0a91ee6fe1aa5d9fb366f6"
	identB = "0426fa9a04bc2756b92fbe8a97e1a1e07b53ecf04ed33da22c33e5c9faeb8cbb"
)

func TestIdentities(t *testing.T) {
	s := newStore(t, `{
	 "users": [{"access_key": "`+identA+`", "secret_key": "a-user-secret", "policies": ["consoleAdmin"]}],
	 "identities": [
	  {"identity": "`+strings.ToUpper(identA)+`", "policies": ["minio"]},
	  {"identity": "`+identB+`", "policies": ["KMSKeyUser", "KMSAuditor"]}],
	 "policies": {"minio": {"Statement": [
	  {"Effect": "Allow", "Action": ["kms:CreateKey", "kms:GenerateDataKey", "kms:Decrypt", "kms:ListKeys"], "Resource": "arn:aws:kms:::key/minio-*"},
	  {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:::key/minio-secret"}]}}}`)
	if got := s.Current().Identities(); got != 2 {
		t.Fatalf("Identities() = %d, want 2", got)
	}
	for _, c := range []struct {
		id, action, key string
		want            bool
	}{
		{identA, "kms:GenerateDataKey", "minio-1", true},
		{identA, "kms:CreateKey", "minio-new", true},
		{identA, "kms:Decrypt", "minio-1", true},
		{identA, "kms:Decrypt", "minio-secret", false}, // Deny wins
		{identA, "kms:GenerateDataKey", "other", false},
		{identA, "kms:Encrypt", "minio-1", false},
		{identA, "kms:ListKeys", "", false}, // scoped: not the key-less resource
		{identA, "kms:Configure", "", false},
		{identB, "kms:Decrypt", "anything", true},
		{identB, "kms:ListKeys", "", true},
		{identB, "kms:CreateKey", "x", false},
		{strings.ToUpper(identB), "kms:Decrypt", "anything", false}, // the server computes lower case
		{"0000000000000000000000000000000000000000000000000000000000000000", "kms:Decrypt", "x", false},
		{rootAK, "kms:Decrypt", "x", false}, // root is a user, never an identity
	} {
		if got := s.IdentityAllowedOnKey(c.id, c.action, c.key); got != c.want {
			t.Errorf("IdentityAllowedOnKey(%.8s, %s, %q) = %v, want %v", c.id, c.action, c.key, got, c.want)
		}
	}
	// A user whose access key spells an identity is still only a user:
	// the two namespaces never mix.
	if !s.AllowedOnKey(identA, "kms:Configure", "") {
		t.Error("the user named like an identity lost its consoleAdmin rights")
	}
	if p, ok := s.IdentityPolicies(identB); !ok || !slices.Equal(p, []string{"KMSKeyUser", "KMSAuditor"}) {
		t.Errorf("IdentityPolicies = %v, %v", p, ok)
	}
	if _, ok := s.IdentityPolicies("nope"); ok {
		t.Error("unknown identity reported as known")
	}
}

func TestIdentityValidation(t *testing.T) {
	for _, c := range []struct{ doc, want string }{
		{`{"identities": {}}`, "identities must be a list"},
		{`{"identities": [1]}`, "identity 0: must be a JSON object"},
		{`{"identities": [{}]}`, "missing identity"},
		{`{"identities": [{"identity": "abc"}]}`, "must be 64 hexadecimal characters"},
		{`{"identities": [{"identity": "` + strings.Repeat("g", 64) + `"}]}`, "must be 64 hexadecimal"},
		{`{"identities": [{"identity": "` + identA + `", "policy": ["KMSKeyUser"]}]}`, `unknown field "policy"`},
		{`{"identities": [{"identity": "` + identA + `", "policies": "KMSKeyUser"}]}`, "policies must be a list"},
		{`{"identities": [{"identity": "` + identA + `", "policies": ["kmskeyuser"]}]}`, `did you mean the built-in "KMSKeyUser"`},
		{`{"identities": [{"identity": "` + identA + `"}, {"identity": "` + strings.ToUpper(identA) + `"}]}`, "duplicate identity (also identity 0)"},
	} {
		_, err := ParseFile([]byte(c.doc), rootAK, noEnv, noFiles)
		if err == nil || !strings.Contains(err.Error(), c.want) || !strings.HasPrefix(err.Error(), "iam: ") {
			t.Errorf("%s: err = %v, want it to contain %q", c.doc, err, c.want)
		}
	}
	// An identity without policies is known (it can describe itself) and
	// may do nothing else.
	snap := mustParse(t, `{"identities": [{"identity": "`+identA+`"}]}`)
	if _, ok := snap.IdentityPolicies(identA); !ok || snap.IdentityAllowed(identA, "kms:DescribeKey", KeyResource("k")) {
		t.Error("identity without policies: not known, or allowed something")
	}
}

// The identities list reloads with the file, like users.
func TestIdentityReload(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iam.json")
	doc := func(policy string) string {
		return `{"identities": [{"identity": "` + identA + `", "policies": ["` + policy + `"]}]}`
	}
	writeAtomic(t, path, doc("KMSAuditor"))
	s, logs := startWatch(t, path, 20*time.Millisecond, nil)
	if s.IdentityAllowedOnKey(identA, "kms:Decrypt", "k") {
		t.Fatal("auditor identity may decrypt")
	}
	writeAtomic(t, path, doc("KMSKeyUser"))
	eventually(t, "the identity's new policy", func() bool { return s.IdentityAllowedOnKey(identA, "kms:Decrypt", "k") })
	writeAtomic(t, path, `{"identities": [{"identity": "bad"}]}`)
	eventually(t, "the rejection to be logged", func() bool { return strings.Contains(logs.String(), "IAM file rejected") })
	if !s.IdentityAllowedOnKey(identA, "kms:Decrypt", "k") {
		t.Fatal("a rejected file changed the identity's rights")
	}
	writeAtomic(t, path, `{}`)
	eventually(t, "the identity to be removed", func() bool { _, ok := s.IdentityPolicies(identA); return !ok })
}
