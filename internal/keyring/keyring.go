// Package keyring is Keyward's one metadata engine: it keeps every key's
// record (metadata, versions, the material's state) for every backend, and
// leaves the key material to a Material. Backends differ only in three
// parts they hand to New:
//
//   - a Store that keeps sealed records by name (a directory of files,
//     Vault KV v2), and knows nothing about cryptography;
//   - a Sealer that seals records under a key-encryption key the Store
//     never sees (Argon2id/AES-GCM in process, a Vault Transit key), with
//     the key id bound as associated data so records cannot be swapped;
//   - a Material that keeps the key material: SealedMaterial (random
//     AES-256 keys kept in the record) or Vault Transit keys that never
//     leave Vault.
//
// The Keyring caches opened records (bounded, with a TTL) so that the hot
// path (wrap and unwrap of data keys) makes no Store or Sealer round trip,
// re-checks a cached record's revision against the Store every Revalidate
// interval (so that changes made by other nodes sharing the store are
// seen), serializes read-modify-write cycles per key in the process and
// relies on the Store's check-and-set across processes. Cached material is
// wiped when it leaves the cache.
package keyring

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/kms"
)

// Options configure a Keyring.
type Options struct {
	Store    Store
	Sealer   Sealer
	Material Material
	// Aliases keeps the alias records (alias.go), sealed by Sealer too;
	// nil: the backend keeps no aliases (kms.ErrNotImplemented).
	Aliases Store
	// Now is the clock.
	Now func() time.Time
	// CacheEntries and CacheTTL bound the cache; zero disables it.
	CacheEntries int
	CacheTTL     time.Duration
	// Revalidate is how often a cached record's revision is re-checked
	// against the store, so that changes made by other nodes sharing the
	// store (Vault) are seen within that interval even while the material
	// stays cached for CacheTTL. Zero: never (a store only this process
	// writes, such as the local key directory).
	Revalidate time.Duration
	// Health checks that the backend answers; nil means a one-name List
	// of the Store.
	Health func(context.Context) error
	// Close releases what the backend holds (a Vault connection, a
	// key-encryption key); called once by Keyring.Close. May be nil.
	Close func() error

	// The key index (index.go, indexer.go). IndexRefresh is how often the
	// names in a store that other processes share are read again, and a
	// batch of at most IndexRevalidateBatch loaded entries not confirmed
	// for IndexMaxAge is re-read; zero: never (a store only this process
	// writes). IndexLoaders bounds the concurrent record reads that fill
	// the index (4 when zero).
	IndexRefresh         time.Duration
	IndexMaxAge          time.Duration
	IndexRevalidateBatch int
	IndexLoaders         int
	// IndexLoaded, when set, is called once the index first holds every
	// key's metadata (or once it gave up on some for now), with the number
	// of keys and how long loading took.
	IndexLoaded func(keys, unreadable, pending int, took time.Duration)
}

// Keyring keeps key records in a Store and implements kms.Engine.
type Keyring struct {
	store    Store
	sealer   Sealer
	material Material
	now      func() time.Time
	cache    *cache.Cache[string, *openRecord]
	aliases  Store
	// aliasCache holds resolved aliases (data-key requests may name a key
	// by alias: resolving must not cost a store round trip when warm).
	aliasCache *cache.Cache[string, *cachedAlias]
	health     func(context.Context) error
	close      func() error
	closed     sync.Once
	// revalidate: see Options.Revalidate.
	revalidate time.Duration

	// locks serialize read-modify-write cycles per key id inside this
	// process; the Store's check-and-set guards against other processes.
	seed  maphash.Seed
	locks [64]sync.Mutex

	// idx indexes every key (index.go); the indexer fills and refreshes it.
	idx                  *keyIndex
	namesMu              sync.Mutex // serializes name refreshes
	indexRefresh         time.Duration
	lastListingPause     atomic.Int64 // ns: refreshCostFactor × the last reading of every name (indexer.go)
	indexMaxAge          time.Duration
	indexRevalidateBatch int
	indexLoaders         int
	describeMaxAge       time.Duration
	stopIndexer          context.CancelFunc
	indexerDone          chan struct{}
	indexHits            atomic.Uint64 // describes answered from the index
	indexLoaded          func(keys, unreadable, pending int, took time.Duration)
}

var _ kms.Engine = (*Keyring)(nil)

