package cli

// The harness of the end-to-end tests: the real keyward binary, built once
// from the module root, and real servers started from it.

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func keywardBinary(t testing.TB) string { return testbin.Keyward(t) }

type syncBuffer = testbin.SyncBuffer

// testServer is a running `keyward server`.
type testServer struct {
	URL, AccessKey, SecretKey, DataDir string
	log                                *syncBuffer
	stop                               func()
}

// startServer runs `keyward server --address 127.0.0.1:0 --data-dir DIR`
// with random root credentials and waits for its "keyward ready" line.
func startServer(bin, dataDir string, extra ...string) (*testServer, error) {
	secret := make([]byte, 16)
	rand.Read(secret)
	s := &testServer{AccessKey: "root-" + hex.EncodeToString(secret[:4]), SecretKey: hex.EncodeToString(secret),
		DataDir: dataDir, log: &syncBuffer{}}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	env = append(env, "KEYWARD_ROOT_USER="+s.AccessKey, "KEYWARD_ROOT_PASSWORD="+s.SecretKey)
	cmd := exec.Command(bin, append([]string{"server", "--address", "127.0.0.1:0", "--data-dir", dataDir}, extra...)...)
	cmd.Env = env
	cmd.Stdout, cmd.Stderr = &syncBuffer{}, s.log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.stop = func() { cmd.Process.Kill(); <-done }
	deadline := time.After(30 * time.Second)
	for {
		if addr, scheme, ok := readyLine(s.log.String()); ok {
			s.URL = scheme + "://" + addr
			return s, nil
		}
		select {
		case <-done:
			return nil, fmt.Errorf("keyward server exited before it was ready:\n%s", s.log.String())
		case <-deadline:
			s.stop()
			return nil, fmt.Errorf("keyward server not ready after 30 s:\n%s", s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readyLine(logs string) (addr, scheme string, ok bool) { return testbin.ReadyLine(logs) }

// unreachableEndpoint is an http URL where nothing listens.
func unreachableEndpoint() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	ln.Close()
	return "http://" + addr, nil
}

// result is the outcome of one CLI run.
type result struct {
	stdout, stderr string
	code           int
}

// runCLI runs the binary with args, the given environment (on top of a
// clean one: PATH only) and stdin.
func runCLI(t *testing.T, env []string, stdin string, args ...string) result {
	t.Helper()
	cmd := exec.Command(keywardBinary(t), args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH")}, env...)
	cmd.Stdin = strings.NewReader(stdin)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := result{stdout: stdout.String(), stderr: stderr.String()}
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		res.code = ee.ExitCode()
	case err != nil:
		t.Fatalf("running keyward %v: %v", args, err)
	}
	return res
}
