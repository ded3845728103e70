// Package keyring implements kms.Backend for backends that keep key material
// themselves, sealed: the local key directory and Vault KV. Each key is one
// record in a Store; the record holds the metadata and every key version's
// material, and is sealed by a Sealer with the key id bound as associated
// data, so the Store only ever sees sealed bytes and records cannot be
// swapped between ids.
//
// Unsealed records are cached (bounded, with a TTL) so that the hot path
// (wrap and unwrap of data keys) needs no Store or Sealer round trip. Cached
// material is wiped when it leaves the cache.
package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/kms"
)

// materialSize is the size of every master key version (AES-256).
const materialSize = 32

// nonceSize is the AES-GCM nonce size used by Wrap.
const nonceSize = 12

// Options configure a Keyring.
type Options struct {
	Store  Store
	Sealer Sealer
	// Rand is the source of key material and nonces (crypto/rand.Reader in
	// production; injected so tests can use known vectors).
	Rand io.Reader
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
}

// Keyring is a kms.Backend over a Store of sealed records.
type Keyring struct {
	store  Store
	sealer Sealer
	rand   io.Reader
	now    func() time.Time
	cache  *cache.Cache[string, *unsealed]
	// revalidate: see Options.Revalidate.
	revalidate time.Duration

	// locks serialize read-modify-write cycles per key id inside this
	// process; the Store's check-and-set guards against other processes.
	seed  maphash.Seed
	locks [64]sync.Mutex
}

var _ kms.Backend = (*Keyring)(nil)

// New returns a Keyring.
func New(o Options) *Keyring {
	return &Keyring{
		store:  o.Store,
		sealer: o.Sealer,
		rand:   o.Rand,
		now:    o.Now,
		cache:  cache.New[string, *unsealed](o.CacheEntries, o.CacheTTL, o.Now, (*unsealed).wipe),
		seed:   maphash.MakeSeed(),

		revalidate: o.Revalidate,
	}
}

// record is the sealed plaintext of one key. Its JSON encoding is the
// record format version 1 (see docs/local-key-files.md).
type record struct {
	Format   int          `json:"format"`
	Metadata kms.Metadata `json:"metadata"`
	Versions []version    `json:"versions"`
}

type version struct {
	Version  uint32    `json:"version"`
	Material []byte    `json:"material"`
	Created  time.Time `json:"created"`
}

const recordFormat = 1

// unsealed is a cached, opened record. mu guards the material against being
// wiped (on eviction) while an operation is using it.
type unsealed struct {
	mu       sync.RWMutex
	wiped    bool
	meta     kms.Metadata
	versions map[uint32]*versionKey
	revision uint64

	// checked is when the revision was last confirmed against the store
	// (unix nanoseconds); revalidating is set while one caller re-checks.
	checked      atomic.Int64
	revalidating atomic.Bool
}

func (u *unsealed) wipe() {
	u.mu.Lock()
	for _, v := range u.versions {
		clear(v.material)
		v.aead = nil // unwipeable (see versionKey): let it go at least
	}
	u.wiped = true
	u.mu.Unlock()
}

func recordAAD(id string) []byte {
	return append([]byte("keyward/key-record/v1\x00"), id...)
}

func (k *Keyring) lock(id string) *sync.Mutex {
	return &k.locks[maphash.String(k.seed, id)%uint64(len(k.locks))]
}

// Create makes a key with fresh version 1 material.
func (k *Keyring) Create(ctx context.Context, meta kms.Metadata) (kms.Metadata, error) {
	material := make([]byte, materialSize)
	if _, err := io.ReadFull(k.rand, material); err != nil {
		return kms.Metadata{}, fmt.Errorf("keyring: reading randomness: %w", err)
	}
	defer clear(material)
	meta = meta.Clone()
	meta.Version = 1
	rec := record{Format: recordFormat, Metadata: meta, Versions: []version{{Version: 1, Material: material, Created: meta.CreationDate}}}
	sealed, err := k.seal(ctx, &rec)
	if err != nil {
		return kms.Metadata{}, err
	}
	if err := k.store.Create(ctx, meta.ID, sealed); err != nil {
		return kms.Metadata{}, err
	}
	return meta, nil
}

// Describe returns the metadata, from cache when warm.
func (k *Keyring) Describe(ctx context.Context, id string) (kms.Metadata, error) {
	return k.metadata(ctx, id)
}

// metadata returns a copy of the key's metadata, wiping the material when
// the record did not go into the cache.
func (k *Keyring) metadata(ctx context.Context, id string) (kms.Metadata, error) {
	u, owned, err := k.load(ctx, id, true)
	if err != nil {
		return kms.Metadata{}, err
	}
	meta := u.meta.Clone()
	if owned {
		u.wipe()
	}
	return meta, nil
}

