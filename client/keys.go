package client

import (
	"context"
	"fmt"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// KeyState is the state of a key.
type KeyState string

// Key states (docs/api.md, "Keys"). Only an Enabled key generates, encrypts,
// decrypts and re-encrypts; anything else is ErrInvalidKeyState.
const (
	KeyEnabled         KeyState = "Enabled"
	KeyDisabled        KeyState = "Disabled"
	KeyPendingDeletion KeyState = "PendingDeletion"
)

// KeyUsageEncryptDecrypt is the only key usage.
const KeyUsageEncryptDecrypt = "ENCRYPT_DECRYPT"

// KeyMetadata describes a key.
type KeyMetadata struct {
	KeyID        string    `json:"key_id"`
	Description  string    `json:"description"`
	Enabled      bool      `json:"enabled"`
	KeyState     KeyState  `json:"key_state"`
	KeyUsage     string    `json:"key_usage"`
	CreationDate time.Time `json:"creation_date"`
	// DeletionDate is set while the key is pending deletion.
	DeletionDate    *time.Time `json:"deletion_date"`
	RotationEnabled bool       `json:"rotation_enabled"`
	// RotationPeriodDays is 0 while automatic rotation is off.
	RotationPeriodDays int        `json:"rotation_period_days"`
	NextRotationDate   *time.Time `json:"next_rotation_date"`
	// KeyVersion is the current version (1, then +1 per rotation).
	KeyVersion   uint32            `json:"key_version"`
	RotationDate *time.Time        `json:"rotation_date"`
	Tags         map[string]string `json:"tags"`
	// Aliases are the names of the key's aliases ("alias/...").
	Aliases []string `json:"aliases"`
}

// CreateKeyRequest is the body of CreateKey. Every field is optional.
type CreateKeyRequest struct {
	// KeyID: 1–128 characters of [A-Za-z0-9._-]. Empty: the "name" tag,
	// else a new UUID.
	KeyID       string            `json:"key_id,omitempty"`
	Description string            `json:"Description,omitempty"`
	KeyUsage    string            `json:"KeyUsage,omitempty"` // ENCRYPT_DECRYPT (the default)
	Tags        map[string]string `json:"Tags,omitempty"`
}

// keyMetadataResponse is {"key_id", "key_metadata"} (plus deletion_date).
type keyMetadataResponse struct {
	KeyID       string       `json:"key_id"`
	KeyMetadata *KeyMetadata `json:"key_metadata"`
}

// keyCall sends a key route that answers key_metadata.
func (c *Client) keyCall(ctx context.Context, rq *request) (*KeyMetadata, error) {
	var out keyMetadataResponse
	if err := c.call(ctx, rq, &out); err != nil {
		return nil, err
	}
	if out.KeyMetadata == nil {
		return nil, fmt.Errorf("keyward: %s %s: the response has no key_metadata", rq.method, rq.path)
	}
	return out.KeyMetadata, nil
}

// CreateKey creates a key (ErrConflict when the id exists). Not retried.
func (c *Client) CreateKey(ctx context.Context, req CreateKeyRequest) (*KeyMetadata, error) {
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys"), body: jsonBody(req)})
}

// ListKeysRequest selects a page of keys.
type ListKeysRequest struct {
	// Limit is the page size: 0 means the server's default (100); the
	// server serves at most 1000.
	Limit int
	// Marker is the next_marker of the previous page ("" for the first).
	Marker string
	// State filters by state ("" for all).
	State KeyState
}

// KeyListEntry is one key of a listing.
type KeyListEntry struct {
	KeyID        string    `json:"key_id"`
	Description  string    `json:"description"`
	KeyState     KeyState  `json:"key_state"`
	Enabled      bool      `json:"enabled"`
	CreationDate time.Time `json:"creation_date"`
}

// ListKeysResponse is one page of keys, sorted by id.
type ListKeysResponse struct {
	Keys      []KeyListEntry `json:"keys"`
	Truncated bool           `json:"truncated"`
	// NextMarker continues the listing while Truncated.
	NextMarker string `json:"next_marker"`
	// UnreadableKeyIDs are damaged key records the server could not read.
	UnreadableKeyIDs []string `json:"unreadable_key_ids"`
}

func (r ListKeysRequest) query() url.Values {
	q := url.Values{}
	if r.Limit > 0 {
		q.Set("limit", strconv.Itoa(r.Limit))
	}
	if r.Marker != "" {
		q.Set("marker", r.Marker)
	}
	if r.State != "" {
		q.Set("state", string(r.State))
	}
	return q
}

// ListKeys returns one page of keys. Retried.
func (c *Client) ListKeys(ctx context.Context, req ListKeysRequest) (*ListKeysResponse, error) {
	var out ListKeysResponse
	err := c.call(ctx, &request{method: http.MethodGet, path: admin("/kms/keys"), query: req.query(), retry: true}, &out)
	return ret(&out, err)
}

// ListAllKeys iterates over every key from req.Marker on, following
// next_marker page by page (req.Limit is the page size). On an error it
// yields (KeyListEntry{}, err) once and stops. When the server reported
// unreadable key records, an *UnreadableKeysError is yielded last, after
// every readable key.
//
//	for k, err := range c.ListAllKeys(ctx, client.ListKeysRequest{}) {
//		if err != nil {
//			return err
//		}
//		fmt.Println(k.KeyID, k.KeyState)
//	}
func (c *Client) ListAllKeys(ctx context.Context, req ListKeysRequest) iter.Seq2[KeyListEntry, error] {
	return func(yield func(KeyListEntry, error) bool) {
		var unreadable []string
		for {
			page, err := c.ListKeys(ctx, req)
			if err != nil {
				yield(KeyListEntry{}, err)
				return
			}
			for _, k := range page.Keys {
				if !yield(k, nil) {
					return
				}
			}
			unreadable = append(unreadable, page.UnreadableKeyIDs...)
			if !page.Truncated || page.NextMarker == "" || page.NextMarker == req.Marker {
				break
			}
			req.Marker = page.NextMarker
		}
		if len(unreadable) > 0 {
			yield(KeyListEntry{}, &UnreadableKeysError{KeyIDs: unreadable})
		}
	}
}

// DescribeKey returns a key's metadata (ErrNotFound when unknown).
// Retried.
func (c *Client) DescribeKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	if keyID == "" {
		return nil, fmt.Errorf("keyward: DescribeKey: a key id is required: %w", ErrInvalidRequest)
	}
	return c.keyCall(ctx, &request{method: http.MethodGet, path: admin("/kms/keys/" + url.PathEscape(keyID)), retry: true})
}

