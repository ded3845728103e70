package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/backend"
	"github.com/keyward/keyward/internal/iam"
	"github.com/keyward/keyward/internal/kesid"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
)

// kesTestServer is a running local service with the KES API on, and the
// TLS state of a client whose identity may do everything ("admin") or
// nothing but describe itself ("none").
type kesTestServer struct {
	*Server
	admin, none, unknown *tls.ConnectionState
}

func newKESTestServer(t testing.TB) *kesTestServer {
	t.Helper()
	dir := t.TempDir()
	mgr := lifecycle.New(lifecycle.Options{DataDir: dir, Backends: backend.Env{DataDir: dir, Rand: rand.Reader, Now: time.Now},
		Now: time.Now, Rand: rand.Reader, Day: time.Hour})
	if err := mgr.Configure(context.Background(), request(`{"backend_type":"local","default_key_id":"dk"}`)); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Shutdown)
	state := func() (*tls.ConnectionState, string) {
		k, _ := kesid.GenerateAPIKey(nil)
		c, err := k.Certificate(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &tls.ConnectionState{PeerCertificates: []*x509.Certificate{c.Leaf}}, k.Identity()
	}
	s := &kesTestServer{}
	var adminID, noneID string
	s.admin, adminID = state()
	s.none, noneID = state()
	s.unknown, _ = state()
	ids := iam.New("root", "unused-secret", nil)
	path := filepath.Join(dir, "iam.json")
	os.WriteFile(path, []byte(`{"identities": [{"identity": "`+adminID+`", "policies": ["consoleAdmin"]}, {"identity": "`+noneID+`"}]}`), 0o600)
	if err := ids.LoadFile(path, nil); err != nil {
		t.Fatal(err)
	}
	s.Server = New(Options{Manager: mgr, Authenticator: trustAll{}, Authorizer: ids, Metrics: metrics.New(), MetricsAuth: true,
		KES: &KESOptions{Identities: ids, Version: "test", Started: time.Now(), PageSize: 2}})
	return s
}

func (s *kesTestServer) do(t testing.TB, state *tls.ConnectionState, method, path, body string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.TLS = state
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	return rec
}

// Every route of docs/kes-api.md is in the KES route table, with a timeout
// and an action where it names a key.
func TestKESRouteTable(t *testing.T) {
	s := newKESTestServer(t)
	seen := map[string]bool{}
	for _, rt := range s.kesRouteTable {
		seen[rt.method+" "+rt.path] = true
		if rt.timeout <= 0 || rt.handle == nil || rt.keyScoped != strings.HasPrefix(rt.path, "/v1/key/") || (rt.keyScoped && !strings.HasPrefix(rt.action, "kms:")) {
			t.Errorf("%s %s: %+v", rt.method, rt.path, rt)
		}
	}
	for _, want := range []string{"GET /version", "GET /v1/ready", "GET /v1/status", "GET /v1/api", "GET /v1/metrics",
		"GET /v1/identity/self/describe", "POST /v1/key/create/{name}", "POST /v1/key/import/{name}", "GET /v1/key/describe/{name}",
		"GET /v1/key/list/{prefix...}", "GET /v1/key/list", "DELETE /v1/key/delete/{name}", "POST /v1/key/generate/{name}",
		"POST /v1/key/encrypt/{name}", "POST /v1/key/decrypt/{name}"} {
		if !seen[want] {
			t.Errorf("missing KES route %s", want)
		}
	}
	// Without KES options, none of it is served.
	off := newTestServer(t, false)
	rec := httptest.NewRecorder()
	off.ServeHTTP(rec, httptest.NewRequest("GET", "/v1/status", nil))
	if rec.Code != 404 || len(off.kesRouteTable) != 0 {
		t.Errorf("KES off: %d", rec.Code)
	}
}

// KES's error values, byte for byte, and the admin API's statuses for the
// rest; nothing unmapped is a 500 but a bug.
func TestKESErrors(t *testing.T) {
	s := newKESTestServer(t)
	for _, c := range []struct {
		err    error
		status int
		body   string
	}{
		{errKESUnknownIdentity, 403, `{"message":"not authorized: insufficient permissions"}`},
		{errAccessDenied, 403, `{"message":"not authorized: insufficient permissions"}`},
		{kms.ErrNotFound, 404, `{"message":"key does not exist"}`},
		{errors.Join(errors.New("x"), kms.ErrExists), 400, `{"message":"key already exists"}`},
		{kms.ErrInvalidCiphertext, 400, `{"message":"decryption failed: ciphertext is not authentic"}`},
		{errKESNotServed, 501, `{"message":"not implemented: Keyward does not serve this KES API (see docs/kes-api.md)"}`},
		{kms.ErrInvalidKeyState, 409, `{"message":"invalid key state"}`},
		{errMissing("ciphertext"), 400, `{"message":"invalid request: ciphertext is required"}`},
		{kms.ErrUnavailable, 503, `{"message":"service unavailable"}`},
		{errTooLarge, 413, `{"message":"request body larger than the limit"}`},
		{errors.New("a bug with a secret in it"), 500, `{"message":"internal error (request r1; details in the server log)"}`},
	} {
		rec := httptest.NewRecorder()
		s.writeKESError(rec, httptest.NewRequest("GET", "/v1/status", nil), "r1", c.err)
		if rec.Code != c.status || rec.Body.String() != c.body+"\n" || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%v: %d %q", c.err, rec.Code, rec.Body.String())
		}
	}
}

