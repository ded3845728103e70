package client_test

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
)

// The real server: built once (lazily, so that the unit tests need no
// build) from the module root into a temporary directory.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

func keywardBinary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		root, err := moduleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "keyward-client-test-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "keyward")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/keyward")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/keyward: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// moduleRoot is the directory of go.mod.
func moduleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if p := strings.TrimSpace(string(out)); p != "" && p != os.DevNull {
			return filepath.Dir(p), nil
		}
	}
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}

// syncBuffer is a bytes.Buffer safe for the process's writer goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// testServer is a running keyward process.
type testServer struct {
	URL       string
	DataDir   string
	AccessKey string
	SecretKey string
	stderr    *syncBuffer
}

// startServer runs `keyward server --address 127.0.0.1:0` with root
// credentials in the environment, and waits for its "keyward ready" line.
func startServer(t testing.TB, extraArgs ...string) *testServer {
	t.Helper()
	bin := keywardBinary(t)
	secret := make([]byte, 16)
	rand.Read(secret)
	s := &testServer{DataDir: filepath.Join(t.TempDir(), "data"), AccessKey: "admin",
		SecretKey: "root-" + hex.EncodeToString(secret), stderr: &syncBuffer{}}
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
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-done
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

// readyLine finds the JSON log line {"msg":"keyward ready","address":...}.
func readyLine(logs string) (addr, scheme string, ok bool) {
	sc := bufio.NewScanner(strings.NewReader(logs))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		var line struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
			Scheme  string `json:"scheme"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "keyward ready" && line.Address != "" {
			if line.Scheme == "" {
				line.Scheme = "http"
			}
			return line.Address, line.Scheme, true
		}
	}
	return "", "", false
}

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
