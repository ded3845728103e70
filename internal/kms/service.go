package kms

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"time"
)

// Service holds every rule of keys and data keys (docs/api.md) on top of an
// Engine: key states, id and tag validation, deletion windows, the blob
// format, encryption contexts. One Service exists per running
// configuration; the lifecycle manager swaps them.
type Service struct {
	keys Engine
	opts Options
}

// Options configure a Service.
type Options struct {
	// Now is the clock, Rand the source of data keys and generated ids.
	Now  func() time.Time
	Rand io.Reader
	// DefaultKeyID is used when a data-key request names no key.
	DefaultKeyID string
	// AllowImmediateDeletion enables the force_immediate deletion gate.
	AllowImmediateDeletion bool
	// Day is the length of one day of a pending-deletion window (24h, or
	// shorter for tests and drills).
	Day time.Duration
	Log *slog.Logger
}

// NewService returns a Service over an Engine.
func NewService(keys Engine, o Options) *Service {
	if o.Day <= 0 {
		o.Day = 24 * time.Hour
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	return &Service{keys: keys, opts: o}
}

// Engine returns the engine (for health checks and cache control).
func (s *Service) Engine() Engine { return s.keys }

// DefaultKeyID returns the configured default key id.
func (s *Service) DefaultKeyID() string { return s.opts.DefaultKeyID }

func (s *Service) now() time.Time { return s.opts.Now().UTC().Truncate(time.Microsecond) }

// Tag limits, as in AWS KMS.
const (
	maxTags           = 50
	maxTagKeyLength   = 128
	maxTagValueLength = 256
	maxDescription    = 8192
)

// CreateKeyInput is a create request after JSON decoding.
type CreateKeyInput struct {
	KeyID       string
	Description string
	Usage       string
	Tags        map[string]string
	// GenerateID: the key gets a new UUID v4 whatever the tags say (the
	// AWS KMS API, whose "name" tag is just a tag). KeyID must be empty.
	GenerateID bool
}

// NamedID is the id a create request names (key_id, else the "name" tag,
// unless GenerateID), or "" when the service will generate one.
func (in CreateKeyInput) NamedID() string {
	if in.KeyID != "" || in.GenerateID {
		return in.KeyID
	}
	return in.Tags["name"]
}

// CreateKey makes a new Enabled key. The id is KeyID, else the "name" tag,
// else a random UUID v4.
func (s *Service) CreateKey(ctx context.Context, in CreateKeyInput) (Metadata, error) {
	usage, err := ParseUsage(in.Usage)
	if err != nil {
		return Metadata{}, err
	}
	if err := validateTags(in.Tags); err != nil {
		return Metadata{}, err
	}
	if len(in.Description) > maxDescription {
		return Metadata{}, fmt.Errorf("%w: description longer than %d bytes", ErrInvalidRequest, maxDescription)
	}
	id := in.NamedID()
	if id == "" {
		if id, err = s.newUUID(); err != nil {
			return Metadata{}, err
		}
	}
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	if ReservedKeyID(id) {
		return Metadata{}, fmt.Errorf("%w: key id %q is reserved for Keyward's own use", ErrInvalidRequest, id)
	}
	meta := Metadata{
		ID:           id,
		Description:  in.Description,
		State:        StateEnabled,
		Usage:        usage,
		Tags:         in.Tags,
		CreationDate: s.now(),
	}
	return s.keys.Create(ctx, meta)
}

// EnsureKey creates the key id (with default settings) unless it exists.
// It is how the configured default key comes to exist.
func (s *Service) EnsureKey(ctx context.Context, id, description string) error {
	if _, err := s.keys.Describe(ctx, id); !errors.Is(err, ErrNotFound) {
		return err
	}
	_, err := s.CreateKey(ctx, CreateKeyInput{KeyID: id, Description: description})
	if errors.Is(err, ErrExists) { // another node or request won the race
		return nil
	}
	return err
}

func validateTags(tags map[string]string) error {
	if len(tags) > maxTags {
		return fmt.Errorf("%w: more than %d tags", ErrInvalidRequest, maxTags)
	}
	for k, v := range tags {
		if k == "" || len(k) > maxTagKeyLength {
			return fmt.Errorf("%w: tag keys must be 1-%d characters", ErrInvalidRequest, maxTagKeyLength)
		}
		if len(v) > maxTagValueLength {
			return fmt.Errorf("%w: tag values must be at most %d characters", ErrInvalidRequest, maxTagValueLength)
		}
	}
	return nil
}

// newUUID returns a random (version 4) UUID from the injected source.
func (s *Service) newUUID() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(s.opts.Rand, b[:]); err != nil {
		return "", fmt.Errorf("reading randomness: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:]), nil
}

// DescribeKey returns a key's metadata.
func (s *Service) DescribeKey(ctx context.Context, id string) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	return s.keys.Describe(ctx, id)
}

// List paging bounds (docs/api.md, "Paging").
const (
	DefaultListLimit = 100
	MaxListLimit     = 1000
)

// ListInput is a list request. Marker is an exclusive lower bound on ids.
type ListInput struct {
	Marker string
	Limit  int
	State  State // empty: every state
	// MayDescribe, when set, tells which keys the caller may see the
	// metadata of. A state filter only returns keys it allows: whether a
	// key the caller may not describe is in a filtered page would reveal
	// its state. (Without a filter every key is listed, and the caller
	// shows the others by id only.)
	MayDescribe func(id string) bool
	// Prefix, when set, lists only ids that start with it: the listing
	// starts at the first such id and ends after the last one.
	Prefix string
	// Include, when set, leaves out the keys it refuses (they count
	// towards the scan bound like keys a state filter leaves out).
	Include func(Metadata) bool
}

// ListOutput is one page.
type ListOutput struct {
	Keys       []Metadata
	Truncated  bool
	NextMarker string
	Unreadable []string
}

// ListKeys lists keys sorted by id. With a state filter the page is filled
// from the engine's pages of that state (ListByState: candidates from an
// index of states), looking at most at maxScan records per call, so a
// state the index does not know yet for most keys cannot make one request
// read the whole key set; a page cut short that way is still Truncated
// with a NextMarker to continue from.
func (s *Service) ListKeys(ctx context.Context, in ListInput) (ListOutput, error) {
	limit := min(in.Limit, MaxListLimit)
	var out ListOutput
	if limit <= 0 {
		return out, nil
	}
	maxScan := max(MaxListLimit, 10*limit)
	after, scanned := in.Marker, 0
	if start := prefixStart(in.Prefix); after < start {
		after = start
	}
	for {
		var page ListPage
		var err error
		want := limit - len(out.Keys)
		if in.State == "" {
			page, err = s.keys.List(ctx, after, want)
		} else {
			// The engine looks at most at want candidates per call, and
			// returns only those in the state: count what it looked at.
			page, err = s.keys.ListByState(ctx, after, want, in.State)
			scanned += want - len(page.Keys)
		}
		if err != nil {
			return ListOutput{}, err
		}
		for _, id := range page.Unreadable {
			if strings.HasPrefix(id, in.Prefix) {
				out.Unreadable = append(out.Unreadable, id)
			}
		}
		if out.Keys == nil && len(page.Keys) > 0 {
			// One allocation of the page's size rather than a slice grown
			// (and copied) key by key.
			out.Keys = make([]Metadata, 0, min(len(page.Keys), limit))
		}
		for _, k := range page.Keys {
			if !strings.HasPrefix(k.ID, in.Prefix) {
				// Ids are sorted and the listing started at the
				// prefix: every id from here on is past it.
				return out, nil
			}
			if (in.State == "" || k.State == in.State && (in.MayDescribe == nil || in.MayDescribe(k.ID))) &&
				(in.Include == nil || in.Include(k)) {
				out.Keys = append(out.Keys, k)
			}
		}
		if in.Prefix != "" && page.Last != "" && !strings.HasPrefix(page.Last, in.Prefix) {
			return out, nil // the page ended on an unreadable id past the prefix
		}
		scanned += len(page.Keys) + len(page.Unreadable)
		if page.Last != "" {
			after = page.Last
		}
		if !page.More {
			return out, nil
		}
		if len(out.Keys) >= limit || scanned >= maxScan {
			out.Truncated, out.NextMarker = true, after
			return out, nil
		}
	}
}

// prefixStart is an exclusive lower bound for a listing of the ids that
// start with prefix: the prefix with its last byte decremented, followed by
// 0x7f. Every key id (only A-Z a-z 0-9 . _ -, all below 0x7f) that starts
// with prefix sorts after it, and every other id that sorts after it also
// sorts after the last id with the prefix. "" for no prefix.
func prefixStart(prefix string) string {
	if prefix == "" {
		return ""
	}
	b := []byte(prefix)
	b[len(b)-1]--
	return string(append(b, 0x7f))
}

// Deletion window bounds in days (as in AWS KMS).
const (
	MinPendingWindowDays     = 7
	MaxPendingWindowDays     = 30
	DefaultPendingWindowDays = 30
)

// ScheduleDeletion moves an Enabled or Disabled key to PendingDeletion.
// windowDays 0 means the default.
func (s *Service) ScheduleDeletion(ctx context.Context, id string, windowDays int) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	if windowDays == 0 {
		windowDays = DefaultPendingWindowDays
	}
	if windowDays < MinPendingWindowDays || windowDays > MaxPendingWindowDays {
		return Metadata{}, fmt.Errorf("%w: pending_window_in_days must be between %d and %d", ErrInvalidRequest, MinPendingWindowDays, MaxPendingWindowDays)
	}
	due := s.now().Add(time.Duration(windowDays) * s.opts.Day)
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		if m.State == StatePendingDeletion {
			return fmt.Errorf("%w: key %q is already pending deletion", ErrInvalidKeyState, id)
		}
		m.State = StatePendingDeletion
		m.DeletionDate = due
		return nil
	})
}

