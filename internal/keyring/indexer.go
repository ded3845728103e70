package keyring

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// NameLister is a Store that can list every name in one pass (one
// directory read, one Vault LIST). The index reads the names this way when
// it opens and on every refresh; a Store without it is paged through List.
type NameLister interface {
	Names(ctx context.Context) ([]string, error)
}

// Index defaults (see Options).
const (
	defaultIndexLoaders = 4
	// goneKeep is how long a removed key's marker refuses late readers.
	goneKeep = 10 * time.Minute
	// listLoaders bounds the store reads one listing page makes at once
	// for keys the index has not loaded yet.
	listLoaders = 8
	// refreshCostFactor: the indexer waits at least this many times what
	// the last reading of every name took before the next one. Reading
	// every name is the one cost of the index that grows with the key
	// count: a Vault LIST of 100,000 names took 2.3-9.3 s on a loaded
	// 2-core machine, longer than the 5 s IndexRefresh, so a fixed
	// period meant listing without pause, loading Vault (and the cores it
	// shares) with background work. With the factor the background
	// listing takes at most a tenth of the time, whatever the key count;
	// the price is a later view of other nodes' new keys in large stores
	// (the bound on a listing's age grows with the pause: ensureNames).
	refreshCostFactor = 10
)

// startIndexer starts the background work of the index: read every name,
// then every record's metadata, then (on a store other processes share)
// refresh both every IndexRefresh.
func (k *Keyring) startIndexer() {
	ctx, cancel := context.WithCancel(context.Background())
	k.stopIndexer = cancel
	k.indexerDone = make(chan struct{})
	go k.runIndexer(ctx)
}

