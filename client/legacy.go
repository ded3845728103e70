package client

import (
	"context"
	"net/http"
	"net/url"
	"time"
)

// The RustFS compatibility routes: the legacy paths RustFS's own clients
// call, answering with RustFS's shapes and spellings (key_usage
// "EncryptDecrypt", status "Active"). New code should use the methods
// above; these exist for tools that must see exactly what RustFS serves.

// LegacyKeyMetadata is RustFS's KeyMetadata.
type LegacyKeyMetadata struct {
	KeyID        string            `json:"key_id"`
	KeyState     KeyState          `json:"key_state"`
	KeyUsage     string            `json:"key_usage"` // EncryptDecrypt
	Description  string            `json:"description"`
	CreationDate time.Time         `json:"creation_date"`
	DeletionDate *time.Time        `json:"deletion_date"`
	Origin       string            `json:"origin"`
	KeyManager   string            `json:"key_manager"`
	Tags         map[string]string `json:"tags"`
}

// LegacyKeyInfo is RustFS's KeyInfo, an entry of ListKeysLegacy.
type LegacyKeyInfo struct {
	KeyID       string            `json:"key_id"`
	Description string            `json:"description"`
	Algorithm   string            `json:"algorithm"`
	Usage       string            `json:"usage"`
	Status      string            `json:"status"` // Active, Disabled, PendingDeletion
	Version     uint32            `json:"version"`
	Metadata    map[string]string `json:"metadata"`
	Tags        map[string]string `json:"tags"`
	CreatedAt   time.Time         `json:"created_at"`
	RotatedAt   *time.Time        `json:"rotated_at"`
	CreatedBy   string            `json:"created_by"`
	RotationDue bool              `json:"rotation_due"`
}

// LegacyListKeysResponse is a page of ListKeysLegacy.
type LegacyListKeysResponse struct {
	Keys             []LegacyKeyInfo `json:"keys"`
	Truncated        bool            `json:"truncated"`
	NextMarker       string          `json:"next_marker"`
	UnreadableKeyIDs []string        `json:"unreadable_key_ids"`
}

// ManagementStatus is RustFS's management status (POST /kms/status).
type ManagementStatus struct {
	BackendType   string `json:"backend_type"`
	BackendStatus string `json:"backend_status"` // healthy, unhealthy
	CacheEnabled  bool   `json:"cache_enabled"`
	// CacheStats is nil when the cache is off or the service stopped.
	CacheStats   *CacheStats `json:"cache_stats"`
	DefaultKeyID string      `json:"default_key_id"`
}

// CacheStats are the key cache counters.
type CacheStats struct {
	HitCount      uint64 `json:"hit_count"`
	MissCount     uint64 `json:"miss_count"`
	EntryCount    int    `json:"entry_count"`
	EvictionCount uint64 `json:"eviction_count"`
}

func (c *Client) legacyKey(ctx context.Context, rq *request) (*LegacyKeyMetadata, error) {
	var out struct {
		KeyMetadata LegacyKeyMetadata `json:"key_metadata"`
	}
	if err := c.call(ctx, rq, &out); err != nil {
		return nil, err
	}
	return &out.KeyMetadata, nil
}

// CreateKeyLegacy is POST /kms/create-key. Not retried.
func (c *Client) CreateKeyLegacy(ctx context.Context, req CreateKeyRequest) (*LegacyKeyMetadata, error) {
	return c.legacyKey(ctx, &request{method: http.MethodPost, path: admin("/kms/create-key"), body: jsonBody(req)})
}

// KeyCreateLegacy is POST /kms/key/create (the other RustFS spelling of
// CreateKeyLegacy). Not retried.
func (c *Client) KeyCreateLegacy(ctx context.Context, req CreateKeyRequest) (*LegacyKeyMetadata, error) {
	return c.legacyKey(ctx, &request{method: http.MethodPost, path: admin("/kms/key/create"), body: jsonBody(req)})
}

// DescribeKeyLegacy is GET /kms/describe-key?keyId=. Retried.
func (c *Client) DescribeKeyLegacy(ctx context.Context, keyID string) (*LegacyKeyMetadata, error) {
	return c.legacyKey(ctx, &request{method: http.MethodGet, path: admin("/kms/describe-key"), query: url.Values{"keyId": {keyID}}, retry: true})
}

// KeyStatusLegacy is GET /kms/key/status?keyId= (the same answer as
// DescribeKeyLegacy). Retried.
func (c *Client) KeyStatusLegacy(ctx context.Context, keyID string) (*LegacyKeyMetadata, error) {
	return c.legacyKey(ctx, &request{method: http.MethodGet, path: admin("/kms/key/status"), query: url.Values{"keyId": {keyID}}, retry: true})
}

// ListKeysLegacy is GET /kms/list-keys. Retried.
func (c *Client) ListKeysLegacy(ctx context.Context, req ListKeysRequest) (*LegacyListKeysResponse, error) {
	var out LegacyListKeysResponse
	err := c.call(ctx, &request{method: http.MethodGet, path: admin("/kms/list-keys"), query: req.query(), retry: true}, &out)
	return ret(&out, err)
}

// ManagementStatus is POST /kms/status, RustFS's management status (a
// read-only call: retried). ErrServiceUnavailable while not configured.
func (c *Client) ManagementStatus(ctx context.Context) (*ManagementStatus, error) {
	var out ManagementStatus
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/status"), retry: true}, &out)
	return ret(&out, err)
}