// DestroyNow destroys a key at once. It needs the server-wide gate and a
// confirmation naming the key, so a stray request cannot destroy a key.
func (s *Service) DestroyNow(ctx context.Context, id, confirmKeyID string) error {
	if err := ValidateKeyID(id); err != nil {
		return err
	}
	if !s.opts.AllowImmediateDeletion {
		return fmt.Errorf("%w: immediate deletion is disabled on this server (start it with --allow-immediate-deletion)", ErrInvalidRequest)
	}
	if confirmKeyID != id {
		return fmt.Errorf("%w: force_immediate needs confirm_key_id equal to key_id", ErrInvalidRequest)
	}
	if err := s.keys.Destroy(ctx, id, nil); err != nil {
		return err
	}
	s.opts.Log.Warn("key destroyed immediately", "key_id", id)
	return nil
}

// CancelOption changes what CancelDeletion does.
type CancelOption func(*cancelConfig)

type cancelConfig struct{ to State }

// CancelToDisabled makes CancelDeletion leave the key Disabled, as AWS
// KMS's CancelKeyDeletion does (the admin API's contract is Enabled). The
// state is set in the same atomic update that ends the deletion, so no
// one sees the key Enabled in between.
func CancelToDisabled(c *cancelConfig) { c.to = StateDisabled }