func (k *Keyring) runIndexer(ctx context.Context) {
	defer close(k.indexerDone)
	began := time.Now()
	for wait := time.Second; ; wait = min(2*wait, 30*time.Second) {
		if k.ensureNames(ctx) == nil {
			break
		}
		if !sleep(ctx, wait) {
			return
		}
	}
	k.loadPending(ctx)
	if k.indexLoaded != nil && ctx.Err() == nil {
		pending, unreadable, byState := k.idx.counts()
		keys := 0
		for _, n := range byState {
			keys += n
		}
		k.indexLoaded(keys, unreadable, pending, time.Since(began))
	}
	if k.indexRefresh <= 0 {
		return
	}
	cursor := ""
	for {
		if !sleep(ctx, k.refreshPause()) {
			return
		}
		if k.refreshNames(ctx, k.now()) == nil {
			k.loadPending(ctx)
		}
		cursor = k.revalidateSome(ctx, cursor)
		k.idx.prune(k.now().Add(-goneKeep).UnixNano())
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// ensureNames makes sure the index's names are read, and on a store other
// processes share, read no longer than 2 × IndexRefresh ago (the
// indexer refreshes them every IndexRefresh): a listing either shows
// every key another node made up to then, or fails (the store cannot be
// read). That is the bound on how stale a listing can be.
//
// The bound is 2 × the indexer's pause, which is IndexRefresh unless
// reading every name takes longer than a tenth of it (refreshCostFactor):
// a listing must not start the synchronous read that the pause avoids.
func (k *Keyring) ensureNames(ctx context.Context) error {
	at, ok := k.idx.namesTime()
	if ok && (k.indexRefresh <= 0 || k.now().Sub(at) <= 2*k.refreshPause()) {
		return nil
	}
	return k.refreshNames(ctx, at)
}

// refreshPause is how long the indexer waits between two readings of
// every name: IndexRefresh, or refreshCostFactor × what the last reading
// took when that is longer.
func (k *Keyring) refreshPause() time.Duration {
	return max(k.indexRefresh, time.Duration(k.lastListingPause.Load()))
}

// refreshNames reads every name in the store into the index, unless a
// refresh that began after `older` finished meanwhile (refreshes are
// serialized: callers that waited for one take its result).
func (k *Keyring) refreshNames(ctx context.Context, older time.Time) error {
	k.namesMu.Lock()
	defer k.namesMu.Unlock()
	if at, ok := k.idx.namesTime(); ok && at.After(older) {
		return nil
	}
	since, began := k.idx.begin(), k.now()
	names, err := k.allNames(ctx)
	if err != nil {
		return err
	}
	k.idx.reconcile(names, since, began)
	k.lastListingPause.Store(int64(refreshCostFactor * k.now().Sub(began)))
	return nil
}

func (k *Keyring) allNames(ctx context.Context) ([]string, error) {
	if l, ok := k.store.(NameLister); ok {
		return l.Names(ctx)
	}
	var names []string
	after := ""
	for {
		page, more, err := k.store.List(ctx, after, kms.MaxListLimit)
		if err != nil {
			return nil, err
		}
		names = append(names, page...)
		if !more || len(page) == 0 {
			return names, nil
		}
		after = page[len(page)-1]
	}
}

// loadPending loads the metadata of every key the index knows by name
// only, k.indexLoaders at a time. A key that cannot be read now stays
// pending (listings load it on demand; the next refresh tries again).
func (k *Keyring) loadPending(ctx context.Context) {
	after := ""
	for ctx.Err() == nil {
		names := k.idx.pendingNames(after, 256)
		if len(names) == 0 {
			return
		}
		k.parallel(ctx, len(names), k.indexLoaders, func(i int) { _ = k.loadIndexed(ctx, names[i]) })
		after = names[len(names)-1]
	}
}

// parallel runs f(0..n-1), at most width at once.
func (k *Keyring) parallel(ctx context.Context, n, width int, f func(i int)) {
	if n == 1 || width <= 1 {
		for i := 0; i < n && ctx.Err() == nil; i++ {
			f(i)
		}
		return
	}
	var wg sync.WaitGroup
	sem := make(chan struct{}, width)
	for i := 0; i < n && ctx.Err() == nil; i++ {
		sem <- struct{}{}
		wg.Add(1)
		go func() {
			defer func() { <-sem; wg.Done() }()
			f(i)
		}()
	}
	wg.Wait()
}

// loadIndexed loads a pending entry from the store, unless another caller
// does (then it waits for that one). It returns the store's error when it
// read the entry itself.
func (k *Keyring) loadIndexed(ctx context.Context, name string) error {
	mine, wait := k.idx.claimLoad(name)
	switch {
	case mine:
		_, err := k.readIndexed(ctx, name, false)
		k.idx.loaded(name)
		if errors.Is(err, kms.ErrNotFound) || errors.Is(err, kms.ErrCorrupt) {
			return nil // settled in the index
		}
		return err
	case wait != nil:
		select {
		case <-wait:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// readIndexed reads a key's record from the store into the index, without
// touching the material cache: loading the index of 100,000 keys must not
// evict the keys in use. With mayConfirm, an unchanged revision confirms
// the loaded entry without opening the record again. It returns the
// metadata (shared: clone it) or the store's error.
func (k *Keyring) readIndexed(ctx context.Context, name string, mayConfirm bool) (*kms.Metadata, error) {
	since := k.idx.begin()
	entry, err := k.store.Get(ctx, name)
	now := k.now().UnixNano()
	switch {
	case errors.Is(err, kms.ErrNotFound):
		k.idx.observe(name, since, observed{state: entryGone}, now)
		return nil, err
	case errors.Is(err, kms.ErrCorrupt):
		k.idx.observe(name, since, observed{state: entryUnreadable}, now)
		return nil, err
	case err != nil:
		return nil, err
	}
	if mayConfirm {
		if snap, ok := k.idx.get(name); ok && snap.state == entryLoaded && snap.rev == entry.Revision {
			k.idx.confirm(name, entry.Revision, now)
			return snap.meta, nil
		}
	}
	rec, err := k.open(ctx, name, entry.Value)
	if errors.Is(err, kms.ErrCorrupt) {
		k.idx.observe(name, since, observed{state: entryUnreadable}, now)
		return nil, err
	}
	if err != nil {
		return nil, err
	}
	rec.wipe()
	meta := rec.Metadata
	if k.idx.observe(name, since, observed{state: entryLoaded, meta: meta, rev: entry.Revision}, now) {
		// A newer revision than the cached record's: the next use reads it.
		k.cache.Delete(name)
	}
	return &meta, nil
}

// revalidateSome re-reads, in the background, loaded entries not
// confirmed for IndexMaxAge, at most IndexRevalidateBatch per refresh,
// going round the key set from cursor. It returns the cursor to continue
// from. This is what bounds how long a change made by another node takes
// to show in this node's listings for keys this node does not use (keys
// it uses are re-checked every Revalidate on use).
func (k *Keyring) revalidateSome(ctx context.Context, cursor string) string {
	if k.indexRevalidateBatch <= 0 || k.indexMaxAge <= 0 {
		return ""
	}
	before := k.now().Add(-k.indexMaxAge).UnixNano()
	names, next := k.idx.revalidationCandidates(cursor, k.indexRevalidateBatch, 20*k.indexRevalidateBatch, before)
	k.parallel(ctx, len(names), k.indexLoaders, func(i int) { k.readIndexed(ctx, names[i], true) })
	return next
}

// indexedMeta is one key of a listing page: its metadata (shared: clone
// it) or why it has none.
type indexedMeta struct {
	meta *kms.Metadata
	err  error
}

// metadataOf returns the metadata of names for a listing page: from the
// index when the cache is on (the index is a cache of metadata: with the
// cache off every record is read from the store, as every describe is),
// and from the store, listLoaders at a time, for keys the index has not
// loaded yet.
func (k *Keyring) metadataOf(ctx context.Context, names []string) []indexedMeta {
	out := make([]indexedMeta, len(names))
	var todo []int
	cached := k.cache.Enabled()
	for i, name := range names {
		snap, ok := k.idx.get(name)
		switch {
		case cached && ok && snap.state == entryLoaded:
			out[i].meta = snap.meta
		case cached && ok && snap.state == entryUnreadable:
			out[i].err = kms.ErrCorrupt
		default:
			todo = append(todo, i)
		}
	}
	k.parallel(ctx, len(todo), listLoaders, func(j int) {
		i := todo[j]
		name := names[i]
		if cached {
			if err := k.loadIndexed(ctx, name); err != nil {
				out[i].err = err
				return
			}
			snap, ok := k.idx.get(name)
			if !ok {
				out[i].err = fmt.Errorf("%w: key %q", kms.ErrNotFound, name)
				return
			}
			{
				switch snap.state {
				case entryLoaded:
					out[i].meta = snap.meta
					return
				case entryUnreadable:
					out[i].err = kms.ErrCorrupt
					return
				}
			}
		}
		// Not cached, or the load did not settle it: read it ourselves.
		out[i].meta, out[i].err = k.readIndexed(ctx, name, false)
	})
	if err := ctx.Err(); err != nil {
		for i := range out {
			if out[i].meta == nil && out[i].err == nil {
				out[i].err = err
			}
		}
	}
	return out
}
