package keyring

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// Aliases are records of their own, in a Store of their own
// (Options.Aliases), sealed like key records: the alias record is the
// truth about where an alias points. Each key's record also lists the
// names of its aliases (kms.Metadata.Aliases), so that describing a key
// shows them without a scan. The two are written in an order that makes
// the alias record decide:
//
//   - create: the alias record first (its Create picks the one winner for
//     the name), then the key's list; if the key cannot take it (missing,
//     pending deletion) the alias record is removed again;
//   - update: the new key's list, the alias record (check-and-set), then
//     the old key's list;
//   - delete: the alias record, then the key's list.
//
// A crash between two steps leaves a name in a key's list that its alias
// record does not confirm, or an alias record not yet in its key's list;
// readers that go by a key's list re-check the alias record
// (kms.Service.ListAliases), and the next change of the alias repairs it.

// aliasRecord is the sealed plaintext of an alias, format 1.
type aliasRecord struct {
	Format int       `json:"format"`
	Alias  kms.Alias `json:"alias"`
}

// aliasStoreName maps an alias name to its Store name: "alias/" dropped
// and each '/' replaced by '.', which alias names cannot contain, so the
// mapping is one to one and the result is a flat, file-name-safe name.
func aliasStoreName(name string) string {
	return strings.ReplaceAll(strings.TrimPrefix(name, kms.AliasPrefix), "/", ".")
}

func aliasFromStoreName(s string) string {
	return kms.AliasPrefix + strings.ReplaceAll(s, ".", "/")
}

// ValidAliasStoreName reports whether s is the Store name of a valid
// alias, for stores that check the names they are given.
func ValidAliasStoreName(s string) bool {
	name := aliasFromStoreName(s)
	return kms.ValidateAliasName(name) == nil && aliasStoreName(name) == s
}

// AliasAAD is the associated data an alias record is sealed with: it binds
// the record to its name.
func AliasAAD(name string) []byte {
	return append([]byte("keyward/alias-record/v1\x00"), name...)
}

// cachedAlias is a resolved alias and the revision it came from.
type cachedAlias struct {
	alias        kms.Alias
	revision     uint64
	checked      atomic.Int64
	revalidating atomic.Bool
}

func (k *Keyring) aliasStore() (Store, error) {
	if k.aliases == nil {
		return nil, fmt.Errorf("%w: this backend keeps no aliases", kms.ErrNotImplemented)
	}
	return k.aliases, nil
}

// CreateAlias stores the alias record, then adds the name to the key's
// list if check allows the key; otherwise the record is removed again.
func (k *Keyring) CreateAlias(ctx context.Context, a kms.Alias, check func(kms.Metadata) error) error {
	store, err := k.aliasStore()
	if err != nil {
		return err
	}
	sealed, err := k.sealAlias(ctx, a)
	if err != nil {
		return err
	}
	rev, err := store.Create(ctx, aliasStoreName(a.Name), sealed)
	if errors.Is(err, kms.ErrExists) {
		return fmt.Errorf("%w: alias %q", kms.ErrExists, a.Name)
	}
	if err != nil {
		return err
	}
	if _, err := k.Update(ctx, a.KeyID, func(m *kms.Metadata) error {
		if err := check(*m); err != nil {
			return err
		}
		m.Aliases = addName(m.Aliases, a.Name)
		return nil
	}); err != nil {
		if derr := store.Delete(ctx, aliasStoreName(a.Name), rev, nil); derr != nil {
			return fmt.Errorf("%w (and removing the alias again failed: %v)", err, derr)
		}
		return err
	}
	k.cacheAlias(a, rev)
	return nil
}

// UpdateAlias points an existing alias at keyID.
func (k *Keyring) UpdateAlias(ctx context.Context, name, keyID string, now time.Time, check func(kms.Metadata) error) (kms.Alias, string, error) {
	store, err := k.aliasStore()
	if err != nil {
		return kms.Alias{}, "", err
	}
	for attempt := 0; ; attempt++ {
		cur, rev, err := k.readAlias(ctx, name)
		if err != nil {
			return kms.Alias{}, "", err
		}
		old := cur.KeyID
		if old == keyID {
			return cur, old, nil
		}
		if _, err := k.Update(ctx, keyID, func(m *kms.Metadata) error {
			if err := check(*m); err != nil {
				return err
			}
			m.Aliases = addName(m.Aliases, name)
			return nil
		}); err != nil {
			return kms.Alias{}, "", err
		}
		next := cur
		next.KeyID, next.Updated = keyID, now
		sealed, err := k.sealAlias(ctx, next)
		if err == nil {
			rev, err = store.Update(ctx, aliasStoreName(name), sealed, rev)
		}
		if err != nil {
			k.aliasCache.Delete(name)
			k.dropAliasName(ctx, keyID, name) // the alias does not point there
			if errors.Is(err, kms.ErrConflict) && attempt < 5 {
				continue
			}
			return kms.Alias{}, "", err
		}
		k.cacheAlias(next, rev)
		k.dropAliasName(ctx, old, name)
		return next, old, nil
	}
}

// DeleteAlias removes the alias record, then the name from its key's list.
func (k *Keyring) DeleteAlias(ctx context.Context, name string) (kms.Alias, error) {
	store, err := k.aliasStore()
	if err != nil {
		return kms.Alias{}, err
	}
	a, rev, err := k.readAlias(ctx, name)
	if err != nil {
		return kms.Alias{}, err
	}
	err = store.Delete(ctx, aliasStoreName(name), rev, nil)
	k.aliasCache.Delete(name)
	if err != nil {
		return kms.Alias{}, err
	}
	k.dropAliasName(ctx, a.KeyID, name)
	return a, nil
}