// List returns one page of keys. A record that cannot be opened is listed
// in Unreadable; a record that vanished meanwhile is skipped.
func (k *Keyring) List(ctx context.Context, after string, limit int) (kms.ListPage, error) {
	names, more, err := k.store.List(ctx, after, limit)
	if err != nil {
		return kms.ListPage{}, err
	}
	page := kms.ListPage{More: more}
	for _, name := range names {
		page.Last = name
		meta, err := k.metadata(ctx, name)
		switch {
		case err == nil:
			page.Keys = append(page.Keys, meta)
		case errors.Is(err, kms.ErrNotFound):
		case errors.Is(err, kms.ErrCorrupt):
			page.Unreadable = append(page.Unreadable, name)
		default:
			return kms.ListPage{}, err
		}
	}
	return page, nil
}

// Update changes metadata with check-and-set, retrying when another writer
// got in between.
func (k *Keyring) Update(ctx context.Context, id string, change func(*kms.Metadata) error) (kms.Metadata, error) {
	return k.modify(ctx, id, func(rec *record) error { return change(&rec.Metadata) })
}

// Rotate adds a new key version with fresh material and makes it current,
// if precondition (checked on the fresh record) allows.
func (k *Keyring) Rotate(ctx context.Context, id string, precondition func(kms.Metadata) error) (kms.Metadata, error) {
	return k.modify(ctx, id, func(rec *record) error {
		if err := precondition(rec.Metadata); err != nil {
			return err
		}
		material := make([]byte, materialSize)
		if _, err := io.ReadFull(k.rand, material); err != nil {
			return fmt.Errorf("keyring: reading randomness: %w", err)
		}
		now := k.now().UTC().Truncate(time.Microsecond)
		next := rec.Metadata.Version + 1
		rec.Versions = append(rec.Versions, version{Version: next, Material: material, Created: now})
		rec.Metadata.Version = next
		rec.Metadata.RotationDate = now
		return nil
	})
}

func (k *Keyring) modify(ctx context.Context, id string, change func(*record) error) (kms.Metadata, error) {
	mu := k.lock(id)
	mu.Lock()
	defer mu.Unlock()
	for attempt := 0; ; attempt++ {
		entry, err := k.store.Get(ctx, id)
		if err != nil {
			return kms.Metadata{}, err
		}
		rec, err := k.open(ctx, id, entry.Value)
		if err != nil {
			return kms.Metadata{}, err
		}
		if err := change(&rec); err != nil {
			rec.wipe()
			return kms.Metadata{}, err
		}
		sealed, err := k.seal(ctx, &rec)
		meta := rec.Metadata.Clone()
		rec.wipe()
		if err != nil {
			return kms.Metadata{}, err
		}
		err = k.store.Update(ctx, id, sealed, entry.Revision)
		k.cache.Delete(id)
		if errors.Is(err, kms.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			return kms.Metadata{}, err
		}
		return meta, nil
	}
}

// Destroy deletes the record and forgets the cached material. The record
// is always read and opened first: Keyward deletes only what it can prove
// is its own record of this id (it opens under this keyring's sealer, with
// the id bound). A record that does not open (damaged, foreign, or sealed
// under another master key) is refused with kms.ErrConflict and left for an
// operator to look at, never deleted by an API call. The precondition, if
// any, is checked on that freshly read record, and a store shared by
// several nodes deletes only the revision it checked, so a change made
// elsewhere in between wins.
func (k *Keyring) Destroy(ctx context.Context, id string, precondition func(kms.Metadata) error) error {
	mu := k.lock(id)
	mu.Lock()
	defer mu.Unlock()
	entry, err := k.store.Get(ctx, id)
	if err != nil {
		return unopenable(id, err)
	}
	rec, err := k.open(ctx, id, entry.Value)
	if err != nil {
		return unopenable(id, err)
	}
	rec.wipe()
	if precondition != nil {
		if err := precondition(rec.Metadata); err != nil {
			return err
		}
	}
	if rd, ok := k.store.(RevisionDeleter); ok {
		err = rd.DeleteAt(ctx, id, entry.Revision)
	} else {
		err = k.store.Delete(ctx, id)
	}
	k.cache.Delete(id)
	return err
}

// unopenable turns kms.ErrCorrupt from reading a record to destroy into a
// refusal that says why nothing was deleted.
func unopenable(id string, err error) error {
	if errors.Is(err, kms.ErrCorrupt) {
		return fmt.Errorf("%w: key %q: its record cannot be opened (damaged, foreign, or sealed under another master key), and Keyward deletes only records it can prove are its own; inspect and remove it by hand: %w",
			kms.ErrConflict, id, err)
	}
	return err
}

