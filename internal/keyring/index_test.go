package keyring_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/keyring/keyringtest"
	"github.com/keyward/keyward/internal/kms"
)

func openMem(t *testing.T, store *keyringtest.MemStore, sealer keyring.Sealer, o keyring.Options) *keyring.Keyring {
	t.Helper()
	o.Store, o.Sealer, o.Material, o.Now = store, sealer, keyring.SealedMaterial{Rand: rand.Reader}, time.Now
	if o.CacheEntries == 0 {
		o.CacheEntries, o.CacheTTL = 10, time.Hour
	}
	kr := keyring.New(o)
	t.Cleanup(func() { kr.Close() })
	return kr
}

// listAll pages through every key (ListByState when s is set).
func listAll(t *testing.T, kr *keyring.Keyring, s kms.State) (ids, unreadable []string) {
	t.Helper()
	after := ""
	for {
		var page kms.ListPage
		var err error
		if s == "" {
			page, err = kr.List(context.Background(), after, 100)
		} else {
			page, err = kr.ListByState(context.Background(), after, 100, s)
		}
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			ids = append(ids, k.ID)
		}
		unreadable = append(unreadable, page.Unreadable...)
		if !page.More {
			return ids, unreadable
		}
		after = page.Last
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// bound (it proves only that the change arrives, not how fast).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within 20 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestListPagesReadNoRecords: once the index is loaded, a page of a
// listing, with or without a state filter, reads nothing from the store
// (no listing of the names, no record), whatever the number of keys; a
// rare state is answered in one page.
func TestListPagesReadNoRecords(t *testing.T) {
	ctx := context.Background()
	store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	kr := openMem(t, store, sealer, keyring.Options{})
	for i := 0; i < 2000; i++ {
		if _, err := kr.Create(ctx, kms.Metadata{ID: fmt.Sprintf("k%05d", i), State: kms.StateEnabled}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"k00007", "k01500", "k01999"} {
		if _, err := kr.Update(ctx, id, func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	// A fresh keyring over the same store loads the index from it.
	kr2 := openMem(t, store, sealer, keyring.Options{})
	waitFor(t, "index loaded", func() bool {
		ids, _ := listAll(t, kr2, kms.StateDisabled)
		return len(ids) == 3
	})
	gets, lists := store.Gets.Load(), store.Lists.Load()
	for _, after := range []string{"", "k00100", "k01900"} {
		page, err := kr2.List(ctx, after, 100)
		if err != nil || len(page.Keys) != 100 && after != "k01900" {
			t.Fatalf("page after %q: %d keys, %v", after, len(page.Keys), err)
		}
	}
	page, err := kr2.ListByState(ctx, "", 100, kms.StateDisabled)
	if err != nil || page.More || len(page.Keys) != 3 || page.Keys[0].ID != "k00007" || page.Keys[2].ID != "k01999" {
		t.Fatalf("disabled keys: %+v %v", page, err)
	}
	if _, err := kr2.Describe(ctx, "k01234"); err != nil {
		t.Fatal(err)
	}
	if g, l := store.Gets.Load()-gets, store.Lists.Load()-lists; g != 0 || l != 0 {
		t.Fatalf("pages and a describe read the store: %d gets, %d lists", g, l)
	}
}

// TestIndexSeesOtherNodes models two nodes over one store, as two Keyward
// processes over one Vault: a key made, changed or destroyed through one
// shows in the other's listings after its refresh.
func TestIndexSeesOtherNodes(t *testing.T) {
	ctx := context.Background()
	store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	o := keyring.Options{Revalidate: time.Hour, IndexRefresh: 10 * time.Millisecond, IndexMaxAge: time.Millisecond, IndexRevalidateBatch: 100}
	a, b := openMem(t, store, sealer, o), openMem(t, store, sealer, o)
	if _, err := a.Create(ctx, kms.Metadata{ID: "seen", State: kms.StateEnabled}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a key made on A listed on B", func() bool {
		ids, _ := listAll(t, b, "")
		return slices.Contains(ids, "seen")
	})
	if _, err := a.Update(ctx, "seen", func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil }); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a state change on A in B's filtered listing", func() bool {
		ids, _ := listAll(t, b, kms.StateDisabled)
		enabled, _ := listAll(t, b, kms.StateEnabled)
		return slices.Contains(ids, "seen") && !slices.Contains(enabled, "seen")
	})
	if err := a.Destroy(ctx, "seen", nil); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a key destroyed on A gone from B's listing", func() bool {
		ids, _ := listAll(t, b, "")
		return !slices.Contains(ids, "seen")
	})
	// Made again on A (a new record of the same id): listed on B as new.
	if _, err := a.Create(ctx, kms.Metadata{ID: "seen", State: kms.StateEnabled, Description: "second"}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a key made again on A listed on B", func() bool {
		page, _ := b.List(ctx, "", 10)
		return len(page.Keys) == 1 && page.Keys[0].Description == "second"
	})
}

