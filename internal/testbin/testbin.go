// Package testbin builds the real keyward binary for tests that run it as a
// process (the e2e suite, the client and CLI tests), once per test binary,
// and holds the small helpers those harnesses share.
package testbin

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

// Keyward builds ./cmd/keyward (once per test process) and returns the
// binary's path. Call Cleanup from TestMain to remove it afterwards.
func Keyward(t testing.TB) string {
	t.Helper()
	path, err := Build()
	if err != nil {
		t.Fatal(err)
	}
	return path
}

// Build is Keyward for callers without a testing.TB (TestMain).
func Build() (string, error) {
	buildOnce.Do(func() {
		root, err := ModuleRoot()
		if err != nil {
			buildErr = err
			return
		}
		if binDir, buildErr = os.MkdirTemp("", "keyward-test-bin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "keyward")
		cmd := exec.Command("go", "build", "-o", binPath, "./cmd/keyward")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/keyward: %v\n%s", err, out)
		}
	})
	return binPath, buildErr
}

// Cleanup removes the built binary.
func Cleanup() {
	if binDir != "" {
		os.RemoveAll(binDir)
	}
}

// ModuleRoot is the directory of go.mod: `go env GOMOD`, else walking up
// from the working directory.
func ModuleRoot() (string, error) {
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

// SyncBuffer is a bytes.Buffer safe for a process's writer goroutine and
// concurrent readers.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// ReadyLine finds the server's JSON "keyward ready" log line in stderr and
// returns the address and scheme it announces.
func ReadyLine(stderr string) (addr, scheme string, ok bool) {
	for _, line := range strings.Split(stderr, "\n") {
		if !strings.Contains(line, `"keyward ready"`) {
			continue
		}
		var m struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
			Scheme  string `json:"scheme"`
		}
		if json.Unmarshal([]byte(line), &m) == nil && m.Msg == "keyward ready" && m.Address != "" {
			if m.Scheme == "" {
				m.Scheme = "http"
			}
			return m.Address, m.Scheme, true
		}
	}
	return "", "", false
}
