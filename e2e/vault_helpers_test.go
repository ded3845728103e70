package e2e

// Helpers for the Vault end-to-end tests (vault_*_test.go): configuration
// bodies, Vault tokens and AppRoles, a client that fails the test when a
// response carries a secret, a request streamer that measures every call,
// a raw reader of the KV records Keyward writes, and a TCP proxy that can
// make Vault unresponsive (accepting connections, answering nothing).

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// vaultBackends are the two Vault backend types, each tested end to end.
var vaultBackends = []string{"vault", "vault-transit"}

// vaultDefaultKey is the default_key_id of every Vault configuration here.
const vaultDefaultKey = "vault-default"

// vaultTimeout and vaultRetries are the per-attempt timeout and the read
// retries the tests configure; maxCall bounds any single admin call while
// Vault is down or unresponsive: timeout*(retries+1) + 2 s.
const (
	vaultTimeout = 2
	vaultRetries = 1
	maxCall      = time.Duration(vaultTimeout*(vaultRetries+1)+2) * time.Second
)

var prefixUnsafe = regexp.MustCompile(`[^a-z0-9-]+`)

// vaultPrefix is a key_path_prefix unique to the test (two segments, to
// exercise a nested prefix).
func vaultPrefix(t testing.TB) string {
	name := prefixUnsafe.ReplaceAllString(strings.ToLower(t.Name()), "-")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	return "e2e/" + strings.Trim(name, "-") + "-" + randomHex(4)
}

func tokenAuth(token string) map[string]any { return map[string]any{"token": token} }

func approleAuth(roleID, secretID string) map[string]any {
	return map[string]any{"approle": map[string]any{"role_id": roleID, "secret_id": secretID}}
}

// vaultConfig is a configure body in snake_case spellings (docs/api.md).
func vaultConfig(addr, backend, prefix string, auth map[string]any) map[string]any {
	return map[string]any{
		"backend_type":    backend,
		"address":         addr,
		"auth_method":     auth,
		"mount_path":      "transit",
		"kv_mount":        "secret",
		"key_path_prefix": prefix,
		"default_key_id":  vaultDefaultKey,
		"timeout_seconds": vaultTimeout,
		"retry_attempts":  vaultRetries,
	}
}

// configureVault posts a configure body and checks the answer
// (docs/api.md, "POST /kms/configure"). A 501
// means the Vault backends are not wired into this build.
func configureVault(t testing.TB, c *client, body map[string]any) {
	t.Helper()
	st, m, raw := c.do("POST", "/kms/configure", body)
	if st == 501 {
		t.Fatalf("configure %v: 501 NotImplemented: the Vault backends are not available in this build: %s", body["backend_type"], short(raw))
	}
	if !wantStatus(t, "configure "+fmt.Sprint(body["backend_type"]), st, raw, 200) {
		t.FailNow()
	}
	if m["success"] != true || str(m, "status") != "Configured" {
		t.Errorf("configure: want {success:true, status:Configured}; got %s", short(raw))
	}
}

// startVaultKMS starts the service; a 501 names the missing backend.
func startVaultKMS(t testing.TB, c *client) {
	t.Helper()
	st, _, raw := c.do("POST", "/kms/start", nil)
	if st == 501 {
		t.Fatalf("start: 501 NotImplemented: the Vault backends are not available in this build: %s", short(raw))
	}
	if st != 200 {
		t.Fatalf("start: want 200; got %d %s", st, short(raw))
	}
}

// kmsStatus returns /kms/status (status, body).
func kmsStatus(t testing.TB, c *client) (string, map[string]any, []byte) {
	t.Helper()
	st, m, raw := c.do("GET", "/kms/status", nil)
	if st != 200 {
		t.Errorf("GET /kms/status: want 200; got %d %s", st, short(raw))
	}
	return str(m, "status"), m, raw
}

// --- Vault administration (raw Vault API, root token) ---

// vaultOK sends a Vault API call that must succeed and decodes the answer.
func vaultOK(t testing.TB, v *vaulttest.Server, method, path string, body any, token string) map[string]any {
	t.Helper()
	st, raw := v.Do(method, path, body, token)
	if st >= 300 {
		t.Fatalf("vault %s %s: %d %s", method, path, st, raw)
	}
	var m map[string]any
	if len(bytes.TrimSpace(raw)) > 0 {
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("vault %s %s: %v: %s", method, path, err, raw)
		}
	}
	return m
}

