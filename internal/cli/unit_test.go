package cli

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/keyward/keyward/client"
)

func TestParseArgs(t *testing.T) {
	defs := append([]flagDef{strFlag("days", "N", ""), listOf("tag", "K=V", ""), boolFlagDef("now", "")}, globalFlags...)
	for _, tc := range []struct {
		args    []string
		flags   map[string][]string
		pos     []string
		wantErr string
	}{
		{args: []string{"k1", "--days", "7", "--json"}, flags: map[string][]string{"days": {"7"}, "json": {"true"}}, pos: []string{"k1"}},
		{args: []string{"--days=7", "k1", "-now"}, flags: map[string][]string{"days": {"7"}, "now": {"true"}}, pos: []string{"k1"}},
		{args: []string{"--tag", "a=1", "--tag=b=2"}, flags: map[string][]string{"tag": {"a=1", "b=2"}}},
		{args: []string{"--now=false", "-", "--", "--days"}, flags: map[string][]string{"now": {"false"}}, pos: []string{"-", "--days"}},
		{args: []string{"--days", "-1"}, flags: map[string][]string{"days": {"-1"}}},
		{args: []string{"-h"}, flags: map[string][]string{"help": {"true"}}},
		{args: []string{"--bogus"}, wantErr: "unknown flag --bogus"},
		{args: []string{"--days"}, wantErr: "flag --days needs a value (N)"},
		{args: []string{"--days", "1", "--days", "2"}, wantErr: "given more than once"},
		{args: []string{"--now=maybe"}, wantErr: "takes true or false"},
	} {
		p, err := parseArgs(defs, tc.args)
		if tc.wantErr != "" {
			var ue *usageError
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !errors.As(err, &ue) {
				t.Errorf("parseArgs(%q): error %v, want a usage error with %q", tc.args, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseArgs(%q): %v", tc.args, err)
			continue
		}
		if tc.flags == nil {
			tc.flags = map[string][]string{}
		}
		if !reflect.DeepEqual(p.flags, tc.flags) || !reflect.DeepEqual(p.args, tc.pos) {
			t.Errorf("parseArgs(%q) = %v %q, want %v %q", tc.args, p.flags, p.args, tc.flags, tc.pos)
		}
	}
}

func TestFindVerb(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		want    int
		wantErr bool
	}{
		{[]string{"list"}, 0, false},
		{[]string{"--json", "list"}, 1, false},
		{[]string{"--alias", "prod", "list"}, 2, false},
		{[]string{"--alias=prod", "list", "--alias", "x"}, 1, false},
		{[]string{"-h"}, -1, false},
		{[]string{"--tag", "a=b", "create"}, -1, true},
		{[]string{}, -1, false},
	} {
		got, err := findVerb(tc.args)
		if got != tc.want || (err != nil) != tc.wantErr {
			t.Errorf("findVerb(%q) = %d, %v; want %d, error %v", tc.args, got, err, tc.want, tc.wantErr)
		}
	}
}

func TestKeyValues(t *testing.T) {
	m, err := keyValues("--tag", []string{"a=1", "b=x=y", "c="})
	if err != nil || !reflect.DeepEqual(m, map[string]string{"a": "1", "b": "x=y", "c": ""}) {
		t.Errorf("keyValues = %v, %v", m, err)
	}
	for _, bad := range [][]string{{"novalue"}, {"=v"}, {"a=1", "a=2"}} {
		if _, err := keyValues("--tag", bad); err == nil {
			t.Errorf("keyValues(%q): no error", bad)
		}
	}
}

func TestTableAlignedAndSanitized(t *testing.T) {
	var buf bytes.Buffer
	writeTable(&buf, []string{"KEY ID", "STATE", "DESCRIPTION"}, [][]string{
		{"a", "Enabled", "tab\there"},
		{"a-much-longer-key-id", "PendingDeletion", "esc\x1b[31m"},
	})
	out := buf.String()
	if err := checkAligned(out); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.ContainsAny(out, "\t\x1b") {
		t.Errorf("control characters reached the output: %q", out)
	}
	for line := range strings.Lines(out) {
		if strings.HasSuffix(strings.TrimSuffix(line, "\n"), " ") {
			t.Errorf("trailing blanks: %q", line)
		}
	}
	if err := checkAligned("A   B\nx  y\n"); err == nil {
		t.Error("checkAligned accepted a misaligned table")
	}
}

func TestDecodeBase64(t *testing.T) {
	for _, s := range []string{"aGVsbG8=", "aGVsbG8", " aGVsbG8=\n"} {
		if b, ok := decodeBase64(s); !ok || string(b) != "hello" {
			t.Errorf("decodeBase64(%q) = %q, %v", s, b, ok)
		}
	}
	if _, ok := decodeBase64("not base64!"); ok {
		t.Error("decodeBase64 accepted garbage")
	}
}

func TestExitCodes(t *testing.T) {
	r := &run{}
	for code, want := range map[string]int{
		"NotFound": ExitNotFound, "AccessDenied": ExitAccess, "InvalidAccessKeyId": ExitAccess,
		"SignatureDoesNotMatch": ExitAccess, "RequestTimeTooSkewed": ExitAccess, "Conflict": ExitConflict,
		"InvalidKeyState": ExitConflict, "ServiceUnavailable": ExitUnavailable, "InvalidRequest": ExitError,
		"InvalidCiphertext": ExitError, "InternalError": ExitError, "NotImplemented": ExitError,
	} {
		err := fmt.Errorf("wrapped: %w", &client.APIError{StatusCode: 400, Code: code, Message: "m", RequestID: "r1"})
		if f := r.classify(err); f.exit != want || f.code != code || f.requestID != "r1" {
			t.Errorf("%s: exit %d code %q, want %d", code, f.exit, f.code, want)
		}
	}
	if f := r.classify(usagef("x")); f.exit != ExitUsage {
		t.Errorf("usage error: exit %d", f.exit)
	}
	if f := r.classify(errors.New("disk full")); f.exit != ExitError {
		t.Errorf("other error: exit %d", f.exit)
	}
}

// TestPrecedence checks flag > environment > default alias > default, and
// an alias named with --alias above the environment.
func TestPrecedence(t *testing.T) {
	home := t.TempDir()
	env := map[string]string{"HOME": home}
	getenv := func(k string) string { return env[k] }
	f := &aliasFile{Default: "def", Aliases: map[string]*alias{
		"def":  {Endpoint: "http://def:1", AccessKey: "def-ak", SecretKey: "def-sk", Insecure: true},
		"prod": {Endpoint: "https://prod:1", AccessKey: "prod-ak", SecretKey: "prod-sk"},
	}}
	path, err := aliasPath(getenv)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.save(path); err != nil {
		t.Fatal(err)
	}
	if st, err := os.Stat(path); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("alias file mode: %v %v", st.Mode(), err)
	}
	if st, err := os.Stat(filepath.Dir(path)); err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("alias dir mode: %v %v", st.Mode(), err)
	}
	resolve := func(args ...string) conn {
		t.Helper()
		p, err := parseArgs(globalFlags, args)
		if err != nil {
			t.Fatal(err)
		}
		r := &run{p: p, getenv: getenv, stderr: &bytes.Buffer{}, stdin: strings.NewReader("")}
		c, err := r.resolveConn()
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	want := func(got conn, endpoint, ak, sk string, insecure bool) {
		t.Helper()
		if got.endpoint != endpoint || got.accessKey != ak || got.secretKey != sk || got.insecure != insecure {
			t.Errorf("got %s %s %s insecure=%v, want %s %s %s insecure=%v",
				got.endpoint, got.accessKey, got.secretKey, got.insecure, endpoint, ak, sk, insecure)
		}
	}
	want(resolve(), "http://def:1", "def-ak", "def-sk", true)
	env["KEYWARD_ENDPOINT"], env["KEYWARD_ACCESS_KEY"] = "http://env:1", "env-ak"
	// The default alias's TLS setting does not follow its credentials to
	// another endpoint.
	want(resolve(), "http://env:1", "env-ak", "def-sk", false)
	want(resolve("--endpoint", "http://flag:1"), "http://flag:1", "env-ak", "def-sk", false)
	want(resolve("--alias", "prod"), "https://prod:1", "prod-ak", "prod-sk", false)
	want(resolve("--alias", "prod", "--access-key", "flag-ak"), "https://prod:1", "flag-ak", "prod-sk", false)
	env["KEYWARD_ALIAS"] = "prod"
	env["KEYWARD_ENDPOINT"] = ""
	want(resolve(), "https://prod:1", "env-ak", "prod-sk", false)
	os.Remove(path)
	env = map[string]string{"HOME": home}
	want(resolve(), defaultEndpoint, "", "", false)
}