// dropAliasName removes name from key id's list. It is best effort: a key
// that is gone has no list, and a name left in a list is re-checked by its
// readers.
func (k *Keyring) dropAliasName(ctx context.Context, id, name string) {
	_, _ = k.Update(ctx, id, func(m *kms.Metadata) error {
		m.Aliases = slices.DeleteFunc(m.Aliases, func(n string) bool { return n == name })
		return nil
	})
}

// ResolveAlias returns an alias, from cache when warm; a cached alias is
// re-checked against the store every Revalidate interval, as key records
// are.
func (k *Keyring) ResolveAlias(ctx context.Context, name string) (kms.Alias, error) {
	if c, ok := k.aliasCache.Get(name); ok {
		if !(k.revalidate > 0 && k.now().UnixNano()-c.checked.Load() >= int64(k.revalidate)) || !c.revalidating.CompareAndSwap(false, true) {
			return c.alias, nil
		}
		defer c.revalidating.Store(false)
		// Unchanged in the store: confirmed without opening it again.
		if entry, err := k.aliases.Get(ctx, aliasStoreName(name)); err == nil && entry.Revision == c.revision {
			c.checked.Store(k.now().UnixNano())
			return c.alias, nil
		}
	}
	a, rev, err := k.readAlias(ctx, name)
	if err != nil {
		k.aliasCache.Delete(name)
		return kms.Alias{}, err
	}
	k.cacheAlias(a, rev)
	return a, nil
}

func (k *Keyring) cacheAlias(a kms.Alias, rev uint64) {
	if !k.aliasCache.Enabled() {
		return
	}
	c := &cachedAlias{alias: a, revision: rev}
	c.checked.Store(k.now().UnixNano())
	k.aliasCache.Put(a.Name, c)
}

// readAlias reads and opens an alias record from the store.
func (k *Keyring) readAlias(ctx context.Context, name string) (kms.Alias, uint64, error) {
	store, err := k.aliasStore()
	if err != nil {
		return kms.Alias{}, 0, err
	}
	entry, err := store.Get(ctx, aliasStoreName(name))
	if errors.Is(err, kms.ErrNotFound) {
		return kms.Alias{}, 0, fmt.Errorf("%w: %q", kms.ErrAliasNotFound, name)
	}
	if err != nil {
		return kms.Alias{}, 0, err
	}
	plain, err := k.sealer.Open(ctx, entry.Value, AliasAAD(name))
	if err != nil {
		return kms.Alias{}, 0, err
	}
	var rec aliasRecord
	err = json.Unmarshal(plain, &rec)
	clear(plain)
	if err != nil || rec.Format != 1 || rec.Alias.Name != name || kms.ValidateKeyID(rec.Alias.KeyID) != nil {
		return kms.Alias{}, 0, fmt.Errorf("%w: alias %q: record does not decode", kms.ErrCorrupt, name)
	}
	return rec.Alias, entry.Revision, nil
}

func (k *Keyring) sealAlias(ctx context.Context, a kms.Alias) ([]byte, error) {
	plain, err := json.Marshal(aliasRecord{Format: 1, Alias: a})
	if err != nil {
		return nil, fmt.Errorf("keyring: encoding alias: %w", err)
	}
	return k.sealer.Seal(ctx, plain, AliasAAD(a.Name))
}

// ListAliases returns one page of aliases. A record that cannot be opened
// is listed in Unreadable.
func (k *Keyring) ListAliases(ctx context.Context, after string, limit int) (kms.AliasPage, error) {
	store, err := k.aliasStore()
	if err != nil {
		return kms.AliasPage{}, err
	}
	storeAfter := ""
	if after != "" {
		storeAfter = aliasStoreName(after)
	}
	names, more, err := store.List(ctx, storeAfter, limit)
	if err != nil {
		return kms.AliasPage{}, err
	}
	page := kms.AliasPage{More: more}
	for _, s := range names {
		name := aliasFromStoreName(s)
		page.Last = name
		a, err := k.ResolveAlias(ctx, name)
		switch {
		case err == nil:
			page.Aliases = append(page.Aliases, a)
		case errors.Is(err, kms.ErrNotFound):
		case errors.Is(err, kms.ErrCorrupt):
			page.Unreadable = append(page.Unreadable, name)
		default:
			return kms.AliasPage{}, err
		}
	}
	return page, nil
}

// deleteAliasesOf removes the aliases a destroyed key still named (those
// whose records point at it). Best effort: an alias left pointing at a
// destroyed key resolves to a key that answers "not found".
func (k *Keyring) deleteAliasesOf(ctx context.Context, id string, names []string) {
	if k.aliases == nil {
		return
	}
	for _, name := range names {
		a, rev, err := k.readAlias(ctx, name)
		if err != nil || a.KeyID != id {
			continue
		}
		_ = k.aliases.Delete(ctx, aliasStoreName(name), rev, nil)
		k.aliasCache.Delete(name)
	}
}

// addName inserts name into a sorted list of names (once).
func addName(names []string, name string) []string {
	i, found := slices.BinarySearch(names, name)
	if found {
		return names
	}
	return slices.Insert(names, i, name)
}
