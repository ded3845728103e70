package keyring

import (
	"slices"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// keyIndex is the keyring's in-memory index of every key: its name, and
// its metadata once loaded (never its material). It makes the costs that
// would otherwise grow with the number of keys independent of it:
//
//   - a page of a listing is read from sorted name sets, not from a
//     listing of the whole store (a directory read, a Vault LIST of the
//     whole prefix) per page;
//   - a page filtered by state is read from the set of that state;
//   - the metadata of a listed key comes from the index, so a page does
//     not depend on which keys the bounded material cache holds.
//
// The index is filled from the store when the keyring opens (in the
// background: see indexer.go), kept up to date by this keyring's own
// writes, and by every read of a record from the store (a cache miss, a
// revalidation). Changes made by other nodes sharing the store reach it
// through those reads and through the indexer's periodic refresh.
//
// Reads race with writes: a record read from the store before this
// keyring wrote or removed it must not overwrite what the write put in
// the index. Every change of the index takes a sequence number; a reader
// notes the sequence before its store read (begin) and its result is
// applied only over entries no newer than that (see observe). Removed
// entries stay as "gone" markers for goneKeep so that a late reader of a
// removed key cannot bring it back.
type keyIndex struct {
	mu      sync.RWMutex
	seq     uint64
	entries map[string]*indexEntry

	all        nameSet // every known name (pending, loaded, unreadable)
	pending    nameSet // names whose metadata is not loaded
	unreadable nameSet // records that exist but do not open
	byState    map[kms.State]*nameSet

	// namesAt is when the last reading of the store's names that was
	// applied began (zero: none yet).
	namesAt time.Time
	gone    int // entries in the gone state, pruned by prune
}

type entryState uint8

const (
	entryPending    entryState = iota // name known, metadata not loaded yet
	entryLoaded                       // meta and rev are the record's
	entryUnreadable                   // the record exists but does not open
	entryGone                         // removed; kept to refuse late readers
)

// indexEntry is one key. meta is replaced, never changed in place, so a
// reader may keep the pointer after releasing the lock.
type indexEntry struct {
	state   entryState
	meta    *kms.Metadata
	rev     uint64
	seq     uint64 // the index sequence of the last change
	checked int64  // unix ns: when rev was last confirmed against the store
	goneAt  int64  // unix ns, for entryGone
	// loading is closed when a load of the entry in progress ends; nil
	// when none is.
	loading chan struct{}
	// revalidating is set while one caller re-checks the entry.
	revalidating bool
}

func newKeyIndex() *keyIndex {
	return &keyIndex{entries: map[string]*indexEntry{}, byState: map[kms.State]*nameSet{}}
}

// begin returns the sequence a reader notes before reading the store.
func (x *keyIndex) begin() uint64 {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.seq
}

func (x *keyIndex) stateSet(s kms.State) *nameSet {
	set := x.byState[s]
	if set == nil {
		set = &nameSet{}
		x.byState[s] = set
	}
	return set
}

// unlink removes e's name from the sets of its state.
func (x *keyIndex) unlink(name string, e *indexEntry) {
	switch e.state {
	case entryPending:
		x.pending.Delete(name)
	case entryLoaded:
		x.stateSet(e.meta.State).Delete(name)
	case entryUnreadable:
		x.unreadable.Delete(name)
	case entryGone:
		x.gone--
		return
	}
	if e.state != entryGone {
		x.all.Delete(name)
	}
}

// link adds e's name to the sets of its (new) state.
func (x *keyIndex) link(name string, e *indexEntry) {
	switch e.state {
	case entryPending:
		x.pending.Insert(name)
	case entryLoaded:
		x.stateSet(e.meta.State).Insert(name)
	case entryUnreadable:
		x.unreadable.Insert(name)
	case entryGone:
		x.gone++
		return
	}
	x.all.Insert(name)
}

// set moves the entry of name (made when missing) to its new content.
func (x *keyIndex) set(name string, e *indexEntry, to indexEntry) {
	if e == nil {
		e = &indexEntry{state: entryGone}
		x.entries[name] = e
		x.gone++
	}
	x.unlink(name, e)
	x.seq++
	e.state, e.meta, e.rev, e.checked, e.goneAt = to.state, to.meta, to.rev, to.checked, to.goneAt
	e.seq = x.seq
	x.link(name, e)
}

// wrote records a record this keyring wrote (created or updated) at
// revision rev: it always wins over what readers saw.
func (x *keyIndex) wrote(meta kms.Metadata, rev uint64, now int64) {
	m := meta.Clone()
	compact(&m, m.ID)
	x.mu.Lock()
	defer x.mu.Unlock()
	x.set(m.ID, x.entries[m.ID], indexEntry{state: entryLoaded, meta: &m, rev: rev, checked: now})
}

// removed records that this keyring removed the key.
func (x *keyIndex) removed(name string, now int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.entries[name]; e != nil {
		x.set(name, e, indexEntry{state: entryGone, goneAt: now})
	}
}

// observed is what a reader found in the store.
type observed struct {
	state entryState // entryLoaded, entryUnreadable or entryGone
	meta  kms.Metadata
	rev   uint64
}

// observe applies what a reader that began at since found. It returns
// whether the entry advanced to a newer revision than the index had (the
// caller then drops an older cached record). The rules:
//
//   - an entry changed after the read began keeps its content (a write or
//     removal of this keyring, or a newer read, is the later truth),
//     except that a loaded entry still takes a newer revision;
//   - otherwise the read's result replaces the entry, including a lower
//     revision (the key was destroyed and made again elsewhere).
func (x *keyIndex) observe(name string, since uint64, o observed, now int64) (advanced bool) {
	var m *kms.Metadata
	if o.state == entryLoaded {
		c := o.meta.Clone()
		compact(&c, name)
		m = &c
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[name]
	sameKind := e != nil && e.state == entryLoaded && o.state == entryLoaded
	switch {
	case e == nil && o.state == entryGone:
		return false
	case sameKind && o.rev == e.rev:
		e.checked = max(e.checked, now) // confirmed: nothing else changes
		return false
	case sameKind && o.rev > e.rev:
		advanced = true
	case e != nil && e.seq > since:
		return false // changed after the read began: the later truth stays
	}
	to := indexEntry{state: o.state, meta: m, rev: o.rev, checked: now}
	if o.state == entryGone {
		to.goneAt = now
	}
	x.set(name, e, to)
	return advanced
}

// compact makes the strings an indexed metadata shares with every other
// entry (its state and usage: constants) or with its own entry (the id:
// the index's name) point to one copy: 100,000 keys each decoded from its
// record would otherwise hold their own copies.
func compact(m *kms.Metadata, name string) {
	if m.ID == name {
		m.ID = name
	}
	for _, s := range [...]kms.State{kms.StateEnabled, kms.StateDisabled, kms.StatePendingDeletion} {
		if m.State == s {
			m.State = s
		}
	}
	if m.Usage == kms.UsageEncryptDecrypt {
		m.Usage = kms.UsageEncryptDecrypt
	}
}

// learn records that the store holds name (its record not read): a
// pending entry, unless the index knows it or changed it after since.
func (x *keyIndex) learn(name string, since uint64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.entries[name]; e == nil || e.state == entryGone && e.seq <= since {
		x.set(name, e, indexEntry{state: entryPending})
	}
}

// confirm notes that the store still holds revision rev of name.
func (x *keyIndex) confirm(name string, rev uint64, now int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.entries[name]; e != nil && e.state == entryLoaded && e.rev == rev {
		e.checked = max(e.checked, now)
	}
}

// snapshot is an entry as read under the lock.
type snapshot struct {
	state   entryState
	meta    *kms.Metadata // shared: clone before handing it out
	rev     uint64
	checked int64
}

// get returns the entry of name (ok false when the index has none, or a
// gone one).
func (x *keyIndex) get(name string) (snapshot, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	e := x.entries[name]
	if e == nil || e.state == entryGone {
		return snapshot{}, false
	}
	return snapshot{state: e.state, meta: e.meta, rev: e.rev, checked: e.checked}, true
}

// claimRevalidation lets one caller at a time re-check a loaded entry;
// the others keep serving it meanwhile.
func (x *keyIndex) claimRevalidation(name string) bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[name]
	if e == nil || e.revalidating {
		return false
	}
	e.revalidating = true
	return true
}

func (x *keyIndex) releaseRevalidation(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.entries[name]; e != nil {
		e.revalidating = false
	}
}

// claimLoad makes the caller the loader of a pending entry: ok is true
// when it must load it (and call loaded after), false with a channel to
// wait on when another caller loads it, and false with nil when the entry
// is not pending any more.
func (x *keyIndex) claimLoad(name string) (ok bool, wait <-chan struct{}) {
	x.mu.Lock()
	defer x.mu.Unlock()
	e := x.entries[name]
	if e == nil || e.state != entryPending {
		return false, nil
	}
	if e.loading != nil {
		return false, e.loading
	}
	e.loading = make(chan struct{})
	return true, nil
}

// loaded ends a load claimed with claimLoad.
func (x *keyIndex) loaded(name string) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if e := x.entries[name]; e != nil && e.loading != nil {
		close(e.loading)
		e.loading = nil
	}
}

