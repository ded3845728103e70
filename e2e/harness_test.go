package e2e

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testbin"
)

// keywardBin is the binary built once by TestMain.
var keywardBin string

// rootUser is the root access key of every server the tests start (the
// secret is random per server, so that a leak is attributable).
const rootUser = "e2e-root"

// readyTimeout bounds how long a server may take to log its ready line.
const readyTimeout = 20 * time.Second

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	bin, err := testbin.Build()
	if err != nil {
		fmt.Fprintln(os.Stderr, "e2e:", err)
		return 1
	}
	defer testbin.Cleanup()
	keywardBin = bin
	return m.Run()
}

type syncBuffer = testbin.SyncBuffer

// serverOpts configure startServer.
type serverOpts struct {
	// Args are extra arguments after "server" (for example "--dev").
	Args []string
	// Env holds extra KEY=VALUE entries.
	Env []string
	// DataDir defaults to a fresh directory under t.TempDir().
	DataDir string
	// NoRootEnv leaves KEYWARD_ROOT_USER/PASSWORD unset.
	NoRootEnv bool
}

// server is a running keyward process.
type server struct {
	t       testing.TB
	cmd     *exec.Cmd
	URL     string // scheme://host:port
	Addr    string
	DataDir string
	// AccessKey and SecretKey are the root credentials (from the
	// environment, or parsed from the --dev banner).
	AccessKey, SecretKey string

	stdout, stderr *syncBuffer
	done           chan struct{}
}

func randomHex(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// processEnv is the test process environment without any KEYWARD_*
// variable, plus extra.
func processEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

// launch starts the process without waiting for it to be ready.
func launch(t testing.TB, o serverOpts) *server {
	t.Helper()
	if o.DataDir == "" {
		o.DataDir = filepath.Join(t.TempDir(), "data")
	}
	s := &server{t: t, DataDir: o.DataDir, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	env := processEnv(o.Env...)
	if !o.NoRootEnv {
		s.AccessKey, s.SecretKey = rootUser, "root-secret-"+randomHex(12)
		env = append(env, "KEYWARD_ROOT_USER="+s.AccessKey, "KEYWARD_ROOT_PASSWORD="+s.SecretKey)
	}
	args := append([]string{"server", "--data-dir", o.DataDir, "--address", "127.0.0.1:0"}, o.Args...)
	s.cmd = exec.Command(keywardBin, args...)
	s.cmd.Env = env
	s.cmd.Stdout, s.cmd.Stderr = s.stdout, s.stderr
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("starting keyward: %v", err)
	}
	go func() {
		s.cmd.Wait()
		close(s.done)
	}()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			t.Logf("keyward logs (%s):\n%s", s.DataDir, tail(s.Logs(), 6000))
		}
	})
	return s
}

// startServer starts keyward and waits for its ready line.
func startServer(t testing.TB, o serverOpts) *server {
	t.Helper()
	s := launch(t, o)
	deadline := time.Now().Add(readyTimeout)
	for {
		if addr, scheme, ok := readyLine(s.stderr.String()); ok {
			s.Addr, s.URL = addr, scheme+"://"+addr
			break
		}
		select {
		case <-s.done:
			t.Fatalf("keyward exited (code %d) before it was ready:\n%s", s.cmd.ProcessState.ExitCode(), s.Logs())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyward not ready after %s:\n%s", readyTimeout, s.Logs())
		}
	}
	if s.AccessKey == "" { // --dev without root env: parse the banner
		for {
			ak, sk := devBanner(s.stdout.String())
			if ak != "" && sk != "" {
				s.AccessKey, s.SecretKey = ak, sk
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no dev credentials on stdout:\n%s", s.Logs())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return s
}

func readyLine(logs string) (addr, scheme string, ok bool) { return testbin.ReadyLine(logs) }

// devBanner parses the "access key:" and "secret key:" lines of --dev.
func devBanner(stdout string) (ak, sk string) {
	for _, line := range strings.Split(stdout, "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "access key:"); ok {
			ak = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "secret key:"); ok {
			sk = strings.TrimSpace(v)
		}
	}
	return ak, sk
}

// Logs returns stdout and stderr so far.
func (s *server) Logs() string {
	return "--- stdout ---\n" + s.stdout.String() + "--- stderr ---\n" + s.stderr.String()
}

// Stdout and Stderr return what the process wrote so far.
func (s *server) Stdout() string { return s.stdout.String() }
func (s *server) Stderr() string { return s.stderr.String() }

// Exited reports whether the process has exited.
func (s *server) Exited() bool {
	select {
	case <-s.done:
		return true
	default:
		return false
	}
}

// Done is closed when the process has exited.
func (s *server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM and waits (at most 15 s, then SIGKILL) for the exit;
// it returns the exit code (-1 when killed by a signal).
func (s *server) Stop() int {
	s.t.Helper()
	code, _, ok := s.StopWithin(15 * time.Second)
	if !ok {
		s.t.Errorf("keyward did not exit within 15 s of SIGTERM; killed")
	}
	return code
}

// StopWithin sends SIGTERM and waits at most d. ok is false when the
// process had to be killed.
func (s *server) StopWithin(d time.Duration) (code int, took time.Duration, ok bool) {
	start := time.Now()
	if !s.Exited() {
		s.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-s.done:
		return s.cmd.ProcessState.ExitCode(), time.Since(start), true
	case <-time.After(d):
		s.Kill()
		return -1, time.Since(start), false
	}
}

// Kill sends SIGKILL and waits for the exit.
func (s *server) Kill() {
	if s.Exited() {
		return
	}
	s.cmd.Process.Kill()
	<-s.done
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "...\n" + s[len(s)-n:]
}

// logLines parses the JSON log lines of stderr.
func logLines(stderr string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(stderr, "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}