// createVaultToken creates a token with the given policies (root token
// of v as the parent) and returns it.
func createVaultToken(t testing.TB, v *vaulttest.Server, policies ...string) string {
	t.Helper()
	m := vaultOK(t, v, "POST", "/v1/auth/token/create", map[string]any{"policies": policies, "ttl": "2h", "renewable": true}, v.Token)
	tok := str(obj(m, "auth"), "client_token")
	if tok == "" {
		t.Fatalf("vault token create: no client_token: %v", m)
	}
	return tok
}

// tokenValid reports whether Vault accepts token (lookup-self).
func tokenValid(t testing.TB, v *vaulttest.Server, token string) bool {
	t.Helper()
	st, _ := v.Do("GET", "/v1/auth/token/lookup-self", nil, token)
	return st == 200
}

// writePolicy stores an ACL policy.
func writePolicy(t testing.TB, v *vaulttest.Server, name, hcl string) {
	t.Helper()
	vaultOK(t, v, "PUT", "/v1/sys/policies/acl/"+name, map[string]any{"policy": hcl}, v.Token)
}

// createAppRole enables AppRole (once per server), creates a role with the
// given policies only (no default policy), and returns its role_id and a
// fresh secret_id.
func createAppRole(t testing.TB, v *vaulttest.Server, role string, policies ...string) (roleID, secretID string) {
	t.Helper()
	st, raw := v.Do("POST", "/v1/sys/auth/approle", map[string]any{"type": "approle"}, v.Token)
	if st >= 300 && !strings.Contains(string(raw), "path is already in use") {
		t.Fatalf("vault: enabling approle: %d %s", st, raw)
	}
	vaultOK(t, v, "POST", "/v1/auth/approle/role/"+role, map[string]any{
		"token_policies": policies, "token_no_default_policy": true, "token_ttl": "1h", "token_max_ttl": "4h",
	}, v.Token)
	roleID = str(obj(vaultOK(t, v, "GET", "/v1/auth/approle/role/"+role+"/role-id", nil, v.Token), "data"), "role_id")
	secretID = str(obj(vaultOK(t, v, "POST", "/v1/auth/approle/role/"+role+"/secret-id", nil, v.Token), "data"), "secret_id")
	if roleID == "" || secretID == "" {
		t.Fatalf("vault: approle %s: empty role_id or secret_id", role)
	}
	return roleID, secretID
}

// --- secret leak guard ---

// leakGuard fails the test when any response of its clients, or any log
// line of the servers it watches, contains one of its secrets.
type leakGuard struct {
	t       testing.TB
	mu      sync.Mutex
	secrets []string
}

// newLeakGuard watches for secrets; each must be long enough (16+ bytes)
// not to occur by chance in a base64 value.
func newLeakGuard(t testing.TB, secrets ...string) *leakGuard {
	g := &leakGuard{t: t}
	g.add(secrets...)
	return g
}

func (g *leakGuard) add(secrets ...string) {
	for _, s := range secrets {
		if len(s) < 16 {
			g.t.Fatalf("leakGuard: secret %.3s... is too short to be a reliable canary", s)
		}
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	g.secrets = append(g.secrets, secrets...)
}

func (g *leakGuard) list() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.secrets...)
}

// client returns a root client of s whose responses are checked, and
// checks the server's logs when the test ends.
func (g *leakGuard) client(t testing.TB, s *server) *client {
	c := s.client(t)
	c.hc.Transport = &leakTransport{g: g, t: t, base: c.hc.Transport}
	g.watch(t, s)
	return c
}

// watch checks the logs of s for secrets when the test ends.
func (g *leakGuard) watch(t testing.TB, s *server) {
	t.Cleanup(func() {
		logs := s.Logs()
		for _, sec := range g.list() {
			if sec != "" && strings.Contains(logs, sec) {
				t.Errorf("keyward (%s) logged a secret (%.6s...)", s.DataDir, sec)
			}
		}
	})
}

type leakTransport struct {
	g    *leakGuard
	t    testing.TB
	base http.RoundTripper
}

