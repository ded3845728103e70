package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/certs"
	"github.com/keyward/keyward/internal/kesid"
	"github.com/keyward/keyward/internal/testbin"
)

// `keyward bench --api admin,kes` against a real TLS server: both front
// doors, every op the KES target has, zero errors.
func TestKESTarget(t *testing.T) {
	bin := buildKeyward(t)
	dir := t.TempDir()
	pki, err := certs.NewTestPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := kesid.GenerateAPIKey(nil)
	iamFile := filepath.Join(dir, "iam.json")
	os.WriteFile(iamFile, []byte(`{"identities": [{"identity": "`+key.Identity()+`", "policies": ["consoleAdmin"]}]}`), 0o600)
	const user, secret = "bench-root", "bench-secret-0123456789"
	cmd := exec.Command(bin, "server", "--dev", "--address", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", pki.CertFile, "--tls-key", pki.KeyFile, "--iam-file", iamFile)
	cmd.Env = append(os.Environ(), "KEYWARD_ROOT_USER="+user, "KEYWARD_ROOT_PASSWORD="+secret)
	stderr := &syncBuf{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() { cmd.Process.Signal(os.Interrupt); <-done })
	var endpoint string
	for deadline := time.Now().Add(20 * time.Second); endpoint == ""; time.Sleep(20 * time.Millisecond) {
		if addr, scheme, ok := testbin.ReadyLine(stderr.String()); ok {
			endpoint = scheme + "://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready:\n%s", stderr.String())
		}
	}
	run := func(args ...string) (string, string, error) {
		c := exec.Command(bin, append([]string{"bench", "--endpoint", endpoint, "--ca-cert", pki.CAFile, "--json"}, args...)...)
		c.Env = append(os.Environ(), "KEYWARD_ACCESS_KEY="+user, "KEYWARD_SECRET_KEY="+secret, "KEYWARD_KES_API_KEY="+key.String())
		var out, errOut bytes.Buffer
		c.Stdout, c.Stderr = &out, &errOut
		err := c.Run()
		return out.String(), errOut.String(), err
	}
	out, errOut, err := run("--api", "admin,kes", "--ops", "generate,decrypt,encrypt,describe,list,create", "--concurrency", "2", "--requests", "100", "--warmup", "0s")
	if err != nil {
		t.Fatalf("bench: %v\n%s", err, errOut)
	}
	var rows []Row
	if err := json.Unmarshal([]byte(out), &rows); err != nil {
		t.Fatal(err)
	}
	if len(rows) != 12 || rows[0].Target != "keyward" || rows[6].Target != "keyward-kes" || rows[6].Op != "generate" {
		t.Fatalf("rows: %+v", rows)
	}
	for _, r := range rows {
		if r.Errors != 0 || r.Requests != 100 {
			t.Errorf("%s %s: %d requests, %d errors %v %s", r.Target, r.Op, r.Requests, r.Errors, r.ErrorsByStatus, r.FirstError)
		}
	}
	if !strings.Contains(errOut, "keyward-kes: identity "+key.Identity()) {
		t.Errorf("stderr:\n%s", errOut)
	}
	// An identity the server does not know fails at setup, with KES's answer.
	other, _ := kesid.GenerateAPIKey(nil)
	if _, errOut, err := run("--api", "kes", "--requests", "1", "--kes-api-key", other.String()); err == nil || !strings.Contains(errOut, "not authorized") {
		t.Errorf("unknown identity: %v\n%s", err, errOut)
	}
	if _, errOut, err := run("--api", "kes", "--endpoint", "http://127.0.0.1:1", "--requests", "1"); err == nil || !strings.Contains(errOut, "TLS only") {
		t.Errorf("http endpoint: %v\n%s", err, errOut)
	}
}