// TestMainUsageErrors runs Main in process for errors found before any
// request.
func TestMainUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"key"}, ExitUsage, "missing verb"},
		{[]string{"key", "nope"}, ExitUsage, `unknown command "keyward key nope"`},
		{[]string{"key", "delete", "k", "--days", "31"}, ExitUsage, "--days takes 7 to 30"},
		{[]string{"key", "delete", "k", "--now"}, ExitUsage, "--yes"},
		{[]string{"key", "list", "--state", "gone"}, ExitUsage, "--state takes"},
		{[]string{"kms", "configure", "--backend", "s3"}, ExitUsage, "--backend takes"},
		{[]string{"kms", "configure", "--token", "t", "--role-id", "r"}, ExitUsage, "not both"},
		{[]string{"kms", "configure", "--file-permissions", "999"}, ExitUsage, "octal"},
		{[]string{"kms", "status", "--access-key", "a", "--secret-key", "-", "--endpoint", "http://x:1"}, ExitUsage, "standard input is empty"},
		{[]string{"kms", "status", "--endpoint", "http://127.0.0.1:1"}, ExitAccess, "no credentials"},
		{[]string{"datakey", "generate", "--spec", "AES_128", "--bytes", "16"}, ExitUsage, "not both"},
		{[]string{"alias", "use"}, ExitUsage, "--clear"},
	} {
		var stdout, stderr bytes.Buffer
		env := map[string]string{"HOME": t.TempDir()}
		code := Main(tc.args, strings.NewReader(""), &stdout, &stderr, func(k string) string { return env[k] })
		if code != tc.code || !strings.Contains(stderr.String(), tc.err) {
			t.Errorf("keyward %q: exit %d, stderr %q; want %d and %q", tc.args, code, stderr.String(), tc.code, tc.err)
		}
	}
}
