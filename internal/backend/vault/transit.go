package vault

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/kms"
)

// transitBackend is the `vault-transit` backend: each master key is a
// Transit key {mount}/keys/{id} (aes256-gcm96, never exportable) and every
// wrap or unwrap is one Transit call; the metadata lives in KV v2 as
// kvRecord.Metadata.
//
// Metadata is cached (bounded, TTL) and re-checked against KV every
// revalidate interval, so that Wrap and Unwrap on a warm key make exactly
// one Vault call and a state change made by another node is seen within
// that interval.
type transitBackend struct {
	conn       *conn
	kv         *kvStore
	mount      string
	now        func() time.Time
	revalidate time.Duration
	cache      *cache.Cache[string, *metaEntry]

	// locks serialize read-modify-write cycles per key id in this
	// process; KV check-and-set guards against other processes.
	seed  maphash.Seed
	locks [64]sync.Mutex
}

var (
	_ kms.Backend = (*transitBackend)(nil)
	_ kms.Rotator = (*transitBackend)(nil)
)

// metaEntry is a cached metadata record and the KV version it came from.
type metaEntry struct {
	meta    kms.Metadata
	version uint64
	// owned: the record proves Keyward created the Transit key
	// (ownsTransitKey); only then is the key used, rotated or deleted.
	owned bool
	// checked: when the version was last confirmed (unix nanoseconds);
	// revalidating: set while one caller re-checks.
	checked      atomic.Int64
	revalidating atomic.Bool
}

func (b *transitBackend) lock(id string) *sync.Mutex {
	return &b.locks[maphash.String(b.seed, id)%uint64(len(b.locks))]
}

func (b *transitBackend) keyPath(id string) string { return b.mount + "/keys/" + id }

// Create claims the id, then makes the Transit key, and records that
// Keyward made it:
//
//  1. the KV record, with cas=0 and Transit "creating": that write picks the
//     one winner among concurrent creators on any node;
//  2. the Transit key: if a key of that name already exists and Keyward
//     cannot prove it is its own (see createTransitKey), nothing in Vault
//     is changed, the record is removed again and the answer is
//     kms.ErrConflict; another application's key is never touched;
//  3. the record again, Transit "owned": from then on Keyward may rotate
//     and, on destruction, delete that Transit key.
//
// If step 2 or 3 fails, Create undoes what it did (the Transit key only if
// it created it in step 2).
func (b *transitBackend) Create(ctx context.Context, meta kms.Metadata) (kms.Metadata, error) {
	if err := kms.ValidateKeyID(meta.ID); err != nil {
		return kms.Metadata{}, err
	}
	meta = meta.Clone()
	meta.Version = 1
	id := meta.ID
	ver, replaced, err := b.kv.create(ctx, id, kvRecord{Format: recordFormat, Metadata: &meta, Transit: transitCreating})
	if err != nil {
		return kms.Metadata{}, err
	}
	undo := func(cause error, deleteKey bool) (kms.Metadata, error) {
		if deleteKey {
			if err := b.deleteTransitKey(ctx, id); err != nil {
				b.kv.log.Error("vault: could not delete the Transit key of a key whose creation failed", "key_id", id, "error", err)
			}
		}
		if err := b.kv.purge(ctx, id); err != nil {
			b.kv.log.Error("vault: could not remove the record of a key whose creation failed", "key_id", id, "error", err)
		}
		return kms.Metadata{}, cause
	}
	if err := b.createTransitKey(ctx, id, ownsTransitKey(replaced)); err != nil {
		return undo(err, false)
	}
	ver, err = b.kv.update(ctx, id, kvRecord{Format: recordFormat, Metadata: &meta, Transit: transitOwned}, ver)
	if err != nil {
		return undo(err, true)
	}
	b.put(meta, ver, true)
	return meta.Clone(), nil
}

// createTransitKey makes a fresh Transit key for id. A key that already
// has that name is someone else's unless leftoverOwned says the tombstone
// Create took over owned it (a destruction of this id that deleted its
// record but not its Transit key): such a leftover is deleted first,
// because its old versions would otherwise make the destroyed key's blobs
// decrypt again under the new key. Anything else is kms.ErrConflict, and
// nothing in Vault changes. Vault answers the creation of an existing key
// with a warning instead of an error: a key created by someone else
// between the check and the creation is caught by that warning.
func (b *transitBackend) createTransitKey(ctx context.Context, id string, leftoverOwned bool) error {
	err := b.conn.call(ctx, http.MethodGet, b.keyPath(id), nil, nil)
	switch {
	case err == nil && leftoverOwned:
		b.kv.log.Warn("vault: deleting the Transit key left by an interrupted destruction of this key id", "key_id", id)
		if err := b.deleteTransitKey(ctx, id); err != nil {
			return err
		}
	case err == nil:
		return b.foreignTransitKey(id)
	case !isStatus(err, http.StatusNotFound, ""):
		return err
	}
	var out struct {
		Warnings []string `json:"warnings"`
	}
	if err := b.conn.call(ctx, http.MethodPut, b.keyPath(id), map[string]any{"type": "aes256-gcm96", "exportable": false}, &out); err != nil {
		return err
	}
	for _, w := range out.Warnings {
		if strings.Contains(w, "already existed") {
			return b.foreignTransitKey(id)
		}
	}
	return nil
}

