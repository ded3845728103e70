package keyring

import "context"

// Store keeps sealed key records by name. It knows nothing about
// cryptography: every value it sees is already sealed, so a Store
// implementation can never leak key material (the minio/kes KeyStore idea).
//
// Names are key ids: 1–128 characters of [A-Za-z0-9._-], never "." or "..".
//
// Errors: Create on an existing name wraps kms.ErrExists; Get, Update and
// Delete on a missing name wrap kms.ErrNotFound; Update or Delete with a
// stale revision wraps kms.ErrConflict; a record the store itself can tell
// is damaged or foreign wraps kms.ErrCorrupt; an unreachable store wraps
// kms.ErrUnavailable.
type Store interface {
	// Create stores value under name if and only if name does not exist,
	// and returns its revision. Among concurrent Creates of one name
	// exactly one succeeds. When Create returns nil the record is durable.
	Create(ctx context.Context, name string, value []byte) (rev uint64, err error)
	// Get returns the value and its revision.
	Get(ctx context.Context, name string) (Entry, error)
	// Update replaces the value if the stored revision still equals rev
	// (check-and-set) and returns the new revision. When Update returns
	// nil the new value is durable.
	Update(ctx context.Context, name string, value []byte, rev uint64) (uint64, error)
	// Delete removes the record for good if its revision is still rev.
	// The deletion is decided first (exactly one of concurrent deleters,
	// on any node sharing the store, gets past that point); then
	// destroyMaterial (nil: none) runs, and then the record is removed. If
	// destroyMaterial fails, the record stays and its error is returned.
	Delete(ctx context.Context, name string, rev uint64, destroyMaterial func() error) error
	// List returns names greater than after, in ascending byte order, at most
	// limit of them, and whether more names follow.
	List(ctx context.Context, after string, limit int) (names []string, more bool, err error)
}

// Entry is one stored record.
type Entry struct {
	Value    []byte
	Revision uint64
}

// Sealer seals and opens records with a key-encryption key that the Store
// never sees. aad binds the sealed bytes to their name, so records cannot be
// swapped between names.
type Sealer interface {
	Seal(ctx context.Context, plaintext, aad []byte) ([]byte, error)
	// Open fails with an error wrapping kms.ErrCorrupt when the sealed bytes
	// are damaged, foreign, or bound to other aad.
	Open(ctx context.Context, sealed, aad []byte) ([]byte, error)
}