// keyIDBody is {"key_id"}.
type keyIDBody struct {
	KeyID string `json:"key_id"`
}

// ScheduleKeyDeletion schedules the key's destruction after a window of
// days (7–30; 0 means the server's default, 30). The key becomes
// PendingDeletion with a DeletionDate; CancelKeyDeletion undoes it until
// then. Not retried.
func (c *Client) ScheduleKeyDeletion(ctx context.Context, keyID string, days int) (*KeyMetadata, error) {
	body := struct {
		KeyID string `json:"key_id"`
		Days  int    `json:"pending_window_in_days,omitempty"`
	}{keyID, days}
	return c.keyCall(ctx, &request{method: http.MethodDelete, path: admin("/kms/keys/delete"), body: jsonBody(body)})
}

// DestroyKeyNow destroys the key immediately and for good: every blob
// under it becomes undecryptable. The server refuses (ErrInvalidRequest)
// unless it runs with --allow-immediate-deletion. Not retried.
func (c *Client) DestroyKeyNow(ctx context.Context, keyID string) error {
	body := struct {
		KeyID          string `json:"key_id"`
		ForceImmediate bool   `json:"force_immediate"`
		ConfirmKeyID   string `json:"confirm_key_id"`
	}{keyID, true, keyID}
	return c.call(ctx, &request{method: http.MethodDelete, path: admin("/kms/keys/delete"), body: jsonBody(body)}, nil)
}

// CancelKeyDeletion returns a PendingDeletion key to Enabled (any other
// state: ErrInvalidKeyState). Not retried.
func (c *Client) CancelKeyDeletion(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/cancel-deletion"), body: jsonBody(keyIDBody{keyID})})
}

// EnableKey enables a key. Not retried.
func (c *Client) EnableKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/enable"), body: jsonBody(keyIDBody{keyID})})
}

// DisableKey disables a key: it can no longer generate, encrypt or
// decrypt until enabled again. Not retried.
func (c *Client) DisableKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/disable"), body: jsonBody(keyIDBody{keyID})})
}

// RotateKey creates a new key version: new data keys use it, and every
// older blob still decrypts. Not retried (a retry would rotate twice).
func (c *Client) RotateKey(ctx context.Context, keyID string) (*KeyMetadata, error) {
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/rotate"), body: jsonBody(keyIDBody{keyID})})
}

// SetKeyRotation turns automatic rotation on (every periodDays, 90–2560;
// 0 means the server's default) or off. Not retried.
func (c *Client) SetKeyRotation(ctx context.Context, keyID string, enabled bool, periodDays int) (*KeyMetadata, error) {
	body := struct {
		KeyID      string `json:"key_id"`
		Enabled    bool   `json:"enabled"`
		PeriodDays int    `json:"period_days,omitempty"`
	}{keyID, enabled, periodDays}
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/rotation"), body: jsonBody(body)})
}

// UpdateKeyDescription replaces the key's description. Not retried.
func (c *Client) UpdateKeyDescription(ctx context.Context, keyID, description string) (*KeyMetadata, error) {
	body := struct {
		KeyID       string `json:"key_id"`
		Description string `json:"description"`
	}{keyID, description}
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/update-description"), body: jsonBody(body)})
}

// TagKey adds or replaces tags. Not retried.
func (c *Client) TagKey(ctx context.Context, keyID string, tags map[string]string) (*KeyMetadata, error) {
	body := struct {
		KeyID string            `json:"key_id"`
		Tags  map[string]string `json:"tags"`
	}{keyID, tags}
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/tag"), body: jsonBody(body)})
}

// UntagKey removes the tags with the given keys. Not retried.
func (c *Client) UntagKey(ctx context.Context, keyID string, tagKeys ...string) (*KeyMetadata, error) {
	if tagKeys == nil {
		tagKeys = []string{}
	}
	body := struct {
		KeyID   string   `json:"key_id"`
		TagKeys []string `json:"tag_keys"`
	}{keyID, tagKeys}
	return c.keyCall(ctx, &request{method: http.MethodPost, path: admin("/kms/keys/untag"), body: jsonBody(body)})
}
