package client

import (
	"context"
	"iter"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Alias is a second name for a key ("alias/<name>"). Wherever a method
// takes a key id for a key it uses (DescribeKey, GenerateDataKey, Encrypt,
// ReEncrypt's destination), an alias name works too.
type Alias struct {
	AliasName       string    `json:"alias_name"`
	TargetKeyID     string    `json:"target_key_id"`
	CreationDate    time.Time `json:"creation_date"`
	LastUpdatedDate time.Time `json:"last_updated_date"`
}

type aliasBody struct {
	AliasName   string `json:"alias_name"`
	TargetKeyID string `json:"target_key_id,omitempty"`
}

type aliasResponse struct {
	Alias Alias `json:"alias"`
}

func (c *Client) aliasCall(ctx context.Context, method, path string, body aliasBody) (*Alias, error) {
	var out aliasResponse
	err := c.call(ctx, &request{method: method, path: admin(path), body: jsonBody(body)}, &out)
	return ret(&out.Alias, err)
}

// CreateAlias makes alias name ("alias/...") point at keyID
// (ErrConflict when the alias exists). Not retried.
func (c *Client) CreateAlias(ctx context.Context, name, keyID string) (*Alias, error) {
	return c.aliasCall(ctx, http.MethodPost, "/kms/aliases", aliasBody{name, keyID})
}

// UpdateAlias points an existing alias at another key. Not retried.
func (c *Client) UpdateAlias(ctx context.Context, name, keyID string) (*Alias, error) {
	return c.aliasCall(ctx, http.MethodPost, "/kms/aliases/update", aliasBody{name, keyID})
}

// DeleteAlias removes an alias; its key stays. Not retried.
func (c *Client) DeleteAlias(ctx context.Context, name string) (*Alias, error) {
	return c.aliasCall(ctx, http.MethodDelete, "/kms/aliases", aliasBody{AliasName: name})
}

// ListAliasesRequest selects a page of aliases.
type ListAliasesRequest struct {
	// KeyID lists only that key's aliases ("" for all).
	KeyID string
	// Limit is the page size (0: the server's default, 100).
	Limit int
	// Marker is the next_marker of the previous page.
	Marker string
}

// ListAliasesResponse is one page of aliases, sorted by name.
type ListAliasesResponse struct {
	Aliases    []Alias `json:"aliases"`
	Truncated  bool    `json:"truncated"`
	NextMarker string  `json:"next_marker"`
}

// ListAliases returns one page of aliases. Retried.
func (c *Client) ListAliases(ctx context.Context, req ListAliasesRequest) (*ListAliasesResponse, error) {
	q := url.Values{}
	if req.KeyID != "" {
		q.Set("key_id", req.KeyID)
	}
	if req.Limit > 0 {
		q.Set("limit", strconv.Itoa(req.Limit))
	}
	if req.Marker != "" {
		q.Set("marker", req.Marker)
	}
	var out ListAliasesResponse
	err := c.call(ctx, &request{method: http.MethodGet, path: admin("/kms/aliases"), query: q, retry: true}, &out)
	return ret(&out, err)
}

// ListAllAliases iterates over every alias from req.Marker on, page by
// page. On an error it yields (Alias{}, err) once and stops.
func (c *Client) ListAllAliases(ctx context.Context, req ListAliasesRequest) iter.Seq2[Alias, error] {
	return func(yield func(Alias, error) bool) {
		for {
			page, err := c.ListAliases(ctx, req)
			if err != nil {
				yield(Alias{}, err)
				return
			}
			for _, a := range page.Aliases {
				if !yield(a, nil) {
					return
				}
			}
			if !page.Truncated || page.NextMarker == "" || page.NextMarker == req.Marker {
				return
			}
			req.Marker = page.NextMarker
		}
	}
}
