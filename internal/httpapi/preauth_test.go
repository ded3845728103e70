package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/backend"
	"github.com/keyward/keyward/internal/iam"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/sigv4"
)

const (
	testAK     = "app1"
	testSecret = "app1-secret-key-0123"
)

// newSigV4Server is a running server with the real SigV4 verifier and the
// root user testAK.
func newSigV4Server(t *testing.T, o Options) *Server {
	t.Helper()
	dir := t.TempDir()
	mgr := lifecycle.New(lifecycle.Options{
		DataDir:  dir,
		Backends: backend.Env{DataDir: dir, Rand: rand.Reader, Now: time.Now},
		Now:      time.Now, Rand: rand.Reader, Day: time.Hour,
	})
	if err := mgr.Configure(context.Background(), request(`{"backend_type":"local","default_key_id":"dk"}`)); err != nil {
		t.Fatal(err)
	}
	if err := mgr.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mgr.Shutdown)
	ids := iam.New(testAK, testSecret, nil)
	o.Manager, o.Authenticator, o.Authorizer = mgr, sigv4.New(ids, time.Now, 15*time.Minute), ids
	if o.Metrics == nil {
		o.Metrics = metrics.New()
	}
	return New(o)
}

// countingBody counts the reads of a request body.
type countingBody struct {
	r     io.Reader
	reads atomic.Int32
}

func (b *countingBody) Read(p []byte) (int, error) {
	b.reads.Add(1)
	return b.r.Read(p)
}

func (b *countingBody) Close() error { return nil }

// signed builds a server-side request for testAK with secret. declare:
// signed by the project's Signer, which declares the payload hash in
// x-amz-content-sha256; otherwise signed by the AWS SDK the way KMS clients
// sign, the body's hash covered without the header.
func signed(t *testing.T, method, path string, body []byte, secret string, declare bool) (*http.Request, *countingBody) {
	t.Helper()
	r := httptest.NewRequest(method, "http://keyward.test"+Prefix+path, bytes.NewReader(body))
	if declare {
		(&sigv4.Signer{AccessKey: testAK, SecretKey: secret}).Sign(r, body, time.Now())
	} else {
		sum := sha256.Sum256(body)
		creds := aws.Credentials{AccessKeyID: testAK, SecretAccessKey: secret}
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), "kms", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	cb := &countingBody{r: bytes.NewReader(body)}
	r.Body = cb
	return r, cb
}

// TestNoBodyReadBeforeSignature: a request that declares its payload hash
// and fails its signature is refused without a byte of its body read; a
// valid one is read and served.
func TestNoBodyReadBeforeSignature(t *testing.T) {
	s := newSigV4Server(t, Options{})
	body := []byte(`{"key_id":"dk","key_spec":"AES_256"}`)

	r, cb := signed(t, "POST", "/kms/generate-data-key", body, "wrong-secret", true)
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "SignatureDoesNotMatch") {
		t.Errorf("wrong secret: %d %s", rec.Code, rec.Body.String())
	}
	if n := cb.reads.Load(); n != 0 {
		t.Errorf("the body of a request whose signature failed was read (%d reads)", n)
	}

	// Without a declared hash the signature covers the body's hash: the
	// body is read first (from the budget for unauthenticated bodies).
	r, cb = signed(t, "POST", "/kms/generate-data-key", body, "wrong-secret", false)
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "SignatureDoesNotMatch") || cb.reads.Load() == 0 {
		t.Errorf("wrong secret, no declared hash: %d (%d reads) %s", rec.Code, cb.reads.Load(), rec.Body.String())
	}

	for _, declare := range []bool{true, false} {
		r, cb = signed(t, "POST", "/kms/generate-data-key", body, testSecret, declare)
		rec = httptest.NewRecorder()
		s.ServeHTTP(rec, r)
		if rec.Code != 200 || cb.reads.Load() == 0 {
			t.Errorf("valid request (hash declared: %v): %d (%d reads) %s", declare, rec.Code, cb.reads.Load(), rec.Body.String())
		}
	}

	// Tampered body, valid signature over the declared hash: read, then
	// refused.
	r, _ = signed(t, "POST", "/kms/generate-data-key", body, testSecret, true)
	r.Body = io.NopCloser(strings.NewReader(strings.Replace(string(body), "256", "128", 1)))
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, r)
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "SignatureDoesNotMatch") {
		t.Errorf("body changed after signing: %d %s", rec.Code, rec.Body.String())
	}
}