// page returns up to limit names of set after `after` and whether more
// follow.
func page(set *nameSet, after string, limit int) ([]string, bool) {
	names := make([]string, 0, min(limit, set.Len()))
	more := false
	set.Ascend(after, func(name string) bool {
		if len(names) == limit {
			more = true
			return false
		}
		names = append(names, name)
		return true
	})
	return names, more
}

// pageAll returns up to limit known names after `after`.
func (x *keyIndex) pageAll(after string, limit int) ([]string, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return page(&x.all, after, limit)
}

// pageState returns up to limit candidates for a page filtered by state:
// names of that state or not loaded yet, in order, and whether more
// follow; and the unreadable names up to the last candidate (all of them
// after `after` when no more candidates follow).
func (x *keyIndex) pageState(s kms.State, after string, limit int) (names []string, more bool, unreadable []string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	set := x.byState[s]
	if set == nil {
		set = &nameSet{}
	}
	// Merge the state's names with the pending ones.
	a, aok := set.First(after)
	b, bok := x.pending.First(after)
	for aok || bok {
		if len(names) == limit {
			more = true
			break
		}
		if aok && (!bok || a < b) {
			names = append(names, a)
			a, aok = set.First(a)
		} else {
			names = append(names, b)
			b, bok = x.pending.First(b)
		}
	}
	last := ""
	if len(names) > 0 {
		last = names[len(names)-1]
	}
	x.unreadable.Ascend(after, func(name string) bool {
		if more && name > last {
			return false
		}
		unreadable = append(unreadable, name)
		return true
	})
	return names, more, unreadable
}

