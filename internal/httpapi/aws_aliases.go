package httpapi

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/keyward/keyward/internal/kms"
)

// Alias operations of the AWS KMS door: CreateAlias, UpdateAlias,
// DeleteAlias, ListAliases. The aliases are the key service's (the admin
// routes /kms/aliases manage the same ones); each operation is authorized
// as on the admin routes: on the alias and on every key it touches.

type awsAliasRequest struct {
	AliasName   string `json:"AliasName"`
	TargetKeyID string `json:"TargetKeyId"`
}

// aliasName reads AliasName: an alias name or an alias ARN of this server.
func (c *call) awsAliasName(name string) (string, error) {
	if name == "" {
		return "", fmt.Errorf("%w: AliasName is required", kms.ErrInvalidRequest)
	}
	if strings.HasPrefix(name, "arn:") {
		rest, err := c.srv.arnResource(name)
		if err != nil {
			return "", err
		}
		name = rest
	}
	return name, kms.ValidateAliasName(name)
}

// awsTarget reads TargetKeyId: a key id or key ARN (AWS does not take an
// alias here: an alias names a key, not another alias).
func (c *call) awsTarget(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: TargetKeyId is required", kms.ErrInvalidRequest)
	}
	if kms.IsAlias(ref) || strings.HasPrefix(ref, "arn:") && strings.Contains(ref, ":alias/") {
		return "", fmt.Errorf("%w: TargetKeyId must be a key id or key ARN, not an alias", kms.ErrInvalidRequest)
	}
	return c.awsKeyRef(ref)
}

func (s *Server) awsCreateAlias(c *call) error {
	var req awsAliasRequest
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	name, err := c.awsAliasName(req.AliasName)
	if err != nil {
		return err
	}
	if err := c.authorizeAlias(name); err != nil {
		return err
	}
	keyID, err := c.awsTarget(req.TargetKeyID)
	if err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	if _, err := c.svc.CreateAlias(c.ctx, name, keyID); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsUpdateAlias(c *call) error {
	var req awsAliasRequest
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	name, err := c.awsAliasName(req.AliasName)
	if err != nil {
		return err
	}
	if err := c.authorizeAlias(name); err != nil {
		return err
	}
	keyID, err := c.awsTarget(req.TargetKeyID)
	if err != nil {
		return err
	}
	cur, err := c.pending.Alias(c.ctx, name)
	if err != nil {
		return err
	}
	if err := c.authorize(cur.KeyID, keyID); err != nil {
		return err
	}
	if _, _, err := c.svc.UpdateAlias(c.ctx, name, keyID); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsDeleteAlias(c *call) error {
	var req struct {
		AliasName string `json:"AliasName"`
	}
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	name, err := c.awsAliasName(req.AliasName)
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
	if _, err := c.svc.DeleteAlias(c.ctx, name); err != nil {
		return err
	}
	return awsOK(c)
}

// maxAliasesPage is AWS's largest ListAliases page.
const maxAliasesPage = 100

// awsListAliases lists aliases (all, or one key's): kms:ListAliases on
// every key ("*"), as on the admin route.
func (s *Server) awsListAliases(c *call) error {
	var req struct {
		KeyID string `json:"KeyId"`
		awsListRequest
	}
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	limit, err := awsLimit(req.Limit, maxAliasesPage, maxAliasesPage)
	if err != nil {
		return err
	}
	after, err := decodeMarker(markerAliases, req.Marker, func(n string) bool { return kms.ValidateAliasName(n) == nil })
	if err != nil {
		return err
	}
	in := kms.AliasListInput{Marker: after, Limit: limit}
	if req.KeyID != "" {
		// The route is not key-scoped: the caller may list every alias.
		c.pending = c.svc
		if in.KeyID, err = c.awsKeyRef(req.KeyID); err != nil {
			return err
		}
	}
	page, err := c.svc.ListAliases(c.ctx, in)
	if err != nil {
		return err
	}
	type entry struct {
		AliasName       string  `json:"AliasName"`
		AliasArn        string  `json:"AliasArn"`
		TargetKeyID     string  `json:"TargetKeyId"`
		CreationDate    awsTime `json:"CreationDate"`
		LastUpdatedDate awsTime `json:"LastUpdatedDate"`
	}
	resp := struct {
		Aliases    []entry `json:"Aliases"`
		NextMarker string  `json:"NextMarker,omitempty"`
		Truncated  bool    `json:"Truncated"`
	}{Aliases: make([]entry, 0, len(page.Aliases)), Truncated: page.More}
	for _, a := range page.Aliases {
		resp.Aliases = append(resp.Aliases, entry{a.Name, c.aliasARN(a.Name), a.KeyID, awsTime(a.Created), awsTime(a.Updated)})
	}
	if page.More {
		resp.NextMarker = encodeMarker(markerAliases, page.Last)
	}
	writeAWS(c.w, http.StatusOK, resp)
	return nil
}
