package kms

import (
	"fmt"
	"slices"
	"time"
)

// State is a key's lifecycle state (the AWS KMS names).
type State string

const (
	StateEnabled         State = "Enabled"
	StateDisabled        State = "Disabled"
	StatePendingDeletion State = "PendingDeletion"
)

// ParseState reads a state filter liberally: the AWS names and the
// RustFS KeyStatus names (Active, Deleted is not a state a listed key has).
// Matching ignores case, '_' and '-'.
func ParseState(s string) (State, error) {
	switch normalizeEnum(s) {
	case "enabled", "active":
		return StateEnabled, nil
	case "disabled":
		return StateDisabled, nil
	case "pendingdeletion":
		return StatePendingDeletion, nil
	}
	return "", fmt.Errorf("%w: unknown key state %q (expected Enabled, Disabled or PendingDeletion)", ErrInvalidRequest, s)
}

// UsageEncryptDecrypt is the only key usage Keyward serves.
const UsageEncryptDecrypt = "ENCRYPT_DECRYPT"

// ParseUsage accepts the AWS spelling (ENCRYPT_DECRYPT) and the RustFS one
// (EncryptDecrypt). An empty string means the default.
func ParseUsage(s string) (string, error) {
	switch normalizeEnum(s) {
	case "", "encryptdecrypt":
		return UsageEncryptDecrypt, nil
	}
	return "", fmt.Errorf("%w: unsupported key usage %q (only ENCRYPT_DECRYPT)", ErrInvalidRequest, s)
}

// Metadata is everything about a master key except its material.
type Metadata struct {
	ID           string            `json:"id"`
	Description  string            `json:"description,omitempty"`
	State        State             `json:"state"`
	Usage        string            `json:"usage"`
	Tags         map[string]string `json:"tags,omitempty"`
	CreationDate time.Time         `json:"creation_date"`
	// DeletionDate is set while the key is PendingDeletion.
	DeletionDate time.Time `json:"deletion_date,omitzero"`
	// Version is the current key version: new blobs are made under it.
	Version uint32 `json:"version"`
	// RotationDate is when the current version was made by a rotation
	// (zero for version 1).
	RotationDate       time.Time `json:"rotation_date,omitzero"`
	RotationEnabled    bool      `json:"rotation_enabled,omitempty"`
	RotationPeriodDays int       `json:"rotation_period_days,omitempty"`
	// Aliases are the names of the aliases that point at the key, sorted
	// (kept in the key's record; the alias records are the truth).
	Aliases []string `json:"aliases,omitempty"`
	// Rotations lists the key's rotations, oldest first (version 1 is
	// the key's creation, not a rotation). Records rotated by a Keyward
	// that did not keep this list lack the older entries. The slice is
	// never changed in place (a rotation appends to the copy it read
	// from the store), so Clone shares it.
	Rotations []Rotation `json:"rotations,omitempty"`
}

// Rotation is one rotation of a key: the version it made, and when.
type Rotation struct {
	Version uint32    `json:"version"`
	Date    time.Time `json:"date"`
}

// Clone returns a deep copy, so callers can change it without racing a cache.
func (m Metadata) Clone() Metadata {
	m.Aliases = slices.Clone(m.Aliases)
	if m.Tags != nil {
		tags := make(map[string]string, len(m.Tags))
		for k, v := range m.Tags {
			tags[k] = v
		}
		m.Tags = tags
	}
	return m
}

// MaxKeyIDLength bounds key ids (and so file names and blob headers).
const MaxKeyIDLength = 128

// ValidateKeyID enforces the id grammar: 1–128 characters of
// [A-Za-z0-9._-], and not "." or ".." (ids become file names).
func ValidateKeyID(id string) error {
	if id == "" {
		return fmt.Errorf("%w: key_id is required", ErrInvalidRequest)
	}
	if len(id) > MaxKeyIDLength {
		return fmt.Errorf("%w: key_id longer than %d characters", ErrInvalidRequest, MaxKeyIDLength)
	}
	if id == "." || id == ".." {
		return fmt.Errorf("%w: key_id %q is reserved", ErrInvalidRequest, id)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%w: key_id may only contain A-Z a-z 0-9 . _ -", ErrInvalidRequest)
		}
	}
	return nil
}

// ReservedKeyID reports whether id names something Keyward keeps for
// itself in a backend and a key may therefore not be created under: the
// Transit key that seals the vault backend's records. On a Transit mount
// that both Vault backends use, a vault-transit key of that name would be
// that record key, and could be rotated or deleted through the API.
func ReservedKeyID(id string) bool { return id == "keyward-record-kek" }

func normalizeEnum(s string) string {
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '_' || c == '-' || c == ' ':
			continue
		case c >= 'A' && c <= 'Z':
			c += 'a' - 'A'
		}
		b = append(b, c)
	}
	return string(b)
}
