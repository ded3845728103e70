package iam

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// logBuffer is a goroutine-safe slog sink.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// writeAtomic replaces path in one rename, as editors and config
// management do, so a poll never sees half a file.
func writeAtomic(t *testing.T, path, content string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

// eventually polls cond for up to 3 s.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func oneUser(ak, secret, policy string) string {
	return `{"users": [{"access_key": "` + ak + `", "secret_key": "` + secret + `", "policies": ["` + policy + `"]}]}`
}

// startWatch loads path and runs Watch until the test ends.
func startWatch(t *testing.T, path string, interval time.Duration, hup chan os.Signal) (*Store, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	s := New(rootAK, rootSecret, slog.New(slog.NewTextHandler(logs, nil)))
	if err := s.LoadFile(path, nil); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		s.Watch(ctx, path, nil, interval, hup)
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(time.Second):
			t.Error("Watch did not return after cancel")
		}
	})
	return s, logs
}

func TestWatchPolling(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iam.json")
	writeAtomic(t, path, oneUser("alice", "alice-secret", "KMSAuditor"))
	s, logs := startWatch(t, path, 50*time.Millisecond, nil)

	// An unchanged file is not reloaded.
	time.Sleep(200 * time.Millisecond)
	if strings.Contains(logs.String(), "IAM file") {
		t.Fatalf("unchanged file logged: %s", logs)
	}

	writeAtomic(t, path, `{"users": [
	  {"access_key": "alice", "secret_key": "alice-secret", "policies": ["KMSAuditor"]},
	  {"access_key": "bob", "secret_key": "bob-secret-1", "policies": ["KMSKeyUser"]}]}`)
	eventually(t, "bob", func() bool { _, ok := s.SecretKey("bob"); return ok })
	if !s.Allowed("bob", "kms:Decrypt", KeyResource("k")) {
		t.Error("bob's policy not applied")
	}
	if l := logs.String(); !strings.Contains(l, `msg="IAM file reloaded"`) || !strings.Contains(l, "users=2") ||
		!strings.Contains(l, `trigger="file changed"`) {
		t.Errorf("reload log: %s", l)
	}

	// A broken file is logged once, and the old users keep working.
	writeAtomic(t, path, `{"users": [{"access_key": "carol", "secret_key": "carol-secret", "policies": ["typo"]}]}`)
	eventually(t, "the error line", func() bool { return strings.Contains(logs.String(), "level=ERROR") })
	time.Sleep(200 * time.Millisecond) // several more polls
	l := logs.String()
	if n := strings.Count(l, "level=ERROR"); n != 1 {
		t.Errorf("%d error lines for one broken file:\n%s", n, l)
	}
	if !strings.Contains(l, `policy \"typo\" is not defined`) || !strings.Contains(l, "previous one stays in force") {
		t.Errorf("error line does not say why: %s", l)
	}
	if _, ok := s.SecretKey("carol"); ok {
		t.Error("user from the broken file is live")
	}
	if sec, ok := s.SecretKey("bob"); !ok || sec != "bob-secret-1" || !s.Allowed("alice", "kms:ListKeys", NoKey) {
		t.Error("old users lost after a broken file")
	}

	// A deleted file is a failed load, not an empty user list.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the missing-file error", func() bool { return strings.Count(logs.String(), "level=ERROR") == 2 })
	if _, ok := s.SecretKey("bob"); !ok {
		t.Error("deleting the file dropped the users")
	}

	// Fixing it reloads.
	writeAtomic(t, path, oneUser("carol", "carol-secret", "KMSKeyUser"))
	eventually(t, "carol", func() bool { _, ok := s.SecretKey("carol"); return ok })
	if _, ok := s.SecretKey("bob"); ok {
		t.Error("bob survived a reload that removed him")
	}
}

func TestWatchSIGHUP(t *testing.T) {
	path := filepath.Join(t.TempDir(), "iam.json")
	writeAtomic(t, path, oneUser("alice", "alice-secret", "KMSAuditor"))
	hup := make(chan os.Signal, 1)
	s, logs := startWatch(t, path, 0, hup) // no polling: only SIGHUP reloads

	writeAtomic(t, path, oneUser("alice", "alice-secret-2", "KMSAuditor"))
	time.Sleep(150 * time.Millisecond)
	if sec, _ := s.SecretKey("alice"); sec != "alice-secret" {
		t.Fatal("reloaded without SIGHUP or polling")
	}
	hup <- syscall.SIGHUP
	eventually(t, "the SIGHUP reload", func() bool { sec, _ := s.SecretKey("alice"); return sec == "alice-secret-2" })
	if !strings.Contains(logs.String(), "trigger=SIGHUP") {
		t.Errorf("log: %s", logs)
	}

	// SIGHUP with a broken file logs an error and keeps the old one.
	writeAtomic(t, path, `{"users": [`)
	hup <- syscall.SIGHUP
	eventually(t, "the error line", func() bool { return strings.Contains(logs.String(), "level=ERROR") })
	if sec, _ := s.SecretKey("alice"); sec != "alice-secret-2" {
		t.Error("broken file replaced the snapshot")
	}

	// A closed channel does not spin or stop the watcher from exiting.
	close(hup)
}

func TestWatchSecretFileRotation(t *testing.T) {
	dir := t.TempDir()
	secretPath := filepath.Join(dir, "ops.secret")
	writeAtomic(t, secretPath, "first-secret\n")
	path := filepath.Join(dir, "iam.json")
	writeAtomic(t, path, `{"users": [{"access_key": "ops", "secret_key_file": "`+secretPath+`", "policies": ["KMSKeyUser"]}]}`)
	s, _ := startWatch(t, path, 50*time.Millisecond, nil)
	if sec, _ := s.SecretKey("ops"); sec != "first-secret" {
		t.Fatalf("secret %q", sec)
	}
	writeAtomic(t, secretPath, "second-secret\n")
	eventually(t, "the rotated secret", func() bool { sec, _ := s.SecretKey("ops"); return sec == "second-secret" })
}
