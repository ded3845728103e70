package kms

import (
	"context"
	"time"

	"github.com/keyward/keyward/internal/cache"
)

// Engine keeps the keys of one running configuration: their records
// (metadata, versions) and, through the backend, their material. The
// Service above it owns every rule (states, the blob format, data keys);
// an Engine only stores, changes and destroys keys atomically and wraps or
// unwraps short secrets under a key version.
//
// There is one implementation, internal/keyring, over each backend's
// store, sealer and material; the metrics wrapper (internal/metrics)
// decorates it.
type Engine interface {
	// Create makes a new key with version 1. meta.ID must be unused: an
	// existing id is ErrExists.
	Create(ctx context.Context, meta Metadata) (Metadata, error)
	// Describe returns the key's metadata (served from cache when warm).
	Describe(ctx context.Context, id string) (Metadata, error)
	// List returns ids greater than after in ascending order.
	List(ctx context.Context, after string, limit int) (ListPage, error)
	// ListByState is List restricted to keys in state s. A page may hold
	// fewer than limit keys (even none) while More is true: the caller
	// continues after Last. Its cost does not depend on how many keys are
	// in other states.
	ListByState(ctx context.Context, after string, limit int, s State) (ListPage, error)
	// Update applies change to the key's metadata atomically: change sees
	// the current metadata and may return an error to abort.
	Update(ctx context.Context, id string, change func(*Metadata) error) (Metadata, error)
	// Rotate makes a new current version with fresh material and records
	// the rotation date in the metadata. Older versions stay usable for
	// decryption. precondition is checked against fresh metadata inside
	// the same atomic update, so two nodes seeing one due rotation make one
	// rotation, not two.
	Rotate(ctx context.Context, id string, precondition func(Metadata) error) (Metadata, error)
	// Destroy removes the key and all of its material for good. When
	// precondition is not nil it is checked against freshly read (not
	// cached) metadata first, and its error aborts the destruction: the
	// sweeper uses it so a deletion cancelled elsewhere is honoured.
	Destroy(ctx context.Context, id string, precondition func(Metadata) error) error
	// Wrap encrypts plaintext under the given version of the key, binding
	// aad. The result is opaque to the caller.
	Wrap(ctx context.Context, id string, version uint32, plaintext, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap; any mismatch is ErrInvalidCiphertext.
	Unwrap(ctx context.Context, id string, version uint32, ciphertext, aad []byte) ([]byte, error)
	// CreateAlias stores a new alias (ErrExists when its name is taken) and
	// adds it to its key's list, if check allows the key as it is then;
	// a missing key is ErrNotFound and leaves no alias behind.
	CreateAlias(ctx context.Context, a Alias, check func(Metadata) error) error
	// UpdateAlias points an existing alias at keyID (check allows the new
	// key) and returns it and the key it named before.
	UpdateAlias(ctx context.Context, name, keyID string, now time.Time, check func(Metadata) error) (Alias, string, error)
	// DeleteAlias removes an alias and returns what it was.
	DeleteAlias(ctx context.Context, name string) (Alias, error)
	// ResolveAlias returns an alias (ErrAliasNotFound when there is none),
	// from cache when warm: aliases are resolved on the hot path.
	ResolveAlias(ctx context.Context, name string) (Alias, error)
	// ListAliases returns aliases whose names are greater than after.
	ListAliases(ctx context.Context, after string, limit int) (AliasPage, error)
	// ClearCache drops (and wipes) every cached entry.
	ClearCache()
	// CacheStats reports the cache's counters.
	CacheStats() cache.Stats
	// Health reports whether the backend is reachable and usable.
	Health(ctx context.Context) error
	// Close releases resources and wipes cached material.
	Close() error
}

// ListPage is one page of a listing.
type ListPage struct {
	Keys []Metadata
	// Unreadable lists ids whose records exist but cannot be read.
	Unreadable []string
	// More is true when ids beyond this page exist.
	More bool
	// Last is the last id looked at on this page (readable or not): the
	// next page starts after it.
	Last string
}
