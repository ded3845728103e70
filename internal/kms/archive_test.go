package kms

import (
	"errors"
	"strings"
	"testing"
	"time"
)

// TestValidateExported: a restore creates no key the service could not
// have made.
func TestValidateExported(t *testing.T) {
	now := time.Now().UTC()
	good := func() *ExportedKey {
		return &ExportedKey{
			Metadata: Metadata{ID: "k", State: StateEnabled, Usage: UsageEncryptDecrypt, CreationDate: now, Version: 2},
			Versions: []ExportedVersion{{Version: 1, Created: now, Material: make([]byte, 32)}, {Version: 2, Created: now, Material: make([]byte, 32)}},
		}
	}
	if err := ValidateExported(good()); err != nil {
		t.Fatalf("a good key: %v", err)
	}
	metaOnly := good()
	metaOnly.Versions[0].Material, metaOnly.Versions[1].Material = nil, nil
	if err := ValidateExported(metaOnly); err != nil || metaOnly.HasMaterial() {
		t.Fatalf("a metadata-only key: %v", err)
	}
	for name, c := range map[string]struct {
		change func(*ExportedKey)
		want   string
	}{
		"bad id":                {func(k *ExportedKey) { k.Metadata.ID = "a/b" }, "may only contain"},
		"reserved id":           {func(k *ExportedKey) { k.Metadata.ID = "keyward-record-kek" }, "reserved"},
		"usage":                 {func(k *ExportedKey) { k.Metadata.Usage = "SIGN_VERIFY" }, "usage"},
		"state":                 {func(k *ExportedKey) { k.Metadata.State = "Destroyed" }, "state"},
		"pending, no date":      {func(k *ExportedKey) { k.Metadata.State = StatePendingDeletion }, "deletion date"},
		"date, not pending":     {func(k *ExportedKey) { k.Metadata.DeletionDate = now }, "deletion date"},
		"no creation date":      {func(k *ExportedKey) { k.Metadata.CreationDate = time.Time{} }, "creation date"},
		"rotation period":       {func(k *ExportedKey) { k.Metadata.RotationEnabled, k.Metadata.RotationPeriodDays = true, 10 }, "rotation period"},
		"aliases":               {func(k *ExportedKey) { k.Metadata.Aliases = []string{"alias/a"} }, "alias"},
		"missing version":       {func(k *ExportedKey) { k.Versions = k.Versions[1:] }, "versions"},
		"versions out of order": {func(k *ExportedKey) { k.Versions[0].Version, k.Versions[1].Version = 2, 1 }, "in order"},
		"short material":        {func(k *ExportedKey) { k.Versions[1].Material = make([]byte, 16) }, "material of 16 bytes"},
		"partial material":      {func(k *ExportedKey) { k.Versions[1].Material = nil }, "some versions"},
		"too many tags": {func(k *ExportedKey) {
			k.Metadata.Tags = map[string]string{}
			for i := range 51 {
				k.Metadata.Tags[strings.Repeat("t", i+1)] = "v"
			}
		}, "tags"},
	} {
		k := good()
		c.change(k)
		err := ValidateExported(k)
		if !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", name, err, c.want)
		}
	}
}