// TestUnauthenticatedBodyBudget: bodies read before authentication (all
// of them with trustAll, whose check never begins) reserve their size from
// the budget, are refused with 503 when it is spent, and give it back
// however their request ends.
func TestUnauthenticatedBodyBudget(t *testing.T) {
	m := metrics.New()
	running := newTestServer(t, true)
	s := New(Options{Manager: running.opts.Manager, Authenticator: trustAll{}, Authorizer: running.opts.Authorizer, Metrics: m, UnauthenticatedBodyBytes: 100})
	body := []byte(`{"key_id":"dk","key_spec":"AES_256"}`) // 36 bytes

	// One request holds 80 bytes while its body trickles in.
	pr, pw := io.Pipe()
	slow := httptest.NewRequest("POST", Prefix+"/kms/generate-data-key", pr)
	slow.ContentLength = 80
	var wg sync.WaitGroup
	wg.Add(1)
	slowRec := httptest.NewRecorder()
	go func() { defer wg.Done(); s.ServeHTTP(slowRec, slow) }()
	for s.bodies.used.Load() != 80 {
		time.Sleep(time.Millisecond) // until the slow request has reserved
	}

	rec, out := doCall(t, s, "POST", "/kms/generate-data-key", body)
	if rec.Code != 503 || out["code"] != "ServiceUnavailable" || rec.Header().Get("Retry-After") == "" {
		t.Errorf("36 bytes with 20 left: %d %v %v", rec.Code, out, rec.Header())
	}
	chunked := httptest.NewRequest("POST", Prefix+"/kms/generate-data-key", io.NopCloser(bytes.NewReader(body)))
	chunked.ContentLength = -1 // reserves the route limit
	rec = httptest.NewRecorder()
	s.ServeHTTP(rec, chunked)
	if rec.Code != 503 {
		t.Errorf("a body of unknown length with 20 bytes left: %d %s", rec.Code, rec.Body.String())
	}
	small := []byte(`{"key_id":"dk"}`) // 15 bytes: fits
	if rec, _ := doCall(t, s, "POST", "/kms/generate-data-key", small); rec.Code != 200 {
		t.Errorf("15 bytes with 20 left: %d %s", rec.Code, rec.Body.String())
	}

	// The slow body fails half way: its reservation comes back.
	pw.Write(bytes.Repeat([]byte(" "), 40))
	pw.CloseWithError(errors.New("connection reset"))
	wg.Wait()
	if slowRec.Code != 400 {
		t.Errorf("a body that failed to arrive: %d %s", slowRec.Code, slowRec.Body.String())
	}
	if got := s.bodies.used.Load(); got != 0 {
		t.Errorf("%d bytes still reserved after every request ended", got)
	}
	if rec, _ := doCall(t, s, "POST", "/kms/generate-data-key", body); rec.Code != 200 {
		t.Errorf("after the budget came back: %d %s", rec.Code, rec.Body.String())
	}
	rec = httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	for _, want := range []string{"keyward_http_unauthenticated_body_refusals_total 2", "keyward_http_unauthenticated_body_bytes 0"} {
		if !strings.Contains(rec.Body.String(), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// TestAuditClaimedAccessKey: a request whose authentication fails is
// audited with the access key it claimed; one that names none with "".
func TestAuditClaimedAccessKey(t *testing.T) {
	var buf syncBuffer
	aud := audit.New(&buf, 0, nil)
	s := newSigV4Server(t, Options{Audit: aud})
	body := []byte(`{"key_id":"dk"}`)
	r, _ := signed(t, "POST", "/kms/generate-data-key", body, "wrong-secret", true)
	s.ServeHTTP(httptest.NewRecorder(), r)
	s.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", Prefix+"/kms/status", nil))
	r, _ = signed(t, "POST", "/kms/generate-data-key", body, testSecret, true)
	s.ServeHTTP(httptest.NewRecorder(), r)
	aud.Close()

	type line struct {
		AccessKey string `json:"access_key"`
		Code      string `json:"code"`
		Status    int    `json:"status"`
	}
	var lines []line
	for _, l := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		var e line
		if err := json.Unmarshal([]byte(l), &e); err != nil {
			t.Fatalf("audit line %q: %v", l, err)
		}
		lines = append(lines, e)
	}
	if len(lines) != 3 {
		t.Fatalf("%d audit lines, want 3:\n%s", len(lines), buf.String())
	}
	if l := lines[0]; l.AccessKey != testAK || l.Code != "SignatureDoesNotMatch" || l.Status != 401 {
		t.Errorf("wrong secret: %+v", l)
	}
	if l := lines[1]; l.AccessKey != "" || l.Code != "AccessDenied" {
		t.Errorf("unsigned: %+v", l)
	}
	if l := lines[2]; l.AccessKey != testAK || l.Code != "" || l.Status != 200 {
		t.Errorf("valid: %+v", l)
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