// New returns a Keyring.
func New(o Options) *Keyring {
	k := &Keyring{
		store:      o.Store,
		sealer:     o.Sealer,
		material:   o.Material,
		now:        o.Now,
		cache:      cache.New[string, *openRecord](o.CacheEntries, o.CacheTTL, o.Now, (*openRecord).wipe),
		aliases:    o.Aliases,
		aliasCache: cache.New[string, *cachedAlias](o.CacheEntries, o.CacheTTL, o.Now, nil),
		health:     o.Health,
		close:      o.Close,
		revalidate: o.Revalidate,
		seed:       maphash.MakeSeed(),

		idx:                  newKeyIndex(),
		indexRefresh:         o.IndexRefresh,
		indexMaxAge:          o.IndexMaxAge,
		indexRevalidateBatch: o.IndexRevalidateBatch,
		indexLoaders:         o.IndexLoaders,
		indexLoaded:          o.IndexLoaded,
	}
	if k.indexLoaders <= 0 {
		k.indexLoaders = defaultIndexLoaders
	}
	// A described key is served from the index while it is confirmed
	// within the revalidation interval, or (a store no other process
	// writes) within the cache's TTL, as a cached record would be.
	k.describeMaxAge = o.Revalidate
	if k.describeMaxAge <= 0 {
		k.describeMaxAge = o.CacheTTL
	}
	if k.health == nil {
		if c, ok := k.store.(interface{ Check(context.Context) error }); ok {
			k.health = c.Check
		} else {
			k.health = func(ctx context.Context) error { _, _, err := k.store.List(ctx, "", 1); return err }
		}
	}
	k.startIndexer()
	return k
}

// openRecord is an opened record, as cached. mu guards the material against
// being wiped (on eviction) while an operation is using it.
type openRecord struct {
	mu       sync.RWMutex
	wiped    bool
	meta     kms.Metadata
	state    string // Record.MaterialState
	versions map[uint32]*Version
	revision uint64

	// checked is when the revision was last confirmed against the store
	// (unix nanoseconds); revalidating is set while one caller re-checks.
	checked      atomic.Int64
	revalidating atomic.Bool
}

func (o *openRecord) wipe() {
	o.mu.Lock()
	for _, v := range o.versions {
		v.wipe()
	}
	o.wiped = true
	o.mu.Unlock()
}

func (k *Keyring) lock(id string) *sync.Mutex {
	return &k.locks[maphash.String(k.seed, id)%uint64(len(k.locks))]
}

func (k *Keyring) today() time.Time { return k.now().UTC().Truncate(time.Microsecond) }

// Create makes a key with version 1. Material kept in the record is made
// before the record is written; material the backend keeps is made after
// the record has claimed the id (Material.Commit), and if that fails the
// record is removed again.
func (k *Keyring) Create(ctx context.Context, meta kms.Metadata) (kms.Metadata, error) {
	material, err := k.material.NewVersion(ctx)
	if err != nil {
		return kms.Metadata{}, err
	}
	defer clear(material)
	meta = meta.Clone()
	meta.Version = 1
	rec := Record{Format: RecordFormat, Metadata: meta, Versions: []RecordVersion{{Version: 1, Material: material, Created: meta.CreationDate}}}
	sealed, err := k.seal(ctx, &rec)
	if err != nil {
		return kms.Metadata{}, err
	}
	since := k.idx.begin()
	rev, err := k.store.Create(ctx, meta.ID, sealed)
	if errors.Is(err, kms.ErrExists) {
		k.idx.learn(meta.ID, since) // another node made it: list it too
	}
	if err != nil {
		return kms.Metadata{}, err
	}
	if k.material.InRecord() {
		k.cacheRecord(&rec, rev)
		k.idx.wrote(meta, rev, k.now().UnixNano())
		return meta, nil
	}
	state, err := k.material.Commit(ctx, meta.ID, 1, rec.MaterialState)
	if err != nil {
		return kms.Metadata{}, k.undoCreate(ctx, meta.ID, rev, err, "")
	}
	if state != rec.MaterialState {
		rec.MaterialState = state
		if sealed, err = k.seal(ctx, &rec); err == nil {
			_, err = k.store.Update(ctx, meta.ID, sealed, rev)
		}
		if err != nil {
			return kms.Metadata{}, k.undoCreate(ctx, meta.ID, rev, err, state)
		}
		rev++
	}
	k.cacheRecord(&rec, rev)
	k.idx.wrote(meta, rev, k.now().UnixNano())
	return meta, nil
}

// undoCreate removes a record whose material could not be made or
// recorded, destroying the material made for it (state says what the
// backend made). The cause is returned; a failure to undo is wrapped
// into it, so the caller learns the key may be half made.
func (k *Keyring) undoCreate(ctx context.Context, id string, rev uint64, cause error, state string) error {
	err := k.store.Delete(ctx, id, rev, func() error { return k.material.Destroy(ctx, id, state) })
	if err != nil {
		return fmt.Errorf("%w (and removing the half-made key failed: %v)", cause, err)
	}
	k.idx.removed(id, k.now().UnixNano())
	return cause
}

