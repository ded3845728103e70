package httpapi

import (
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Key state and metadata routes (docs/api.md, "Key state"): enable, disable,
// rotation, description and tags. Each answers {"key_id", "deletion_date",
// "key_metadata"} with the updated metadata.
func (s *Server) keyStateRoutes() []*route {
	const t = 30 * time.Second
	return []*route{
		{method: "POST", path: "/kms/keys/enable", action: "kms:EnableKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.enableKey},
		{method: "POST", path: "/kms/keys/disable", action: "kms:DisableKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.disableKey},
		{method: "POST", path: "/kms/keys/rotate", action: "kms:RotateKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.rotateKey},
		{method: "POST", path: "/kms/keys/rotation", action: "kms:RotateKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.setRotation},
		{method: "POST", path: "/kms/keys/update-description", action: "kms:UpdateKeyDescription", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.updateDescription},
		{method: "POST", path: "/kms/keys/tag", action: "kms:TagResource", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.tagKey},
		{method: "POST", path: "/kms/keys/untag", action: "kms:UntagResource", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.untagKey},
	}
}

// writeKeyChange answers a metadata change.
func writeKeyChange(c *call, m kms.Metadata, err error) error {
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, keyChangeResponse{KeyID: m.ID, DeletionDate: optionalTimestamp(m.DeletionDate), KeyMetadata: c.keyMetadata(m)})
	return nil
}

func (s *Server) enableKey(c *call) error {
	id, err := s.keyIDFromBody(c)
	if err != nil {
		return err
	}
	if err := c.authorize(id); err != nil {
		return err
	}
	m, err := c.svc.EnableKey(c.ctx, id)
	return writeKeyChange(c, m, err)
}

func (s *Server) disableKey(c *call) error {
	id, err := s.keyIDFromBody(c)
	if err != nil {
		return err
	}
	if err := c.authorize(id); err != nil {
		return err
	}
	m, err := c.svc.DisableKey(c.ctx, id)
	return writeKeyChange(c, m, err)
}

func (s *Server) rotateKey(c *call) error {
	id, err := s.keyIDFromBody(c)
	if err != nil {
		return err
	}
	if err := c.authorize(id); err != nil {
		return err
	}
	m, err := c.svc.RotateKey(c.ctx, id)
	return writeKeyChange(c, m, err)
}

func (s *Server) setRotation(c *call) error {
	var req struct {
		keyIDRequest
		Enabled    *bool `json:"enabled"`
		PeriodDays int   `json:"period_days"`
		// AWS spelling of the period.
		RotationPeriodInDays int `json:"RotationPeriodInDays"`
	}
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return err
	}
	if req.Enabled == nil {
		return errMissing("enabled")
	}
	id := first(req.KeyID, req.KeyIDAWS)
	if err := c.authorize(id); err != nil {
		return err
	}
	period, err := eitherSpelling("period_days", req.PeriodDays, req.RotationPeriodInDays)
	if err != nil {
		return err
	}
	m, err := c.svc.SetRotation(c.ctx, id, *req.Enabled, period)
	return writeKeyChange(c, m, err)
}

func (s *Server) updateDescription(c *call) error {
	var req struct {
		keyIDRequest
		Description *string `json:"description"`
	}
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return err
	}
	if req.Description == nil {
		return errMissing("description")
	}
	id := first(req.KeyID, req.KeyIDAWS)
	if err := c.authorize(id); err != nil {
		return err
	}
	m, err := c.svc.UpdateDescription(c.ctx, id, *req.Description)
	return writeKeyChange(c, m, err)
}

func (s *Server) tagKey(c *call) error {
	var req struct {
		keyIDRequest
		Tags map[string]string `json:"tags"`
	}
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return err
	}
	id := first(req.KeyID, req.KeyIDAWS)
	if err := c.authorize(id); err != nil {
		return err
	}
	m, err := c.svc.TagKey(c.ctx, id, req.Tags)
	return writeKeyChange(c, m, err)
}

func (s *Server) untagKey(c *call) error {
	var req struct {
		keyIDRequest
		TagKeys []string `json:"tag_keys"`
	}
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return err
	}
	id := first(req.KeyID, req.KeyIDAWS)
	if err := c.authorize(id); err != nil {
		return err
	}
	m, err := c.svc.UntagKey(c.ctx, id, req.TagKeys)
	return writeKeyChange(c, m, err)
}