// pendingNames returns up to limit names whose metadata is not loaded.
func (x *keyIndex) pendingNames(after string, limit int) []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	names, _ := page(&x.pending, after, limit)
	return names
}

// reconcile applies a listing of every name in the store (sorted), read
// by a reader that began at since: unknown names become pending entries,
// and entries the listing lacks are gone, unless the index changed them
// after the listing began.
func (x *keyIndex) reconcile(names []string, since uint64, began time.Time) {
	now := began.UnixNano()
	if !slices.IsSorted(names) {
		names = slices.Clone(names)
		slices.Sort(names)
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, name := range names {
		e := x.entries[name]
		if e == nil || e.state == entryGone && e.seq <= since {
			x.set(name, e, indexEntry{state: entryPending})
		}
	}
	var missing []string
	i := 0
	x.all.Ascend("", func(name string) bool {
		for i < len(names) && names[i] < name {
			i++
		}
		if i == len(names) || names[i] != name {
			missing = append(missing, name)
		}
		return true
	})
	for _, name := range missing {
		if e := x.entries[name]; e.seq <= since {
			x.set(name, e, indexEntry{state: entryGone, goneAt: now})
		}
	}
	x.namesAt = began
}

// namesTime returns when the names applied last were read (ok false:
// never).
func (x *keyIndex) namesTime() (time.Time, bool) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	return x.namesAt, !x.namesAt.IsZero()
}

// prune forgets gone entries older than before (unix ns).
func (x *keyIndex) prune(before int64) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.gone == 0 {
		return
	}
	for name, e := range x.entries {
		if e.state == entryGone && e.goneAt < before && e.loading == nil {
			delete(x.entries, name)
			x.gone--
		}
	}
}

// counts returns the number of known keys by index state.
func (x *keyIndex) counts() (pending, unreadable int, byState map[kms.State]int) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	byState = make(map[kms.State]int, len(x.byState))
	for s, set := range x.byState {
		byState[s] = set.Len()
	}
	return x.pending.Len(), x.unreadable.Len(), byState
}

// revalidationCandidates returns loaded or unreadable names after cursor
// last checked before `before` (unix ns): at most limit of them, looking
// at most at visit names. next is the cursor to continue from ("" once
// the end was reached: the next call starts over).
func (x *keyIndex) revalidationCandidates(cursor string, limit, visit int, before int64) (out []string, next string) {
	x.mu.RLock()
	defer x.mu.RUnlock()
	visited, end := 0, true
	x.all.Ascend(cursor, func(name string) bool {
		if len(out) == limit || visited == visit {
			end = false
			return false
		}
		visited++
		next = name
		if e := x.entries[name]; e != nil && e.state != entryPending && e.checked < before {
			out = append(out, name)
		}
		return true
	})
	if end {
		next = ""
	}
	return out, next
}

// forgetAll turns every loaded or unreadable entry back into a pending
// one: its metadata is read from the store again (clear-cache).
func (x *keyIndex) forgetAll() {
	x.mu.Lock()
	defer x.mu.Unlock()
	for name, e := range x.entries {
		if e.state == entryLoaded || e.state == entryUnreadable {
			x.set(name, e, indexEntry{state: entryPending})
		}
	}
}