// Describe returns the metadata: from the index when its entry is
// confirmed recently enough (describeIndexed), else from the cache or the
// store.
func (k *Keyring) Describe(ctx context.Context, id string) (kms.Metadata, error) {
	if m, ok, err := k.describeIndexed(ctx, id); ok {
		return m, err
	}
	o, owned, err := k.load(ctx, id, true)
	if err != nil {
		return kms.Metadata{}, err
	}
	meta := o.meta.Clone()
	if owned {
		o.wipe()
	}
	return meta, nil
}

// Update changes metadata with check-and-set, retrying when another writer
// got in between.
func (k *Keyring) Update(ctx context.Context, id string, change func(*kms.Metadata) error) (kms.Metadata, error) {
	meta, _, err := k.modify(ctx, id, func(rec *Record) error {
		before := rec.Metadata
		if err := change(&rec.Metadata); err != nil {
			return err
		}
		if rec.Metadata.ID != before.ID || rec.Metadata.Version != before.Version || !rec.Metadata.RotationDate.Equal(before.RotationDate) {
			return fmt.Errorf("keyring: key %q: its id and versions change only through Create and Rotate", id)
		}
		return nil
	})
	return meta, err
}

// Rotate adds a new key version and makes it current, if precondition
// (checked on the freshly read record, in the same check-and-set) allows:
// two nodes that see one rotation due make one rotation. Material the
// backend keeps is made after the record names the new version; should
// that fail, the record already names it, and the Material completes it
// when the version is first used (see Material.Commit).
func (k *Keyring) Rotate(ctx context.Context, id string, precondition func(kms.Metadata) error) (kms.Metadata, error) {
	meta, rec, err := k.modify(ctx, id, func(rec *Record) error {
		if err := k.material.Usable(id, rec.MaterialState); err != nil {
			return err
		}
		if err := precondition(rec.Metadata.Clone()); err != nil {
			return err
		}
		material, err := k.material.NewVersion(ctx)
		if err != nil {
			return err
		}
		now, next := k.today(), rec.Metadata.Version+1
		rec.Versions = append(rec.Versions, RecordVersion{Version: next, Material: material, Created: now})
		rec.Metadata.Version, rec.Metadata.RotationDate = next, now
		rec.Metadata.Rotations = append(rec.Metadata.Rotations, kms.Rotation{Version: next, Date: now})
		return nil
	})
	if err != nil {
		return kms.Metadata{}, err
	}
	if k.material.InRecord() {
		return meta, nil
	}
	if _, err := k.material.Commit(ctx, id, meta.Version, rec.MaterialState); err != nil {
		return kms.Metadata{}, err
	}
	return meta, nil
}

// modify is the check-and-set loop. It returns the metadata and the
// (wiped) record as written.
func (k *Keyring) modify(ctx context.Context, id string, change func(*Record) error) (kms.Metadata, Record, error) {
	mu := k.lock(id)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		since := k.idx.begin()
		entry, err := k.getObserved(ctx, id)
		if err != nil {
			return kms.Metadata{}, Record{}, err
		}
		rec, err := k.open(ctx, id, entry.Value)
		if err != nil {
			return kms.Metadata{}, Record{}, err
		}
		// What the store holds now, whether or not the change is made.
		if k.idx.observe(id, since, observed{state: entryLoaded, meta: rec.Metadata, rev: entry.Revision}, k.now().UnixNano()) {
			k.cache.Delete(id)
		}
		if err := change(&rec); err != nil {
			rec.wipe()
			return kms.Metadata{}, Record{}, err
		}
		sealed, err := k.seal(ctx, &rec)
		meta := rec.Metadata.Clone()
		if err != nil {
			rec.wipe()
			return kms.Metadata{}, Record{}, err
		}
		rev, err := k.store.Update(ctx, id, sealed, entry.Revision)
		if err == nil {
			k.cacheRecord(&rec, rev)
			k.idx.wrote(rec.Metadata, rev, k.now().UnixNano())
		} else {
			k.cache.Delete(id)
		}
		rec.wipe()
		if errors.Is(err, kms.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return kms.Metadata{}, Record{}, err
		}
		return meta, rec, nil
	}
}

