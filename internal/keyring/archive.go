package keyring

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"

	"github.com/keyward/keyward/internal/kms"
)

// The Keyring implements kms.Archiver for every backend: it reads and
// writes the records itself, and leaves to the Material only what depends
// on where material lives. Material kept in the record (local, vault) is
// exported and imported with the record; material kept by the backend
// (vault-transit) cannot be exported, and is imported through a
// MaterialImporter.

var _ kms.Archiver = (*Keyring)(nil)

// MaterialImporter is a Material kept by the backend that can take key
// material made elsewhere (vault-transit: Transit's key import, BYOK).
type MaterialImporter interface {
	// CheckImport reports why the material of key id could not be
	// imported (a backend key of that name that is not Keyward's), or nil.
	CheckImport(ctx context.Context, id string) error
	// Import makes the backend hold material[i] as version i+1 of key id,
	// after the record claiming the id is durable, and returns the key's
	// material state from then on. On failure, state is what the backend
	// made so far ("" when nothing), for Destroy to undo.
	Import(ctx context.Context, id string, material [][]byte) (state string, err error)
	// Matches reports whether version k holds material, without material
	// leaving the backend (a probe encrypted under material that the
	// backend must decrypt).
	Matches(ctx context.Context, k *Version, material []byte) (bool, error)
}

// MaterialExportable: material kept in the record leaves with it.
func (k *Keyring) MaterialExportable() bool { return k.material.InRecord() }

// KeyIDs lists record names without opening them.
func (k *Keyring) KeyIDs(ctx context.Context, after string, limit int) ([]string, bool, error) {
	return k.store.List(ctx, after, limit)
}

// AliasNames lists alias names without opening their records.
func (k *Keyring) AliasNames(ctx context.Context, after string, limit int) ([]string, bool, error) {
	store, err := k.aliasStore()
	if errors.Is(err, kms.ErrNotImplemented) {
		return nil, false, nil // a backend without aliases has none to back up
	}
	if err != nil {
		return nil, false, err
	}
	storeAfter := ""
	if after != "" {
		storeAfter = aliasStoreName(after)
	}
	names, more, err := store.List(ctx, storeAfter, limit)
	if err != nil {
		return nil, false, err
	}
	for i, s := range names {
		names[i] = aliasFromStoreName(s)
	}
	return names, more, nil
}

// ExportKey reads the key's record once (the store returns one revision
// of it whole) and hands out its material, when the record keeps it.
func (k *Keyring) ExportKey(ctx context.Context, id string) (kms.ExportedKey, error) {
	entry, err := k.store.Get(ctx, id)
	if err != nil {
		return kms.ExportedKey{}, err
	}
	rec, err := k.open(ctx, id, entry.Value)
	if err != nil {
		return kms.ExportedKey{}, err
	}
	out := kms.ExportedKey{Metadata: rec.Metadata.Clone(), Versions: make([]kms.ExportedVersion, len(rec.Versions))}
	out.Metadata.Aliases = nil
	for i, v := range rec.Versions {
		// The record's material slices pass to the caller, who wipes them.
		out.Versions[i] = kms.ExportedVersion{Version: v.Version, Created: v.Created, Material: v.Material}
	}
	return out, nil
}

// ExportAlias reads the alias record itself, not the cache.
func (k *Keyring) ExportAlias(ctx context.Context, name string) (kms.Alias, error) {
	a, _, err := k.readAlias(ctx, name)
	return a, err
}

// CompareKey opens the stored record of k's id (not the cache, which may
// be a revalidation interval old) and compares metadata, versions and
// material: byte for byte in constant time when the record keeps it,
// through the backend (MaterialImporter.Matches) when the backend keeps it.
func (k *Keyring) CompareKey(ctx context.Context, in *kms.ExportedKey) (kms.KeyComparison, error) {
	id := in.Metadata.ID
	entry, err := k.store.Get(ctx, id)
	if errors.Is(err, kms.ErrNotFound) {
		return kms.KeyComparison{}, nil
	}
	if err != nil {
		return kms.KeyComparison{}, err
	}
	rec, err := k.open(ctx, id, entry.Value)
	if err != nil {
		return kms.KeyComparison{Exists: true, Differences: []string{"the stored record cannot be opened"}}, nil
	}
	defer rec.wipe()
	cmp := kms.KeyComparison{Exists: true, Differences: kms.CompareMetadata(&in.Metadata, &rec.Metadata)}
	if len(rec.Versions) != len(in.Versions) {
		cmp.Differences = append(cmp.Differences, "versions")
		return cmp, nil
	}
	for i, v := range rec.Versions {
		if v.Version != in.Versions[i].Version || !v.Created.Equal(in.Versions[i].Created) {
			cmp.Differences = append(cmp.Differences, "versions")
			return cmp, nil
		}
	}
	if in.HasMaterial() {
		cmp.MaterialCompared = true
		for i, v := range rec.Versions {
			same, err := k.sameMaterial(ctx, &rec, v, in.Versions[i].Material)
			if err != nil {
				return kms.KeyComparison{}, err
			}
			if !same {
				cmp.Differences = append(cmp.Differences, fmt.Sprintf("material of version %d", v.Version))
			}
		}
	}
	cmp.Identical = len(cmp.Differences) == 0
	return cmp, nil
}

