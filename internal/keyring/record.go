package keyring

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// Record is the plaintext of one key's stored record, before the Sealer
// seals it: the metadata, every version, and what the Material keeps about
// the key. Its JSON encoding is record format 1 (docs/local-key-files.md);
// records written before MaterialState existed decode with it empty.
//
// Backends store records only sealed. Record is exported so that a backend
// can convert a record format of its own from an older release into this
// one (the vault package does, for vault-transit records of Keyward 0.1).
type Record struct {
	Format   int             `json:"format"`
	Metadata kms.Metadata    `json:"metadata"`
	Versions []RecordVersion `json:"versions"`
	// MaterialState is the Material's own note about the key (see
	// Material); empty for material kept in the record.
	MaterialState string `json:"material_state,omitempty"`
}

// RecordVersion is one key version. Material is set exactly when the
// record keeps the material (Material.InRecord).
type RecordVersion struct {
	Version  uint32    `json:"version"`
	Material []byte    `json:"material,omitempty"`
	Created  time.Time `json:"created"`
}

// RecordFormat is the format number of Record.
const RecordFormat = 1

// MaterialSize is the size of material kept in a record (AES-256).
const MaterialSize = 32

// Encode returns the record's JSON encoding. The caller wipes it: it holds
// the material.
func (r *Record) Encode() ([]byte, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return nil, fmt.Errorf("keyring: encoding record: %w", err)
	}
	return b, nil
}

// decodeRecord decodes and checks the record of id. Anything wrong is
// kms.ErrCorrupt: a damaged, foreign or swapped record is reported, never
// used.
func decodeRecord(id string, plain []byte, inRecord bool) (Record, error) {
	var rec Record
	if err := json.Unmarshal(plain, &rec); err != nil {
		rec.wipe()
		return Record{}, fmt.Errorf("%w: key %q: record does not decode", kms.ErrCorrupt, id)
	}
	if err := rec.check(id, inRecord); err != nil {
		rec.wipe()
		return Record{}, err
	}
	return rec, nil
}

func (r *Record) check(id string, inRecord bool) error {
	bad := func(why string) error { return fmt.Errorf("%w: key %q: %s", kms.ErrCorrupt, id, why) }
	if r.Format != RecordFormat {
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
		if v.Version == 0 || (i > 0 && v.Version <= r.Versions[i-1].Version) {
			return bad("bad key version")
		}
		if inRecord && len(v.Material) != MaterialSize || !inRecord && v.Material != nil {
			return bad("key material does not match the backend")
		}
		found = found || v.Version == r.Metadata.Version
	}
	if !found {
		return bad("current version missing")
	}
	return nil
}

func (r *Record) wipe() {
	for _, v := range r.Versions {
		clear(v.Material)
	}
}

// RecordAAD is the associated data a record of key id is sealed with: it
// binds the sealed record to its id, so records cannot be swapped between
// ids.
func RecordAAD(id string) []byte {
	return append([]byte("keyward/key-record/v1\x00"), id...)
}