// Destroy deletes the key: its record, and what the backend keeps of its
// material. The record is always read and opened first: Keyward deletes
// only what it can prove is its own record of this id (it opens under this
// keyring's sealer, with the id bound). A record that does not open
// (damaged, foreign, or sealed under another key) is refused with
// kms.ErrConflict and left for an operator to look at, never deleted by an
// API call. The precondition, if any, is checked on that freshly read
// record, and the Store deletes only the revision checked, so a change
// made meanwhile on another node wins.
func (k *Keyring) Destroy(ctx context.Context, id string, precondition func(kms.Metadata) error) error {
	mu := k.lock(id)
	mu.Lock()
	defer mu.Unlock()
	defer k.cache.Delete(id)
	since := k.idx.begin()
	entry, err := k.getObserved(ctx, id)
	if err != nil {
		return unopenable(id, err)
	}
	rec, err := k.open(ctx, id, entry.Value)
	if err != nil {
		if errors.Is(err, kms.ErrCorrupt) {
			k.idx.observe(id, since, observed{state: entryUnreadable}, k.now().UnixNano())
		}
		return unopenable(id, err)
	}
	rec.wipe()
	if precondition != nil {
		if err := precondition(rec.Metadata); err != nil {
			return err
		}
	}
	var destroyMaterial func() error
	if !k.material.InRecord() {
		destroyMaterial = func() error { return k.material.Destroy(ctx, id, rec.MaterialState) }
	}
	if err := k.store.Delete(ctx, id, entry.Revision, destroyMaterial); err != nil {
		if errors.Is(err, kms.ErrNotFound) {
			k.idx.removed(id, k.now().UnixNano())
		}
		return err
	}
	k.idx.removed(id, k.now().UnixNano())
	k.deleteAliasesOf(ctx, id, rec.Metadata.Aliases)
	return nil
}

// unopenable turns kms.ErrCorrupt from reading a record to destroy into a
// refusal that says why nothing was deleted.
func unopenable(id string, err error) error {
	if errors.Is(err, kms.ErrCorrupt) {
		// The cause names where the record lives (a server path, a Vault
		// path): the server log gets it, the caller does not.
		return kms.WithPrivateCause(kms.ErrConflict, fmt.Sprintf("key %q: its record cannot be opened (damaged, foreign, or sealed under another key), and Keyward deletes only records it can prove are its own; an operator must inspect it (the server log says where it is)", id), err)
	}
	return err
}

// Wrap encrypts plaintext under the key version.
func (k *Keyring) Wrap(ctx context.Context, id string, ver uint32, plaintext, aad []byte) ([]byte, error) {
	var out []byte
	err := k.withVersion(ctx, id, ver, func(v *Version) (err error) {
		out, err = k.material.Wrap(ctx, v, plaintext, aad)
		return err
	})
	return out, err
}

// Unwrap opens what Wrap made.
func (k *Keyring) Unwrap(ctx context.Context, id string, ver uint32, ciphertext, aad []byte) ([]byte, error) {
	var out []byte
	err := k.withVersion(ctx, id, ver, func(v *Version) (err error) {
		out, err = k.material.Unwrap(ctx, v, ciphertext, aad)
		return err
	})
	return out, err
}

// load returns the opened record: from the cache when useCache and warm,
// else from the store. owned is true when the record is not shared through
// the cache: the caller must wipe it when done.
func (k *Keyring) load(ctx context.Context, id string, useCache bool) (o *openRecord, owned bool, err error) {
	if useCache {
		if o, ok := k.cache.Get(id); ok {
			if !k.due(o) {
				return o, false, nil
			}
			// One caller re-checks the revision; the others keep using the
			// entry meanwhile (stale by at most one store round trip).
			if o.revalidating.CompareAndSwap(false, true) {
				fresh, err := k.revalidated(ctx, id, o)
				o.revalidating.Store(false)
				return fresh, false, err
			}
			return o, false, nil
		}
	}
	since := k.idx.begin()
	entry, err := k.getObserved(ctx, id)
	if err != nil {
		return nil, false, err
	}
	o, err = k.openEntry(ctx, id, entry)
	if err != nil {
		if errors.Is(err, kms.ErrCorrupt) {
			k.idx.observe(id, since, observed{state: entryUnreadable}, k.now().UnixNano())
		}
		return nil, false, err
	}
	k.idx.observe(id, since, observed{state: entryLoaded, meta: o.meta, rev: o.revision}, k.now().UnixNano())
	if useCache && k.cache.Enabled() {
		k.cache.Put(id, o)
		return o, false, nil
	}
	return o, true, nil
}

