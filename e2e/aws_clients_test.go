package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
)

// awsEnv is the environment of an AWS client process: the test process's
// without any AWS_ or KEYWARD_ variable, a HOME of its own (no ~/.aws
// configuration of the machine's user leaks in), and the credentials a new
// user exports.
func awsEnv(t *testing.T, accessKey, secretKey string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "KEYWARD_") && !strings.HasPrefix(kv, "HOME=") {
			env = append(env, kv)
		}
	}
	return append(env, "HOME="+t.TempDir(), "AWS_ACCESS_KEY_ID="+accessKey, "AWS_SECRET_ACCESS_KEY="+secretKey,
		"AWS_DEFAULT_REGION=us-east-1", "AWS_REGION=us-east-1", "AWS_PAGER=", "AWS_EC2_METADATA_DISABLED=true")
}

// TestAWSCLI runs the aws CLI against a --dev server as a new user would
// (docs/aws-kms-api.md, the walkthrough): create a key and an alias, make a
// data key, decrypt it by alias, re-encrypt it, schedule and cancel the
// key's deletion; an unknown key is the CLI's NotFoundException.
func TestAWSCLI(t *testing.T) {
	t.Parallel()
	awsBin := testenv.Command(t, "aws", "install the aws CLI: apt-get install awscli (or pip install awscli); .ci/run does")
	srv := startServer(t, serverOpts{Args: []string{"--dev"}, NoRootEnv: true})
	env := awsEnv(t, srv.AccessKey, srv.SecretKey)
	dir := t.TempDir()
	run := func(args ...string) (map[string]any, string, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, awsBin, append([]string{"kms"}, append(args, "--endpoint-url", srv.URL, "--output", "json")...)...)
		cmd.Env, cmd.Dir = env, dir
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		var out map[string]any
		if err == nil && stdout.Len() > 0 {
			if jerr := json.Unmarshal(stdout.Bytes(), &out); jerr != nil {
				t.Fatalf("aws kms %s: output is not JSON: %s", args[0], stdout.String())
			}
		}
		return out, stderr.String(), err
	}
	ok := func(args ...string) map[string]any {
		t.Helper()
		out, stderr, err := run(args...)
		if err != nil {
			t.Fatalf("aws kms %s: %v\n%s", strings.Join(args, " "), err, stderr)
		}
		return out
	}

	key := obj(ok("create-key", "--description", "made with the aws CLI"), "KeyMetadata")
	id := str(key, "KeyId")
	if !uuidV4.MatchString(id) || str(key, "Arn") != "arn:aws:kms:us-east-1:000000000000:key/"+id || str(key, "KeyState") != "Enabled" {
		t.Fatalf("create-key: %v", key)
	}
	ok("create-alias", "--alias-name", "alias/cli-app", "--target-key-id", id)
	dk := ok("generate-data-key", "--key-id", "alias/cli-app", "--key-spec", "AES_256", "--encryption-context", "purpose=cli,app=e2e")
	plaintext := unb64(t, "Plaintext", str(dk, "Plaintext"))
	if len(plaintext) != 32 || str(dk, "KeyId") != str(key, "Arn") {
		t.Fatalf("generate-data-key: %v", dk)
	}
	blobFile := filepath.Join(dir, "blob.bin")
	if err := os.WriteFile(blobFile, unb64(t, "CiphertextBlob", str(dk, "CiphertextBlob")), 0o600); err != nil {
		t.Fatal(err)
	}
	dec := ok("decrypt", "--key-id", "alias/cli-app", "--ciphertext-blob", "fileb://"+blobFile, "--encryption-context", "purpose=cli,app=e2e")
	if !bytes.Equal(unb64(t, "Plaintext", str(dec, "Plaintext")), plaintext) {
		t.Errorf("decrypt by alias: %v", dec)
	}
	second := str(obj(ok("create-key"), "KeyMetadata"), "KeyId")
	re := ok("re-encrypt", "--ciphertext-blob", "fileb://"+blobFile, "--source-encryption-context", "purpose=cli,app=e2e", "--destination-key-id", second)
	if str(re, "SourceKeyId") != str(key, "Arn") || !strings.HasSuffix(str(re, "KeyId"), ":key/"+second) {
		t.Errorf("re-encrypt: %v", re)
	}
	movedFile := filepath.Join(dir, "moved.bin")
	os.WriteFile(movedFile, unb64(t, "CiphertextBlob", str(re, "CiphertextBlob")), 0o600)
	if dec := ok("decrypt", "--ciphertext-blob", "fileb://"+movedFile); !bytes.Equal(unb64(t, "Plaintext", str(dec, "Plaintext")), plaintext) {
		t.Errorf("decrypt after re-encrypt: %v", dec)
	}
	if sd := ok("schedule-key-deletion", "--key-id", second, "--pending-window-in-days", "7"); str(sd, "KeyState") != "PendingDeletion" {
		t.Errorf("schedule-key-deletion: %v", sd)
	}
	ok("cancel-key-deletion", "--key-id", second)
	if d := obj(ok("describe-key", "--key-id", second), "KeyMetadata"); str(d, "KeyState") != "Disabled" {
		t.Errorf("after cancel-key-deletion: %v", d)
	}
	if _, stderr, err := run("describe-key", "--key-id", "alias/no-such-alias"); err == nil || !strings.Contains(stderr, "NotFoundException") {
		t.Errorf("describe-key of an unknown alias: %v %s", err, stderr)
	}
	// The admin API sees the same key and alias, and opens the same blob.
	c := srv.client(t)
	if st, m, raw := describe(t, c, "alias%2Fcli-app"); st != 200 || str(m, "key_id") != id {
		t.Errorf("admin describe by the CLI's alias: %d %s", st, short(raw))
	}
	if st, pt, raw := decrypt(t, c, str(dk, "CiphertextBlob"), map[string]string{"purpose": "cli", "app": "e2e"}); st != 200 || !bytes.Equal(pt, plaintext) {
		t.Errorf("admin decrypt of the CLI's blob: %d %s", st, short(raw))
	}
}

