package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// RustFS compatibility routes (docs/api.md, "RustFS compatibility routes"): the
// legacy paths RustFS's own clients (mc, rc, the console) call, answering
// with the shapes and enum spellings those clients deserialize
// (key_usage "EncryptDecrypt", status "Active", ...). Errors still use
// Keyward's JSON error body.
func (s *Server) legacyRoutes() []*route {
	const t = 30 * time.Second
	return []*route{
		{method: "POST", path: "/kms/create-key", action: "kms:CreateKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.legacyCreateKey},
		{method: "POST", path: "/kms/key/create", action: "kms:CreateKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.legacyCreateKey},
		{method: "GET", path: "/kms/describe-key", action: "kms:DescribeKey", timeout: t, service: true, keyScoped: true, handle: s.legacyDescribeKey},
		{method: "GET", path: "/kms/key/status", action: "kms:DescribeKey", timeout: t, service: true, keyScoped: true, handle: s.legacyDescribeKey},
		{method: "GET", path: "/kms/list-keys", action: "kms:ListKeys", timeout: t, service: true, handle: s.legacyListKeys},
		{method: "POST", path: "/kms/status", action: "kms:ServiceControl", maxBody: MaxBody, timeout: 10 * time.Second, handle: s.legacyStatus},
	}
}

// rustfsKeyMetadata is RustFS's KeyMetadata.
type rustfsKeyMetadata struct {
	KeyID        string            `json:"key_id"`
	KeyState     kms.State         `json:"key_state"`
	KeyUsage     string            `json:"key_usage"`
	Description  *string           `json:"description"`
	CreationDate string            `json:"creation_date"`
	DeletionDate *string           `json:"deletion_date"`
	Origin       string            `json:"origin"`
	KeyManager   string            `json:"key_manager"`
	Tags         map[string]string `json:"tags"`
}

func toRustFSMetadata(m kms.Metadata) rustfsKeyMetadata {
	var desc *string
	if m.Description != "" {
		desc = &m.Description
	}
	tags := m.Tags
	if tags == nil {
		tags = map[string]string{}
	}
	return rustfsKeyMetadata{
		KeyID: m.ID, KeyState: m.State, KeyUsage: "EncryptDecrypt", Description: desc,
		CreationDate: timestamp(m.CreationDate), DeletionDate: optionalTimestamp(m.DeletionDate),
		Origin: "KMS", KeyManager: "CUSTOMER", Tags: tags,
	}
}

// legacyCreateKey takes the create body, and for /kms/key/create the id
// from ?key-id= as well.
func (s *Server) legacyCreateKey(c *call) error {
	in, err := parseCreateKey(c.body)
	if err != nil {
		return err
	}
	if id := c.r.URL.Query().Get("key-id"); id != "" && in.KeyID == "" {
		in.KeyID = id
	}
	if err := c.authorize(in.NamedID()); err != nil {
		return err
	}
	meta, err := c.svc.CreateKey(c.ctx, in)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		KeyID       string            `json:"key_id"`
		KeyMetadata rustfsKeyMetadata `json:"key_metadata"`
	}{meta.ID, toRustFSMetadata(meta)})
	return nil
}

// legacyDescribeKey reads the id from keyId (also key-id, key).
func (s *Server) legacyDescribeKey(c *call) error {
	q := c.r.URL.Query()
	id := first(q.Get("keyId"), first(q.Get("key-id"), q.Get("key")))
	if id == "" {
		return errMissing("keyId")
	}
	id, err := c.resolveKey(id)
	if err != nil {
		return err
	}
	if err := c.authorize(id); err != nil {
		return err
	}
	meta, err := c.svc.DescribeKey(c.ctx, id)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		KeyMetadata rustfsKeyMetadata `json:"key_metadata"`
	}{toRustFSMetadata(meta)})
	return nil
}