// Wrap seals plaintext with AES-256-GCM under the key version's material:
// output is nonce || ciphertext || tag.
func (k *Keyring) Wrap(ctx context.Context, id string, ver uint32, plaintext, aad []byte) ([]byte, error) {
	nonce := make([]byte, nonceSize, nonceSize+len(plaintext)+16)
	if _, err := io.ReadFull(k.rand, nonce); err != nil {
		return nil, fmt.Errorf("keyring: reading randomness: %w", err)
	}
	var out []byte
	err := k.withAEAD(ctx, id, ver, func(a cipher.AEAD) error {
		out = a.Seal(nonce, nonce, plaintext, aad)
		return nil
	})
	return out, err
}

// Unwrap opens what Wrap made.
func (k *Keyring) Unwrap(ctx context.Context, id string, ver uint32, ciphertext, aad []byte) ([]byte, error) {
	if len(ciphertext) < nonceSize+16 {
		return nil, fmt.Errorf("%w: ciphertext too short", kms.ErrInvalidCiphertext)
	}
	var out []byte
	err := k.withAEAD(ctx, id, ver, func(a cipher.AEAD) error {
		var err error
		out, err = a.Open(nil, ciphertext[:nonceSize], ciphertext[nonceSize:], aad)
		if err != nil {
			return fmt.Errorf("%w: authentication failed (tampered blob or wrong encryption context)", kms.ErrInvalidCiphertext)
		}
		return nil
	})
	return out, err
}

// withAEAD runs f with an AES-GCM AEAD for the key version. A cached
// entry's read lock is held meanwhile so the material cannot be wiped
// underneath; an entry evicted between lookup and lock is looked up again,
// and after a few such races the record is loaded privately.
func (k *Keyring) withAEAD(ctx context.Context, id string, ver uint32, f func(cipher.AEAD) error) error {
	for attempt := 0; ; attempt++ {
		u, owned, err := k.load(ctx, id, attempt < 3)
		if err != nil {
			return err
		}
		if owned {
			err = u.useAEAD(ver, f)
			u.wipe()
			return err
		}
		u.mu.RLock()
		if u.wiped {
			u.mu.RUnlock()
			continue
		}
		err = u.useAEAD(ver, f)
		u.mu.RUnlock()
		return err
	}
}

// useAEAD runs f with the AEAD of a version's material. The caller
// guarantees the material is not wiped meanwhile.
func (u *unsealed) useAEAD(ver uint32, f func(cipher.AEAD) error) error {
	v, ok := u.versions[ver]
	if !ok {
		return fmt.Errorf("%w: the blob names key version %d, which the key does not have", kms.ErrInvalidCiphertext, ver)
	}
	aead, err := v.aeadOnce()
	if err != nil {
		return err
	}
	return f(aead)
}

// versionKey is one version's material and its AES-GCM, built on first use
// and kept while the record is.
//
// Go's AES and GCM keep the expanded key schedule and the GHASH key in
// opaque structures that cannot be wiped. Built per call, as Keyward did
// at first, every request left one such copy of key-derived state in freed
// heap memory until the garbage collector reused it (tens of thousands a
// second under load), and paid 1.2 KB and two allocations for it. Built
// once per cached version there is one copy, alive exactly as long as the
// cached record, whose raw material is wiped on eviction.
type versionKey struct {
	material []byte
	once     sync.Once
	aead     cipher.AEAD
	err      error
}

func (v *versionKey) aeadOnce() (cipher.AEAD, error) {
	v.once.Do(func() {
		block, err := aes.NewCipher(v.material)
		if err != nil {
			v.err = fmt.Errorf("keyring: %w", err)
			return
		}
		if v.aead, err = cipher.NewGCM(block); err != nil {
			v.err = fmt.Errorf("keyring: %w", err)
		}
	})
	return v.aead, v.err
}

// load returns the unsealed record: from the cache when useCache and warm,
// else from the store. owned is true when the record is not shared through
// the cache: the caller must wipe it when done.
func (k *Keyring) load(ctx context.Context, id string, useCache bool) (u *unsealed, owned bool, err error) {
	if useCache {
		if u, ok := k.cache.Get(id); ok {
			if !k.due(u) {
				return u, false, nil
			}
			// One caller re-checks the revision; the others keep using the
			// entry meanwhile (stale by at most one store round trip).
			if u.revalidating.CompareAndSwap(false, true) {
				fresh, err := k.revalidated(ctx, id, u)
				u.revalidating.Store(false)
				return fresh, false, err
			}
			return u, false, nil
		}
	}
	entry, err := k.store.Get(ctx, id)
	if err != nil {
		return nil, false, err
	}
	u, err = k.unseal(ctx, id, entry)
	if err != nil {
		return nil, false, err
	}
	if useCache && k.cache.Enabled() {
		k.cache.Put(id, u)
		return u, false, nil
	}
	return u, true, nil
}