func (l *leakTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := l.base.RoundTrip(r)
	if err != nil {
		return resp, err
	}
	body, rerr := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(body))
	if rerr != nil {
		resp.Body = io.NopCloser(io.MultiReader(bytes.NewReader(body), errReader{rerr}))
	}
	var hdr bytes.Buffer
	resp.Header.Write(&hdr)
	for _, sec := range l.g.list() {
		if sec != "" && (bytes.Contains(body, []byte(sec)) || bytes.Contains(hdr.Bytes(), []byte(sec))) {
			l.t.Errorf("the response to %s %s contains a secret (%.6s...): %s", r.Method, r.URL.Path, sec, short(body))
		}
	}
	return resp, nil
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

// --- health ---

// readyStatus calls the unauthenticated /health/ready and returns the
// status (0 on a transport error) and how long it took.
func readyStatus(s *server) (int, time.Duration) {
	start := time.Now()
	hc := &http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get(s.URL + "/health/ready")
	if err != nil {
		return 0, time.Since(start)
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, time.Since(start)
}

// waitUntil polls cond every `every` until it holds or timeout passes; it
// returns how long that took and whether cond held.
func waitUntil(timeout, every time.Duration, cond func() bool) (time.Duration, bool) {
	start := time.Now()
	for {
		if cond() {
			return time.Since(start), true
		}
		if time.Since(start) > timeout {
			return time.Since(start), false
		}
		time.Sleep(every)
	}
}

// --- request streams ---

// callResult is one measured request of a stream.
type callResult struct {
	worker int
	start  time.Time
	took   time.Duration
	status int
	code   string
	err    error
	// For a 200 generate-data-key: the blob, the plaintext and the context.
	blob  string
	plain []byte
	ctx   map[string]string
}

func (r callResult) String() string {
	if r.err != nil {
		return fmt.Sprintf("worker %d at %s: transport error after %s: %v", r.worker, r.start.Format("15:04:05.000"), r.took.Round(time.Millisecond), r.err)
	}
	return fmt.Sprintf("worker %d at %s: %d %s in %s", r.worker, r.start.Format("15:04:05.000"), r.status, r.code, r.took.Round(time.Millisecond))
}

// stream runs generate-data-key requests from several goroutines until
// halted, recording every call.
type stream struct {
	stopped atomic.Bool
	wg      sync.WaitGroup
	mu      sync.Mutex
	res     []callResult
}

// startGenerateStream starts workers goroutines generating data keys under
// keyID (each worker with its own encryption context), pausing between
// calls.
func startGenerateStream(c *client, workers int, keyID string, pause time.Duration) *stream {
	s := &stream{}
	for w := range workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			encCtx := map[string]string{"stream-worker": strconv.Itoa(w)}
			for !s.stopped.Load() {
				start := time.Now()
				r, err := c.send("POST", adminPrefix+"/kms/generate-data-key", map[string]any{
					"key_id": keyID, "key_spec": "AES_256", "encryption_context": encCtx,
				})
				res := callResult{worker: w, start: start, took: time.Since(start), err: err}
				if r != nil {
					res.status = r.Status
					res.code = str(r.JSON, "code")
					if r.Status == 200 {
						res.blob = str(r.JSON, "ciphertext_blob")
						res.plain, _ = base64.StdEncoding.DecodeString(str(r.JSON, "plaintext_key"))
						res.ctx = encCtx
					}
				}
				s.mu.Lock()
				s.res = append(s.res, res)
				s.mu.Unlock()
				time.Sleep(pause)
			}
		}()
	}
	return s
}

// results returns a copy of the calls recorded so far.
func (s *stream) results() []callResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]callResult(nil), s.res...)
}

// halt stops the workers, waits for their last calls, and returns every
// call recorded.
func (s *stream) halt() []callResult {
	s.stopped.Store(true)
	s.wg.Wait()
	return s.results()
}

// first returns the first call started at or after t0 that matches.
func (s *stream) first(t0 time.Time, match func(callResult) bool) (callResult, bool) {
	for _, r := range s.results() {
		if !r.start.Before(t0) && match(r) {
			return r, true
		}
	}
	return callResult{}, false
}

// is200 and is503 classify calls.
func is200(r callResult) bool { return r.err == nil && r.status == 200 }
func is503(r callResult) bool { return r.err == nil && r.status == 503 }