// TestAWSJavaScriptSDK runs interop/aws-js/flow.mjs (the AWS SDK for
// JavaScript v3, @aws-sdk/client-kms from npm, installed by `npm ci` in
// that directory) with Node against the real server; the admin API then
// opens the blob it made.
func TestAWSJavaScriptSDK(t *testing.T) {
	t.Parallel()
	nodeBin := testenv.Command(t, "node", "install Node.js (apt-get install nodejs npm); .ci/run does")
	dir, err := filepath.Abs(filepath.Join("..", "interop", "aws-js"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "@aws-sdk", "client-kms")); err != nil {
		testenv.Missing(t, "@aws-sdk/client-kms in interop/aws-js/node_modules", "run `npm ci` in interop/aws-js; .ci/run does")
	}
	srv := startServer(t, serverOpts{Args: []string{"--dev"}, NoRootEnv: true})
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, nodeBin, "flow.mjs", srv.URL)
	cmd.Dir, cmd.Env = dir, awsEnv(t, srv.AccessKey, srv.SecretKey)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("node flow.mjs: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	var out struct {
		KeyID, Arn, Alias, SecondState, Blob, Plaintext string
		TypedErrors                                     int
	}
	if err := json.Unmarshal(bytes.TrimSpace(stdout.Bytes()), &out); err != nil {
		t.Fatalf("flow.mjs output: %v: %s", err, stdout.String())
	}
	if !uuidV4.MatchString(out.KeyID) || out.Arn != "arn:aws:kms:us-east-1:000000000000:key/"+out.KeyID || out.SecondState != "Disabled" || out.TypedErrors != 2 {
		t.Errorf("flow.mjs: %+v", out)
	}
	c := srv.client(t)
	if st, pt, raw := decrypt(t, c, out.Blob, map[string]string{"app": "keyward-js", "purpose": "e2e"}); st != 200 || b64(pt) != out.Plaintext {
		t.Errorf("admin decrypt of the JavaScript SDK's blob: %d %s", st, short(raw))
	}
	if st, m, raw := c.do("GET", "/kms/aliases?key_id="+out.KeyID, nil); st != 200 || !strings.Contains(string(raw), out.Alias) {
		t.Errorf("admin list of the JavaScript SDK's alias: %d %v", st, m)
	}
}
