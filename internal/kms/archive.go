package kms

import (
	"context"
	"fmt"
	"time"
)

// Backup and restore (docs/backup.md) work at the engine level: one
// metadata engine serves every backend, so a key exported from one backend
// imports into any other, and only where its material lives differs.

// ExportedKey is one key as a backup holds it: its metadata and every
// version, with the version's material when the backend can give it out.
type ExportedKey struct {
	// Metadata of the key. Aliases is empty: an archive carries aliases as
	// records of their own, which are the truth about where they point.
	Metadata Metadata
	Versions []ExportedVersion
}

// ExportedVersion is one key version.
type ExportedVersion struct {
	Version uint32
	Created time.Time
	// Material is the version's AES-256 key, or nil when the backend keeps
	// material that never leaves it (vault-transit). Wiped by Wipe.
	Material []byte
}

// MaterialSize is the size of a key version's material (AES-256).
const MaterialSize = 32

// HasMaterial reports whether every version carries its material.
func (k *ExportedKey) HasMaterial() bool {
	for _, v := range k.Versions {
		if v.Material == nil {
			return false
		}
	}
	return len(k.Versions) > 0
}

// Wipe overwrites the material of every version.
func (k *ExportedKey) Wipe() {
	for _, v := range k.Versions {
		clear(v.Material)
	}
}

// KeyComparison is how an exported key compares with the key of the same
// id in an engine.
type KeyComparison struct {
	// Exists: the engine has a key of that id.
	Exists bool
	// Identical: it has the same metadata, versions and (where both sides
	// have it) material. MaterialCompared says whether material was part
	// of the comparison.
	Identical        bool
	MaterialCompared bool
	// Differences names what differs ("state", "material of version 2").
	Differences []string
}

// Archiver is what an Engine offers for backup and restore. The one
// engine (internal/keyring) implements it for every backend; an engine
// wrapper exposes the engine it wraps with Wrapped (see ArchiverOf).
type Archiver interface {
	// MaterialExportable reports whether ExportKey gives out key material
	// (false for vault-transit, whose Transit keys are not exportable).
	MaterialExportable() bool
	// KeyIDs lists key ids greater than after, in ascending order,
	// without opening their records.
	KeyIDs(ctx context.Context, after string, limit int) (ids []string, more bool, err error)
	// AliasNames lists alias names greater than after.
	AliasNames(ctx context.Context, after string, limit int) (names []string, more bool, err error)
	// ExportKey reads key id with one read of its record, so that the key
	// is exported as one consistent unit. A key that is gone is
	// ErrNotFound; a record that cannot be opened is ErrCorrupt. The
	// caller wipes the result.
	ExportKey(ctx context.Context, id string) (ExportedKey, error)
	// ExportAlias reads an alias record (not from cache).
	ExportAlias(ctx context.Context, name string) (Alias, error)
	// CompareKey compares k with the engine's key of the same id.
	CompareKey(ctx context.Context, k *ExportedKey) (KeyComparison, error)
	// CheckImport reports why k could not be imported as a new key (for
	// example a Transit key of that name that Keyward did not create),
	// or nil.
	CheckImport(ctx context.Context, k *ExportedKey) error
	// ImportKey creates k exactly as exported: id, metadata, state, dates
	// and every version with its material, so that every blob made under
	// it decrypts. An existing id is ErrExists and changes nothing.
	ImportKey(ctx context.Context, k *ExportedKey) error
	// ImportAlias creates the alias record and adds it to its key's list,
	// whatever the key's state. An existing alias is ErrExists.
	ImportAlias(ctx context.Context, a Alias) error
}

// ArchiverOf returns the Archiver of e: e itself, or the engine an engine
// wrapper (a type with Wrapped() Engine) wraps.
func ArchiverOf(e Engine) (Archiver, bool) {
	for e != nil {
		if a, ok := e.(Archiver); ok {
			return a, true
		}
		u, ok := e.(interface{ Wrapped() Engine })
		if !ok {
			return nil, false
		}
		e = u.Wrapped()
	}
	return nil, false
}