// summarize counts calls by outcome.
func summarize(rs []callResult) string {
	counts := map[string]int{}
	for _, r := range rs {
		k := strconv.Itoa(r.status) + " " + r.code
		if r.err != nil {
			k = "transport error"
		}
		counts[k]++
	}
	var parts []string
	for k, n := range counts {
		parts = append(parts, fmt.Sprintf("%s: %d", strings.TrimSpace(k), n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

// --- the KV records Keyward writes ---

// kvRecord is one version of one KV v2 secret, as Vault returns it.
type kvRecord struct {
	Path    string // {prefix}/{id}
	Version int
	Raw     []byte         // the whole GET secret/data answer
	Data    map[string]any // data.data
}

// kvList lists the ids (leaf names, recursively) under secret/metadata/prefix.
func kvList(t testing.TB, v *vaulttest.Server, prefix string) []string {
	t.Helper()
	st, raw := v.Do("LIST", "/v1/secret/metadata/"+prefix, nil, v.Token)
	if st == 404 {
		return nil
	}
	if st != 200 {
		t.Fatalf("vault LIST secret/metadata/%s: %d %s", prefix, st, raw)
	}
	var m struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("vault LIST secret/metadata/%s: %v", prefix, err)
	}
	var out []string
	for _, k := range m.Data.Keys {
		if sub, ok := strings.CutSuffix(k, "/"); ok {
			for _, s := range kvList(t, v, prefix+"/"+sub) {
				out = append(out, sub+"/"+s)
			}
			continue
		}
		out = append(out, k)
	}
	return out
}

// kvVersions reads every version (that still has data) of secret/{path}.
func kvVersions(t testing.TB, v *vaulttest.Server, path string) []kvRecord {
	t.Helper()
	st, raw := v.Do("GET", "/v1/secret/metadata/"+path, nil, v.Token)
	if st != 200 {
		t.Fatalf("vault GET secret/metadata/%s: %d %s", path, st, raw)
	}
	var meta struct {
		Data struct {
			Versions map[string]any `json:"versions"`
		} `json:"data"`
	}
	json.Unmarshal(raw, &meta)
	var out []kvRecord
	for vs := range meta.Data.Versions {
		n, _ := strconv.Atoi(vs)
		st, raw := v.Do("GET", "/v1/secret/data/"+path+"?version="+vs, nil, v.Token)
		if st == 404 { // deleted or destroyed version
			continue
		}
		if st != 200 {
			t.Fatalf("vault GET secret/data/%s?version=%s: %d %s", path, vs, st, raw)
		}
		var m map[string]any
		json.Unmarshal(raw, &m)
		out = append(out, kvRecord{Path: path, Version: n, Raw: raw, Data: obj(obj(m, "data"), "data")})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out
}

// kvExists reports whether secret/metadata/{path} exists (any version).
func kvExists(t testing.TB, v *vaulttest.Server, path string) bool {
	t.Helper()
	st, raw := v.Do("GET", "/v1/secret/metadata/"+path, nil, v.Token)
	if st != 200 && st != 404 {
		t.Fatalf("vault GET secret/metadata/%s: %d %s", path, st, raw)
	}
	return st == 200
}

// jsonKeys returns every object key (at any depth) of a decoded JSON value.
func jsonKeys(v any, out map[string]bool) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			out[k] = true
			jsonKeys(e, out)
		}
	case []any:
		for _, e := range x {
			jsonKeys(e, out)
		}
	}
}

// jsonStrings returns every string value (at any depth).
func jsonStrings(v any, out *[]string) {
	switch x := v.(type) {
	case string:
		*out = append(*out, x)
	case map[string]any:
		for _, e := range x {
			jsonStrings(e, out)
		}
	case []any:
		for _, e := range x {
			jsonStrings(e, out)
		}
	}
}

var transitPrefix = regexp.MustCompile(`^vault:v\d+:`)

// decodings returns the byte strings a stored string value could hold:
// itself, and its standard/URL base64 and hex decodings (a Transit
// ciphertext's payload included). A decoding that is JSON is walked too.
func decodings(s string, depth int) [][]byte {
	out := [][]byte{[]byte(s)}
	body := transitPrefix.ReplaceAllString(s, "")
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(body); err == nil && len(b) > 0 {
			out = append(out, b)
		}
	}
	if b, err := hex.DecodeString(body); err == nil && len(b) > 0 {
		out = append(out, b)
	}
	if depth < 3 {
		for _, b := range out[1:] {
			var inner any
			if json.Unmarshal(b, &inner) == nil {
				var strs []string
				jsonStrings(inner, &strs)
				for _, s := range strs {
					out = append(out, decodings(s, depth+1)...)
				}
			}
		}
	}
	return out
}

