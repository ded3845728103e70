package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/backend"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/iam"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/sigv4"
)

// trustAll stands in for SigV4 in these unit tests of the handlers (the
// signature path is tested in internal/sigv4 and end to end in e2e/). Its
// Pending stays zero, so every body is read as an unauthenticated one.
type trustAll struct{}

func (trustAll) Begin(*http.Request, *sigv4.Pending) error     { return nil }
func (trustAll) Finish(*sigv4.Pending, []byte) (string, error) { return "root", nil }
func (trustAll) Authenticated(*sigv4.Pending) (string, bool)   { return "root", true }
func (trustAll) FinishHashed(*sigv4.Pending, *[32]byte, int64) (string, error) {
	return "root", nil
}

func newTestServer(t testing.TB, running bool) *Server {
	return newTestServerWith(t, running, iam.New("root", "unused-secret", nil))
}

func newTestServerWith(t testing.TB, running bool, authz Authorizer) *Server {
	t.Helper()
	dir := t.TempDir()
	mgr := lifecycle.New(lifecycle.Options{
		DataDir:  dir,
		Backends: backend.Env{DataDir: dir, Rand: rand.Reader, Now: time.Now},
		Now:      time.Now, Rand: rand.Reader, Day: time.Hour,
	})
	if running {
		if err := mgr.Configure(context.Background(), request(`{"backend_type":"local","default_key_id":"dk"}`)); err != nil {
			t.Fatal(err)
		}
		if err := mgr.Start(context.Background()); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(mgr.Shutdown)
	}
	return New(Options{Manager: mgr, Authenticator: trustAll{}, Authorizer: authz, Metrics: metrics.New(), MetricsAuth: true})
}

func TestRouteTableDeclaresEverything(t *testing.T) {
	s := newTestServer(t, false)
	seen := map[string]bool{}
	for _, rt := range s.routes {
		key := rt.method + " " + rt.path
		if seen[key] {
			t.Errorf("%s registered twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(rt.action, "kms:") || rt.timeout <= 0 || rt.handle == nil {
			t.Errorf("%s: action %q timeout %v", key, rt.action, rt.timeout)
		}
		if (rt.method == "POST" || rt.method == "DELETE") && rt.maxBody <= 0 {
			t.Errorf("%s: no body limit", key)
		}
	}
	// every core route of docs/api.md exists
	for _, want := range []string{
		"POST /kms/configure", "POST /kms/reconfigure", "POST /kms/start", "POST /kms/stop", "GET /kms/status",
		"GET /kms/service-status", "GET /kms/config", "POST /kms/clear-cache", "POST /kms/keys", "GET /kms/keys",
		"GET /kms/keys/{key_id}", "DELETE /kms/keys/delete", "POST /kms/keys/cancel-deletion", "POST /kms/generate-data-key",
		"POST /kms/decrypt", "POST /kms/encrypt",
	} {
		if !seen[want] {
			t.Errorf("missing route %s", want)
		}
	}
}

func doCall(t testing.TB, s *Server, method, path string, body []byte) (*httptest.ResponseRecorder, map[string]any) {
	req := httptest.NewRequest(method, Prefix+path, bytes.NewReader(body))
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
			t.Fatalf("%s %s: response is not JSON: %q", method, path, rec.Body.String())
		}
	}
	return rec, out
}

func TestErrorShape(t *testing.T) {
	s := newTestServer(t, true)
	for _, c := range []struct {
		method, path, body string
		status             int
		code               string
	}{
		{"GET", "/kms/nope", "", 404, "NotFound"},
		{"GET", "/kms/configure", "", 405, "MethodNotAllowed"},
		{"POST", "/kms/keys", "{", 400, "InvalidRequest"},
		{"POST", "/kms/keys", `{"key_id":"a","surprise":1}`, 400, "InvalidRequest"},
		{"GET", "/kms/keys/missing", "", 404, "NotFound"},
		{"POST", "/kms/decrypt", `{"ciphertext_blob":"AQ=="}`, 400, "InvalidCiphertext"},
		{"POST", "/kms/decrypt", `{"ciphertext_blob":"!!"}`, 400, "InvalidRequest"},
		{"POST", "/kms/generate-data-key", `{"key_spec":"AES_512"}`, 400, "InvalidRequest"},
		{"POST", "/kms/configure", `{"backend_type":"local"}`, 409, "Conflict"},
		{"POST", "/kms/keys", string(make([]byte, MaxBody+1)), 413, "RequestTooLarge"},
	} {
		rec, out := doCall(t, s, c.method, c.path, []byte(c.body))
		if rec.Header().Get("X-Request-Id") != out["request_id"] {
			t.Errorf("%s %s: X-Request-Id %q, body request_id %v", c.method, c.path, rec.Header().Get("X-Request-Id"), out["request_id"])
		}
		if rec.Code != c.status || out["code"] != c.code || out["message"] == "" || out["request_id"] == "" {
			t.Errorf("%s %s %.30q: %d %v", c.method, c.path, c.body, rec.Code, out)
		}
	}
}

// FuzzRequestBodies sends arbitrary bytes to every route that reads a body
// and checks that the answer is never a 500 and always well-formed JSON.
func FuzzRequestBodies(f *testing.F) {
	for _, s := range []string{
		`{"key_id":"k","key_spec":"AES_256","encryption_context":{"a":"b"}}`, `{"ciphertext_blob":"AQ==","key_id":"k"}`,
		`{"key_id":"dk","plaintext":"aGVsbG8="}`, `{"KeyUsage":"ENCRYPT_DECRYPT","Tags":{"name":"x"}}`,
		`{"key_id":"dk","pending_window_in_days":7}`, `{"cache_ttl_seconds":10}`, `{"force":true}`, `null`, `[]`, `{"key_id":1}`,
	} {
		f.Add([]byte(s))
	}
	s := newTestServer(f, true)
	var targets []*route
	for _, rt := range s.routes {
		if rt.maxBody > 0 && rt.path != "/kms/stop" && rt.path != "/kms/keys/delete" {
			targets = append(targets, rt)
		}
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, rt := range targets {
			rec, _ := doCall(t, s, rt.method, rt.path, body)
			if rec.Code >= 500 {
				t.Fatalf("%s %s with %q: %d %s", rt.method, rt.path, body, rec.Code, rec.Body.String())
			}
		}
	})
}

// request parses a configure body; the tests' bodies are valid.
func request(body string) *config.Request {
	r, err := config.ParseRequest([]byte(body))
	if err != nil {
		panic(err)
	}
	return r
}
