package e2e

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// adminPrefix is where the admin routes live.
const adminPrefix = "/rustfs/admin/v3"

// client signs every request with the AWS SDK for Go v2 SigV4 signer.
type client struct {
	t     testing.TB
	base  string
	hc    *http.Client
	creds aws.Credentials
}

// client returns a root client bound to t.
func (s *server) client(t testing.TB) *client {
	return &client{
		t:     t,
		base:  s.URL,
		hc:    &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 16}},
		creds: aws.Credentials{AccessKeyID: s.AccessKey, SecretAccessKey: s.SecretKey},
	}
}

// reqConfig is how one request is built and signed.
type reqConfig struct {
	service, region string
	at              time.Time
	creds           *aws.Credentials
	unsignedPayload bool
	payloadHash     string // signed and sent instead of the body's hash
	noPayloadHeader bool   // sign the payload hash without sending x-amz-content-sha256
	presign         bool
	noSign          bool
	streamBody      bool // send the body chunked (unknown length)
	beforeSign      func(*http.Request)
	afterSign       func(*http.Request)
}

type reqOption func(*reqConfig)

func withService(s string) reqOption { return func(c *reqConfig) { c.service = s } }
func withRegion(r string) reqOption  { return func(c *reqConfig) { c.region = r } }
func withTime(t time.Time) reqOption { return func(c *reqConfig) { c.at = t } }
func withCreds(ak, sk string) reqOption {
	return func(c *reqConfig) { c.creds = &aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk} }
}
func withUnsignedPayload() reqOption                { return func(c *reqConfig) { c.unsignedPayload = true } }
func withPayloadHash(h string) reqOption            { return func(c *reqConfig) { c.payloadHash = h } }
func withoutPayloadHeader() reqOption               { return func(c *reqConfig) { c.noPayloadHeader = true } }
func withPresign() reqOption                        { return func(c *reqConfig) { c.presign = true } }
func withoutSignature() reqOption                   { return func(c *reqConfig) { c.noSign = true } }
func withStreamedBody() reqOption                   { return func(c *reqConfig) { c.streamBody = true } }
func withAfterSign(f func(*http.Request)) reqOption { return func(c *reqConfig) { c.afterSign = f } }

// withBeforeSign changes the request before it is signed (headers added
// there are signed).
func withBeforeSign(f func(*http.Request)) reqOption { return func(c *reqConfig) { c.beforeSign = f } }

// response is what came back. Raw is the body as far as it could be read.
type response struct {
	Status int
	Header http.Header
	Raw    []byte
	JSON   map[string]any
}

// encodeBody turns a body argument into bytes: nil is no body; []byte,
// string and json.RawMessage are sent verbatim; anything else is JSON.
func encodeBody(body any) ([]byte, error) {
	switch b := body.(type) {
	case nil:
		return nil, nil
	case []byte:
		return b, nil
	case string:
		return []byte(b), nil
	case json.RawMessage:
		return b, nil
	}
	return json.Marshal(body)
}

func hexSHA256(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// send performs one request to base+fullPath (fullPath may carry a query).
// It never calls t.Fatal, so goroutines may use it. A non-nil response with
// a non-nil error means the headers arrived but the body did not complete.
func (c *client) send(method, fullPath string, body any, opts ...reqOption) (*response, error) {
	cfg := reqConfig{service: "s3", region: "us-east-1", at: time.Now().UTC()}
	for _, o := range opts {
		o(&cfg)
	}
	data, err := encodeBody(body)
	if err != nil {
		return nil, err
	}
	var rd io.Reader = bytes.NewReader(data)
	if data == nil {
		rd = nil
	}
	req, err := http.NewRequest(method, c.base+fullPath, rd)
	if err != nil {
		return nil, err
	}
	if cfg.streamBody {
		req.Body = io.NopCloser(bytes.NewReader(data))
		req.ContentLength = -1
		req.GetBody = nil
	}
	req.Header.Set("Content-Type", "application/json")
	if cfg.beforeSign != nil {
		cfg.beforeSign(req)
	}
	creds := c.creds
	if cfg.creds != nil {
		creds = *cfg.creds
	}
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = cfg.service == "s3" })
	switch {
	case cfg.noSign:
	case cfg.presign:
		q := req.URL.Query()
		q.Set("X-Amz-Expires", "300")
		req.URL.RawQuery = q.Encode()
		u, hdr, err := signer.PresignHTTP(context.Background(), creds, req, "UNSIGNED-PAYLOAD", cfg.service, cfg.region, cfg.at)
		if err != nil {
			return nil, err
		}
		pr, err := http.NewRequest(method, u, rd)
		if err != nil {
			return nil, err
		}
		for k, vs := range hdr {
			if !strings.EqualFold(k, "Host") {
				pr.Header[k] = vs
			}
		}
		req = pr
	default:
		hash := hexSHA256(data)
		switch {
		case cfg.unsignedPayload:
			hash = "UNSIGNED-PAYLOAD"
		case cfg.payloadHash != "":
			hash = cfg.payloadHash
		}
		if !cfg.noPayloadHeader {
			req.Header.Set("X-Amz-Content-Sha256", hash)
		}
		if err := signer.SignHTTP(context.Background(), creds, req, hash, cfg.service, cfg.region, cfg.at); err != nil {
			return nil, err
		}
	}
	if cfg.afterSign != nil {
		cfg.afterSign(req)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := &response{Status: resp.StatusCode, Header: resp.Header}
	out.Raw, err = io.ReadAll(resp.Body)
	if len(out.Raw) > 0 {
		var m map[string]any
		if json.Unmarshal(out.Raw, &m) == nil {
			out.JSON = m
		}
	}
	if err != nil {
		return out, fmt.Errorf("reading the response body: %w", err)
	}
	return out, nil
}

