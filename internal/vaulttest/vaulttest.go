// Package vaulttest starts real HashiCorp Vault servers (v1.14.1, built by
// scripts/vault.sh) for tests: a dev server, or a file-storage server that
// can be stopped and started again with its data (for outage tests).
//
// A missing binary skips the test with instructions, or fails it under
// KEYWARD_REQUIRE_INTEGRATION=1 (the README's test command, and CI), so CI
// cannot silently lose the Vault tests (internal/testenv).
package vaulttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
)

// Binary returns the path of the Vault server binary: $KEYWARD_VAULT_BIN,
// else .vault/bin/vault in the repository.
func Binary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("KEYWARD_VAULT_BIN"); p != "" {
		if _, err := os.Stat(p); err != nil {
			testenv.Missing(t, "the Vault test server (KEYWARD_VAULT_BIN="+p+")", "run `scripts/vault.sh build`, or fix KEYWARD_VAULT_BIN")
		}
		return p
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("vaulttest: repository root not found")
		}
		dir = parent
	}
	p := filepath.Join(dir, ".vault", "bin", "vault")
	if _, err := os.Stat(p); err != nil {
		testenv.Missing(t, "the Vault test server ("+p+")", "run `scripts/vault.sh build`, or set KEYWARD_VAULT_BIN")
	}
	return p
}

// Server is a running Vault server.
type Server struct {
	Addr  string // http://127.0.0.1:PORT
	Token string // root token

	t       testing.TB
	bin     string
	dir     string // file-storage servers only
	port    int
	unseal  string
	mu      sync.Mutex
	cmd     *exec.Cmd
	logFile *os.File
}

// StartDev starts a dev server (in-memory storage, root token "root") with
// Transit enabled at transit/ and KV v2 at secret/. It is stopped when the
// test ends.
func StartDev(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), port: freePort(t), Token: "root"}
	s.Addr = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	s.launch("server", "-dev", "-dev-root-token-id=root", fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", s.port), "-dev-no-store-token")
	s.waitHealthy(200)
	s.MustEnableTransit()
	t.Cleanup(s.Stop)
	return s
}

// StartFile starts a server with file storage in a fresh directory,
// initializes and unseals it, and mounts KV v2 at secret/ and Transit at
// transit/. Stop and Start restart it with its data.
func StartFile(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, bin: Binary(t), port: freePort(t), dir: t.TempDir()}
	s.Addr = fmt.Sprintf("http://127.0.0.1:%d", s.port)
	cfg := fmt.Sprintf(`storage "file" { path = %q }
listener "tcp" {
  address = "127.0.0.1:%d"
  tls_disable = true
}
disable_mlock = true
api_addr = %q
`, filepath.Join(s.dir, "data"), s.port, s.Addr)
	if err := os.WriteFile(filepath.Join(s.dir, "vault.hcl"), []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Start()
	var init struct {
		Keys      []string `json:"keys_base64"`
		RootToken string   `json:"root_token"`
	}
	s.mustDo("PUT", "/v1/sys/init", map[string]any{"secret_shares": 1, "secret_threshold": 1}, &init, "")
	s.unseal, s.Token = init.Keys[0], init.RootToken
	s.Unseal()
	s.mustDo("POST", "/v1/sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]string{"version": "2"}}, nil, s.Token)
	s.MustEnableTransit()
	t.Cleanup(s.Stop)
	return s
}

// Start (re)starts a file-storage server; after a restart it is sealed
// until Unseal.
func (s *Server) Start() {
	s.t.Helper()
	s.launch("server", "-config="+filepath.Join(s.dir, "vault.hcl"))
	s.waitHealthy(200, 501, 503) // 501: not initialized, 503: sealed
}

// Unseal unseals a file-storage server and waits until it is active.
func (s *Server) Unseal() {
	s.t.Helper()
	s.mustDo("PUT", "/v1/sys/unseal", map[string]any{"key": s.unseal}, nil, "")
	s.waitHealthy(200)
}

// Stop stops the server (SIGTERM, then SIGKILL after 10 s). Idempotent.
func (s *Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		<-done
	}
	s.cmd = nil
	s.logFile.Close()
}

// MustEnableTransit mounts Transit at transit/ unless it is mounted.
func (s *Server) MustEnableTransit() {
	s.t.Helper()
	status, body := s.Do("POST", "/v1/sys/mounts/transit", map[string]any{"type": "transit"}, s.Token)
	if status >= 300 && !strings.Contains(string(body), "path is already in use") {
		s.t.Fatalf("vaulttest: enabling transit: %d %s", status, body)
	}
}

// NewTransitMount enables a Transit engine at a fresh path ("transit-N")
// and returns the path. Keyward's vault-transit keys are named by key id,
// and Keyward refuses to touch a Transit key it did not create, so two
// configurations that must not share keys need mounts of their own.
func (s *Server) NewTransitMount() string {
	s.t.Helper()
	path := fmt.Sprintf("transit-%d", mountSeq.Add(1))
	s.mustDo("POST", "/v1/sys/mounts/"+path, map[string]any{"type": "transit"}, nil, s.Token)
	return path
}

var mountSeq atomic.Int64

func (s *Server) launch(args ...string) {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	logDir := s.dir
	if logDir == "" {
		logDir = s.t.TempDir()
	}
	f, err := os.OpenFile(filepath.Join(logDir, "vault.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		s.t.Fatal(err)
	}
	cmd := exec.Command(s.bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	cmd.Env = append(os.Environ(), "VAULT_LOG_LEVEL=warn", "HOME="+logDir)
	if err := cmd.Start(); err != nil {
		f.Close()
		s.t.Fatalf("vaulttest: starting vault: %v", err)
	}
	s.cmd, s.logFile = cmd, f
}

func (s *Server) waitHealthy(ok ...int) {
	s.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(s.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			for _, c := range ok {
				if resp.StatusCode == c {
					return
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	s.t.Fatalf("vaulttest: %s not healthy after 30 s", s.Addr)
}

// Do sends one request to Vault and returns the status and body.
func (s *Server) Do(method, path string, body any, token string) (int, []byte) {
	s.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.Addr+path, r)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("X-Vault-Token", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatalf("vaulttest: %s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, out
}

func (s *Server) mustDo(method, path string, body, out any, token string) {
	s.t.Helper()
	status, b := s.Do(method, path, body, token)
	if status >= 300 {
		s.t.Fatalf("vaulttest: %s %s: %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			s.t.Fatalf("vaulttest: %s %s: %v", method, path, err)
		}
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	// Vault binds PORT+1 for clustering too: find a pair that is free.
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port+1))
		l.Close()
		if err == nil {
			l2.Close()
			return port
		}
	}
	t.Fatal("vaulttest: no free port pair")
	return 0
}