func (k *Keyring) sameMaterial(ctx context.Context, rec *Record, v RecordVersion, material []byte) (bool, error) {
	if k.material.InRecord() {
		return subtle.ConstantTimeCompare(v.Material, material) == 1, nil
	}
	imp, ok := k.material.(MaterialImporter)
	if !ok || k.material.Usable(rec.Metadata.ID, rec.MaterialState) != nil {
		return false, nil // material it cannot show to be the same is not the same
	}
	return imp.Matches(ctx, &Version{KeyID: rec.Metadata.ID, Number: v.Version, State: rec.MaterialState}, material)
}

// CheckImport: a key without material cannot be imported into any
// backend; a backend that keeps material may refuse the id.
func (k *Keyring) CheckImport(ctx context.Context, in *kms.ExportedKey) error {
	if !in.HasMaterial() {
		return fmt.Errorf("%w: key %q: the archive holds no key material for it (a metadata-only backup of a vault-transit backend), so it cannot be restored", kms.ErrConflict, in.Metadata.ID)
	}
	if k.material.InRecord() {
		return nil
	}
	imp, ok := k.material.(MaterialImporter)
	if !ok {
		return fmt.Errorf("%w: this backend cannot import key material", kms.ErrNotImplemented)
	}
	return imp.CheckImport(ctx, in.Metadata.ID)
}

// ImportKey is Create for a key made elsewhere: the record claims the id
// with the exported metadata and versions; material kept in the record
// goes in it, material the backend keeps is imported after the record is
// durable (as Create commits it), and the record is removed again if that
// fails.
func (k *Keyring) ImportKey(ctx context.Context, in *kms.ExportedKey) error {
	if err := kms.ValidateExported(in); err != nil {
		return err
	}
	if !in.HasMaterial() {
		return k.CheckImport(ctx, in)
	}
	meta := in.Metadata.Clone()
	meta.Aliases = nil
	rec := Record{Format: RecordFormat, Metadata: meta, Versions: make([]RecordVersion, len(in.Versions))}
	inRecord := k.material.InRecord()
	var imp MaterialImporter
	if !inRecord {
		var ok bool
		if imp, ok = k.material.(MaterialImporter); !ok {
			return fmt.Errorf("%w: this backend cannot import key material", kms.ErrNotImplemented)
		}
	}
	for i, v := range in.Versions {
		rec.Versions[i] = RecordVersion{Version: v.Version, Created: v.Created}
		if inRecord {
			rec.Versions[i].Material = bytes.Clone(v.Material)
		}
	}
	defer rec.wipe()
	sealed, err := k.seal(ctx, &rec)
	if err != nil {
		return err
	}
	since := k.idx.begin()
	rev, err := k.store.Create(ctx, meta.ID, sealed)
	if errors.Is(err, kms.ErrExists) {
		k.idx.learn(meta.ID, since) // another node made it: list it too
	}
	if err != nil {
		return err
	}
	if inRecord {
		k.cacheRecord(&rec, rev)
		k.idx.wrote(meta, rev, k.now().UnixNano())
		return nil
	}
	material := make([][]byte, len(in.Versions))
	for i, v := range in.Versions {
		material[i] = v.Material
	}
	state, err := imp.Import(ctx, meta.ID, material)
	if err != nil {
		return k.undoCreate(ctx, meta.ID, rev, err, state)
	}
	rec.MaterialState = state
	next := rev
	if sealed, err = k.seal(ctx, &rec); err == nil {
		next, err = k.store.Update(ctx, meta.ID, sealed, rev)
	}
	if err != nil {
		return k.undoCreate(ctx, meta.ID, rev, err, state)
	}
	k.cacheRecord(&rec, next)
	k.idx.wrote(meta, next, k.now().UnixNano())
	return nil
}

// ImportAlias creates the alias record as exported (its dates kept) and
// adds it to its key's list whatever the key's state: a restored alias may
// point at a disabled or pending key, as it did when it was backed up.
func (k *Keyring) ImportAlias(ctx context.Context, a kms.Alias) error {
	if err := kms.ValidateAliasName(a.Name); err != nil {
		return err
	}
	if err := kms.ValidateKeyID(a.KeyID); err != nil {
		return err
	}
	return k.CreateAlias(ctx, a, func(kms.Metadata) error { return nil })
}