// do sends a request to an admin route (path relative to adminPrefix) and
// fails the test on a transport error.
func (c *client) do(method, path string, body any, opts ...reqOption) (int, map[string]any, []byte) {
	c.t.Helper()
	return c.doAbs(method, adminPrefix+path, body, opts...)
}

// doAbs is do with a path relative to the server root.
func (c *client) doAbs(method, fullPath string, body any, opts ...reqOption) (int, map[string]any, []byte) {
	c.t.Helper()
	r, err := c.send(method, fullPath, body, opts...)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, fullPath, err)
	}
	return r.Status, r.JSON, r.Raw
}

// --- assertions ---

// wantError checks an error answer: the status, the code, and a JSON body
// with non-empty code, message and request_id (docs/api.md, "Errors").
func wantError(t testing.TB, what string, status int, raw []byte, wantStatus int, wantCode ...string) bool {
	t.Helper()
	var body struct {
		Code      *string `json:"code"`
		Message   *string `json:"message"`
		RequestID *string `json:"request_id"`
	}
	if err := json.Unmarshal(raw, &body); err != nil {
		t.Errorf("%s: want %d %v with a JSON error body; got %d, body %q", what, wantStatus, wantCode, status, short(raw))
		return false
	}
	ok := true
	code := ""
	if body.Code != nil {
		code = *body.Code
	}
	if status != wantStatus || !contains(wantCode, code) {
		t.Errorf("%s: want %d %s; got %d %q (body %s)", what, wantStatus, strings.Join(wantCode, "|"), status, code, short(raw))
		ok = false
	}
	if body.Code == nil || *body.Code == "" || body.Message == nil || *body.Message == "" || body.RequestID == nil || *body.RequestID == "" {
		t.Errorf("%s: error body lacks a non-empty code, message or request_id: %s", what, short(raw))
		ok = false
	}
	return ok
}

