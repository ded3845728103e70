package keyring_test

import (
	"context"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/backend/local"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/keyring/keyringtest"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/kms/kmstest"
)

func openLocal(t *testing.T, dir string, cacheEntries int) *keyring.Keyring {
	t.Helper()
	store, err := local.OpenFileStore(filepath.Join(dir, "keys"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	aliases, err := local.OpenAliasStore(filepath.Join(dir, "keys"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := local.NewRootKeySealer(filepath.Join(dir, local.DefaultRootKeyFile), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(keyring.Options{Store: store, Aliases: aliases, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now, CacheEntries: cacheEntries, CacheTTL: time.Minute})
	t.Cleanup(func() { kr.Close() })
	return kr
}

// TestConformanceLocal runs the backend suite on the real local key
// directory, with and without the cache.
func TestConformanceLocal(t *testing.T) {
	for _, entries := range []int{0, 100} {
		kmstest.Run(t, func(t *testing.T) (kms.Engine, func() kms.Engine) {
			dir := t.TempDir()
			return openLocal(t, dir, entries), func() kms.Engine { return openLocal(t, dir, entries) }
		})
	}
}

func TestConformanceMemory(t *testing.T) {
	kmstest.Run(t, func(t *testing.T) (kms.Engine, func() kms.Engine) {
		store, aliases, sealer := keyringtest.NewMemStore(), keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
		open := func() kms.Engine {
			return keyring.New(keyring.Options{Store: store, Aliases: aliases, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now, CacheEntries: 10, CacheTTL: time.Minute})
		}
		return open(), open
	})
}

// TestSwappedRecordIsRefused copies one key's file over another's: the key
// id is bound into the sealed record, so the swap is detected, not used.
func TestSwappedRecordIsRefused(t *testing.T) {
	dir := t.TempDir()
	kr := openLocal(t, dir, 0)
	ctx := context.Background()
	for _, id := range []string{"a", "b"} {
		if _, err := kr.Create(ctx, kms.Metadata{ID: id, State: kms.StateEnabled, Usage: kms.UsageEncryptDecrypt}); err != nil {
			t.Fatal(err)
		}
	}
	a, _ := os.ReadFile(filepath.Join(dir, "keys", "a.key"))
	if err := os.WriteFile(filepath.Join(dir, "keys", "b.key"), a, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := kr.Describe(ctx, "b"); !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("swapped record: %v", err)
	}
	page, err := kr.List(ctx, "", 10)
	if err != nil || len(page.Keys) != 1 || len(page.Unreadable) != 1 || page.Unreadable[0] != "b" {
		t.Fatalf("list: %+v %v", page, err)
	}
}

// TestEvictionWipesMaterial checks that material leaving the cache is
// overwritten while a blob made before still decrypts (reloaded).
func TestEvictionWipesMaterial(t *testing.T) {
	kr := openLocal(t, t.TempDir(), 1)
	ctx := context.Background()
	kr.Create(ctx, kms.Metadata{ID: "x", State: kms.StateEnabled})
	kr.Create(ctx, kms.Metadata{ID: "y", State: kms.StateEnabled})
	ct, err := kr.Wrap(ctx, "x", 1, []byte("0123456789abcdef"), nil)
	if err != nil {
		t.Fatal(err)
	}
	material := keyring.CachedMaterialForTest(kr, "x", 1)
	if len(material) != 32 {
		t.Fatal("x not cached")
	}
	if _, err := kr.Wrap(ctx, "y", 1, []byte("0123456789abcdef"), nil); err != nil { // evicts x (one entry)
		t.Fatal(err)
	}
	for _, b := range material {
		if b != 0 {
			t.Fatal("evicted material not wiped")
		}
	}
	if _, err := kr.Unwrap(ctx, "x", 1, ct, nil); err != nil {
		t.Fatal(err)
	}
}

// testClock is a settable clock; the keyring's indexer reads it from a
// goroutine of its own.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// TestRevalidationSeesOtherNodes models two nodes over one store: a change
// made through node B is seen by node A once its revalidation interval has
// passed, although A's cache TTL is far longer.
func TestRevalidationSeesOtherNodes(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: time.Unix(1_000_000, 0)}
	store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	node := func() *keyring.Keyring {
		return keyring.New(keyring.Options{Store: store, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: clk.Now,
			CacheEntries: 10, CacheTTL: time.Hour, Revalidate: 5 * time.Second})
	}
	a, b := node(), node()
	if _, err := a.Create(ctx, kms.Metadata{ID: "k", State: kms.StateEnabled}); err != nil {
		t.Fatal(err)
	}
	if m, _ := a.Describe(ctx, "k"); m.State != kms.StateEnabled {
		t.Fatal("setup")
	}
	if _, err := b.Update(ctx, "k", func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	clk.Add(4 * time.Second)
	if m, _ := a.Describe(ctx, "k"); m.State != kms.StateEnabled {
		t.Fatal("served from cache before the interval: expected the cached state")
	}
	clk.Add(time.Second)
	if m, _ := a.Describe(ctx, "k"); m.State != kms.StateDisabled {
		t.Fatalf("change on another node not seen after the interval: %v", m.State)
	}
	if err := b.Destroy(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	clk.Add(5 * time.Second)
	if _, err := a.Describe(ctx, "k"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("destroyed on another node, still served: %v", err)
	}
}

func newExternal(t *testing.T) (*keyring.Keyring, *keyringtest.MemStore, *keyringtest.ExternalMaterial) {
	store, material := keyringtest.NewMemStore(), keyringtest.NewExternalMaterial()
	kr := keyring.New(keyring.Options{Store: store, Sealer: keyringtest.NewGCMSealer(), Material: material, Now: time.Now, CacheEntries: 10, CacheTTL: time.Minute})
	t.Cleanup(func() { kr.Close() })
	return kr, store, material
}

// TestExternalMaterialLifecycle: material the backend keeps is made after
// the record claims the id, rotated after the record names the version,
// and destroyed with the key; the record says the backend's material is
// the keyring's own.
func TestExternalMaterialLifecycle(t *testing.T) {
	ctx := context.Background()
	kr, _, material := newExternal(t)
	if _, err := kr.Create(ctx, kms.Metadata{ID: "k", State: kms.StateEnabled}); err != nil {
		t.Fatal(err)
	}
	if has, n := material.Has("k"); !has || n != 1 {
		t.Fatalf("material after create: %v %d", has, n)
	}
	ct1, err := kr.Wrap(ctx, "k", 1, []byte("v1 secret"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m, err := kr.Rotate(ctx, "k", func(kms.Metadata) error { return nil }); err != nil || m.Version != 2 {
		t.Fatalf("rotate: %+v %v", m, err)
	}
	if _, n := material.Has("k"); n != 2 {
		t.Fatalf("versions after rotate: %d", n)
	}
	kr.ClearCache()
	if got, err := kr.Unwrap(ctx, "k", 1, ct1, nil); err != nil || string(got) != "v1 secret" {
		t.Fatalf("v1 after rotation: %v", err)
	}
	if err := kr.Destroy(ctx, "k", nil); err != nil {
		t.Fatal(err)
	}
	if has, _ := material.Has("k"); has {
		t.Fatal("material survived the key")
	}
}

// TestCreateNeverTakesForeignMaterial: when the backend already holds
// material under the id (someone else's), Create fails, the record is
// removed again and the foreign material is untouched; a failed commit is
// undone the same way.
func TestCreateNeverTakesForeignMaterial(t *testing.T) {
	ctx := context.Background()
	kr, store, material := newExternal(t)
	material.Plant("theirs")
	if _, err := kr.Create(ctx, kms.Metadata{ID: "theirs", State: kms.StateEnabled}); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("create over foreign material: %v", err)
	}
	if has, n := material.Has("theirs"); !has || n != 1 {
		t.Fatalf("foreign material changed: %v %d", has, n)
	}
	if store.Raw("theirs") != nil {
		t.Fatal("the record of a refused creation was left behind")
	}
	material.FailCommit = kms.ErrUnavailable
	if _, err := kr.Create(ctx, kms.Metadata{ID: "k", State: kms.StateEnabled}); !errors.Is(err, kms.ErrUnavailable) {
		t.Fatalf("create with a failing commit: %v", err)
	}
	if store.Raw("k") != nil {
		t.Fatal("the record of a failed creation was left behind")
	}
	if _, err := kr.Create(ctx, kms.Metadata{ID: "k", State: kms.StateEnabled}); err != nil {
		t.Fatalf("create after the failure: %v", err)
	}
}

// TestDestroyOpensFirst: a record that does not open is never deleted
// (kms.ErrConflict); the store keeps it for an operator.
func TestDestroyOpensFirst(t *testing.T) {
	ctx := context.Background()
	store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	kr := keyring.New(keyring.Options{Store: store, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now})
	if _, err := kr.Create(ctx, kms.Metadata{ID: "k", State: kms.StateEnabled}); err != nil {
		t.Fatal(err)
	}
	damaged := append([]byte(nil), store.Raw("k")...)
	damaged[len(damaged)-1] ^= 1
	store.SetRaw("k", damaged)
	if err := kr.Destroy(ctx, "k", nil); !errors.Is(err, kms.ErrConflict) || !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("destroy of an unopenable record: %v", err)
	}
	if store.Raw("k") == nil {
		t.Fatal("the unopenable record was deleted")
	}
}
