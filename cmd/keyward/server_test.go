package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBoundsFlags: the flags of the bounds on unauthenticated work, from
// the command line and the environment, their defaults and their checks.
func TestBoundsFlags(t *testing.T) {
	f, err := parseServerFlags(nil, parseEnv(nil), io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if f.allowUnsignedPayload || f.maxConnections != 1024 || f.maxBodyMemoryMiB != 64 {
		t.Errorf("defaults: unsigned %v, connections %d, body memory %d MiB", f.allowUnsignedPayload, f.maxConnections, f.maxBodyMemoryMiB)
	}
	env := []string{"KEYWARD_ALLOW_UNSIGNED_PAYLOAD=true", "KEYWARD_MAX_CONNECTIONS=10", "KEYWARD_MAX_BODY_MEMORY=3"}
	if f, err = parseServerFlags(nil, parseEnv(env), io.Discard); err != nil {
		t.Fatal(err)
	}
	if !f.allowUnsignedPayload || f.maxConnections != 10 || f.maxBodyMemoryMiB != 3 {
		t.Errorf("from the environment: %+v", f)
	}
	// The command line wins.
	if f, err = parseServerFlags([]string{"--allow-unsigned-payload=false", "--max-connections", "20", "--max-body-memory", "5"}, parseEnv(env), io.Discard); err != nil {
		t.Fatal(err)
	}
	if f.allowUnsignedPayload || f.maxConnections != 20 || f.maxBodyMemoryMiB != 5 {
		t.Errorf("flags over the environment: %+v", f)
	}
	for _, tc := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--max-connections", "0"}, nil, "--max-connections must be at least 1"},
		{[]string{"--max-body-memory", "0"}, nil, "--max-body-memory must be between 1 and"},
		{[]string{"--max-body-memory", "2000000"}, nil, "--max-body-memory must be between 1 and"},
		{nil, []string{"KEYWARD_MAX_CONNECTIONS=lots"}, "KEYWARD_MAX_CONNECTIONS: not an integer"},
		{nil, []string{"KEYWARD_MAX_BODY_MEMORY=1.5"}, "KEYWARD_MAX_BODY_MEMORY: not an integer"},
		{nil, []string{"KEYWARD_ALLOW_UNSIGNED_PAYLOAD=maybe"}, "KEYWARD_ALLOW_UNSIGNED_PAYLOAD: not a boolean"},
	} {
		if _, err := parseServerFlags(tc.args, parseEnv(tc.env), io.Discard); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v %v: got %v, want %q", tc.args, tc.env, err, tc.want)
		}
	}
}
func TestSecretFlags(t *testing.T) {
	f, err := parseServerFlags(nil, parseEnv([]string{"KEYWARD_SECRETS_DIR=/run/s", "KEYWARD_NO_PERSIST_SECRETS=true"}), io.Discard)
	if err != nil || f.secretsDir != "/run/s" || !f.noPersistSecrets {
		t.Fatalf("from the environment: %+v %v", f, err)
	}
	f, err = parseServerFlags([]string{"--secrets-dir", "/other", "--no-persist-secrets=false"}, parseEnv([]string{"KEYWARD_SECRETS_DIR=/run/s", "KEYWARD_NO_PERSIST_SECRETS=1"}), io.Discard)
	if err != nil || f.secretsDir != "/other" || f.noPersistSecrets {
		t.Fatalf("flags win over the environment: %+v %v", f, err)
	}
	for _, c := range []struct {
		args, env []string
		want      string
	}{
		{[]string{"--dev", "--no-persist-secrets"}, nil, "--no-persist-secrets"},
		{[]string{"--dev"}, []string{"KEYWARD_NO_PERSIST_SECRETS=yes"}, "KEYWARD_NO_PERSIST_SECRETS"},
	} {
		if _, err := parseServerFlags(c.args, parseEnv(c.env), io.Discard); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%v %v: want an error naming %s; got %v", c.args, c.env, c.want, err)
		}
	}
}

func TestSecretResolverWiring(t *testing.T) {
	dir, dataDir := t.TempDir(), t.TempDir()
	r, err := secretResolver(dir, dataDir, parseEnv([]string{"KEYWARD_SECRET_A=first", "KEYWARD_SECRET_A=second", "OTHER=x"}))
	if err != nil || r.Dir != dir {
		t.Fatalf("%+v %v", r, err)
	}
	if v, ok := r.LookupEnv("KEYWARD_SECRET_A"); !ok || v != "first" {
		t.Errorf("lookup: %q %v (want the first, as the process environment does)", v, ok)
	}
	if _, ok := r.LookupEnv("KEYWARD_SECRET_B"); ok {
		t.Error("an unset variable was found")
	}
	file := filepath.Join(dir, "f")
	os.WriteFile(file, nil, 0o600)
	for _, bad := range []string{file, filepath.Join(dir, "missing")} {
		if _, err := secretResolver(bad, dataDir, parseEnv(nil)); err == nil {
			t.Errorf("--secrets-dir %s accepted", bad)
		}
	}
	if r, err := secretResolver("", dataDir, parseEnv(nil)); err != nil || r.Dir != "" {
		t.Errorf("no --secrets-dir: %+v %v", r, err)
	}
	// A secrets dir holding the data dir (or being it, or /) is refused.
	inner := filepath.Join(dir, "data")
	os.Mkdir(inner, 0o700)
	for _, d := range []string{dir, "/"} {
		if _, err := secretResolver(d, inner, parseEnv(nil)); err == nil || !strings.Contains(err.Error(), "holds the data dir") {
			t.Errorf("--secrets-dir %s over the data dir %s: %v", d, inner, err)
		}
	}
	if _, err := secretResolver(inner, inner, parseEnv(nil)); err == nil {
		t.Error("--secrets-dir equal to the data dir accepted")
	}
}

// TestAWSAccountIDFlag: --aws-account-id (KEYWARD_AWS_ACCOUNT_ID) defaults
// to 000000000000 and must be 12 digits.
func TestAWSAccountIDFlag(t *testing.T) {
	f, err := parseServerFlags(nil, parseEnv(nil), io.Discard)
	if err != nil || f.awsAccountID != "000000000000" {
		t.Fatalf("default: %q %v", f.awsAccountID, err)
	}
	if f, err = parseServerFlags(nil, parseEnv([]string{"KEYWARD_AWS_ACCOUNT_ID=111122223333"}), io.Discard); err != nil || f.awsAccountID != "111122223333" {
		t.Fatalf("from the environment: %q %v", f.awsAccountID, err)
	}
	if f, err = parseServerFlags([]string{"--aws-account-id", "444455556666"}, parseEnv([]string{"KEYWARD_AWS_ACCOUNT_ID=111122223333"}), io.Discard); err != nil || f.awsAccountID != "444455556666" {
		t.Fatalf("the command line wins: %q %v", f.awsAccountID, err)
	}
	for _, bad := range []string{"12345", "1234567890123", "11112222333x"} {
		if _, err := parseServerFlags([]string{"--aws-account-id", bad}, parseEnv(nil), io.Discard); err == nil || !strings.Contains(err.Error(), "--aws-account-id must be 12 digits") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}
