package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testbin"
	"github.com/keyward/keyward/internal/vaulttest"
)

type syncBuf = testbin.SyncBuffer

// buildKeyward builds ./cmd/keyward into a temporary directory.
func buildKeyward(t *testing.T) string { return testbin.Keyward(t) }

// startKeyward runs `keyward server --dev` on a free port and returns its
// URL once the "keyward ready" line is logged.
func startKeyward(t *testing.T, bin, user, secret string) string {
	t.Helper()
	cmd := exec.Command(bin, "server", "--dev", "--address", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), "data"))
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, "KEYWARD_ROOT_USER="+user, "KEYWARD_ROOT_PASSWORD="+secret)
	stderr := &syncBuf{}
	cmd.Stdout, cmd.Stderr = &syncBuf{}, stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("keyward stderr:\n%s", stderr.String())
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if addr, scheme, ok := testbin.ReadyLine(stderr.String()); ok {
			return scheme + "://" + addr
		}
		select {
		case <-done:
			t.Fatalf("keyward exited before it was ready:\n%s", stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("keyward not ready after 20s:\n%s", stderr.String())
	return ""
}

// checkRows asserts zero errors and sane numbers for every row.
func checkRows(t *testing.T, rows []Row, minSeconds float64) {
	t.Helper()
	for _, r := range rows {
		name := fmt.Sprintf("%s %s c=%d", r.Target, r.Op, r.Concurrency)
		if r.Errors != 0 || r.Requests < 10 {
			t.Errorf("%s: %d requests, %d errors %v: %s", name, r.Requests, r.Errors, r.ErrorsByStatus, r.FirstError)
			continue
		}
		if !(r.RPS > 0 && r.P50Ms > 0 && r.P50Ms <= r.P95Ms && r.P95Ms <= r.P99Ms && r.P99Ms <= r.MaxMs && r.MaxMs < 10000 && r.MeanMs > 0) {
			t.Errorf("%s: implausible latencies %+v", name, r)
		}
		if r.Seconds < minSeconds*0.99 || r.Seconds > minSeconds+5 {
			t.Errorf("%s: step lasted %.3fs", name, r.Seconds)
		}
		if got := float64(r.Requests) / r.Seconds; got < r.RPS*0.99 || got > r.RPS*1.01 {
			t.Errorf("%s: req/s %.1f but %d requests in %.3fs", name, r.RPS, r.Requests, r.Seconds)
		}
	}
}

// The real binary: `keyward bench` against a real `keyward server --dev`,
// every op at concurrency 1 and 4 for about a second each, plus the ceiling.
func TestEndToEndAgainstKeywardServer(t *testing.T) {
	bin := buildKeyward(t)
	const user, secret = "bench-root", "bench-secret-0123456789"
	endpoint := startKeyward(t, bin, user, secret)

	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"bench"}, args...)...)
		cmd.Env = append(os.Environ(), "KEYWARD_ENDPOINT="+endpoint, "KEYWARD_ACCESS_KEY="+user, "KEYWARD_SECRET_KEY="+secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}

	stdout, stderr, err := run("--json", "--ops", strings.Join(Ops, ","), "--concurrency", "1,4",
		"--duration", "1s", "--warmup", "200ms", "--ceiling")
	if err != nil {
		t.Fatalf("keyward bench: %v\nstderr:\n%s\nstdout:\n%s", err, stderr, stdout)
	}
	var rows []Row
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil {
		t.Fatalf("JSON output: %v\n%s", err, stdout)
	}
	if len(rows) != len(Ops)*2+2 {
		t.Fatalf("%d rows, want %d:\n%s", len(rows), len(Ops)*2+2, stdout)
	}
	for i, op := range Ops {
		for j, c := range []int{1, 4} {
			if r := rows[i*2+j]; r.Target != "keyward" || r.Op != op || r.Concurrency != c {
				t.Errorf("row %d is %s %s c=%d, want keyward %s c=%d", i*2+j, r.Target, r.Op, r.Concurrency, op, c)
			}
		}
	}
	if r := rows[len(rows)-1]; r.Target != "ceiling" || r.Op != CeilingOp || r.Concurrency != 4 {
		t.Errorf("last row %+v, want the ceiling at c=4", r)
	}
	checkRows(t, rows, 1)
	if !strings.Contains(stderr, "keyward: created key bench-") || !strings.Contains(stderr, "GOMAXPROCS=") || !strings.Contains(stderr, "req/s") {
		t.Errorf("stderr (setup, machine, progress):\n%s", stderr)
	}
	keyID := strings.Fields(stderr[strings.Index(stderr, "created key ")+len("created key "):])[0]

	// Table output, an existing key, a request count.
	stdout, stderr, err = run("--ops", "describe,generate", "--concurrency", "2", "--requests", "300", "--warmup", "0s", "--key-id", keyID)
	if err != nil {
		t.Fatalf("keyward bench (table): %v\n%s", err, stderr)
	}
	for _, want := range []string{"GOMAXPROCS=", "NumCPU=", "300 requests", "p99", "keyward  describe      2        300       0", "keyward  generate      2        300       0"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("table output lacks %q:\n%s", want, stdout)
		}
	}
	if strings.Contains(stderr, "created key") {
		t.Errorf("--key-id given, but a key was created:\n%s", stderr)
	}

	// Both front doors, interleaved: each AWS step right after its admin
	// step, every op of the AWS door with zero errors.
	stdout, stderr, err = run("--json", "--api", "admin,aws", "--ops", strings.Join(Ops, ","), "--concurrency", "2", "--requests", "200", "--warmup", "0s", "--key-id", keyID)
	if err != nil {
		t.Fatalf("keyward bench --api admin,aws: %v\n%s", err, stderr)
	}
	rows = nil
	// The AWS door has every op but list-disabled (ListKeys has no state
	// filter): that step is skipped, and said so.
	var want []Row
	for _, op := range Ops {
		want = append(want, Row{Target: "keyward", Op: op})
		if op != "list-disabled" {
			want = append(want, Row{Target: "kw-aws", Op: op})
		}
	}
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || len(rows) != len(want) {
		t.Fatalf("--api admin,aws: %v, %d rows (want %d):\n%s", err, len(rows), len(want), stdout)
	}
	for i, w := range want {
		if r := rows[i]; r.Target != w.Target || r.Op != w.Op || r.Requests != 200 || r.Errors != 0 {
			t.Errorf("row %d: %+v, want target %s op %s, 200 requests, no error", i, r, w.Target, w.Op)
		}
	}
	if !strings.Contains(stderr, "kw-aws has no list-disabled operation: skipped") {
		t.Errorf("the skipped step is not reported:\n%s", stderr)
	}
	if stdout, stderr, err = run("--json", "--api", "aws", "--ops", "decrypt", "--concurrency", "1", "--requests", "50", "--warmup", "0s", "--key-id", keyID); err != nil ||
		!strings.Contains(stdout, `"kw-aws"`) || strings.Contains(stdout, `"keyward"`) {
		t.Errorf("--api aws: %v\n%s\n%s", err, stdout, stderr)
	}
	if _, stderr, err = run("--api", "grpc"); err == nil || !strings.Contains(stderr, `unknown API "grpc"`) {
		t.Errorf("unknown API: err %v, stderr:\n%s", err, stderr)
	}

	// A wrong secret fails at setup with the server's answer.
	_, stderr, err = run("--secret-key", "wrong-secret-123", "--requests", "10", "--concurrency", "1")
	if err == nil || !strings.Contains(stderr, "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: err %v, stderr:\n%s", err, stderr)
	}
	// Flag validation.
	if _, stderr, err = run("--duration", "1s", "--requests", "5"); err == nil || !strings.Contains(stderr, "not both") {
		t.Errorf("--duration with --requests: err %v, stderr:\n%s", err, stderr)
	}
	if _, stderr, err = run("--ops", "generate,frobnicate"); err == nil || !strings.Contains(stderr, `unknown op "frobnicate"`) {
		t.Errorf("unknown op: err %v, stderr:\n%s", err, stderr)
	}
}