// parsedBlob is a version-1 blob split as docs/blob-format.md describes.
type parsedBlob struct {
	header, nonce, sealed []byte
}

func parseBlobV1(b []byte) (parsedBlob, bool) {
	if len(b) < 2 || b[0] != 0x01 {
		return parsedBlob{}, false
	}
	l := int(b[1])
	if len(b) < 2+l+4+12+16 {
		return parsedBlob{}, false
	}
	h := 2 + l + 4
	return parsedBlob{header: b[:h], nonce: b[h : h+12], sealed: b[h+12:]}, true
}

// contextAAD is the canonical encoding of an encryption context
// (docs/blob-format.md).
func contextAAD(encCtx map[string]string) []byte {
	keys := make([]string, 0, len(encCtx))
	for k := range encCtx {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := binary.AppendUvarint(nil, uint64(len(keys)))
	for _, k := range keys {
		out = binary.AppendUvarint(out, uint64(len(k)))
		out = append(out, k...)
		out = binary.AppendUvarint(out, uint64(len(encCtx[k])))
		out = append(out, encCtx[k]...)
	}
	return out
}

// opensWith reports whether key (32 bytes) opens the blob.
func (p parsedBlob) opensWith(key []byte, encCtx map[string]string) bool {
	block, err := aes.NewCipher(key)
	if err != nil {
		return false
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return false
	}
	aad := append(append([]byte(nil), p.header...), contextAAD(encCtx)...)
	_, err = aead.Open(nil, p.nonce, p.sealed, aad)
	return err == nil
}

// findUnwrappingKey tries every 32-byte window of every decoding of every
// string in the record as the AES-256-GCM key of the blob; it returns a
// description of the first that opens it.
func findUnwrappingKey(record any, blob parsedBlob, encCtx map[string]string) (string, bool) {
	var strs []string
	jsonStrings(record, &strs)
	for _, s := range strs {
		for _, b := range decodings(s, 0) {
			for i := 0; i+32 <= len(b); i++ {
				if blob.opensWith(b[i:i+32], encCtx) {
					return fmt.Sprintf("bytes %d..%d of a decoding of the value %.40q...", i, i+32, s), true
				}
			}
		}
	}
	return "", false
}

// --- an unresponsive Vault ---

// blackhole is a TCP proxy to a Vault server that can be frozen: while
// frozen it accepts connections and reads requests but forwards nothing,
// so callers see a server that never answers.
type blackhole struct {
	ln     net.Listener
	target string
	frozen atomic.Bool
	closed atomic.Bool
	mu     sync.Mutex
	conns  []net.Conn
}

// startBlackhole proxies 127.0.0.1:random to target (http://host:port).
func startBlackhole(t testing.TB, target string) *blackhole {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &blackhole{ln: ln, target: u.Host}
	go p.accept()
	t.Cleanup(p.close)
	return p
}

// Addr is the proxy's URL.
func (p *blackhole) Addr() string { return "http://" + p.ln.Addr().String() }

func (p *blackhole) track(c net.Conn) {
	p.mu.Lock()
	p.conns = append(p.conns, c)
	p.mu.Unlock()
}

func (p *blackhole) accept() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.track(c)
		go func() {
			p.hold()
			if p.closed.Load() {
				c.Close()
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				c.Close()
				return
			}
			p.track(up)
			go p.pipe(up, c)
			go p.pipe(c, up)
		}()
	}
}

// hold blocks while the proxy is frozen.
func (p *blackhole) hold() {
	for p.frozen.Load() && !p.closed.Load() {
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *blackhole) pipe(dst, src net.Conn) {
	defer dst.Close()
	defer src.Close()
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			p.hold()
			if _, werr := dst.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

func (p *blackhole) close() {
	p.closed.Store(true)
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}