// CancelDeletion returns a pending key to Enabled (or to the state an
// option says).
func (s *Service) CancelDeletion(ctx context.Context, id string, opts ...CancelOption) (Metadata, error) {
	if err := ValidateKeyID(id); err != nil {
		return Metadata{}, err
	}
	cfg := cancelConfig{to: StateEnabled}
	for _, o := range opts {
		o(&cfg)
	}
	return s.keys.Update(ctx, id, func(m *Metadata) error {
		if m.State != StatePendingDeletion {
			return fmt.Errorf("%w: key %q is not pending deletion", ErrInvalidKeyState, id)
		}
		m.State = cfg.to
		m.DeletionDate = time.Time{}
		return nil
	})
}

// errNotDue aborts a sweep or rotation that another node already did.
var errNotDue = errors.New("not due")

// Sweep destroys every key whose deletion date has passed and returns how
// many it destroyed. A key another node destroyed first is not an error.
func (s *Service) Sweep(ctx context.Context) (int, error) {
	now := s.opts.Now()
	destroyed, after := 0, ""
	for {
		page, err := s.keys.ListByState(ctx, after, MaxListLimit, StatePendingDeletion)
		if err != nil {
			return destroyed, err
		}
		for _, k := range page.Keys {
			if k.State != StatePendingDeletion || k.DeletionDate.IsZero() || k.DeletionDate.After(now) {
				continue
			}
			// The listing may be cached: the precondition re-checks fresh
			// metadata, so a deletion cancelled on another node is honoured.
			err := s.keys.Destroy(ctx, k.ID, func(m Metadata) error {
				if m.State != StatePendingDeletion || m.DeletionDate.IsZero() || m.DeletionDate.After(now) {
					return errNotDue
				}
				return nil
			})
			switch {
			case err == nil:
				destroyed++
				s.opts.Log.Info("key destroyed: deletion window passed", "key_id", k.ID, "deletion_date", k.DeletionDate)
			case errors.Is(err, ErrNotFound), errors.Is(err, errNotDue):
			default:
				return destroyed, err
			}
		}
		if !page.More {
			return destroyed, nil
		}
		after = page.Last
	}
}