// TestDescribeOfUnindexedKey: a key the index does not know yet (made by
// another node a moment ago) is found on describe, and then listed.
func TestDescribeOfUnindexedKey(t *testing.T) {
	ctx := context.Background()
	store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	a := openMem(t, store, sealer, keyring.Options{})
	b := openMem(t, store, sealer, keyring.Options{}) // no refresh at all
	if _, err := b.List(ctx, "", 10); err != nil {    // B's names are read
		t.Fatal(err)
	}
	if _, err := a.Create(ctx, kms.Metadata{ID: "late", State: kms.StateEnabled}); err != nil {
		t.Fatal(err)
	}
	if m, err := b.Describe(ctx, "late"); err != nil || m.ID != "late" {
		t.Fatalf("describe on B: %+v %v", m, err)
	}
	if ids, _ := listAll(t, b, ""); !slices.Equal(ids, []string{"late"}) {
		t.Fatalf("listed on B after its describe: %v", ids)
	}
	if _, err := b.Describe(ctx, "never"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("describe of a missing key: %v", err)
	}
}

// TestIndexUnderConcurrentChanges creates, changes, destroys and lists
// keys from many goroutines at once (run with -race); at the end the
// listing, unfiltered and by state, is exactly what the store holds.
func TestIndexUnderConcurrentChanges(t *testing.T) {
	ctx := context.Background()
	store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	kr := openMem(t, store, sealer, keyring.Options{CacheEntries: 5, CacheTTL: time.Hour, Revalidate: time.Millisecond, IndexRefresh: time.Millisecond, IndexMaxAge: time.Millisecond, IndexRevalidateBatch: 50})
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 60; i++ {
				id := fmt.Sprintf("c%02d", (w*7+i)%40)
				switch i % 5 {
				case 0, 1:
					kr.Create(ctx, kms.Metadata{ID: id, State: kms.StateEnabled})
				case 2:
					kr.Update(ctx, id, func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil })
				case 3:
					kr.Destroy(ctx, id, nil)
				default:
					kr.List(ctx, "", 10)
					kr.ListByState(ctx, "c10", 10, kms.StateDisabled)
					kr.Describe(ctx, id)
					if w == 0 {
						kr.ClearCache()
					}
				}
			}
		}()
	}
	wg.Wait()
	want := map[kms.State][]string{}
	var all []string
	names, _, _ := store.List(ctx, "", 1000)
	for _, id := range names {
		m, err := openMem(t, store, sealer, keyring.Options{CacheEntries: -1}).Describe(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		want[m.State] = append(want[m.State], id)
		all = append(all, id)
	}
	waitFor(t, "the listing settles on the store's content", func() bool {
		ids, _ := listAll(t, kr, "")
		en, _ := listAll(t, kr, kms.StateEnabled)
		dis, _ := listAll(t, kr, kms.StateDisabled)
		return slices.Equal(ids, all) && slices.Equal(en, want[kms.StateEnabled]) && slices.Equal(dis, want[kms.StateDisabled])
	})
}

// slowLister is a store whose every List call takes cost on the test
// clock, as a Vault LIST of many names takes seconds.
type slowLister struct {
	*keyringtest.MemStore
	clk  *testClock
	cost time.Duration
}

func (s *slowLister) List(ctx context.Context, after string, limit int) ([]string, bool, error) {
	s.clk.Add(s.cost)
	return s.MemStore.List(ctx, after, limit)
}

// TestSlowNameListingSpacesRefreshes: reading every name is the one cost
// of the index that grows with the key count. When it takes longer than a
// tenth of IndexRefresh, the indexer waits ten times as long as it took
// before reading them again, and a listing in between does not read them
// itself; past twice that pause it does. (With a fixed period, a store
// slower to list than IndexRefresh was listed without pause.)
func TestSlowNameListingSpacesRefreshes(t *testing.T) {
	ctx := context.Background()
	clk := &testClock{t: time.Unix(1_000_000, 0)}
	mem, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
	kr := keyring.New(keyring.Options{Store: &slowLister{MemStore: mem, clk: clk, cost: time.Second}, Sealer: sealer,
		Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: clk.Now, CacheEntries: 10, CacheTTL: time.Hour,
		IndexRefresh: 20 * time.Millisecond})
	defer kr.Close()
	if _, err := kr.Create(ctx, kms.Metadata{ID: "k", State: kms.StateEnabled}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "names read", func() bool { return mem.Lists.Load() > 0 })
	if ids, _ := listAll(t, kr, ""); len(ids) != 1 {
		t.Fatalf("listed %v", ids)
	}
	lists := mem.Lists.Load()
	// Fifteen periods of IndexRefresh; the pause is 10 s (10 × 1 s).
	time.Sleep(300 * time.Millisecond)
	if n := mem.Lists.Load() - lists; n != 0 {
		t.Fatalf("the indexer read the names %d times within its pause", n)
	}
	// 5 s later on the clock: older than 2 × IndexRefresh, not 2 × the pause.
	clk.Add(5 * time.Second)
	listAll(t, kr, "")
	if n := mem.Lists.Load() - lists; n != 0 {
		t.Fatalf("a listing read the names %d times within twice the pause", n)
	}
	clk.Add(20 * time.Second)
	listAll(t, kr, "")
	if n := mem.Lists.Load() - lists; n != 1 {
		t.Fatalf("a listing past twice the pause read the names %d times, want 1", n)
	}
}
