package kms

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Alias is a second name for a key ("alias/<name>"), as in AWS KMS. An
// alias names exactly one key; a key may have several. Aliases belong to
// the key service: every front door resolves them the same way.
type Alias struct {
	Name    string    `json:"name"`
	KeyID   string    `json:"key_id"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// AliasPage is one page of a listing of aliases.
type AliasPage struct {
	Aliases []Alias
	// Unreadable lists alias names whose records exist but cannot be read.
	Unreadable []string
	More       bool
	// Last is the last alias name looked at: the next page starts after it.
	Last string
}

// AliasPrefix starts every alias name.
const AliasPrefix = "alias/"

// MaxAliasLength bounds alias names. AWS allows 256 characters; Keyward
// stores an alias as one file in the local key directory, whose name may
// not exceed 255 bytes, so it allows one character less.
const MaxAliasLength = 255

// reservedAliasPrefix is AWS's namespace for its managed keys.
const reservedAliasPrefix = "alias/aws/"

// IsAlias reports whether a key reference is an alias name (rather than a
// key id; key ids cannot contain '/').
func IsAlias(ref string) bool { return strings.HasPrefix(ref, AliasPrefix) }

// ValidateAliasName enforces the alias grammar: "alias/" then 1 or more of
// [A-Za-z0-9/_-] not starting with '/', at most MaxAliasLength characters
// in all, and not in the reserved "alias/aws/" namespace.
func ValidateAliasName(name string) error {
	rest, ok := strings.CutPrefix(name, AliasPrefix)
	switch {
	case !ok:
		return fmt.Errorf("%w: alias names start with %q", ErrInvalidAliasName, AliasPrefix)
	case rest == "" || rest[0] == '/':
		return fmt.Errorf("%w: alias name %q must name something after %q (not starting with /)", ErrInvalidAliasName, name, AliasPrefix)
	case len(name) > MaxAliasLength:
		return fmt.Errorf("%w: alias names are at most %d characters", ErrInvalidAliasName, MaxAliasLength)
	case strings.HasPrefix(name, reservedAliasPrefix):
		return fmt.Errorf("%w: alias names starting with %q are reserved", ErrInvalidAliasName, reservedAliasPrefix)
	}
	for i := 0; i < len(rest); i++ {
		c := rest[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '-') {
			return fmt.Errorf("%w: alias names may only contain A-Z a-z 0-9 / _ - after %q", ErrInvalidAliasName, AliasPrefix)
		}
	}
	return nil
}

// ErrAliasNotFound: no such alias. errors.Is(ErrAliasNotFound, ErrNotFound)
// holds: the HTTP layers answer it as a missing key.
var ErrAliasNotFound error = aliasNotFound{}

type aliasNotFound struct{}

func (aliasNotFound) Error() string        { return "alias not found" }
func (aliasNotFound) Is(target error) bool { return target == ErrNotFound }

// aliasTarget is the state rule for pointing an alias at a key: as in AWS,
// a key pending deletion cannot get an alias.
func aliasTarget(m Metadata) error {
	if m.State == StatePendingDeletion {
		return fmt.Errorf("%w: key %q is pending deletion", ErrInvalidKeyState, m.ID)
	}
	return nil
}

// CreateAlias makes a new alias for a key.
func (s *Service) CreateAlias(ctx context.Context, name, keyID string) (Alias, error) {
	if err := ValidateAliasName(name); err != nil {
		return Alias{}, err
	}
	if err := ValidateKeyID(keyID); err != nil {
		return Alias{}, err
	}
	now := s.now()
	a := Alias{Name: name, KeyID: keyID, Created: now, Updated: now}
	return a, s.keys.CreateAlias(ctx, a, aliasTarget)
}

// UpdateAlias points an existing alias at another key and returns it
// with the key it named before.
func (s *Service) UpdateAlias(ctx context.Context, name, keyID string) (a Alias, oldKeyID string, err error) {
	if err := ValidateAliasName(name); err != nil {
		return Alias{}, "", err
	}
	if err := ValidateKeyID(keyID); err != nil {
		return Alias{}, "", err
	}
	return s.keys.UpdateAlias(ctx, name, keyID, s.now(), aliasTarget)
}

// DeleteAlias removes an alias (its key stays) and returns it.
func (s *Service) DeleteAlias(ctx context.Context, name string) (Alias, error) {
	if err := ValidateAliasName(name); err != nil {
		return Alias{}, err
	}
	return s.keys.DeleteAlias(ctx, name)
}

// Alias returns an alias.
func (s *Service) Alias(ctx context.Context, name string) (Alias, error) {
	if err := ValidateAliasName(name); err != nil {
		return Alias{}, err
	}
	return s.keys.ResolveAlias(ctx, name)
}

// AliasListInput is a listing of aliases: all of them (KeyID empty) or
// those of one key, after Marker (exclusive), at most Limit.
type AliasListInput struct {
	KeyID  string
	Marker string
	Limit  int
}

// ListAliases lists aliases sorted by name. With a KeyID, the key's own
// list of aliases is used (the key must exist).
func (s *Service) ListAliases(ctx context.Context, in AliasListInput) (AliasPage, error) {
	limit := min(in.Limit, MaxListLimit)
	if limit <= 0 {
		return AliasPage{}, nil
	}
	if in.KeyID == "" {
		return s.keys.ListAliases(ctx, in.Marker, limit)
	}
	m, err := s.DescribeKey(ctx, in.KeyID)
	if err != nil {
		return AliasPage{}, err
	}
	var page AliasPage
	for _, name := range m.Aliases {
		if name <= in.Marker {
			continue
		}
		if len(page.Aliases) == limit {
			page.More = true
			break
		}
		page.Last = name
		a, err := s.keys.ResolveAlias(ctx, name)
		switch {
		case err == nil && a.KeyID == in.KeyID:
			page.Aliases = append(page.Aliases, a)
		case err == nil, errors.Is(err, ErrNotFound):
			// Moved or removed since the key's list was written.
		default:
			return AliasPage{}, err
		}
	}
	return page, nil
}

// ResolveKey returns the key id a key reference names: a key id as it is,
// or the key of an alias ("alias/<name>").
func (s *Service) ResolveKey(ctx context.Context, ref string) (string, error) {
	if !IsAlias(ref) {
		return ref, nil
	}
	a, err := s.Alias(ctx, ref)
	if err != nil {
		return "", err
	}
	return a.KeyID, nil
}
