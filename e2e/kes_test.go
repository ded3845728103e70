package e2e

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/certs"
	"github.com/keyward/keyward/internal/kesid"
)

// The KES API (docs/kes-api.md), driven with raw HTTP over TLS with client
// certificates, so that the exact bytes of answers and errors are checked
// (interop/kes drives the same routes with the real KES client library).

const kesNotAllowed = `{"message":"not authorized: insufficient permissions"}` + "\n"

// kesClient talks to the KES API with one client certificate (none when
// cert is nil).
type kesClient struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func newKESClient(t *testing.T, srv *server, pool *x509.CertPool, cert *tls.Certificate) *kesClient {
	cfg := &tls.Config{RootCAs: pool}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	return &kesClient{t: t, base: srv.URL, hc: &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}}
}

// do sends a request; body is JSON-encoded unless nil.
func (k *kesClient) do(method, path string, body any) (int, http.Header, []byte) {
	k.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			k.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, k.base+path, rd)
	if err != nil {
		k.t.Fatal(err)
	}
	resp, err := k.hc.Do(req)
	if err != nil {
		k.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		k.t.Fatal(err)
	}
	return resp.StatusCode, resp.Header, raw
}

// wantKESError checks a KES error answer byte for byte.
func (k *kesClient) wantKESError(what string, st int, hdr http.Header, raw []byte, wantStatus int, wantBody string) {
	k.t.Helper()
	if st != wantStatus || string(raw) != wantBody || hdr.Get("Content-Type") != "application/json" {
		k.t.Errorf("%s: got %d %q (%s), want %d %q (application/json)", what, st, raw, hdr.Get("Content-Type"), wantStatus, wantBody)
	}
}

func kesMsg(m string) string { return `{"message":"` + m + `"}` + "\n" }

// kesFixture is one TLS server with three identities in its IAM file (and
// clients for them, for an unknown identity and for no certificate).
type kesFixture struct {
	srv                     *server
	pool                    *x509.CertPool
	admin, narrow, stranger *kesClient
	adminID, narrowID       string
	anonymous               *kesClient
	fromFiles               *kesClient // key and certificate files from keyward identity new
	fileID                  string
	auditPath               string
}

func newKESFixture(t *testing.T) *kesFixture {
	dir := t.TempDir()
	pki, err := certs.NewTestPKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	// A certificate identity made by the CLI, as an operator would for a
	// client that takes a key file and a certificate file.
	certFile, keyFile := filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	out, err := exec.Command(keywardBin, "identity", "new", "--key", keyFile, "--cert", certFile).Output()
	if err != nil {
		t.Fatalf("keyward identity new: %v", err)
	}
	fileID, ok := strings.CutPrefix(strings.Split(string(out), "\n")[1], "Identity: ")
	if !ok || len(fileID) != 64 {
		t.Fatalf("keyward identity new printed %q", out)
	}
	adminKey, _ := kesid.GenerateAPIKey(nil)
	narrowKey, _ := kesid.GenerateAPIKey(nil)
	strangerKey, _ := kesid.GenerateAPIKey(nil)
	iam := `{"identities": [
	  {"identity": "` + adminKey.Identity() + `", "policies": ["consoleAdmin"]},
	  {"identity": "` + narrowKey.Identity() + `", "policies": ["app-only"]},
	  {"identity": "` + fileID + `", "policies": ["KMSKeyUser"]}],
	 "policies": {"app-only": {"Statement": [{"Effect": "Allow",
	   "Action": ["kms:GenerateDataKey", "kms:Decrypt", "kms:DescribeKey", "kms:ListKeys"],
	   "Resource": "arn:aws:kms:::key/app-*"}]}}}`
	iamPath := filepath.Join(dir, "iam.json")
	if err := os.WriteFile(iamPath, []byte(iam), 0o600); err != nil {
		t.Fatal(err)
	}
	f := &kesFixture{auditPath: filepath.Join(dir, "audit.log"), adminID: adminKey.Identity(), narrowID: narrowKey.Identity()}
	f.srv = startServer(t, serverOpts{Args: []string{"--dev", "--tls-cert", pki.CertFile, "--tls-key", pki.KeyFile,
		"--iam-file", iamPath, "--kes-page-size", "2", "--audit-log", f.auditPath}})
	f.pool = x509.NewCertPool()
	f.pool.AddCert(pki.CA)
	cert := func(k *kesid.APIKey) *tls.Certificate {
		c, err := k.Certificate(nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		return &c
	}
	f.admin = newKESClient(t, f.srv, f.pool, cert(adminKey))
	f.narrow = newKESClient(t, f.srv, f.pool, cert(narrowKey))
	f.stranger = newKESClient(t, f.srv, f.pool, cert(strangerKey))
	f.anonymous = newKESClient(t, f.srv, f.pool, nil)
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("the CLI's key and certificate files: %v", err)
	}
	f.fromFiles, f.fileID = newKESClient(t, f.srv, f.pool, &pair), fileID
	return f
}

