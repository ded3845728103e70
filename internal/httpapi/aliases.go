package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Alias routes (docs/api.md, "Aliases"). Each is authorized as AWS KMS
// authorizes its operation: on the alias and on every key it touches.
func (s *Server) aliasRoutes() []*route {
	const t = 30 * time.Second
	return []*route{
		{method: "GET", path: "/kms/aliases", action: "kms:ListAliases", timeout: t, service: true, handle: s.listAliases},
		{method: "POST", path: "/kms/aliases", action: "kms:CreateAlias", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.createAlias},
		{method: "POST", path: "/kms/aliases/update", action: "kms:UpdateAlias", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.updateAlias},
		{method: "DELETE", path: "/kms/aliases", action: "kms:DeleteAlias", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.deleteAlias},
	}
}

// aliasRequest is {"alias_name", "target_key_id"} (AWS: AliasName,
// TargetKeyId).
type aliasRequest struct {
	AliasName      string `json:"alias_name"`
	AliasNameAWS   string `json:"AliasName"`
	TargetKeyID    string `json:"target_key_id"`
	TargetKeyIDAWS string `json:"TargetKeyId"`
}

func (c *call) aliasRequest() (name, keyID string, err error) {
	var req aliasRequest
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return "", "", err
	}
	name = first(req.AliasName, req.AliasNameAWS)
	if name == "" {
		return "", "", errMissing("alias_name")
	}
	if err := kms.ValidateAliasName(name); err != nil {
		return "", "", err
	}
	return name, first(req.TargetKeyID, req.TargetKeyIDAWS), nil
}

// authorizeAlias checks the route's action on the alias itself. It does
// not release the service: the keys the alias touches are checked next.
func (c *call) authorizeAlias(name string) error {
	if !c.srv.opts.Authorizer.AllowedOnAlias(c.accessKey, c.route.action, name) {
		return errAccessDenied
	}
	return nil
}

// aliasJSON is one alias in an answer.
type aliasJSON struct {
	AliasName       string `json:"alias_name"`
	TargetKeyID     string `json:"target_key_id"`
	CreationDate    string `json:"creation_date"`
	LastUpdatedDate string `json:"last_updated_date"`
}

func toAliasJSON(a kms.Alias) aliasJSON {
	return aliasJSON{AliasName: a.Name, TargetKeyID: a.KeyID, CreationDate: timestamp(a.Created), LastUpdatedDate: timestamp(a.Updated)}
}

// createAlias: kms:CreateAlias on the alias and on its key.
func (s *Server) createAlias(c *call) error {
	name, keyID, err := c.aliasRequest()
	if err != nil {
		return err
	}
	if keyID == "" {
		return errMissing("target_key_id")
	}
	if err := c.authorizeAlias(name); err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	a, err := c.svc.CreateAlias(c.ctx, name, keyID)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		Alias aliasJSON `json:"alias"`
	}{toAliasJSON(a)})
	return nil
}

// updateAlias: kms:UpdateAlias on the alias, the key it names now and the
// key it will name.
func (s *Server) updateAlias(c *call) error {
	name, keyID, err := c.aliasRequest()
	if err != nil {
		return err
	}
	if keyID == "" {
		return errMissing("target_key_id")
	}
	if err := c.authorizeAlias(name); err != nil {
		return err
	}
	cur, err := c.pending.Alias(c.ctx, name)
	if err != nil {
		return err
	}
	if err := c.authorize(cur.KeyID, keyID); err != nil {
		return err
	}
	a, _, err := c.svc.UpdateAlias(c.ctx, name, keyID)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		Alias aliasJSON `json:"alias"`
	}{toAliasJSON(a)})
	return nil
}

// deleteAlias: kms:DeleteAlias on the alias and on its key.
func (s *Server) deleteAlias(c *call) error {
	name, _, err := c.aliasRequest()
	if err != nil {
		return err
	}
	if err := c.authorizeAlias(name); err != nil {
		return err
	}
	cur, err := c.pending.Alias(c.ctx, name)
	if err != nil {
		return err
	}
	if err := c.authorize(cur.KeyID); err != nil {
		return err
	}
	a, err := c.svc.DeleteAlias(c.ctx, name)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		Alias aliasJSON `json:"alias"`
	}{toAliasJSON(a)})
	return nil
}

// listAliases: kms:ListAliases on every key ("*"), as in AWS; key_id
// (or keyId) lists one key's aliases.
func (s *Server) listAliases(c *call) error {
	q := c.r.URL.Query()
	in := kms.AliasListInput{KeyID: first(q.Get("key_id"), q.Get("keyId")), Marker: q.Get("marker"), Limit: kms.DefaultListLimit}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return fmt.Errorf("%w: limit must be a non-negative integer", kms.ErrInvalidRequest)
		}
		in.Limit = n
	}
	if in.KeyID != "" {
		id, err := c.svc.ResolveKey(c.ctx, in.KeyID)
		if err != nil {
			return err
		}
		in.KeyID = id
	}
	page, err := c.svc.ListAliases(c.ctx, in)
	if err != nil {
		return err
	}
	resp := struct {
		Aliases    []aliasJSON `json:"aliases"`
		Truncated  bool        `json:"truncated"`
		NextMarker *string     `json:"next_marker"`
		Unreadable []string    `json:"unreadable_alias_names,omitempty"`
	}{Aliases: make([]aliasJSON, 0, len(page.Aliases)), Truncated: page.More, Unreadable: page.Unreadable}
	for _, a := range page.Aliases {
		resp.Aliases = append(resp.Aliases, toAliasJSON(a))
	}
	if page.More {
		resp.NextMarker = &page.Last
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}
