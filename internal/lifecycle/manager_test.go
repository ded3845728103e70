package lifecycle

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/keyring/keyringtest"
	"github.com/keyward/keyward/internal/kms"
)

// fakeBackends opens in-memory keyrings (one store per key_dir) and can be
// made unreachable, to test the state machine without a real backend.
type fakeBackends struct {
	mu     sync.Mutex
	stores map[string]*keyringtest.MemStore
	// masters is the master key each key_dir was first opened with: like
	// the local backend's KDF check value, another one is refused.
	masters map[string]string
	down    atomic.Bool
	opened  atomic.Int32
	closed  atomic.Int32
	// inspectErr, if set, is what HoldsKeys answers (a backend that cannot
	// be inspected: unreachable, a bad ca_cert).
	inspectErr error
}

type closeCounter struct {
	kms.Engine
	n *atomic.Int32
}

func (c closeCounter) Close() error { c.n.Add(1); return c.Engine.Close() }

func (f *fakeBackends) Open(ctx context.Context, cfg config.Config) (kms.Engine, prometheus.Collector, error) {
	if f.down.Load() {
		return nil, nil, fmt.Errorf("%w: backend unreachable", kms.ErrUnavailable)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.stores == nil {
		f.stores, f.masters = map[string]*keyringtest.MemStore{}, map[string]string{}
	}
	if m, ok := f.masters[cfg.Local.KeyDir]; ok && m != cfg.Local.MasterKey {
		return nil, nil, fmt.Errorf("%w: master key does not match the key directory", kms.ErrInvalidRequest)
	}
	f.masters[cfg.Local.KeyDir] = cfg.Local.MasterKey
	st := f.stores[cfg.Local.KeyDir]
	if st == nil {
		st = keyringtest.NewMemStore()
		f.stores[cfg.Local.KeyDir] = st
	}
	f.opened.Add(1)
	kr := keyring.New(keyring.Options{Store: st, Sealer: keyringtest.NewGCMSealer(), Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now, CacheEntries: 10, CacheTTL: time.Minute})
	return closeCounter{kr, &f.closed}, nil, nil
}

func (f *fakeBackends) HoldsKeys(ctx context.Context, cfg config.Config) (bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.inspectErr != nil {
		return false, f.inspectErr
	}
	st := f.stores[cfg.Local.KeyDir]
	if st == nil {
		return false, nil
	}
	names, _, _ := st.List(ctx, "", 1)
	return len(names) > 0, nil
}

func newManager(dir string, b Backends) *Manager {
	return New(Options{DataDir: dir, Backends: b, Now: time.Now, Rand: rand.Reader, SweepInterval: time.Hour})
}

var bg = context.Background()

func TestStateMachineAndPersistence(t *testing.T) {
	dir, fb := t.TempDir(), &fakeBackends{}
	m := newManager(dir, fb)
	if st := m.Status(bg); st.Status != StatusNotConfigured || st.Config != nil {
		t.Fatalf("%+v", st)
	}
	if err := m.Start(bg); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("start unconfigured: %v", err)
	}
	if _, _, err := m.Acquire(); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("acquire: %v", err)
	}
	if err := m.Configure(bg, request(`{"backend_type":"local","default_key_id":"dk","master_key":"pw"}`)); err != nil {
		t.Fatal(err)
	}
	if err := m.Start(bg); err != nil {
		t.Fatal(err)
	}
	st := m.Status(bg)
	if st.Status != StatusRunning || st.Healthy == nil || !*st.Healthy {
		t.Fatalf("%+v", st)
	}
	if err := m.Start(bg); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("double start: %v", err)
	}
	if err := m.Configure(bg, request(`{"backend_type":"local"}`)); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("configure while running: %v", err)
	}
	svc, release, err := m.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.DescribeKey(bg, "dk"); err != nil {
		t.Fatalf("default key not created: %v", err)
	}
	release()
	fi, err := os.Stat(filepath.Join(dir, stateFile))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("state file: %v %v", fi, err)
	}
	// A new process on the same data dir comes back running.
	m.Shutdown()
	m2 := newManager(dir, fb)
	if err := m2.Restore(bg); err != nil {
		t.Fatal(err)
	}
	if st := m2.Status(bg); st.Status != StatusRunning {
		t.Fatalf("restored status %s", st.Status)
	}
	if err := m2.Stop(bg); err != nil {
		t.Fatal(err)
	}
	m3 := newManager(dir, fb)
	m3.Restore(bg)
	if st := m3.Status(bg); st.Status != StatusConfigured || st.Config.DefaultKeyID != "dk" {
		t.Fatalf("after stop+restore: %+v", st)
	}
}