// due reports whether a cached entry must be re-checked against the store.
func (k *Keyring) due(u *unsealed) bool {
	return k.revalidate > 0 && k.now().UnixNano()-u.checked.Load() >= int64(k.revalidate)
}

// revalidated compares a cached entry's revision with the store: unchanged,
// the entry stays; changed, the record is opened again and replaces it;
// gone, the entry is dropped. A store error is returned: a node that cannot
// confirm a key's state must not keep serving it.
func (k *Keyring) revalidated(ctx context.Context, id string, u *unsealed) (*unsealed, error) {
	entry, err := k.store.Get(ctx, id)
	if err != nil {
		// Gone, or unconfirmable (store unreachable): either way the cached
		// state may be wrong, so nobody may use it any longer; the next
		// callers go to the store and fail fast until it answers again.
		k.cache.Delete(id)
		return nil, err
	}
	if entry.Revision == u.revision {
		u.checked.Store(k.now().UnixNano())
		return u, nil
	}
	fresh, err := k.unseal(ctx, id, entry)
	if err != nil {
		return nil, err
	}
	k.cache.Put(id, fresh)
	return fresh, nil
}

// unseal opens a stored entry into a (not yet cached) unsealed record.
func (k *Keyring) unseal(ctx context.Context, id string, entry Entry) (*unsealed, error) {
	rec, err := k.open(ctx, id, entry.Value)
	if err != nil {
		return nil, err
	}
	u := &unsealed{meta: rec.Metadata, revision: entry.Revision, versions: make(map[uint32]*versionKey, len(rec.Versions))}
	for _, v := range rec.Versions {
		u.versions[v.Version] = &versionKey{material: v.Material}
	}
	u.checked.Store(k.now().UnixNano())
	return u, nil
}

func (k *Keyring) seal(ctx context.Context, rec *record) ([]byte, error) {
	plain, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("keyring: encoding record: %w", err)
	}
	defer clear(plain)
	return k.sealer.Seal(ctx, plain, recordAAD(rec.Metadata.ID))
}

// open unseals and checks a record. Anything wrong with it is ErrCorrupt:
// a damaged, foreign or swapped record is reported, never used.
func (k *Keyring) open(ctx context.Context, id string, sealed []byte) (record, error) {
	plain, err := k.sealer.Open(ctx, sealed, recordAAD(id))
	if err != nil {
		return record{}, err
	}
	defer clear(plain)
	var rec record
	if err := json.Unmarshal(plain, &rec); err != nil {
		return record{}, fmt.Errorf("%w: key %q: record does not decode", kms.ErrCorrupt, id)
	}
	if err := rec.check(id); err != nil {
		rec.wipe()
		return record{}, err
	}
	return rec, nil
}

func (r *record) check(id string) error {
	bad := func(why string) error { return fmt.Errorf("%w: key %q: %s", kms.ErrCorrupt, id, why) }
	if r.Format != recordFormat {
		return bad(fmt.Sprintf("unknown record format %d", r.Format))
	}
	if r.Metadata.ID != id {
		return bad("record belongs to another key id")
	}
	if len(r.Versions) == 0 {
		return bad("no key versions")
	}
	found := false
	for i, v := range r.Versions {
		if len(v.Material) != materialSize || v.Version == 0 || (i > 0 && v.Version <= r.Versions[i-1].Version) {
			return bad("bad key version")
		}
		found = found || v.Version == r.Metadata.Version
	}
	if !found {
		return bad("current version missing")
	}
	return nil
}

func (r *record) wipe() {
	for _, v := range r.Versions {
		clear(v.Material)
	}
}

// ClearCache drops and wipes every cached record.
func (k *Keyring) ClearCache() { k.cache.Clear() }

// CacheStats reports cache counters.
func (k *Keyring) CacheStats() cache.Stats { return k.cache.Stats() }

// Health checks that the store answers.
func (k *Keyring) Health(ctx context.Context) error {
	_, _, err := k.store.List(ctx, "", 1)
	return err
}

// Close wipes the cache and closes the sealer when it can be closed.
func (k *Keyring) Close() error {
	k.cache.Clear()
	if c, ok := k.sealer.(interface{ Close() }); ok {
		c.Close()
	}
	return nil
}