func (b *transitBackend) foreignTransitKey(id string) error {
	return fmt.Errorf("%w: a Transit key named %q already exists on mount %q and Keyward did not create it; Keyward never uses, changes or deletes a Transit key it did not create. Choose another key id, or give Keyward a mount of its own",
		kms.ErrConflict, id, b.mount)
}

// deleteTransitKey allows deletion, then deletes. A key already gone is
// fine. Callers have proven the key is Keyward's (ownsTransitKey).
func (b *transitBackend) deleteTransitKey(ctx context.Context, id string) error {
	err := b.conn.call(ctx, http.MethodPut, b.keyPath(id)+"/config", map[string]bool{"deletion_allowed": true}, nil)
	if isStatus(err, http.StatusBadRequest, "no existing key") {
		return nil
	}
	if err != nil {
		return err
	}
	err = b.conn.call(ctx, http.MethodDelete, b.keyPath(id), nil, nil)
	if isStatus(err, http.StatusBadRequest, "not found") {
		return nil
	}
	return err
}

// errNotOwned refuses to use, rotate or delete the Transit key of a record
// whose creation did not complete.
func errNotOwned(id string) error {
	return fmt.Errorf("%w: the creation of key %q did not complete, so Keyward cannot prove its Transit key is its own; schedule its deletion and create it again", kms.ErrConflict, id)
}

// Describe returns the metadata, from cache when warm.
func (b *transitBackend) Describe(ctx context.Context, id string) (kms.Metadata, error) {
	e, err := b.load(ctx, id)
	if err != nil {
		return kms.Metadata{}, err
	}
	return e.meta.Clone(), nil
}

// List returns one page; a record that does not decode is listed in
// Unreadable, a removed one (tombstone) is skipped.
func (b *transitBackend) List(ctx context.Context, after string, limit int) (kms.ListPage, error) {
	names, more, err := b.kv.list(ctx, after, limit)
	if err != nil {
		return kms.ListPage{}, err
	}
	page := kms.ListPage{More: more}
	for _, name := range names {
		page.Last = name
		e, err := b.load(ctx, name)
		switch {
		case err == nil:
			page.Keys = append(page.Keys, e.meta.Clone())
		case errors.Is(err, kms.ErrNotFound):
		case errors.Is(err, kms.ErrCorrupt):
			page.Unreadable = append(page.Unreadable, name)
		default:
			return kms.ListPage{}, err
		}
	}
	return page, nil
}

// Update changes the metadata with check-and-set on the KV version,
// retrying when another writer got in between.
func (b *transitBackend) Update(ctx context.Context, id string, change func(*kms.Metadata) error) (kms.Metadata, error) {
	mu := b.lock(id)
	mu.Lock()
	defer mu.Unlock()
	return b.modify(ctx, id, change)
}

// Rotate makes version n+1 current if precondition (checked on fresh
// metadata) allows. The KV check-and-set comes first, so two nodes seeing
// one due rotation make one rotation; the Transit key is then rotated up to
// that version (ensureVersion, which Wrap also calls should a node fail in
// between).
func (b *transitBackend) Rotate(ctx context.Context, id string, precondition func(kms.Metadata) error) (kms.Metadata, error) {
	mu := b.lock(id)
	mu.Lock()
	defer mu.Unlock()
	if e, err := b.fresh(ctx, id); err != nil {
		return kms.Metadata{}, err
	} else if !e.owned {
		return kms.Metadata{}, errNotOwned(id)
	}
	m, err := b.modify(ctx, id, func(m *kms.Metadata) error {
		if err := precondition(m.Clone()); err != nil {
			return err
		}
		m.Version++
		m.RotationDate = b.now().UTC().Truncate(time.Microsecond)
		return nil
	})
	if err != nil {
		return kms.Metadata{}, err
	}
	if err := b.ensureVersion(ctx, id, m.Version); err != nil {
		return kms.Metadata{}, err
	}
	return m, nil
}

