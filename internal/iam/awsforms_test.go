package iam

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// storeFor loads doc into a Store whose AWS account id is account.
func storeFor(t *testing.T, account, doc string) (*Store, error) {
	t.Helper()
	s := New(rootAK, rootSecret, nil)
	if err := s.SetAWSAccountID(account); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "iam.json")
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	return s, s.LoadFile(path, noEnv)
}

// TestAWSResourceForms: resources as AWS writes them (region and account)
// and as RustFS writes them ("arn:aws:kms:::*") mean what they say here:
// the region is ignored, the account must be the server's.
func TestAWSResourceForms(t *testing.T) {
	const doc = `{"users": [
	  {"access_key": "regional", "secret_key": "secret-regional", "policies": ["regional"]},
	  {"access_key": "rustfs",   "secret_key": "secret-rustfs",   "policies": ["rustfs"]},
	  {"access_key": "aliases",  "secret_key": "secret-aliases",  "policies": ["aliases"]},
	  {"access_key": "denied",   "secret_key": "secret-denied",   "policies": ["denied"]}],
	 "policies": {
	  "regional": {"Statement": {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:us-east-1:111122223333:key/app-*"}},
	  "rustfs":   {"Statement": {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:ListKeys", "kms:ListAliases"], "Resource": "arn:aws:kms:::*"}},
	  "aliases":  {"Statement": {"Effect": "Allow", "Action": "kms:CreateAlias", "Resource": ["arn:aws:kms:*:*:alias/app/*", "arn:aws:kms:eu-west-1::key/app-?"]}},
	  "denied":   {"Statement": [
	    {"Effect": "Allow", "Action": "kms:*", "Resource": "arn:aws:kms:eu-west-1:111122223333:*"},
	    {"Effect": "Deny", "Action": "kms:Decrypt", "Resource": "arn:aws:kms:*:111122223333:key/secret"}]}}}`
	s, err := storeFor(t, "111122223333", doc)
	if err != nil {
		t.Fatal(err)
	}
	if s.AWSAccountID() != "111122223333" {
		t.Fatalf("account: %s", s.AWSAccountID())
	}
	cases := []struct {
		user, action, resource string
		want                   bool
	}{
		{"regional", "kms:Decrypt", KeyResource("app-1"), true},
		{"regional", "kms:Decrypt", KeyResource("other"), false},
		{"regional", "kms:Decrypt", NoKey, false},
		{"regional", "kms:Encrypt", KeyResource("app-1"), false},
		{"rustfs", "kms:GenerateDataKey", KeyResource("any"), true},
		{"rustfs", "kms:GenerateDataKeyWithoutPlaintext", KeyResource("any"), true},
		{"rustfs", "kms:ListKeys", NoKey, true},
		{"rustfs", "kms:ListAliases", NoKey, true},
		{"rustfs", "kms:GenerateDataKey", AliasResource("alias/x"), true},
		{"rustfs", "kms:Decrypt", KeyResource("any"), false},
		{"aliases", "kms:CreateAlias", AliasResource("alias/app/one"), true},
		{"aliases", "kms:CreateAlias", AliasResource("alias/other"), false},
		{"aliases", "kms:CreateAlias", KeyResource("app-1"), true},
		{"aliases", "kms:CreateAlias", KeyResource("app-10"), false},
		{"aliases", "kms:CreateAlias", NoKey, false},
		{"denied", "kms:Decrypt", KeyResource("app-1"), true},
		{"denied", "kms:Decrypt", KeyResource("secret"), false},
		{"denied", "kms:Encrypt", KeyResource("secret"), true},
		{"denied", "kms:CreateKey", NoKey, true},
	}
	for _, c := range cases {
		if got := s.Allowed(c.user, c.action, c.resource); got != c.want {
			t.Errorf("Allowed(%s, %s, %s) = %v, want %v", c.user, c.action, c.resource, got, c.want)
		}
	}

	// The same file on a server of another account is refused, naming
	// the account; with the default account too.
	for _, account := range []string{"000000000000", "999999999999"} {
		if _, err := storeFor(t, account, doc); err == nil || !strings.Contains(err.Error(), `account "111122223333" is not this server's (--aws-account-id `+account+`)`) {
			t.Errorf("account %s: %v", account, err)
		}
	}
	for _, bad := range []string{"", "12345678901", "1234567890123", "12345678901a"} {
		if err := New(rootAK, rootSecret, nil).SetAWSAccountID(bad); err == nil {
			t.Errorf("SetAWSAccountID(%q) accepted", bad)
		}
	}
}

// TestAWSActionNames: the admin actions that stand for several AWS
// operations grant and deny them; the AWS names grant only themselves.
func TestAWSActionNames(t *testing.T) {
	snap := mustParse(t, `{"users": [
	  {"access_key": "admin-names", "secret_key": "secret-admin-names", "policies": ["admin-names"]},
	  {"access_key": "aws-names",   "secret_key": "secret-aws-names",   "policies": ["aws-names"]},
	  {"access_key": "deny-gen",    "secret_key": "secret-deny-gen",    "policies": ["deny-gen"]}],
	 "policies": {
	  "admin-names": {"Statement": {"Effect": "Allow", "Action": ["kms:DeleteKey", "kms:RotateKey", "kms:GenerateDataKey"], "Resource": "*"}},
	  "aws-names":   {"Statement": {"Effect": "Allow", "Action": ["kms:ScheduleKeyDeletion", "kms:rotatekeyondemand", "kms:Get*", "kms:List*"], "Resource": "*"}},
	  "deny-gen":    {"Statement": [
	    {"Effect": "Allow", "Action": "kms:*", "Resource": "*"},
	    {"Effect": "Deny", "Action": "kms:GenerateDataKey", "Resource": "*"}]}}}`)
	res := KeyResource("k")
	for _, a := range []string{"kms:DeleteKey", "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RotateKey", "kms:RotateKeyOnDemand",
		"kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"} {
		if !snap.Allowed("admin-names", a, res) {
			t.Errorf("admin names: %s denied", a)
		}
	}
	for _, a := range []string{"kms:GetKeyRotationStatus", "kms:ListKeyRotations", "kms:ListResourceTags", "kms:GenerateRandom"} {
		if snap.Allowed("admin-names", a, res) {
			t.Errorf("admin names: %s allowed", a)
		}
	}
	for a, want := range map[string]bool{
		"kms:ScheduleKeyDeletion": true, "kms:RotateKeyOnDemand": true, "kms:GetKeyRotationStatus": true,
		"kms:ListKeyRotations": true, "kms:ListResourceTags": true, "kms:ListKeys": true,
		"kms:DeleteKey": false, "kms:CancelKeyDeletion": false, "kms:RotateKey": false, "kms:EnableKeyRotation": false,
	} {
		if got := snap.Allowed("aws-names", a, res); got != want {
			t.Errorf("AWS names: %s = %v, want %v", a, got, want)
		}
	}
	for a, want := range map[string]bool{"kms:GenerateDataKey": false, "kms:GenerateDataKeyWithoutPlaintext": false, "kms:GenerateRandom": true, "kms:Decrypt": true} {
		if got := snap.Allowed("deny-gen", a, res); got != want {
			t.Errorf("deny GenerateDataKey: %s = %v, want %v", a, got, want)
		}
	}
}