// Archiver returns the running engine's Archiver, or ErrNotImplemented.
func (s *Service) Archiver() (Archiver, error) {
	a, ok := ArchiverOf(s.keys)
	if !ok {
		return nil, fmt.Errorf("%w: this backend cannot back up or restore keys", ErrNotImplemented)
	}
	return a, nil
}

// ValidateExported checks a key read from an archive against every rule a
// key made through the API follows (id, usage, state, dates, tags,
// description, versions 1..N, material sizes), so that a restore never
// creates a key the service could not have made. Errors wrap
// ErrInvalidRequest.
func ValidateExported(k *ExportedKey) error {
	m := &k.Metadata
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: key %q: %s", ErrInvalidRequest, m.ID, fmt.Sprintf(format, args...))
	}
	if err := ValidateKeyID(m.ID); err != nil {
		return err
	}
	if ReservedKeyID(m.ID) {
		return bad("the id is reserved for Keyward's own use")
	}
	if m.Usage != UsageEncryptDecrypt {
		return bad("unsupported key usage %q", m.Usage)
	}
	switch m.State {
	case StateEnabled, StateDisabled:
		if !m.DeletionDate.IsZero() {
			return bad("a deletion date on a key that is not pending deletion")
		}
	case StatePendingDeletion:
		if m.DeletionDate.IsZero() {
			return bad("pending deletion without a deletion date")
		}
	default:
		return bad("unknown key state %q", m.State)
	}
	if err := validateTags(m.Tags); err != nil {
		return fmt.Errorf("key %q: %w", m.ID, err)
	}
	if len(m.Description) > maxDescription {
		return bad("description longer than %d bytes", maxDescription)
	}
	if m.CreationDate.IsZero() {
		return bad("no creation date")
	}
	if m.RotationEnabled && (m.RotationPeriodDays < MinRotationPeriodDays || m.RotationPeriodDays > MaxRotationPeriodDays) ||
		!m.RotationEnabled && m.RotationPeriodDays != 0 {
		return bad("rotation period of %d days with rotation enabled=%t (enabled needs %d-%d days)", m.RotationPeriodDays, m.RotationEnabled, MinRotationPeriodDays, MaxRotationPeriodDays)
	}
	if len(m.Aliases) != 0 {
		return bad("aliases belong in alias entries")
	}
	if len(k.Versions) == 0 || uint32(len(k.Versions)) != m.Version {
		return bad("%d versions for current version %d (versions must be 1..current)", len(k.Versions), m.Version)
	}
	withMaterial := k.Versions[0].Material != nil
	for i, v := range k.Versions {
		if v.Version != uint32(i+1) {
			return bad("versions must be numbered 1..%d in order", m.Version)
		}
		if (v.Material != nil) != withMaterial {
			return bad("material for some versions only")
		}
		if v.Material != nil && len(v.Material) != MaterialSize {
			return bad("version %d: material of %d bytes, not %d", v.Version, len(v.Material), MaterialSize)
		}
	}
	return nil
}

// CompareMetadata lists the fields in which two keys' metadata differ
// (aliases aside: they are compared as alias records).
func CompareMetadata(a, b *Metadata) []string {
	var diff []string
	add := func(differs bool, field string) {
		if differs {
			diff = append(diff, field)
		}
	}
	add(a.State != b.State, "state")
	add(a.Usage != b.Usage, "usage")
	add(a.Description != b.Description, "description")
	add(!tagsEqual(a.Tags, b.Tags), "tags")
	add(!a.CreationDate.Equal(b.CreationDate), "creation date")
	add(!a.DeletionDate.Equal(b.DeletionDate), "deletion date")
	add(a.Version != b.Version, "current version")
	add(!a.RotationDate.Equal(b.RotationDate), "rotation date")
	add(a.RotationEnabled != b.RotationEnabled || a.RotationPeriodDays != b.RotationPeriodDays, "rotation schedule")
	return diff
}

func tagsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}