func TestKESRouting(t *testing.T) {
	s := newKESTestServer(t)
	for _, st := range []*tls.ConnectionState{nil, {}, s.unknown} {
		if rec := s.do(t, st, "GET", "/version", ""); rec.Code != 403 {
			t.Errorf("identity %v: %d", st, rec.Code)
		}
	}
	if rec := s.do(t, s.none, "GET", "/v1/identity/self/describe", ""); rec.Code != 200 || !strings.Contains(rec.Body.String(), `"policy":""`) {
		t.Errorf("self describe without policies: %d %s", rec.Code, rec.Body)
	}
	if rec := s.do(t, s.none, "POST", "/v1/key/generate/dk", "{}"); rec.Code != 403 {
		t.Errorf("generate without rights: %d", rec.Code)
	}
	if rec := s.do(t, s.admin, "PUT", "/v1/key/generate/dk", "{}"); rec.Code != 405 || rec.Header().Get("Allow") != "POST" {
		t.Errorf("PUT generate: %d %v", rec.Code, rec.Header())
	}
	if rec := s.do(t, s.admin, "GET", "/v1/enclave/list/*", ""); rec.Code != 501 {
		t.Errorf("enclaves: %d", rec.Code)
	}
	// The admin API's routes are untouched by the KES ones.
	if rec := s.do(t, nil, "GET", Prefix+"/kms/keys/dk", ""); rec.Code != 200 {
		t.Errorf("admin describe: %d %s", rec.Code, rec.Body)
	}
	// A body on a body-less route is ignored, as KES does.
	if rec := s.do(t, s.admin, "POST", "/v1/key/create/k-body", strings.Repeat("x", 2<<20)); rec.Code != 200 {
		t.Errorf("create with a body: %d %s", rec.Code, rec.Body)
	}
	// A body over the limit is refused before it is parsed.
	if rec := s.do(t, s.admin, "POST", "/v1/key/encrypt/dk", strings.Repeat("x", MaxBody+1)); rec.Code != 413 {
		t.Errorf("huge body: %d", rec.Code)
	}
	// Listing pages: two names each, continue_at resumes the listing.
	for _, id := range []string{"l-1", "l-2", "l-3"} {
		s.do(t, s.admin, "POST", "/v1/key/create/"+id, "")
	}
	rec := s.do(t, s.admin, "GET", "/v1/key/list/l-", "")
	if rec.Body.String() != `{"names":["l-1","l-2"],"continue_at":"l-:l-2"}`+"\n" {
		t.Errorf("first page: %s", rec.Body)
	}
	rec = s.do(t, s.admin, "GET", "/v1/key/list/l-:l-2", "")
	if rec.Body.String() != `{"names":["l-3"]}`+"\n" {
		t.Errorf("second page: %s", rec.Body)
	}
	rec = s.do(t, s.admin, "GET", "/v1/key/list/no%20such*", "")
	if rec.Body.String() != `{"names":[]}`+"\n" {
		t.Errorf("impossible prefix: %s", rec.Body)
	}
}

// A KES context is bound exactly as the admin API's encryption context
// {"kes:context": base64(context)}.
func TestKESContextBinding(t *testing.T) {
	s := newKESTestServer(t)
	kesCtx := []byte("ctx\x00\xff")
	rec := s.do(t, s.admin, "POST", "/v1/key/generate/dk", `{"context":"`+base64.StdEncoding.EncodeToString(kesCtx)+`"}`)
	var dek struct{ Plaintext, Ciphertext []byte }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &dek) != nil {
		t.Fatalf("generate: %d %s", rec.Code, rec.Body)
	}
	svc, release, _ := s.opts.Manager.Acquire()
	defer release()
	_, pt, err := svc.Decrypt(context.Background(), dek.Ciphertext, map[string]string{"kes:context": base64.StdEncoding.EncodeToString(kesCtx)}, "dk")
	if err != nil || !bytes.Equal(pt, dek.Plaintext) {
		t.Errorf("the admin door's decrypt: %v", err)
	}
	if m, _ := kesEncryptionContext(nil); m != nil {
		t.Error("no context is not the empty encryption context")
	}
	if _, err := kesEncryptionContext(make([]byte, maxKESContext)); err != nil {
		t.Errorf("largest context refused: %v", err)
	}
	if _, err := kesEncryptionContext(make([]byte, maxKESContext+1)); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Errorf("too large a context: %v", err)
	}
	if _, _, err := svc.Decrypt(context.Background(), dek.Ciphertext, map[string]string{"kes:context": base64.StdEncoding.EncodeToString(kesCtx) + "x"}, "dk"); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Errorf("another context opened the blob: %v", err)
	}
}

