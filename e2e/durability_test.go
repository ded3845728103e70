package e2e

import (
	"encoding/base64"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestCrashDuringCreates kills the server (SIGKILL) while four clients
// create keys, restarts it on the same data dir, and checks that every
// acknowledged key survived and no half-written key is visible.
func TestCrashDuringCreates(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	keyDir := filepath.Join(srv.DataDir, "keys")
	configureLocal(t, c, keyDir, "", nil)
	startKMS(t, c)

	const workers = 4
	var (
		mu       sync.Mutex
		acked    = map[string]bool{}
		inFlight = map[string]bool{} // no answer: the crash hit it
		problems []string
		wg       sync.WaitGroup
		stop     atomic.Bool
	)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				id := fmt.Sprintf("crash-%d-%d", g, n)
				r, err := c.send("POST", adminPrefix+"/kms/keys", map[string]any{"key_id": id})
				mu.Lock()
				switch {
				case err != nil:
					inFlight[id] = true
				case r.Status == 200:
					acked[id] = true
				default:
					problems = append(problems, fmt.Sprintf("create %s: %d %s", id, r.Status, short(r.Raw)))
				}
				mu.Unlock()
				if err != nil || (r != nil && r.Status != 200) {
					return
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	srv.Kill()
	stop.Store(true)
	wg.Wait()
	for _, p := range problems {
		t.Errorf("before the crash: %s", p)
	}
	if len(acked) < workers {
		t.Fatalf("only %d keys were acknowledged before the crash", len(acked))
	}
	t.Logf("%d keys acknowledged, %d in flight at the crash", len(acked), len(inFlight))

	srv2 := startServer(t, serverOpts{DataDir: srv.DataDir})
	c2 := srv2.client(t)
	if st, m, raw := c2.do("GET", "/kms/status", nil); str(m, "status") != "Running" {
		t.Fatalf("status after the crash: want Running (it was running); got %d %s", st, short(raw))
	}
	ids, unreadable := listAll(t, c2, 1000)
	if len(unreadable) > 0 {
		t.Errorf("after the crash the listing reports unreadable keys: %v", unreadable)
	}
	listed := map[string]bool{}
	for _, id := range ids {
		listed[id] = true
		if strings.HasPrefix(id, ".tmp") || strings.Contains(id, ".tmp-") {
			t.Errorf("a temp file is listed as key %q", id)
		}
		if strings.HasPrefix(id, "crash-") && !acked[id] && !inFlight[id] {
			t.Errorf("key %q exists but was never created", id)
		}
	}
	for id := range acked {
		if !listed[id] {
			t.Errorf("acknowledged key %s is not listed after the crash", id)
		}
	}
	// Every acknowledged key describes; sample the data path on a few.
	n := 0
	for id := range acked {
		st, md, raw := describe(t, c2, id)
		if st != 200 || str(md, "key_state") != "Enabled" {
			t.Errorf("acknowledged key %s after the crash: want 200 Enabled; got %d %s", id, st, short(raw))
			continue
		}
		if n < 8 {
			generate(t, c2, id, nil)
			n++
		}
	}
	// Creates in flight: all or nothing.
	for id := range inFlight {
		st, _, raw := c2.do("GET", "/kms/keys/"+id, nil)
		switch st {
		case 200:
			if !listed[id] {
				t.Errorf("in-flight key %s describes but is not listed", id)
			}
			st, _, raw := c2.do("POST", "/kms/generate-data-key", map[string]any{"key_id": id})
			if st != 200 {
				t.Errorf("in-flight key %s exists but cannot make a data key: %d %s", id, st, short(raw))
			}
		case 404:
			if listed[id] {
				t.Errorf("in-flight key %s is listed but describes 404", id)
			}
			wantError(t, "describe in-flight key "+id, st, raw, 404, "NotFound")
		default:
			t.Errorf("in-flight key %s after the crash: want 200 or 404; got %d %s", id, st, short(raw))
		}
	}
	// The restarted server cleaned its temp files: none is left to be
	// mistaken for a key later.
	if tmp := findFiles(t, keyDir, func(name string) bool { return strings.HasPrefix(name, ".tmp-") }); len(tmp) > 0 {
		t.Errorf("temp files left in the key dir after a restart: %v", tmp)
	}
	// And new creates work after recovery.
	createKey(t, c2, "after-crash")
}

// TestGracefulShutdown sends SIGTERM under load: the process exits 0
// within 10 s and every request that got an answer got a complete 200.
func TestGracefulShutdown(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev"}})
	c := srv.client(t)
	generate(t, c, "", nil) // warm up

	const workers = 8
	var (
		mu           sync.Mutex
		ok, noAnswer int
		okAfterTerm  int
		problems     []string
		wg           sync.WaitGroup
		terminated   atomic.Bool
		okCount      atomic.Int64
	)
	for g := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-srv.Done():
					return
				default:
				}
				r, err := c.send("POST", adminPrefix+"/kms/generate-data-key", map[string]any{
					"key_spec": "AES_256", "encryption_context": map[string]string{"g": fmt.Sprint(g), "i": fmt.Sprint(i)},
				})
				mu.Lock()
				switch {
				case r == nil && err != nil:
					noAnswer++
				case err != nil:
					problems = append(problems, fmt.Sprintf("worker %d: status %d with a truncated body: %v (%q)", g, r.Status, err, short(r.Raw)))
				case r.Status != 200:
					problems = append(problems, fmt.Sprintf("worker %d: status %d: %s", g, r.Status, short(r.Raw)))
				case !completeDataKey(r.JSON):
					problems = append(problems, fmt.Sprintf("worker %d: incomplete 200 body %q", g, short(r.Raw)))
				default:
					ok++
					okCount.Add(1)
					if terminated.Load() {
						okAfterTerm++
					}
				}
				mu.Unlock()
				if err != nil {
					return // connection refused or reset: the server is going away
				}
			}
		}()
	}
	for deadline := time.Now().Add(10 * time.Second); okCount.Load() < 4*workers && time.Now().Before(deadline); {
		time.Sleep(10 * time.Millisecond)
	}
	terminated.Store(true)
	code, took, exited := srv.StopWithin(10 * time.Second)
	wg.Wait()
	if !exited {
		t.Errorf("keyward did not exit within 10 s of SIGTERM under load")
	} else if code != 0 {
		t.Errorf("exit code after SIGTERM under load: want 0; got %d", code)
	}
	for _, p := range problems {
		t.Errorf("during shutdown: %s", p)
	}
	if ok < 4*workers {
		t.Errorf("only %d requests succeeded before SIGTERM", ok)
	}
	if !strings.Contains(srv.Stderr(), `"keyward stopped"`) {
		t.Errorf("no \"keyward stopped\" log line:\n%s", tail(srv.Stderr(), 2000))
	}
	t.Logf("exit %d after %s; %d complete answers (%d after SIGTERM), %d requests without an answer", code, took.Round(time.Millisecond), ok, okAfterTerm, noAnswer)
}

// completeDataKey reports whether a generate-data-key answer is whole.
func completeDataKey(m map[string]any) bool {
	p, err := base64.StdEncoding.DecodeString(str(m, "plaintext_key"))
	if err != nil || len(p) != 32 {
		return false
	}
	b, err := base64.StdEncoding.DecodeString(str(m, "ciphertext_blob"))
	return err == nil && len(b) > 0 && b[0] == 0x01 && str(m, "key_id") != ""
}