// adminClient is the root SigV4 client of the same server, over TLS
// without a client certificate.
func (f *kesFixture) adminClient(t *testing.T) *client {
	c := f.srv.client(t)
	c.hc = &http.Client{Timeout: 20 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool}}}
	return c
}

func TestKESAPI(t *testing.T) {
	t.Parallel()
	f := newKESFixture(t)

	t.Run("identity required", func(t *testing.T) {
		for _, c := range []*kesClient{f.anonymous, f.stranger} {
			c.t = t
			for _, r := range [][2]string{{"GET", "/version"}, {"GET", "/v1/status"}, {"POST", "/v1/key/create/x"}, {"GET", "/v1/key/list/*"}, {"GET", "/v1/policy/list/*"}, {"GET", "/v1/key/create/x"}} {
				st, hdr, raw := c.do(r[0], r[1], nil)
				c.wantKESError(r[0]+" "+r[1], st, hdr, raw, 403, kesNotAllowed)
			}
		}
	})

	t.Run("server routes", func(t *testing.T) {
		a := f.admin
		a.t = t
		st, _, raw := a.do("GET", "/version", nil)
		var v struct{ Version string }
		if st != 200 || json.Unmarshal(raw, &v) != nil || v.Version == "" {
			t.Errorf("version: %d %s", st, raw)
		}
		if st, _, raw := a.do("GET", "/v1/ready", nil); st != 200 {
			t.Errorf("ready: %d %s", st, raw)
		}
		st, _, raw = a.do("GET", "/v1/status", nil)
		var status map[string]any
		if st != 200 || json.Unmarshal(raw, &status) != nil || status["os"] == "" || status["keystore_unreachable"] != nil || status["keystore_latency"] == nil {
			t.Errorf("status: %d %s", st, raw)
		}
		st, _, raw = a.do("GET", "/v1/api", nil)
		var apis []struct{ Method, Path string }
		if st != 200 || json.Unmarshal(raw, &apis) != nil || !slices.ContainsFunc(apis, func(x struct{ Method, Path string }) bool {
			return x.Method == "POST" && x.Path == "/v1/key/generate/"
		}) {
			t.Errorf("api: %d %s", st, raw)
		}
		st, _, raw = a.do("GET", "/v1/identity/self/describe", nil)
		if st != 200 || string(raw) != `{"identity":"`+f.adminID+`","admin":false,"policy":"consoleAdmin"}`+"\n" {
			t.Errorf("self describe: %d %s", st, raw)
		}
		st, hdr, raw := a.do("GET", "/v1/metrics", nil)
		if st != 200 || !strings.HasPrefix(hdr.Get("Content-Type"), "text/plain") || !bytes.Contains(raw, []byte("\nkes_http_request_success ")) {
			t.Errorf("metrics: %d %s", st, raw)
		}
		// /v1/metrics needs kms:ServiceControl (--metrics-auth), as /metrics.
		st, hdr, raw = f.narrow.do("GET", "/v1/metrics", nil)
		f.narrow.wantKESError("metrics by the narrow identity", st, hdr, raw, 403, kesNotAllowed)
		// Unsupported KES APIs and wrong methods, in KES's format.
		for _, r := range [][2]string{{"GET", "/v1/policy/list/*"}, {"PUT", "/v1/key/hmac/k"}, {"GET", "/v1/log/audit"}, {"POST", "/v1/secret/create/s"}, {"POST", "/v1/key/import/app-imp"}} {
			st, hdr, raw := a.do(r[0], r[1], map[string]any{})
			if st != 501 || hdr.Get("Content-Type") != "application/json" || !bytes.HasPrefix(raw, []byte(`{"message":"`)) {
				t.Errorf("%s %s: %d %s", r[0], r[1], st, raw)
			}
		}
		st, hdr, raw = a.do("GET", "/v1/key/create/x", nil)
		if st != 405 || hdr.Get("Allow") != "POST" || !bytes.HasPrefix(raw, []byte(`{"message":"`)) {
			t.Errorf("wrong method: %d %v %s", st, hdr, raw)
		}
	})

	t.Run("keys", func(t *testing.T) {
		a, n := f.admin, f.narrow
		a.t, n.t = t, t
		if st, _, raw := a.do("POST", "/v1/key/create/app-1", nil); st != 200 || len(raw) != 0 {
			t.Fatalf("create: %d %s", st, raw)
		}
		st, hdr, raw := a.do("POST", "/v1/key/create/app-1", nil)
		a.wantKESError("create twice", st, hdr, raw, 400, kesMsg("key already exists"))
		st, _, raw = a.do("GET", "/v1/key/describe/app-1", nil)
		var d struct {
			Name, Algorithm string
			CreatedBy       string    `json:"created_by"`
			CreatedAt       time.Time `json:"created_at"`
		}
		if st != 200 || json.Unmarshal(raw, &d) != nil || !strings.Contains(string(raw), `"name":"app-1","algorithm":"AES256"`) || d.CreatedBy != f.adminID || d.CreatedAt.IsZero() {
			t.Errorf("describe: %d %s", st, raw)
		}
		st, hdr, raw = a.do("GET", "/v1/key/describe/app-none", nil)
		a.wantKESError("describe missing", st, hdr, raw, 404, kesMsg("key does not exist"))

		kesCtx := []byte(`{"bucket":"b","object":"o"}`)
		st, _, raw = n.do("POST", "/v1/key/generate/app-1", map[string]any{"context": kesCtx})
		var dek struct{ Plaintext, Ciphertext []byte }
		if st != 200 || json.Unmarshal(raw, &dek) != nil || len(dek.Plaintext) != 32 || len(dek.Ciphertext) == 0 {
			t.Fatalf("generate: %d %s", st, raw)
		}
		st, _, raw = n.do("POST", "/v1/key/decrypt/app-1", map[string]any{"ciphertext": dek.Ciphertext, "context": kesCtx})
		var pt struct{ Plaintext []byte }
		if st != 200 || json.Unmarshal(raw, &pt) != nil || !bytes.Equal(pt.Plaintext, dek.Plaintext) {
			t.Fatalf("decrypt: %d %s", st, raw)
		}
		notAuthentic := kesMsg("decryption failed: ciphertext is not authentic")
		for what, body := range map[string]map[string]any{
			"wrong context": {"ciphertext": dek.Ciphertext, "context": []byte("other")},
			"no context":    {"ciphertext": dek.Ciphertext},
			"garbage":       {"ciphertext": []byte("not a blob at all, not at all")},
			"tampered":      {"ciphertext": append(bytes.Clone(dek.Ciphertext[:len(dek.Ciphertext)-1]), dek.Ciphertext[len(dek.Ciphertext)-1]^1), "context": kesCtx},
		} {
			st, hdr, raw := n.do("POST", "/v1/key/decrypt/app-1", body)
			n.wantKESError("decrypt, "+what, st, hdr, raw, 400, notAuthentic)
		}
		// A blob of app-1 presented as another key's: not authentic there.
		a.do("POST", "/v1/key/create/app-2", nil)
		st, hdr, raw = n.do("POST", "/v1/key/decrypt/app-2", map[string]any{"ciphertext": dek.Ciphertext, "context": kesCtx})
		n.wantKESError("decrypt under another key", st, hdr, raw, 400, notAuthentic)
		// Encrypt and decrypt a short value.
		st, _, raw = a.do("POST", "/v1/key/encrypt/app-2", map[string]any{"plaintext": []byte("hello"), "context": kesCtx})
		var enc struct{ Ciphertext []byte }
		if st != 200 || json.Unmarshal(raw, &enc) != nil {
			t.Fatalf("encrypt: %d %s", st, raw)
		}
		st, _, raw = a.do("POST", "/v1/key/decrypt/app-2", map[string]any{"ciphertext": enc.Ciphertext, "context": kesCtx})
		if st != 200 || json.Unmarshal(raw, &pt) != nil || string(pt.Plaintext) != "hello" {
			t.Errorf("decrypt encrypted: %d %s", st, raw)
		}
		// Bad bodies are 400s in KES's shape, never 500s.
		for _, body := range []string{`{"ciphertext": 1}`, `{"context": "!!"}`, `[`, `{"plaintext": "aGk=", "extra": 1}`} {
			req, _ := http.NewRequest("POST", f.srv.URL+"/v1/key/generate/app-1", strings.NewReader(body))
			resp, err := a.hc.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			raw, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 400 || !bytes.HasPrefix(raw, []byte(`{"message":"`)) {
				t.Errorf("body %s: %d %s", body, resp.StatusCode, raw)
			}
		}
		// The narrow identity: only app-* keys, only its actions.
		for _, r := range [][2]string{{"POST", "/v1/key/create/app-3"}, {"POST", "/v1/key/generate/other"}, {"DELETE", "/v1/key/delete/app-1"}, {"POST", "/v1/key/encrypt/app-1"}, {"GET", "/v1/key/describe/other-missing"}} {
			st, hdr, raw := n.do(r[0], r[1], map[string]any{"plaintext": []byte("x")})
			n.wantKESError("narrow "+r[0]+" "+r[1], st, hdr, raw, 403, kesNotAllowed)
		}
	})

	t.Run("cross door", func(t *testing.T) {
		a := f.admin
		a.t = t
		c := f.adminClient(t)
		a.do("POST", "/v1/key/create/app-x", nil)
		kesCtx := []byte{0, 1, 2, 0xff, 'k'}
		st, _, raw := a.do("POST", "/v1/key/generate/app-x", map[string]any{"context": kesCtx})
		var dek struct{ Plaintext, Ciphertext []byte }
		if st != 200 || json.Unmarshal(raw, &dek) != nil {
			t.Fatalf("generate: %d %s", st, raw)
		}
		// The KES blob is a Keyward blob: the admin API opens it with the
		// documented context.
		encCtx := map[string]string{"kes:context": base64.StdEncoding.EncodeToString(kesCtx)}
		if st, p, raw := decrypt(t, c, b64(dek.Ciphertext), encCtx); st != 200 || !bytes.Equal(p, dek.Plaintext) {
			t.Errorf("admin decrypt of a KES blob: %d %s", st, raw)
		}
		// And the other way: an admin blob with that context, and one with
		// none, open through the KES API.
		for _, ec := range []map[string]string{encCtx, nil} {
			dk := generate(t, c, "app-x", ec)
			body := map[string]any{"ciphertext": unb64(t, "blob", dk.Blob)}
			if ec != nil {
				body["context"] = kesCtx
			}
			st, _, raw := a.do("POST", "/v1/key/decrypt/app-x", body)
			var pt struct{ Plaintext []byte }
			if st != 200 || json.Unmarshal(raw, &pt) != nil || !bytes.Equal(pt.Plaintext, dk.Plaintext) {
				t.Errorf("KES decrypt of an admin blob (context %v): %d %s", ec, st, raw)
			}
		}
		// A KES-made key is an ordinary key, tagged with its creator.
		st, md, raw := describe(t, c, "app-x")
		if st != 200 || str(md, "key_state") != "Enabled" || str(obj(md, "tags"), "kes:created-by") != f.adminID {
			t.Errorf("admin describe: %d %s", st, raw)
		}
		// DELETE schedules deletion: gone through KES at once, recoverable
		// through the admin API.
		if st, _, raw := a.do("DELETE", "/v1/key/delete/app-x", nil); st != 200 || len(raw) != 0 {
			t.Fatalf("delete: %d %s", st, raw)
		}
		for _, r := range [][2]string{{"GET", "/v1/key/describe/app-x"}, {"POST", "/v1/key/generate/app-x"}, {"DELETE", "/v1/key/delete/app-x"}} {
			st, hdr, raw := a.do(r[0], r[1], nil)
			a.wantKESError(r[0]+" "+r[1]+" after delete", st, hdr, raw, 404, kesMsg("key does not exist"))
		}
		st, hdr, raw := a.do("POST", "/v1/key/create/app-x", nil)
		a.wantKESError("create over a pending key", st, hdr, raw, 400, kesMsg("key already exists"))
		st, md, raw = describe(t, c, "app-x")
		if st != 200 || str(md, "key_state") != "PendingDeletion" || str(md, "deletion_date") == "" {
			t.Fatalf("admin describe after KES delete: %d %s", st, raw)
		}
		if st, _, raw := c.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": "app-x"}); st != 200 {
			t.Fatalf("cancel-deletion: %d %s", st, raw)
		}
		st, _, raw = a.do("POST", "/v1/key/decrypt/app-x", map[string]any{"ciphertext": dek.Ciphertext, "context": kesCtx})
		if st != 200 {
			t.Errorf("decrypt after recovery: %d %s", st, raw)
		}
		// A disabled key is refused with the admin API's reason, not as
		// a missing key.
		c.do("POST", "/kms/keys/disable", map[string]any{"key_id": "app-x"})
		if st, _, raw := a.do("POST", "/v1/key/generate/app-x", nil); st != 409 || !bytes.HasPrefix(raw, []byte(`{"message":"invalid key state`)) {
			t.Errorf("generate on a disabled key: %d %s", st, raw)
		}
	})

	t.Run("listing", func(t *testing.T) {
		a, n := f.admin, f.narrow
		a.t, n.t = t, t
		for _, id := range []string{"page-1", "page-2", "page-3", "page-4", "page-5", "pagf", "pag"} {
			a.do("POST", "/v1/key/create/"+id, nil)
		}
		a.do("DELETE", "/v1/key/delete/page-4", nil)
		walk := func(c *kesClient, prefix string) (names []string, pages int) {
			for arg := prefix; ; pages++ {
				st, _, raw := c.do("GET", "/v1/key/list/"+arg, nil)
				var page struct {
					Names      []string
					ContinueAt string `json:"continue_at"`
				}
				if st != 200 || json.Unmarshal(raw, &page) != nil || page.Names == nil {
					t.Fatalf("list %s: %d %s", arg, st, raw)
				}
				names = append(names, page.Names...)
				if page.ContinueAt == "" || pages > 20 {
					return names, pages + 1
				}
				arg = page.ContinueAt
			}
		}
		if got, pages := walk(a, "page-"); !slices.Equal(got, []string{"page-1", "page-2", "page-3", "page-5"}) || pages < 2 {
			t.Errorf("page-: %v in %d pages", got, pages)
		}
		if got, _ := walk(a, "page-*"); len(got) != 4 {
			t.Errorf("page-*: %v", got)
		}
		if got, _ := walk(a, "zzz"); len(got) != 0 {
			t.Errorf("zzz: %v", got)
		}
		all, _ := walk(a, "")
		if !slices.Contains(all, "app-1") || !slices.Contains(all, "pag") || slices.Contains(all, "page-4") || !slices.IsSorted(all) {
			t.Errorf("everything: %v", all)
		}
		// The narrow identity sees only the keys it may list.
		if got, _ := walk(n, "*"); len(got) == 0 || slices.ContainsFunc(got, func(s string) bool { return !strings.HasPrefix(s, "app-") }) {
			t.Errorf("narrow listing: %v", got)
		}
		st, hdr, raw := a.do("GET", "/v1/key/list/page-:other", nil)
		if st != 400 || hdr.Get("Content-Type") != "application/json" {
			t.Errorf("bad continuation: %d %s", st, raw)
		}
	})

	t.Run("certificate files", func(t *testing.T) {
		c := f.fromFiles
		c.t = t
		st, _, raw := c.do("GET", "/v1/identity/self/describe", nil)
		if st != 200 || string(raw) != `{"identity":"`+f.fileID+`","admin":false,"policy":"KMSKeyUser"}`+"\n" {
			t.Errorf("self describe: %d %s", st, raw)
		}
		if st, _, raw := c.do("POST", "/v1/key/generate/app-1", nil); st != 200 {
			t.Errorf("generate: %d %s", st, raw)
		}
		st, hdr, raw := c.do("POST", "/v1/key/create/file-key", nil)
		c.wantKESError("create by a KMSKeyUser", st, hdr, raw, 403, kesNotAllowed)
	})

	// Attack: a client presents the admin identity's certificate (public)
	// without its private key, signing the handshake with a key of its
	// own. The handshake's proof of possession fails: no request is made.
	t.Run("stolen certificate", func(t *testing.T) {
		adminCert := f.admin.hc.Transport.(*http.Transport).TLSClientConfig.Certificates[0]
		thief, _ := kesid.GenerateAPIKey(nil)
		forged := tls.Certificate{Certificate: adminCert.Certificate, PrivateKey: thief.PrivateKey()}
		hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: f.pool, Certificates: []tls.Certificate{forged}}}}
		resp, err := hc.Get(f.srv.URL + "/v1/identity/self/describe")
		if err == nil {
			resp.Body.Close()
			t.Fatalf("a certificate without its private key was accepted: %d", resp.StatusCode)
		}
	})

	t.Run("sigv4 on the same port", func(t *testing.T) {
		c := f.adminClient(t)
		if st, _, raw := describe(t, c, "app-1"); st != 200 {
			t.Errorf("admin describe over TLS without a client certificate: %d %s", st, raw)
		}
		// A SigV4 request that also presents a client certificate is
		// still a SigV4 request: the certificate grants nothing there.
		c.hc = f.narrow.hc
		if st, _, raw := describe(t, c, "app-1"); st != 200 {
			t.Errorf("admin describe with a client certificate: %d %s", st, raw)
		}
		c.creds.SecretAccessKey = "wrong-secret-123"
		if st, _, raw := describe(t, c, "app-1"); st != 401 {
			t.Errorf("bad signature with a certificate: %d %s", st, raw)
		}
	})

	t.Run("audit", func(t *testing.T) {
		deadline := time.Now().Add(5 * time.Second)
		for {
			b, _ := os.ReadFile(f.auditPath)
			if bytes.Contains(b, []byte(`"identity":"`+f.narrowID+`","source":`)) && bytes.Contains(b, []byte(`"route":"/v1/key/generate/{name}","action":"kms:GenerateDataKey","key_id":"app-1","status":200`)) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("no audit line for the narrow identity's generate:\n%s", tail(string(b), 3000))
			}
			time.Sleep(50 * time.Millisecond)
		}
	})
}

// Without TLS there is no certificate, so no KES caller is known.
func TestKESAPIWithoutTLS(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev"}})
	k := &kesClient{t: t, base: srv.URL, hc: &http.Client{Timeout: 10 * time.Second}}
	for _, p := range []string{"/version", "/v1/status", "/v1/key/list/*"} {
		st, hdr, raw := k.do("GET", p, nil)
		k.wantKESError(p, st, hdr, raw, 403, kesNotAllowed)
	}
	// --kes-api=false: the paths are not served at all.
	off := startServer(t, serverOpts{Args: []string{"--dev", "--kes-api=false"}})
	k.base = off.URL
	if st, _, raw := k.do("GET", "/v1/status", nil); st != 404 || !bytes.Contains(raw, []byte(`"code":"NotFound"`)) {
		t.Errorf("--kes-api=false: %d %s", st, raw)
	}
}