// rustfsKeyInfo is RustFS's KeyInfo (a list-keys entry).
type rustfsKeyInfo struct {
	KeyID       string            `json:"key_id"`
	Description *string           `json:"description"`
	Algorithm   string            `json:"algorithm"`
	Usage       string            `json:"usage"`
	Status      string            `json:"status"`
	Version     uint32            `json:"version"`
	Metadata    map[string]string `json:"metadata"`
	Tags        map[string]string `json:"tags"`
	CreatedAt   string            `json:"created_at"`
	RotatedAt   *string           `json:"rotated_at"`
	CreatedBy   string            `json:"created_by"`
	RotationDue bool              `json:"rotation_due"`
}

// keyIDOnly is a listed key the caller may not describe (docs/api.md,
// "GET /kms/keys"): its id and nothing else.
type keyIDOnly struct {
	KeyID string `json:"key_id"`
}

// rustfsStatus maps a key state to RustFS's KeyStatus.
func rustfsStatus(s kms.State) string {
	if s == kms.StateEnabled {
		return "Active"
	}
	return string(s)
}

func (s *Server) legacyListKeys(c *call) error {
	in, err := c.listInput()
	if err != nil {
		return err
	}
	out, err := c.svc.ListKeys(c.ctx, in)
	if err != nil {
		return err
	}
	resp := struct {
		Keys       []any    `json:"keys"` // rustfsKeyInfo, or keyIDOnly
		Truncated  bool     `json:"truncated"`
		NextMarker *string  `json:"next_marker"`
		Unreadable []string `json:"unreadable_key_ids,omitempty"`
	}{Keys: make([]any, 0, len(out.Keys)), Truncated: out.Truncated, Unreadable: out.Unreadable}
	for _, k := range out.Keys {
		if !c.mayDescribe(k.ID) {
			resp.Keys = append(resp.Keys, keyIDOnly{k.ID})
			continue
		}
		md := toRustFSMetadata(k)
		resp.Keys = append(resp.Keys, rustfsKeyInfo{
			KeyID: k.ID, Description: md.Description, Algorithm: "AES_256", Usage: "EncryptDecrypt",
			Status: rustfsStatus(k.State), Version: k.Version, Metadata: md.Tags, Tags: md.Tags,
			CreatedAt: md.CreationDate, RotatedAt: optionalTimestamp(k.RotationDate), CreatedBy: "keyward",
			RotationDue: c.svc.RotationDue(k),
		})
	}
	if out.Truncated {
		resp.NextMarker = &out.NextMarker
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

// legacyStatus is RustFS's management status (POST /kms/status).
func (s *Server) legacyStatus(c *call) error {
	ctx, cancel := context.WithTimeout(c.ctx, 5*time.Second)
	defer cancel()
	st := s.opts.Manager.Status(ctx)
	if st.Config == nil {
		return fmt.Errorf("%w: the KMS service is not configured", kms.ErrUnavailable)
	}
	type cacheStats struct {
		HitCount      uint64 `json:"hit_count"`
		MissCount     uint64 `json:"miss_count"`
		EntryCount    int    `json:"entry_count"`
		EvictionCount uint64 `json:"eviction_count"`
	}
	resp := struct {
		BackendType   string      `json:"backend_type"`
		BackendStatus string      `json:"backend_status"`
		CacheEnabled  bool        `json:"cache_enabled"`
		CacheStats    *cacheStats `json:"cache_stats"`
		DefaultKeyID  *string     `json:"default_key_id"`
	}{BackendType: st.Config.BackendType, BackendStatus: "unhealthy", CacheEnabled: st.Config.EnableCache, DefaultKeyID: st.Config.View().DefaultKeyID}
	if st.Healthy != nil && *st.Healthy {
		resp.BackendStatus = "healthy"
	}
	if svc, release, err := s.opts.Manager.Acquire(); err == nil {
		if st.Config.EnableCache {
			x := svc.Engine().CacheStats()
			resp.CacheStats = &cacheStats{x.Hits, x.Misses, x.Entries, x.Evictions}
		}
		release()
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}