// ensureVersion rotates the Transit key until it has version ver. Racing
// callers may add a spare version; an unused Transit version is harmless
// (Keyward always names the version it encrypts under).
func (b *transitBackend) ensureVersion(ctx context.Context, id string, ver uint32) error {
	var out struct {
		Data struct {
			LatestVersion uint32 `json:"latest_version"`
		} `json:"data"`
	}
	if err := b.conn.call(ctx, http.MethodGet, b.keyPath(id), nil, &out); err != nil {
		return b.transitError(id, err)
	}
	for latest := out.Data.LatestVersion; latest < ver; latest++ {
		if err := b.conn.call(ctx, http.MethodPut, b.keyPath(id)+"/rotate", nil, nil); err != nil {
			return b.transitError(id, err)
		}
	}
	return nil
}

// modify is the check-and-set loop; the caller holds the id's lock.
func (b *transitBackend) modify(ctx context.Context, id string, change func(*kms.Metadata) error) (kms.Metadata, error) {
	for attempt := 0; ; attempt++ {
		e, err := b.fresh(ctx, id)
		if err != nil {
			return kms.Metadata{}, err
		}
		meta := e.meta.Clone()
		if err := change(&meta); err != nil {
			return kms.Metadata{}, err
		}
		meta.ID = id
		ver, err := b.kv.update(ctx, id, kvRecord{Format: recordFormat, Metadata: &meta, Transit: ownership(e.owned)}, e.version)
		if errors.Is(err, kms.ErrConflict) && attempt < 5 {
			continue
		}
		if err != nil {
			b.cache.Delete(id)
			return kms.Metadata{}, err
		}
		b.put(meta, ver, e.owned)
		return meta.Clone(), nil
	}
}

// Destroy checks the precondition on freshly read metadata, then removes
// the key: a tombstone written with check-and-set on the version the
// precondition saw (so a concurrent change or destruction on another node
// makes this one fail instead of both succeeding), the Transit key
// (deletion_allowed, then DELETE) if the record proves Keyward created it,
// and finally every KV version. A KV object that is not a readable Keyward
// record is refused (kms.ErrConflict) and nothing is deleted: Keyward only
// deletes what it can prove it created.
func (b *transitBackend) Destroy(ctx context.Context, id string, precondition func(kms.Metadata) error) error {
	mu := b.lock(id)
	mu.Lock()
	defer mu.Unlock()
	defer b.cache.Delete(id)
	for attempt := 0; ; attempt++ {
		rec, ver, err := b.kv.get(ctx, id)
		if err == nil {
			_, err = b.decode(id, rec)
		}
		if errors.Is(err, kms.ErrCorrupt) {
			return fmt.Errorf("%w: key %q: its KV record is not a record Keyward can read, and Keyward deletes only what it can prove is its own; inspect and remove it in Vault by hand: %w", kms.ErrConflict, id, err)
		}
		if err != nil {
			return err
		}
		if precondition != nil {
			if err := precondition(rec.Metadata.Clone()); err != nil {
				return err
			}
		}
		deleteKey := func() error {
			if !ownsTransitKey(rec) {
				return nil // a creation that did not complete: its Transit key, if any, is not proven Keyward's
			}
			return b.deleteTransitKey(ctx, id)
		}
		err = b.kv.remove(ctx, id, rec, ver, deleteKey, true)
		if errors.Is(err, kms.ErrConflict) && attempt < 5 {
			continue // changed meanwhile: check the precondition again
		}
		return err
	}
}

// ownership is the kvRecord.Transit value of a record whose Transit key
// is (owned) or is not yet proven (creating) Keyward's.
func ownership(owned bool) string {
	if owned {
		return transitOwned
	}
	return transitCreating
}

// Wrap encrypts under the given key version in Transit, with aad as
// associated data. The result is Transit's "vault:vN:..." ciphertext.
func (b *transitBackend) Wrap(ctx context.Context, id string, ver uint32, plaintext, aad []byte) ([]byte, error) {
	if e, err := b.load(ctx, id); err != nil {
		return nil, err
	} else if !e.owned {
		return nil, errNotOwned(id)
	}
	payload := transitPayload(plaintext, "", aad, ver)
	defer clear(payload) // plaintext, in base64
	p := b.mount + "/encrypt/" + id
	ct, err := b.conn.transitCall(ctx, p, payload, "ciphertext", false)
	if isStatus(err, http.StatusBadRequest, "higher than the latest key version") {
		// A rotation recorded in KV whose Transit half has not happened
		// (yet, or because its node failed): complete it, then retry.
		if err = b.ensureVersion(ctx, id, ver); err == nil {
			ct, err = b.conn.transitCall(ctx, p, payload, "ciphertext", false)
		}
	}
	if err != nil {
		return nil, b.transitError(id, err)
	}
	if !hasVersionPrefix(ct, ver) {
		return nil, fmt.Errorf("vault: Transit encrypted under another key version than %d", ver)
	}
	return ct, nil
}

