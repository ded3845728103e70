package client_test

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/testbin"
)

func TestMain(m *testing.M) {
	code := m.Run()
	testbin.Cleanup()
	os.Exit(code)
}

func keywardBinary(t testing.TB) string { return testbin.Keyward(t) }

type syncBuffer = testbin.SyncBuffer

// testServer is a running keyward process.
type testServer struct {
	URL       string
	DataDir   string
	AccessKey string
	SecretKey string
	stderr    *syncBuffer
	// Stop kills the process (a test that restarts on the same data dir
	// stops the first one).
	Stop func()
}

// startServer runs `keyward server --address 127.0.0.1:0` with root
// credentials in the environment, and waits for its "keyward ready" line.
func startServer(t testing.TB, extraArgs ...string) *testServer {
	t.Helper()
	secret := make([]byte, 16)
	rand.Read(secret)
	return startServerWithSecret(t, "root-"+hex.EncodeToString(secret), extraArgs...)
}

// startServerWithSecret is startServer with a given root secret (servers
// that one client reaches with one set of credentials).
func startServerWithSecret(t testing.TB, secret string, extraArgs ...string) *testServer {
	t.Helper()
	bin := keywardBinary(t)
	s := &testServer{DataDir: filepath.Join(t.TempDir(), "data"), AccessKey: "admin",
		SecretKey: secret, stderr: &syncBuffer{}}
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "KEYWARD_") {
			env = append(env, kv)
		}
	}
	env = append(env, "KEYWARD_ROOT_USER="+s.AccessKey, "KEYWARD_ROOT_PASSWORD="+s.SecretKey)
	args := append([]string{"server", "--address", "127.0.0.1:0", "--data-dir", s.DataDir}, extraArgs...)
	cmd := exec.Command(bin, args...)
	cmd.Env = env
	cmd.Stderr, cmd.Stdout = s.stderr, &syncBuffer{}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	s.Stop = func() { cmd.Process.Kill(); <-done }
	t.Cleanup(func() {
		s.Stop()
		if t.Failed() {
			t.Logf("server log:\n%s", s.stderr.String())
		}
	})
	deadline := time.After(30 * time.Second)
	for {
		if addr, scheme, ok := readyLine(s.stderr.String()); ok {
			s.URL = scheme + "://" + addr
			return s
		}
		select {
		case <-done:
			t.Fatalf("keyward exited before it was ready:\n%s", s.stderr.String())
		case <-deadline:
			t.Fatalf("keyward not ready after 30 s:\n%s", s.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

func readyLine(logs string) (addr, scheme string, ok bool) { return testbin.ReadyLine(logs) }

// client returns a root client for s.
func (s *testServer) client(t testing.TB, opts ...client.Option) *client.Client {
	t.Helper()
	opts = append([]client.Option{client.WithRetries(2, 10*time.Millisecond), client.WithTimeout(60 * time.Second)}, opts...)
	c, err := client.New(s.URL, s.AccessKey, s.SecretKey, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