func TestReconfigureSwapsWithoutDroppingRequests(t *testing.T) {
	fb := &fakeBackends{}
	m := newManager(t.TempDir(), fb)
	m.Configure(bg, request(`{"backend_type":"local","default_key_id":"dk"}`))
	if err := m.Start(bg); err != nil {
		t.Fatal(err)
	}
	old, release, _ := m.Acquire() // an in-flight request holds the old service
	if err := m.Reconfigure(bg, request(`{"cache_ttl_seconds":42}`)); err != nil {
		t.Fatal(err)
	}
	if m.Status(bg).Config.CacheTTLSeconds != 42 || fb.closed.Load() != 0 {
		t.Fatalf("ttl %d closed %d", m.Status(bg).Config.CacheTTLSeconds, fb.closed.Load())
	}
	if _, _, _, err := old.GenerateDataKey(bg, "dk", 32, nil); err != nil {
		t.Fatalf("in-flight request on the old service failed: %v", err)
	}
	release()
	if fb.closed.Load() != 1 {
		t.Fatal("old service not closed after its last request")
	}
	// Changing the master key of a backend that holds keys is refused, and
	// the running service stays.
	if err := m.Reconfigure(bg, request(`{"master_key":"other"}`)); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("master key change: %v", err)
	}
	if m.Status(bg).Status != StatusRunning {
		t.Fatal("service lost after a refused reconfigure")
	}
	// A reconfigure whose new backend cannot be built leaves the old one.
	fb.down.Store(true)
	if err := m.Reconfigure(bg, request(`{"cache_ttl_seconds":7}`)); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("failed swap: %v", err)
	}
	fb.down.Store(false)
	if st := m.Status(bg); st.Status != StatusRunning || st.Config.CacheTTLSeconds != 42 {
		t.Fatalf("after failed swap: %+v", st)
	}
}

func TestBootRetriesUntilBackendReturns(t *testing.T) {
	dir, fb := t.TempDir(), &fakeBackends{}
	m := newManager(dir, fb)
	m.Configure(bg, request(`{"backend_type":"local"}`))
	m.Start(bg)
	m.Shutdown()

	fb.down.Store(true)
	m2 := newManager(dir, fb)
	if err := m2.Restore(bg); err != nil {
		t.Fatal(err)
	}
	if st := m2.Status(bg); st.Status != StatusError || st.ErrorMsg == "" {
		t.Fatalf("boot with backend down: %+v", st)
	}
	fb.down.Store(false)
	deadline := time.Now().Add(5 * time.Second)
	for m2.Status(bg).Status != StatusRunning {
		if time.Now().After(deadline) {
			t.Fatal("service did not start after the backend came back")
		}
		time.Sleep(50 * time.Millisecond)
	}
	m2.Shutdown()
}

// request parses a configure body; the tests' bodies are valid.
func request(body string) *config.Request {
	r, err := config.ParseRequest([]byte(body))
	if err != nil {
		panic(err)
	}
	return r
}

// TestGuardSparesOnlyWhatRan: the identity guard inspects a stored
// configuration only if a start ever opened it. One that never ran (an
// unreachable Vault, a bad ca_cert) can be replaced even though it cannot
// be inspected, also after a restart; one that ran and cannot be
// inspected is kept, and the error says why.
func TestGuardSparesOnlyWhatRan(t *testing.T) {
	dir := t.TempDir()
	fb := &fakeBackends{inspectErr: fmt.Errorf("%w: vault unreachable", kms.ErrUnavailable)}
	m := newManager(dir, fb)
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/a","master_key":"pw"}`)); err != nil {
		t.Fatal(err)
	}
	m = newManager(dir, fb) // the mark survives a restart
	if err := m.Restore(bg); err != nil {
		t.Fatal(err)
	}
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/b","master_key":"pw"}`)); err != nil {
		t.Fatalf("replacing a configuration that never ran: %v", err)
	}
	if err := m.Start(bg); err != nil {
		t.Fatal(err)
	}
	svc, release, err := m.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateKey(bg, kms.CreateKeyInput{KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	release()
	if err := m.Stop(bg); err != nil {
		t.Fatal(err)
	}
	m = newManager(dir, fb)
	if err := m.Restore(bg); err != nil {
		t.Fatal(err)
	}
	err = m.Configure(bg, request(`{"backend_type":"local","key_dir":"/c","master_key":"pw"}`))
	if !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("replacing a configuration that ran but cannot be inspected: want ErrUnavailable, got %v", err)
	}
	// The same identity with other settings is still accepted, and does
	// not make the configuration new again.
	if err := m.Reconfigure(bg, request(`{"cache_ttl_seconds":30}`)); err != nil {
		t.Fatalf("reconfigure, same identity: %v", err)
	}
	fb.mu.Lock()
	fb.inspectErr = nil
	fb.mu.Unlock()
	if err := m.Configure(bg, request(`{"backend_type":"local","key_dir":"/c","master_key":"pw"}`)); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("replacing a configuration that holds keys: want ErrConflict, got %v", err)
	}
	if st := m.Status(bg); st.Config.Local.KeyDir != "/b" {
		t.Fatalf("stored key_dir %q, want /b", st.Config.Local.KeyDir)
	}
}
