package httpapi

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Key routes (docs/api.md, "Keys").
func (s *Server) keyRoutes() []*route {
	const t = 30 * time.Second
	return []*route{
		{method: "POST", path: "/kms/keys", action: "kms:CreateKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.createKey},
		{method: "GET", path: "/kms/keys", action: "kms:ListKeys", timeout: t, service: true, handle: s.listKeys},
		{method: "GET", path: "/kms/keys/{key_id}", action: "kms:DescribeKey", timeout: t, service: true, keyScoped: true, handle: s.describeKey},
		{method: "DELETE", path: "/kms/keys/delete", action: "kms:DeleteKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.deleteKey},
		{method: "POST", path: "/kms/keys/cancel-deletion", action: "kms:DeleteKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.cancelDeletion},
	}
}

// createKeyRequest reads AWS's spellings (KeyUsage, Description, Tags)
// and RustFS's (key_usage, description, tags). encoding/json matches field
// names case-insensitively, so only spellings that differ by more than case
// need two fields.
type createKeyRequest struct {
	KeyID         string            `json:"key_id"`
	KeyIDAWS      string            `json:"KeyId"`
	KeyUsage      string            `json:"KeyUsage"`
	KeyUsageSnake string            `json:"key_usage"`
	Description   string            `json:"description"`
	Tags          map[string]string `json:"tags"`
	// Accepted for AWS/RustFS clients; only the default is supported.
	KeySpec  string `json:"KeySpec"`
	KeySpecS string `json:"key_spec"`
}

// parseCreateKey reads a create body; an empty body means defaults.
func parseCreateKey(body []byte) (kms.CreateKeyInput, error) {
	var req createKeyRequest
	if !jsonbody.IsEmpty(body) {
		if err := jsonbody.Decode(body, &req); err != nil {
			return kms.CreateKeyInput{}, err
		}
	}
	for _, spec := range []string{req.KeySpec, req.KeySpecS} {
		if spec != "" && spec != "SYMMETRIC_DEFAULT" && spec != "AES_256" && spec != "Aes256" {
			return kms.CreateKeyInput{}, fmt.Errorf("%w: unsupported key spec %q (only SYMMETRIC_DEFAULT)", kms.ErrInvalidRequest, spec)
		}
	}
	return kms.CreateKeyInput{
		KeyID:       first(req.KeyID, req.KeyIDAWS),
		Description: req.Description,
		Usage:       first(req.KeyUsage, req.KeyUsageSnake),
		Tags:        req.Tags,
	}, nil
}

func (s *Server) createKey(c *call) error {
	in, err := parseCreateKey(c.body)
	if err != nil {
		return err
	}
	if err := c.authorize(in.NamedID()); err != nil {
		return err
	}
	meta, err := c.svc.CreateKey(c.ctx, in)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, struct {
		KeyID       string       `json:"key_id"`
		KeyMetadata *keyMetadata `json:"key_metadata"`
	}{meta.ID, c.keyMetadata(meta)})
	return nil
}

// eitherSpelling is a number a request may give in its snake_case or its
// AWS spelling: whichever is given (0 is "not given"; a negative value is
// kept for the validator to refuse), and an error if both are given and
// disagree, rather than silently preferring one.
func eitherSpelling(field string, snake, aws int) (int, error) {
	if snake != 0 && aws != 0 && snake != aws {
		return 0, fmt.Errorf("%w: %s is given twice (also in its AWS spelling) with different values", kms.ErrInvalidRequest, field)
	}
	if snake != 0 {
		return snake, nil
	}
	return aws, nil
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// keyListItem is one entry of a listing: key_id and description,
// plus the state so a listing is useful without a describe per key. A key
// the caller may not describe is listed by its id alone (the other fields
// are nil or empty, and left out).
type keyListItem struct {
	KeyID        string     `json:"key_id"`
	Description  *string    `json:"description,omitempty"`
	KeyState     *kms.State `json:"key_state,omitempty"`
	Enabled      *bool      `json:"enabled,omitempty"`
	CreationDate string     `json:"creation_date,omitempty"` // a timestamp is never empty
}

// newKeyListItem is the list entry of *k; its pointers point into *k, so a
// page of keys costs no allocation per key beyond the timestamp's text (a
// copy of k and two escaping locals each were a fifth of a page's CPU).
func newKeyListItem(k *kms.Metadata) keyListItem {
	enabled := &isFalse
	if k.State == kms.StateEnabled {
		enabled = &isTrue
	}
	return keyListItem{KeyID: k.ID, Description: &k.Description, KeyState: &k.State, Enabled: enabled, CreationDate: timestamp(k.CreationDate)}
}

// isTrue and isFalse are what keyListItem.Enabled points at; nothing
// writes through it.
var isTrue, isFalse = true, false

type listResponse struct {
	Keys       []keyListItem `json:"keys"`
	Truncated  bool          `json:"truncated"`
	NextMarker *string       `json:"next_marker"`
	Unreadable []string      `json:"unreadable_key_ids,omitempty"`
}

// listInput reads limit, marker and the state filter (state=, or RustFS's
// status=) from the query; a state filter only shows keys the caller may
// describe.
func (c *call) listInput() (kms.ListInput, error) {
	q := c.r.URL.Query()
	in := kms.ListInput{Limit: kms.DefaultListLimit, Marker: q.Get("marker"), MayDescribe: c.mayDescribe}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return in, fmt.Errorf("%w: limit must be a non-negative integer", kms.ErrInvalidRequest)
		}
		in.Limit = n
	}
	if v := first(q.Get("state"), q.Get("status")); v != "" {
		st, err := kms.ParseState(v)
		if err != nil {
			return in, err
		}
		in.State = st
	}
	return in, nil
}

func (s *Server) listKeys(c *call) error {
	in, err := c.listInput()
	if err != nil {
		return err
	}
	out, err := c.svc.ListKeys(c.ctx, in)
	if err != nil {
		return err
	}
	resp := listResponse{Keys: make([]keyListItem, 0, len(out.Keys)), Truncated: out.Truncated, Unreadable: out.Unreadable}
	for i := range out.Keys {
		k := &out.Keys[i]
		if !c.mayDescribe(k.ID) {
			resp.Keys = append(resp.Keys, keyListItem{KeyID: k.ID})
			continue
		}
		resp.Keys = append(resp.Keys, newKeyListItem(k))
	}
	if out.Truncated {
		resp.NextMarker = &out.NextMarker
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

func (s *Server) describeKey(c *call) error {
	id, err := c.resolveKey(c.r.PathValue("key_id"))
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
		KeyMetadata *keyMetadata `json:"key_metadata"`
	}{c.keyMetadata(meta)})
	return nil
}

// keyIDRequest is {"key_id"} (also AWS's KeyId).
type keyIDRequest struct {
	KeyID    string `json:"key_id"`
	KeyIDAWS string `json:"KeyId"`
}

type deleteKeyRequest struct {
	keyIDRequest
	PendingWindowInDays int    `json:"pending_window_in_days"`
	PendingWindowAWS    int    `json:"PendingWindowInDays"`
	ForceImmediate      bool   `json:"force_immediate"`
	ConfirmKeyID        string `json:"confirm_key_id"`
}

// keyChangeResponse answers delete and cancel-deletion: the updated
// key_metadata plus key_id and deletion_date at the top level.
type keyChangeResponse struct {
	KeyID        string       `json:"key_id"`
	DeletionDate *string      `json:"deletion_date"`
	KeyMetadata  *keyMetadata `json:"key_metadata"`
}

// deleteKey schedules deletion. An empty body reads keyId and
// pending_window_in_days from the query (RustFS clients); immediate
// deletion is only ever read from a JSON body.
func (s *Server) deleteKey(c *call) error {
	var req deleteKeyRequest
	if jsonbody.IsEmpty(c.body) {
		q := c.r.URL.Query()
		req.KeyID = first(q.Get("keyId"), q.Get("key_id"))
		if v := q.Get("pending_window_in_days"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%w: pending_window_in_days must be an integer", kms.ErrInvalidRequest)
			}
			req.PendingWindowInDays = n
		}
		if q.Has("force_immediate") || q.Has("confirm_key_id") {
			return fmt.Errorf("%w: immediate deletion is only accepted in a JSON body with force_immediate and confirm_key_id", kms.ErrInvalidRequest)
		}
	} else if err := jsonbody.Decode(c.body, &req); err != nil {
		return err
	}
	id := first(req.KeyID, req.KeyIDAWS)
	if err := c.authorize(id); err != nil {
		return err
	}
	if req.ForceImmediate {
		if err := c.svc.DestroyNow(c.ctx, id, req.ConfirmKeyID); err != nil {
			return err
		}
		writeJSON(c.w, http.StatusOK, keyChangeResponse{KeyID: id})
		return nil
	}
	if req.ConfirmKeyID != "" {
		return fmt.Errorf("%w: confirm_key_id is only meaningful with force_immediate", kms.ErrInvalidRequest)
	}
	window := req.PendingWindowInDays
	if window == 0 {
		window = req.PendingWindowAWS
	}
	meta, err := c.svc.ScheduleDeletion(c.ctx, id, window)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, keyChangeResponse{KeyID: meta.ID, DeletionDate: optionalTimestamp(meta.DeletionDate), KeyMetadata: c.keyMetadata(meta)})
	return nil
}

func (s *Server) cancelDeletion(c *call) error {
	id, err := s.keyIDFromBody(c)
	if err != nil {
		return err
	}
	if err := c.authorize(id); err != nil {
		return err
	}
	meta, err := c.svc.CancelDeletion(c.ctx, id)
	if err != nil {
		return err
	}
	writeJSON(c.w, http.StatusOK, keyChangeResponse{KeyID: meta.ID, KeyMetadata: c.keyMetadata(meta)})
	return nil
}

// keyIDFromBody reads {"key_id"}, falling back to the keyId query
// parameter when the body is empty (RustFS clients).
func (s *Server) keyIDFromBody(c *call) (string, error) {
	if jsonbody.IsEmpty(c.body) {
		return c.r.URL.Query().Get("keyId"), nil
	}
	var req keyIDRequest
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return "", err
	}
	return first(req.KeyID, req.KeyIDAWS), nil
}