// due reports whether a cached record must be re-checked against the store.
func (k *Keyring) due(o *openRecord) bool {
	return k.revalidate > 0 && k.now().UnixNano()-o.checked.Load() >= int64(k.revalidate)
}

// revalidated compares a cached record's revision with the store:
// unchanged, it stays; changed, the record is opened again and replaces it;
// gone, it is dropped. A store error is returned: a node that cannot
// confirm a key's state must not keep serving it.
func (k *Keyring) revalidated(ctx context.Context, id string, o *openRecord) (*openRecord, error) {
	since := k.idx.begin()
	entry, err := k.getObserved(ctx, id)
	if err != nil {
		// Gone, or unconfirmable (store unreachable): either way the cached
		// state may be wrong, so nobody may use it any longer; the next
		// callers go to the store and fail fast until it answers again.
		k.cache.Delete(id)
		return nil, err
	}
	now := k.now().UnixNano()
	if entry.Revision == o.revision {
		o.checked.Store(now)
		k.idx.confirm(id, o.revision, now)
		return o, nil
	}
	fresh, err := k.openEntry(ctx, id, entry)
	if err != nil {
		return nil, err
	}
	k.idx.observe(id, since, observed{state: entryLoaded, meta: fresh.meta, rev: fresh.revision}, now)
	k.cache.Put(id, fresh)
	return fresh, nil
}

// openEntry opens a stored entry into a (not yet cached) record.
func (k *Keyring) openEntry(ctx context.Context, id string, entry Entry) (*openRecord, error) {
	rec, err := k.open(ctx, id, entry.Value)
	if err != nil {
		return nil, err
	}
	return k.newOpenRecord(&rec, entry.Revision), nil
}

// newOpenRecord makes an open record of rec at revision rev; it takes over
// rec's material.
func (k *Keyring) newOpenRecord(rec *Record, rev uint64) *openRecord {
	id := rec.Metadata.ID
	o := &openRecord{meta: rec.Metadata.Clone(), state: rec.MaterialState, revision: rev, versions: make(map[uint32]*Version, len(rec.Versions))}
	for _, v := range rec.Versions {
		o.versions[v.Version] = &Version{KeyID: id, Number: v.Version, State: rec.MaterialState, material: v.Material}
	}
	o.checked.Store(k.now().UnixNano())
	return o
}

// cacheRecord caches a record this keyring just wrote (at revision rev),
// so that the next use of the key needs no store read or unsealing. The
// record keeps its material (wiped by its owner); the cache gets a copy.
func (k *Keyring) cacheRecord(rec *Record, rev uint64) {
	if !k.cache.Enabled() {
		return
	}
	cp := *rec
	cp.Versions = make([]RecordVersion, len(rec.Versions))
	for i, v := range rec.Versions {
		cp.Versions[i] = RecordVersion{Version: v.Version, Created: v.Created, Material: bytes.Clone(v.Material)}
	}
	k.cache.Put(rec.Metadata.ID, k.newOpenRecord(&cp, rev))
}

func (k *Keyring) seal(ctx context.Context, rec *Record) ([]byte, error) {
	plain, err := rec.Encode()
	if err != nil {
		return nil, err
	}
	defer clear(plain)
	return k.sealer.Seal(ctx, plain, RecordAAD(rec.Metadata.ID))
}

// open unseals and checks a record.
func (k *Keyring) open(ctx context.Context, id string, sealed []byte) (Record, error) {
	plain, err := k.sealer.Open(ctx, sealed, RecordAAD(id))
	if err != nil {
		return Record{}, err
	}
	defer clear(plain)
	return decodeRecord(id, plain, k.material.InRecord())
}

// ClearCache drops and wipes every cached record, and every cached alias,
// and the metadata in the index, which is read again from the store: by
// the next use of each key, by listings for their pages, and by the
// indexer in the background (at once, or on a shared store at its next
// refresh).
func (k *Keyring) ClearCache() {
	k.cache.Clear()
	k.idx.forgetAll()
	k.aliasCache.Clear()
}

// CacheStats reports cache counters: the records' cache, and describes
// answered from the index (hits).
func (k *Keyring) CacheStats() cache.Stats {
	st := k.cache.Stats()
	st.Hits += k.indexHits.Load()
	return st
}

// Health checks that the backend answers.
func (k *Keyring) Health(ctx context.Context) error { return k.health(ctx) }

// Close stops the indexer, wipes the cache and releases the backend.
func (k *Keyring) Close() error {
	k.stopIndexer()
	<-k.indexerDone
	k.cache.Clear()
	var err error
	k.closed.Do(func() {
		if k.close != nil {
			err = k.close()
		}
	})
	return err
}
