package httpapi

import (
	"bytes"
	"encoding/base64"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

// policyAuthorizer allows exactly the listed actions, optionally on the
// listed resources only, and records what it was asked.
type policyAuthorizer struct {
	actions   []string
	resources []string
	mu        sync.Mutex
	asked     []string
}

func (p *policyAuthorizer) AllowedOnKey(_, action, keyID string) bool {
	resource := "*"
	if keyID != "" {
		resource = "arn:aws:kms:::key/" + keyID
	}
	return p.allowed(action, resource)
}

func (p *policyAuthorizer) AllowedOnAlias(_, action, name string) bool {
	return p.allowed(action, "arn:aws:kms:::"+name)
}

func (p *policyAuthorizer) allowed(action, resource string) bool {
	p.mu.Lock()
	p.asked = append(p.asked, action+" "+resource)
	p.mu.Unlock()
	return slices.Contains(p.actions, action) && (p.resources == nil || slices.Contains(p.resources, resource))
}

// sampleRequests holds a well-formed request for every route, acting on key
// "k1" where the route acts on a key. A route without a sample fails
// TestEveryRouteIsGated: add one when adding a route.
func sampleRequests(t *testing.T, s *Server) map[string]struct{ path, body string } {
	rec, out := doCall(t, s, "POST", "/kms/generate-data-key", []byte(`{"key_id":"k1"}`))
	if rec.Code != 200 {
		t.Fatalf("setup: %s", rec.Body.String())
	}
	blob := out["ciphertext_blob"].(string)
	return map[string]struct{ path, body string }{
		"POST /kms/configure":                           {"/kms/configure", `{"backend_type":"local"}`},
		"POST /kms/reconfigure":                         {"/kms/reconfigure", `{"cache_ttl_seconds":60}`},
		"POST /kms/start":                               {"/kms/start", ``},
		"POST /kms/stop":                                {"/kms/stop", ``},
		"GET /kms/status":                               {"/kms/status", ``},
		"POST /kms/status":                              {"/kms/status", ``},
		"GET /kms/service-status":                       {"/kms/service-status", ``},
		"GET /kms/config":                               {"/kms/config", ``},
		"POST /kms/clear-cache":                         {"/kms/clear-cache", ``},
		"POST /kms/keys":                                {"/kms/keys", `{"key_id":"k1"}`},
		"GET /kms/keys":                                 {"/kms/keys", ``},
		"GET /kms/keys/{key_id}":                        {"/kms/keys/k1", ``},
		"DELETE /kms/keys/delete":                       {"/kms/keys/delete", `{"key_id":"k1","pending_window_in_days":7}`},
		"POST /kms/keys/cancel-deletion":                {"/kms/keys/cancel-deletion", `{"key_id":"k1"}`},
		"POST /kms/keys/enable":                         {"/kms/keys/enable", `{"key_id":"k1"}`},
		"POST /kms/keys/disable":                        {"/kms/keys/disable", `{"key_id":"k1"}`},
		"POST /kms/keys/rotate":                         {"/kms/keys/rotate", `{"key_id":"k1"}`},
		"POST /kms/keys/rotation":                       {"/kms/keys/rotation", `{"key_id":"k1","enabled":true,"period_days":90}`},
		"POST /kms/keys/update-description":             {"/kms/keys/update-description", `{"key_id":"k1","description":"d"}`},
		"POST /kms/keys/tag":                            {"/kms/keys/tag", `{"key_id":"k1","tags":{"a":"b"}}`},
		"POST /kms/keys/untag":                          {"/kms/keys/untag", `{"key_id":"k1","tag_keys":["a"]}`},
		"POST /kms/generate-data-key":                   {"/kms/generate-data-key", `{"key_id":"k1"}`},
		"POST /kms/generate-data-key-without-plaintext": {"/kms/generate-data-key-without-plaintext", `{"key_id":"k1"}`},
		"POST /kms/encrypt":                             {"/kms/encrypt", `{"key_id":"k1","plaintext":"` + base64.StdEncoding.EncodeToString([]byte("x")) + `"}`},
		"POST /kms/decrypt":                             {"/kms/decrypt", `{"ciphertext_blob":"` + blob + `"}`},
		"POST /kms/re-encrypt":                          {"/kms/re-encrypt", `{"ciphertext_blob":"` + blob + `","destination_key_id":"k1"}`},
		"POST /kms/create-key":                          {"/kms/create-key", `{"tags":{"name":"k1"}}`},
		"POST /kms/key/create":                          {"/kms/key/create?key-id=k1", ``},
		"GET /kms/describe-key":                         {"/kms/describe-key?keyId=k1", ``},
		"GET /kms/key/status":                           {"/kms/key/status?keyId=k1", ``},
		"GET /kms/list-keys":                            {"/kms/list-keys", ``},
		"GET /metrics":                                  {"/metrics", ``},
		"GET /kms/aliases":                              {"/kms/aliases", ``},
		"POST /kms/aliases":                             {"/kms/aliases", `{"alias_name":"alias/a2","target_key_id":"k1"}`},
		"POST /kms/aliases/update":                      {"/kms/aliases/update", `{"alias_name":"alias/a1","target_key_id":"k1"}`},
		"DELETE /kms/aliases":                           {"/kms/aliases", `{"alias_name":"alias/a1"}`},
		"POST /kms/backup":                              {"/kms/backup", `{"recipients":["age1w8rqw4gjy4hfz7kjup49gvwj4sc3257mc4m7jsrw3dpt0rgkzcwsw3rqrs"]}`},
		"POST /kms/restore":                             {"/kms/restore", `--not-multipart--`},
	}
}

// TestEveryRouteIsGated walks the whole route table: with no permission
// every route answers 403 AccessDenied; with exactly its own action (on key
// k1, or on "*" for routes that act on no key) it does not.
func TestEveryRouteIsGated(t *testing.T) {
	for _, rt := range newTestServer(t, false).routes {
		name := rt.method + " " + rt.path
		t.Run(name, func(t *testing.T) {
			// A fresh server per route: some routes (stop, delete) change state.
			setup := newTestServer(t, true)
			seedKey(t, setup)
			samples := sampleRequests(t, setup)
			sample, ok := samples[name]
			if !ok {
				t.Fatalf("no sample request for %s: add one to sampleRequests", name)
			}
			send := func(s *Server) (int, string) {
				path := Prefix + sample.path
				if rt.absolute {
					path = sample.path
				}
				req := httptest.NewRequest(rt.method, path, bytes.NewReader([]byte(sample.body)))
				rec := httptest.NewRecorder()
				s.ServeHTTP(rec, req)
				return rec.Code, rec.Body.String()
			}

			denyAll := &policyAuthorizer{actions: []string{"kms:Nothing"}}
			srv := newTestServerWith(t, true, denyAll)
			if code, body := send(srv); code != 403 || !strings.Contains(body, `"AccessDenied"`) {
				t.Fatalf("without permission: %d %s", code, body)
			}

			resources := []string{"*"}
			if rt.keyScoped {
				// The key, and the alias the alias routes name.
				resources = []string{"arn:aws:kms:::key/k1", "arn:aws:kms:::alias/a1", "arn:aws:kms:::alias/a2"}
			}
			actions := append([]string{rt.action}, rt.alsoActions...)
			only := &policyAuthorizer{actions: actions, resources: resources}
			srv = newTestServerWith(t, true, only)
			seedKey(t, srv)
			if code, body := send(srv); code == 403 {
				t.Fatalf("with %s on %s: 403 %s (asked %v)", actions, resources, body, only.asked)
			}
			for _, a := range only.asked {
				name, _, _ := strings.Cut(a, " ")
				if !slices.Contains(actions, name) && name != "kms:DescribeKey" {
					t.Errorf("asked for an action the route does not declare: %s", a)
				}
			}
			// Each declared action is needed: without any one of them the
			// route is refused.
			for i := range actions {
				fewer := slices.Delete(slices.Clone(actions), i, i+1)
				srv = newTestServerWith(t, true, &policyAuthorizer{actions: fewer, resources: resources})
				seedKey(t, srv)
				if code, body := send(srv); code != 403 {
					t.Fatalf("without %s: %d %s", actions[i], code, body)
				}
			}
			// The wrong key is refused for key-scoped routes.
			if rt.keyScoped {
				other := &policyAuthorizer{actions: actions, resources: []string{"arn:aws:kms:::key/k2", "arn:aws:kms:::alias/a1", "arn:aws:kms:::alias/a2"}}
				srv = newTestServerWith(t, true, other)
				seedKey(t, srv)
				if code, body := send(srv); code != 403 {
					t.Fatalf("with %s on key k2 only: %d %s", actions, code, body)
				}
			}
		})
	}
}

// seedKey creates k1 in a server whose authorizer may deny everything, by
// going through its running service directly.
func seedKey(t *testing.T, s *Server) {
	t.Helper()
	svc, release, err := s.opts.Manager.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, err := svc.CreateKey(t.Context(), kms.CreateKeyInput{KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateAlias(t.Context(), "alias/a1", "k1"); err != nil {
		t.Fatal(err)
	}
}