// wantStatus checks a success status and reports the body otherwise.
func wantStatus(t testing.TB, what string, status int, raw []byte, want int) bool {
	t.Helper()
	if status != want {
		t.Errorf("%s: want %d; got %d: %s", what, want, status, short(raw))
		return false
	}
	return true
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func short(b []byte) string {
	const max = 600
	if len(b) > max {
		return string(b[:max]) + "..."
	}
	return string(b)
}

// str reads a string field of a JSON object ("" when absent or not a string).
func str(m map[string]any, k string) string {
	s, _ := m[k].(string)
	return s
}

// obj reads an object field of a JSON object.
func obj(m map[string]any, k string) map[string]any {
	o, _ := m[k].(map[string]any)
	return o
}

// num reads a number field (-1 when absent or not a number).
func num(m map[string]any, k string) float64 {
	if f, ok := m[k].(float64); ok {
		return f
	}
	return -1
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func unb64(t testing.TB, what, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Errorf("%s: %q is not standard base64: %v", what, s, err)
	}
	return b
}

// --- flows ---

// configureLocal configures the local backend (key_dir absolute) and checks
// the answer (docs/api.md, "POST /kms/configure"). extra fields are merged
// into the body.
func configureLocal(t testing.TB, c *client, keyDir, masterKey string, extra map[string]any) {
	t.Helper()
	body := map[string]any{"backend_type": "local", "key_dir": keyDir}
	if masterKey != "" {
		body["master_key"] = masterKey
	}
	for k, v := range extra {
		body[k] = v
	}
	st, m, raw := c.do("POST", "/kms/configure", body)
	if !wantStatus(t, "configure", st, raw, 200) {
		t.FailNow()
	}
	if m["success"] != true || str(m, "status") != "Configured" || str(m, "message") == "" {
		t.Errorf("configure: want {success:true, message, status:Configured}; got %s", short(raw))
	}
}

// startKMS starts the configured service.
func startKMS(t testing.TB, c *client) {
	t.Helper()
	st, m, raw := c.do("POST", "/kms/start", nil)
	if !wantStatus(t, "start", st, raw, 200) {
		t.FailNow()
	}
	if m["success"] != true || str(m, "status") != "Running" {
		t.Errorf("start: want {success:true, status:Running}; got %s", short(raw))
	}
}

// createKey creates a key with the given id and fails the test otherwise.
func createKey(t testing.TB, c *client, id string) map[string]any {
	t.Helper()
	st, m, raw := c.do("POST", "/kms/keys", map[string]any{"key_id": id, "description": "e2e key " + id})
	if !wantStatus(t, "create key "+id, st, raw, 200) {
		t.FailNow()
	}
	return m
}

// dataKey is a generate-data-key answer.
type dataKey struct {
	KeyID     string
	Plaintext []byte
	Blob      string // base64
}

// generate asks for a data key; keyID "" means the default key.
func generate(t testing.TB, c *client, keyID string, encCtx map[string]string) dataKey {
	t.Helper()
	body := map[string]any{"key_spec": "AES_256"}
	if keyID != "" {
		body["key_id"] = keyID
	}
	if encCtx != nil {
		body["encryption_context"] = encCtx
	}
	st, m, raw := c.do("POST", "/kms/generate-data-key", body)
	if !wantStatus(t, "generate-data-key "+keyID, st, raw, 200) {
		t.FailNow()
	}
	return dataKey{KeyID: str(m, "key_id"), Plaintext: unb64(t, "plaintext_key", str(m, "plaintext_key")), Blob: str(m, "ciphertext_blob")}
}

// decrypt opens a blob and returns (status, plaintext, raw body).
func decrypt(t testing.TB, c *client, blob string, encCtx map[string]string) (int, []byte, []byte) {
	t.Helper()
	body := map[string]any{"ciphertext_blob": blob}
	if encCtx != nil {
		body["encryption_context"] = encCtx
	}
	st, m, raw := c.do("POST", "/kms/decrypt", body)
	if st != 200 {
		return st, nil, raw
	}
	return st, unb64(t, "plaintext", str(m, "plaintext")), raw
}

// describe returns (status, key_metadata, raw).
func describe(t testing.TB, c *client, id string) (int, map[string]any, []byte) {
	t.Helper()
	st, m, raw := c.do("GET", "/kms/keys/"+id, nil)
	return st, obj(m, "key_metadata"), raw
}

// listAll walks GET /kms/keys with the given page size and returns every id
// (in order) and every unreadable id reported.
func listAll(t testing.TB, c *client, limit int) (ids, unreadable []string) {
	t.Helper()
	marker := ""
	for page := 0; page < 10000; page++ {
		path := "/kms/keys?limit=" + strconv.Itoa(limit)
		if marker != "" {
			path += "&marker=" + url.QueryEscape(marker)
		}
		st, m, raw := c.do("GET", path, nil)
		if !wantStatus(t, "list "+path, st, raw, 200) {
			t.FailNow()
		}
		keys, _ := m["keys"].([]any)
		for _, k := range keys {
			ids = append(ids, str(k.(map[string]any), "key_id"))
		}
		if u, ok := m["unreadable_key_ids"].([]any); ok {
			for _, id := range u {
				s, _ := id.(string)
				unreadable = append(unreadable, s)
			}
		}
		if m["truncated"] != true {
			return ids, unreadable
		}
		marker = str(m, "next_marker")
		if marker == "" {
			t.Fatalf("list %s: truncated without a next_marker: %s", path, short(raw))
		}
	}
	t.Fatalf("listing did not end")
	return nil, nil
}