// Vault Transit driven directly through the package API: every op, zero
// errors; the Transit key exists afterwards.
func TestVaultTransitTarget(t *testing.T) {
	v := vaulttest.StartDev(t)
	var log bytes.Buffer
	rows, err := Run(context.Background(), Options{
		VaultAddr: v.Addr, VaultToken: v.Token,
		Ops: Ops, Concurrency: []int{1, 4},
		Config: Config{Duration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond},
		Log:    &log,
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != len(Ops)*2 {
		t.Fatalf("%d rows, want %d", len(rows), len(Ops)*2)
	}
	for _, r := range rows {
		if r.Target != "vault" {
			t.Errorf("row for %s", r.Target)
		}
	}
	checkRows(t, rows, 0.5)
	status, body := v.Do("GET", "/v1/transit/keys/"+vaultKey, nil, v.Token)
	if status != 200 || !strings.Contains(string(body), `"type":"aes256-gcm96"`) {
		t.Errorf("transit key: %d %s", status, body)
	}

	// A bad token fails at setup, before any step.
	_, err = Run(context.Background(), Options{VaultAddr: v.Addr, VaultToken: "nope", Config: Config{Requests: 1}})
	if err == nil || !strings.Contains(err.Error(), "403") {
		t.Errorf("bad token: %v", err)
	}
}

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

// The ceiling as `keyward bench --ceiling` runs it: a child process of its
// own, sent Keyward's signed generate request, gone when the run ends.
func TestCeilingInItsOwnProcess(t *testing.T) {
	bin := buildKeyward(t)
	var log bytes.Buffer
	rows, err := Run(context.Background(), Options{
		Ceiling: true, CeilingCommand: []string{bin, "bench-ceiling-server"},
		Concurrency: []int{2}, Config: Config{Requests: 200}, Log: &log,
	})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
	if len(rows) != 1 || rows[0].Target != "ceiling" || rows[0].Requests != 200 || rows[0].Errors != 0 {
		t.Fatalf("rows %+v", rows)
	}
	var pid int
	if _, err := fmt.Sscanf(log.String()[strings.Index(log.String(), "(pid "):], "(pid %d)", &pid); err != nil || pid <= 0 {
		t.Fatalf("no child pid in the log: %q", log.String())
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("the ceiling process %d is still there after the run (kill 0: %v)", pid, err)
	}

	// A command that does not announce a URL fails the setup, with a reason.
	_, err = Run(context.Background(), Options{Ceiling: true, CeilingCommand: []string{"sh", "-c", "echo listening; echo oops >&2"}, Config: Config{Requests: 1}})
	if err == nil || !strings.Contains(err.Error(), `announced "listening"`) || !strings.Contains(err.Error(), "oops") {
		t.Errorf("bad announce: %v", err)
	}
	_, err = Run(context.Background(), Options{Ceiling: true, CeilingCommand: []string{filepath.Join(t.TempDir(), "missing")}, Config: Config{Requests: 1}})
	if err == nil || !strings.Contains(err.Error(), "starting the ceiling process") {
		t.Errorf("missing command: %v", err)
	}
}