// Unwrap decrypts in Transit. The ciphertext must name the requested
// version ("vault:v<ver>:"); anything Transit refuses is
// kms.ErrInvalidCiphertext.
func (b *transitBackend) Unwrap(ctx context.Context, id string, ver uint32, ciphertext, aad []byte) ([]byte, error) {
	if e, err := b.load(ctx, id); err != nil {
		return nil, err
	} else if !e.owned {
		return nil, errNotOwned(id)
	}
	if !hasVersionPrefix(ciphertext, ver) || !printable(ciphertext) {
		return nil, fmt.Errorf("%w: not a Transit ciphertext of key version %d", kms.ErrInvalidCiphertext, ver)
	}
	pt, err := b.conn.transitCall(ctx, b.mount+"/decrypt/"+id, transitPayload(nil, string(ciphertext), aad, 0), "plaintext", true)
	if err != nil {
		clear(pt)
		err = b.transitError(id, err)
		if isStatus(err, http.StatusBadRequest, "") {
			return nil, fmt.Errorf("%w: Transit could not decrypt it (tampered blob or wrong encryption context)", kms.ErrInvalidCiphertext)
		}
		return nil, err
	}
	return pt, nil
}

// transitError maps a missing Transit key to kms.ErrNotFound (dropping the
// cached metadata, which is stale).
func (b *transitBackend) transitError(id string, err error) error {
	if isStatus(err, http.StatusBadRequest, "key not found") {
		b.cache.Delete(id)
		return fmt.Errorf("%w: key %q has no Transit key", kms.ErrNotFound, id)
	}
	return err
}

func hasVersionPrefix(ct []byte, ver uint32) bool {
	p := "vault:v" + strconv.FormatUint(uint64(ver), 10) + ":"
	return len(ct) > len(p) && string(ct[:len(p)]) == p
}

func printable(b []byte) bool {
	for _, c := range b {
		if c < 0x21 || c > 0x7e {
			return false
		}
	}
	return true
}

// load returns the metadata entry, from cache when warm; a cached entry
// due for revalidation is re-checked against KV by one caller while the
// others keep using it.
func (b *transitBackend) load(ctx context.Context, id string) (*metaEntry, error) {
	if e, ok := b.cache.Get(id); ok {
		if b.revalidate <= 0 || b.now().UnixNano()-e.checked.Load() < int64(b.revalidate) {
			return e, nil
		}
		if !e.revalidating.CompareAndSwap(false, true) {
			return e, nil
		}
		defer e.revalidating.Store(false)
		return b.fresh(ctx, id, e)
	}
	return b.fresh(ctx, id)
}

// fresh reads the record from KV and caches it. When old is given and KV
// still has its version, old stays (just re-confirmed). A store error drops
// the cached entry: a node that cannot confirm a key's state must not keep
// serving it.
func (b *transitBackend) fresh(ctx context.Context, id string, old ...*metaEntry) (*metaEntry, error) {
	rec, ver, err := b.kv.get(ctx, id)
	if err != nil {
		// Gone, or unconfirmable: the cached state may be wrong, so nobody
		// uses it any longer (callers go to KV and fail fast meanwhile).
		b.cache.Delete(id)
		return nil, err
	}
	if len(old) > 0 && old[0].version == ver {
		old[0].checked.Store(b.now().UnixNano())
		return old[0], nil
	}
	meta, err := b.decode(id, rec)
	if err != nil {
		return nil, err
	}
	return b.put(meta, ver, ownsTransitKey(rec)), nil
}

// decode checks a record read for id.
func (b *transitBackend) decode(id string, rec kvRecord) (kms.Metadata, error) {
	if rec.Metadata == nil || rec.Metadata.ID != id || rec.Metadata.Version == 0 {
		return kms.Metadata{}, fmt.Errorf("%w: key %q: the KV record holds no metadata for this id", kms.ErrCorrupt, id)
	}
	return *rec.Metadata, nil
}

func (b *transitBackend) put(meta kms.Metadata, ver uint64, owned bool) *metaEntry {
	e := &metaEntry{meta: meta.Clone(), version: ver, owned: owned}
	e.checked.Store(b.now().UnixNano())
	b.cache.Put(meta.ID, e)
	return e
}

// ClearCache drops every cached metadata entry.
func (b *transitBackend) ClearCache() { b.cache.Clear() }

// CacheStats reports cache counters.
func (b *transitBackend) CacheStats() cache.Stats { return b.cache.Stats() }

// Health asks Vault's sys/health.
func (b *transitBackend) Health(ctx context.Context) error { return b.conn.health(ctx) }

// Close drops the cache and stops token maintenance.
func (b *transitBackend) Close() error {
	b.cache.Clear()
	b.conn.close()
	return nil
}
