package vault

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// Keyward 0.1's vault-transit backend kept each key's metadata in the
// clear in KV ({"format":1,"metadata":{...}}), where anyone who can write
// Keyward's KV prefix could forge one. This release seals every record, and
// a record's seal is what proves that the Transit key of its name is
// Keyward's. Unsealed records are therefore never trusted at run time: they
// read as unreadable. They are converted once, when a release that seals
// them first opens a prefix of 0.1 (one with unsealed records and no
// sealed ones: an upgrade, where the operator vouches for what 0.1 wrote),
// and a marker then records that the prefix is past that point, so that
// later opens neither scan the prefix nor trust what an attacker plants.

// formatMarker is the KV record that says a prefix's records are sealed:
// {prefix}/keyward/format. A key id cannot contain '/', so no key record
// is ever there.
const (
	markerFolder = "keyward"
	markerName   = "format"
)

func newMarkerStore(c *conn, mount, prefix string, sealer keyring.Sealer, now func() time.Time, log *slog.Logger) *kvStore {
	s := newKVStore(c, mount, strings.Trim(prefix, "/")+"/"+markerFolder, sealer, now, log)
	s.valid = func(name string) bool { return name == markerName }
	return s
}

// migrateTransit01 converts the unsealed records of a Keyward 0.1
// vault-transit prefix (see above) and writes the marker.
func migrateTransit01(ctx context.Context, kv, marker *kvStore, sealer *transitSealer, log *slog.Logger) error {
	if _, _, err := marker.read(ctx, markerName); err == nil || !errors.Is(err, kms.ErrNotFound) {
		return err // marked (or unreadable: the caller sees why)
	}
	var legacy []string
	sealed := false
	for after := ""; ; {
		names, more, err := kv.list(ctx, after, 1000)
		if err != nil {
			return err
		}
		for _, name := range names {
			after = name
			rec, _, err := kv.read(ctx, name)
			switch {
			case err != nil:
			case rec.Sealed != "":
				sealed = true
			case rec.Metadata != nil && rec.Tombstone == "":
				legacy = append(legacy, name)
			}
		}
		if !more {
			break
		}
	}
	if sealed && len(legacy) > 0 {
		log.Error("vault-transit: records in Keyward 0.1's unsealed format next to sealed ones: they are not trusted and read as unreadable (a record Keyward 0.1 wrote before the upgrade would have been converted with the others; these were written since)",
			"count", len(legacy))
		legacy = nil
	}
	for _, name := range legacy {
		if err := convert01(ctx, kv, sealer, name); err != nil {
			return fmt.Errorf("vault-transit: converting the Keyward 0.1 record of key %q: %w", name, err)
		}
	}
	if len(legacy) > 0 {
		log.Info("vault-transit: records of Keyward 0.1 sealed", "count", len(legacy))
	}
	_, err := marker.create(ctx, markerName, kvRecord{Format: recordFormat, Sealed: base64.StdEncoding.EncodeToString([]byte("sealed records"))})
	if errors.Is(err, kms.ErrExists) {
		return nil // another node marked it first
	}
	return err
}

// convert01 seals the record of a Keyward 0.1 vault-transit key: its
// metadata, versions 1 to the current one (Transit keeps their material),
// and its Transit key Keyward's own (0.1 created it itself).
func convert01(ctx context.Context, kv *kvStore, sealer *transitSealer, name string) error {
	rec, ver, err := kv.read(ctx, name)
	if err != nil || rec.Metadata == nil || rec.Sealed != "" {
		return err // changed meanwhile (another node converted it)
	}
	meta := *rec.Metadata
	if meta.ID != name || meta.Version == 0 {
		return fmt.Errorf("%w: the record holds no metadata for this id", kms.ErrCorrupt)
	}
	r := keyring.Record{Format: keyring.RecordFormat, Metadata: meta, MaterialState: transitOwned}
	for v := uint32(1); v <= meta.Version; v++ {
		created := meta.CreationDate
		if v == meta.Version && v > 1 {
			created = meta.RotationDate
		}
		r.Versions = append(r.Versions, keyring.RecordVersion{Version: v, Created: created})
	}
	plain, err := r.Encode()
	if err != nil {
		return err
	}
	value, err := sealer.Seal(ctx, plain, keyring.RecordAAD(name))
	clear(plain)
	if err != nil {
		return err
	}
	_, err = kv.update(ctx, name, kvRecord{Format: recordFormat, Sealed: base64.StdEncoding.EncodeToString(value)}, ver)
	if errors.Is(err, kms.ErrConflict) || isStatus(err, http.StatusNotFound, "") {
		return nil // changed meanwhile: the other writer's version stands
	}
	return err
}
