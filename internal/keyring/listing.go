package keyring

import (
	"context"
	"errors"
	"slices"

	"github.com/keyward/keyward/internal/kms"
)

// Listing and describing through the key index (index.go, indexer.go).

// describeIndexed serves Describe from the index when the cache is on
// and the key's entry is loaded: as is while confirmed within
// describeMaxAge, else after one caller re-reads its revision from the
// store (the others serve the entry meanwhile, as for cached records). ok
// is false when the index cannot answer.
func (k *Keyring) describeIndexed(ctx context.Context, id string) (kms.Metadata, bool, error) {
	if !k.cache.Enabled() {
		return kms.Metadata{}, false, nil
	}
	snap, ok := k.idx.get(id)
	if !ok || snap.state != entryLoaded {
		return kms.Metadata{}, false, nil
	}
	if k.now().UnixNano()-snap.checked < int64(k.describeMaxAge) || !k.idx.claimRevalidation(id) {
		k.indexHits.Add(1)
		return snap.meta.Clone(), true, nil
	}
	defer k.idx.releaseRevalidation(id)
	m, err := k.readIndexed(ctx, id, true)
	if err != nil {
		// Gone, or unconfirmable: a node that cannot confirm a key's
		// state does not keep serving it.
		return kms.Metadata{}, true, err
	}
	return m.Clone(), true, nil
}

// List returns one page of keys, in id order, from the index: the page
// costs the same however many keys there are. A record that cannot be
// opened is listed in Unreadable; a record that vanished meanwhile is
// skipped.
func (k *Keyring) List(ctx context.Context, after string, limit int) (kms.ListPage, error) {
	if err := k.ensureNames(ctx); err != nil {
		return kms.ListPage{}, err
	}
	names, more := k.idx.pageAll(after, max(limit, 0))
	return k.listPage(ctx, names, more, nil, "")
}

// ListByState returns one page of the keys in state s. Its candidates
// come from the index's set of that state and from the keys not loaded
// yet; each is checked again on the metadata the page returns, so a page
// may hold fewer than limit keys while More is true. Unreadable records
// up to the page's end are listed in Unreadable.
func (k *Keyring) ListByState(ctx context.Context, after string, limit int, s kms.State) (kms.ListPage, error) {
	if err := k.ensureNames(ctx); err != nil {
		return kms.ListPage{}, err
	}
	names, more, unreadable := k.idx.pageState(s, after, max(limit, 0))
	return k.listPage(ctx, names, more, unreadable, s)
}

// listPage builds a page of names (keeping those in state s, if set) and
// the unreadable names known to fall in it.
func (k *Keyring) listPage(ctx context.Context, names []string, more bool, unreadable []string, s kms.State) (kms.ListPage, error) {
	// The page's keys are copied once, into a slice of the page's size:
	// a slice grown by appending is copied again at each of its seven
	// regrowths, and what a page allocates is what the collector has to
	// come back for, over an index that holds every key.
	page := kms.ListPage{More: more}
	if len(names) > 0 {
		page.Keys = make([]kms.Metadata, 0, len(names))
	}
	metas := k.metadataOf(ctx, names)
	for i, name := range names {
		page.Last = name
		switch err := metas[i].err; {
		case err == nil:
			if s == "" || metas[i].meta.State == s {
				page.Keys = append(page.Keys, metas[i].meta.Clone())
			}
		case errors.Is(err, kms.ErrNotFound):
		case errors.Is(err, kms.ErrCorrupt):
			page.Unreadable = append(page.Unreadable, name)
		default:
			return kms.ListPage{}, err
		}
	}
	for _, name := range unreadable {
		if !slices.Contains(page.Unreadable, name) {
			page.Unreadable = append(page.Unreadable, name)
		}
		page.Last = max(page.Last, name)
	}
	slices.Sort(page.Unreadable)
	return page, nil
}

// getObserved reads a record from the store; a missing one is marked gone
// in the index, one the store can tell is damaged unreadable (unless the
// index changed meanwhile).
func (k *Keyring) getObserved(ctx context.Context, id string) (Entry, error) {
	since := k.idx.begin()
	entry, err := k.store.Get(ctx, id)
	switch {
	case errors.Is(err, kms.ErrNotFound):
		k.idx.observe(id, since, observed{state: entryGone}, k.now().UnixNano())
	case errors.Is(err, kms.ErrCorrupt):
		k.idx.observe(id, since, observed{state: entryUnreadable}, k.now().UnixNano())
	}
	return entry, err
}
