package kms

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Automatic rotation period bounds in days (as in AWS KMS).
const (
	MinRotationPeriodDays     = 90
	MaxRotationPeriodDays     = 2560
	DefaultRotationPeriodDays = 365
)

// EnableKey makes a Disabled key Enabled (Enabled stays Enabled). A key
// pending deletion must be cancelled first: 409.
func (s *Service) EnableKey(ctx context.Context, id string) (Metadata, error) {
	return s.setEnabled(ctx, id, StateEnabled)
}

// DisableKey makes an Enabled key Disabled: it then refuses every
// cryptographic operation until enabled again.
func (s *Service) DisableKey(ctx context.Context, id string) (Metadata, error) {
	return s.setEnabled(ctx, id, StateDisabled)
}

func (s *Service) setEnabled(ctx context.Context, id string, to State) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		if m.State == StatePendingDeletion {
			return fmt.Errorf("%w: key %q is pending deletion; cancel the deletion first", ErrInvalidKeyState, id)
		}
		m.State = to
		return nil
	})
}

// RotateKey adds a key version now. Only an Enabled key rotates.
func (s *Service) RotateKey(ctx context.Context, id string) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	return s.rotate(ctx, id, func(m Metadata) error { return nil })
}

func (s *Service) rotate(ctx context.Context, id string, due func(Metadata) error) (Metadata, error) {
	m, err := s.keys.Rotate(ctx, id, func(m Metadata) error {
		if m.State != StateEnabled {
			return fmt.Errorf("%w: key %q is %s", ErrInvalidKeyState, id, m.State)
		}
		return due(m)
	})
	if err == nil {
		s.opts.Log.Info("key rotated", "key_id", id, "key_version", m.Version)
	}
	return m, err
}

// SetRotation turns automatic rotation on (every periodDays, 0 meaning the
// default) or off.
func (s *Service) SetRotation(ctx context.Context, id string, enabled bool, periodDays int) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	if enabled {
		if periodDays == 0 {
			periodDays = DefaultRotationPeriodDays
		}
		if periodDays < MinRotationPeriodDays || periodDays > MaxRotationPeriodDays {
			return Metadata{}, fmt.Errorf("%w: period_days must be between %d and %d", ErrInvalidRequest, MinRotationPeriodDays, MaxRotationPeriodDays)
		}
	} else if periodDays != 0 {
		return Metadata{}, fmt.Errorf("%w: period_days is only meaningful with enabled=true", ErrInvalidRequest)
	}
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		if m.State == StatePendingDeletion {
			return fmt.Errorf("%w: key %q is pending deletion", ErrInvalidKeyState, id)
		}
		m.RotationEnabled, m.RotationPeriodDays = enabled, periodDays
		return nil
	})
}

// NextRotation is when automatic rotation is due (zero when it is off):
// a period after the last rotation, or after creation.
func (s *Service) NextRotation(m Metadata) time.Time {
	if !m.RotationEnabled || m.RotationPeriodDays == 0 {
		return time.Time{}
	}
	from := m.RotationDate
	if from.IsZero() {
		from = m.CreationDate
	}
	return from.Add(time.Duration(m.RotationPeriodDays) * s.opts.Day)
}

// RotationDue reports whether automatic rotation of m is due now.
func (s *Service) RotationDue(m Metadata) bool {
	next := s.NextRotation(m)
	return !next.IsZero() && !next.After(s.opts.Now())
}

// UpdateDescription replaces the description.
func (s *Service) UpdateDescription(ctx context.Context, id, description string) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	if len(description) > maxDescription {
		return Metadata{}, fmt.Errorf("%w: description longer than %d bytes", ErrInvalidRequest, maxDescription)
	}
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		m.Description = description
		return nil
	})
}

// TagKey adds or replaces tags.
func (s *Service) TagKey(ctx context.Context, id string, tags map[string]string) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	if len(tags) == 0 {
		return Metadata{}, fmt.Errorf("%w: tags must not be empty", ErrInvalidRequest)
	}
	if err := validateTags(tags); err != nil {
		return Metadata{}, err
	}
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		merged := make(map[string]string, len(m.Tags)+len(tags))
		for k, v := range m.Tags {
			merged[k] = v
		}
		for k, v := range tags {
			merged[k] = v
		}
		if err := validateTags(merged); err != nil {
			return err
		}
		m.Tags = merged
		return nil
	})
}

// UntagKey removes tags by key; absent keys are ignored (as in AWS).
func (s *Service) UntagKey(ctx context.Context, id string, tagKeys []string) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	if len(tagKeys) == 0 {
		return Metadata{}, fmt.Errorf("%w: tag_keys must not be empty", ErrInvalidRequest)
	}
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		for _, k := range tagKeys {
			delete(m.Tags, k)
		}
		return nil
	})
}

// RotateDue rotates every Enabled key whose automatic rotation is due and
// returns how many it rotated.
func (s *Service) RotateDue(ctx context.Context) (int, error) {
	now := s.opts.Now()
	rotated, after := 0, ""
	for {
		page, err := s.keys.List(ctx, after, MaxListLimit)
		if err != nil {
			return rotated, err
		}
		for _, k := range page.Keys {
			next := s.NextRotation(k)
			if k.State != StateEnabled || next.IsZero() || next.After(now) {
				continue
			}
			_, err := s.rotate(ctx, k.ID, func(m Metadata) error {
				if next := s.NextRotation(m); next.IsZero() || next.After(now) {
					return errNotDue // another node rotated it meanwhile
				}
				return nil
			})
			switch {
			case err == nil:
				rotated++
			case errors.Is(err, ErrNotFound), errors.Is(err, ErrInvalidKeyState), errors.Is(err, errNotDue):
			default:
				return rotated, err
			}
		}
		if !page.More {
			return rotated, nil
		}
		after = page.Last
	}
}

// RotationHistory is m.Rotations, plus the rotation that made the current
// version when the record predates the list (its date is RotationDate).
func (m Metadata) RotationHistory() []Rotation {
	n := len(m.Rotations)
	if m.Version > 1 && !m.RotationDate.IsZero() && (n == 0 || m.Rotations[n-1].Version != m.Version) {
		return append(m.Rotations[:n:n], Rotation{Version: m.Version, Date: m.RotationDate})
	}
	return m.Rotations
}