// The parsers of KES request bodies and listing arguments never panic,
// refuse with ErrInvalidRequest, and never quote a plaintext.
func FuzzKESRequests(f *testing.F) {
	for _, s := range []string{`{}`, `{"context":"AAE="}`, `{"plaintext":"c2VjcmV0","context":"eA=="}`, `{"ciphertext":"AQJrMQ==","context":null}`,
		`{"plaintext":"!!"}`, `{"context":"AAE=","context":"AAE="}`, `[`, `{"x":1}`, `"str"`, ``} {
		f.Add([]byte(s), "pre-*")
	}
	f.Add([]byte(`{}`), "a-:a-1")
	f.Add([]byte(`{}`), ":x")
	f.Add([]byte(`{}`), "a:b:c")
	f.Fuzz(func(t *testing.T, body []byte, listing string) {
		check := func(what string, err error) {
			if err != nil && !errors.Is(err, kms.ErrInvalidRequest) {
				t.Fatalf("%s: %v does not wrap ErrInvalidRequest", what, err)
			}
		}
		_, err := parseKESGenerate(body)
		check("generate", err)
		req, err := parseKESEncrypt(body)
		check("encrypt", err)
		if err != nil && len(req.Plaintext) != 0 {
			t.Fatal("a refused encrypt body kept its plaintext")
		}
		if err != nil && len(body) > 20 && bytes.Contains([]byte(err.Error()), body) {
			t.Fatalf("error quotes the body: %v", err)
		}
		d, err := parseKESDecrypt(body)
		check("decrypt", err)
		if err == nil {
			if _, err := kesEncryptionContext(d.Context); err != nil {
				check("context", err)
			}
		}
		prefix, after, err := parseKESListing(listing)
		check("listing", err)
		if err == nil && after != "" && (!strings.HasPrefix(after, prefix) || kms.ValidateKeyID(after) != nil) {
			t.Fatalf("listing %q: prefix %q after %q", listing, prefix, after)
		}
	})
}

// The KES hot path in process, as BenchmarkGenerateDataKey and
// BenchmarkDecrypt measure the admin one (no network, no TLS handshake: the
// identity comes from the connection state).
func BenchmarkKESGenerate(b *testing.B) {
	s := newKESTestServer(b)
	body := `{"context":"eyJidWNrZXQiOiJiIiwib2JqZWN0IjoibyJ9"}`
	b.ReportAllocs()
	for b.Loop() {
		if rec := s.do(b, s.admin, "POST", "/v1/key/generate/dk", body); rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

func BenchmarkKESDecrypt(b *testing.B) {
	s := newKESTestServer(b)
	ctx := `"context":"eyJidWNrZXQiOiJiIiwib2JqZWN0IjoibyJ9"`
	rec := s.do(b, s.admin, "POST", "/v1/key/generate/dk", "{"+ctx+"}")
	var dek struct{ Ciphertext []byte }
	if rec.Code != 200 || json.Unmarshal(rec.Body.Bytes(), &dek) != nil {
		b.Fatal(rec.Body.String())
	}
	body := `{"ciphertext":"` + base64.StdEncoding.EncodeToString(dek.Ciphertext) + `",` + ctx + `}`
	b.ReportAllocs()
	for b.Loop() {
		if rec := s.do(b, s.admin, "POST", "/v1/key/decrypt/dk", body); rec.Code != http.StatusOK {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// Every front door classifies errors in one place (classify): an error
// with a private cause answers its public half only, on each door, and
// the cause reaches the operator's log at Warn.
func TestPrivateDetailOnEveryDoor(t *testing.T) {
	s := newKESTestServer(t)
	var logged bytes.Buffer
	s.opts.Log = slog.New(slog.NewTextHandler(&logged, &slog.HandlerOptions{Level: slog.LevelDebug}))
	err := kms.WithPrivateCause(kms.ErrConflict, "the key directory cannot be used", errors.New("open /srv/keys/secret-path: permission denied"))
	for name, write := range map[string]func(*httptest.ResponseRecorder, *http.Request){
		"admin": func(w *httptest.ResponseRecorder, r *http.Request) { s.writeError(w, r, "r1", err) },
		"aws":   func(w *httptest.ResponseRecorder, r *http.Request) { s.writeAWSError(w, r, "r1", err) },
		"kes":   func(w *httptest.ResponseRecorder, r *http.Request) { s.writeKESError(w, r, "r1", err) },
	} {
		logged.Reset()
		rec := httptest.NewRecorder()
		write(rec, httptest.NewRequest("POST", "/", nil))
		if rec.Code/100 != 4 || strings.Contains(rec.Body.String(), "secret-path") {
			t.Errorf("%s: %d %s", name, rec.Code, rec.Body)
		}
		if log := logged.String(); !strings.Contains(log, "level=WARN") || !strings.Contains(log, "secret-path") {
			t.Errorf("%s: the private cause is not in the log at Warn:\n%s", name, log)
		}
	}
}
