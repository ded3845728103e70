package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

// Ops are the operations a Keyward or Vault target can run, in table order.
var Ops = []string{"generate", "decrypt", "encrypt", "describe", "list", "list-disabled", "create"}

// CeilingOp is the only operation of the ceiling target.
const CeilingOp = "noop"

// resignAfter is the age at which a replayed signed template is re-signed
// (servers accept a signature for 15 minutes around its date).
const resignAfter = 5 * time.Minute

// target is something to benchmark.
type target interface {
	name() string
	setup(ctx context.Context) error
	plan(op string) Plan
	close()
}

// template is a request replayed as is: signed once (when signer is set)
// and re-signed when older than resignAfter.
type template struct {
	method string
	url    string
	body   []byte
	base   http.Header // headers before signing
	signer *sigv4.Signer
	now    func() time.Time

	header   http.Header  // what is sent; never modified once built
	wired    *wireRequest // the same request serialized, for the engine
	host     string       // the Host that was signed (default port dropped)
	signedAt time.Time
}

func (t *template) wire() (*wireRequest, error) {
	if t.wired == nil || (t.signer != nil && t.now().Sub(t.signedAt) > resignAfter) {
		if err := t.build(); err != nil {
			return nil, err
		}
	}
	return t.wired, nil
}

func (t *template) Request(ctx context.Context) (*http.Request, error) {
	if t.header == nil || (t.signer != nil && t.now().Sub(t.signedAt) > resignAfter) {
		if err := t.build(); err != nil {
			return nil, err
		}
	}
	return t.newRequest(ctx)
}

// prepared builds (and signs) t now, so that the step does not time it.
func prepared(t *template) (Requester, error) { return t, t.build() }

func (t *template) build() error {
	h := t.base.Clone()
	if h == nil {
		h = http.Header{}
	}
	if t.signer != nil {
		r, err := http.NewRequest(t.method, t.url, bytes.NewReader(t.body))
		if err != nil {
			return err
		}
		r.Header = h
		at := t.now()
		t.signer.Sign(r, t.body, at)
		t.signedAt, t.host = at, r.Host
	}
	t.header = h
	r, err := t.newRequest(context.Background())
	if err != nil {
		return err
	}
	t.wired, err = serialize(r)
	return err
}

// newRequest is the template as an *http.Request with its current headers.
func (t *template) newRequest(ctx context.Context) (*http.Request, error) {
	var body io.Reader
	if len(t.body) > 0 {
		body = bytes.NewReader(t.body)
	}
	r, err := http.NewRequestWithContext(ctx, t.method, t.url, body)
	if err != nil {
		return nil, err
	}
	r.Header = t.header
	if t.host != "" {
		r.Host = t.host
	}
	return r, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func randomB64(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// doJSON sends one setup request and decodes a 2xx JSON answer into out.
func doJSON(ctx context.Context, client *http.Client, r *http.Request, out any) error {
	resp, err := client.Do(r.WithContext(ctx))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("%s %s: %s: %s", r.Method, r.URL.Path, resp.Status, bytes.TrimSpace(body))
	}
	if out != nil {
		if err := json.Unmarshal(body, out); err != nil {
			return fmt.Errorf("%s %s: decoding the answer: %w", r.Method, r.URL.Path, err)
		}
	}
	return nil
}

// benchContext is the encryption context of Keyward generate and decrypt.
var benchContext = map[string]string{"app": "keyward-bench", "purpose": "benchmark"}

// keywardTarget drives the Keyward admin API.
type keywardTarget struct {
	api    string // endpoint + /rustfs/admin/v3
	signer *sigv4.Signer
	keyID  string
	client *http.Client // setup calls
	now    func() time.Time
	log    io.Writer
	runID  string
	seq    atomic.Int64 // create: key ids unique across steps
	// skipSteps: only the AWS door is measured; this target still sets
	// up the key.
	skipSteps bool

	// keys > 0 prepares a key set of that many keys (prepare.go), set.
	keys     int
	prepare  func(concurrency int) http.RoundTripper
	prepared Prepared
	set      *keySet
}

func (k *keywardTarget) name() string { return "keyward" }
func (k *keywardTarget) close()       {}

func (k *keywardTarget) call(ctx context.Context, method, path string, body []byte, out any) error {
	r, err := http.NewRequest(method, k.api+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	k.signer.Sign(r, body, k.now())
	return doJSON(ctx, k.client, r, out)
}

func (k *keywardTarget) setup(ctx context.Context) error {
	k.runID = randomHex(4)
	if k.keys > 0 {
		var err error
		if k.prepared, err = k.prepareKeys(ctx, k.keys, 16, k.prepare(16)); err != nil {
			return err
		}
	}
	if k.keyID != "" {
		return k.call(ctx, "GET", "/kms/keys/"+url.PathEscape(k.keyID), nil, nil)
	}
	k.keyID = "bench-" + k.runID
	body := mustJSON(map[string]string{"key_id": k.keyID, "description": "keyward bench"})
	if err := k.call(ctx, "POST", "/kms/keys", body, nil); err != nil {
		return fmt.Errorf("creating the bench key: %w", err)
	}
	fmt.Fprintf(k.log, "keyward: created key %s\n", k.keyID)
	return nil
}

func (k *keywardTarget) tmpl(method, path string, body []byte) *template {
	h := http.Header{}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	return &template{method: method, url: k.api + path, body: body, base: h, signer: k.signer, now: k.now}
}

func (k *keywardTarget) generateBody() []byte {
	return mustJSON(map[string]any{"key_id": k.keyID, "key_spec": "AES_256", "encryption_context": benchContext})
}

func (k *keywardTarget) plan(op string) Plan {
	if p, ok := k.setPlan(op); ok {
		return p
	}
	p := Plan{Target: k.name(), Op: op}
	switch op {
	case "generate":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("POST", "/kms/generate-data-key", k.generateBody()))
		}
	case "decrypt":
		p.NewRequester = func(ctx context.Context, _ int) (Requester, error) {
			var dk struct {
				CiphertextBlob string `json:"ciphertext_blob"`
			}
			if err := k.call(ctx, "POST", "/kms/generate-data-key", k.generateBody(), &dk); err != nil {
				return nil, err
			}
			body := mustJSON(map[string]any{"ciphertext_blob": dk.CiphertextBlob, "encryption_context": benchContext})
			return prepared(k.tmpl("POST", "/kms/decrypt", body))
		}
	case "encrypt":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			body := mustJSON(map[string]any{"key_id": k.keyID, "plaintext": randomB64(32), "encryption_context": benchContext})
			return prepared(k.tmpl("POST", "/kms/encrypt", body))
		}
	case "describe":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("GET", "/kms/keys/"+url.PathEscape(k.keyID), nil))
		}
	case "list":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("GET", "/kms/keys?limit=100", nil))
		}
	case "list-disabled":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("GET", "/kms/keys?limit=100&state=Disabled", nil))
		}
	case "create":
		// A new key id each time: signed per request (signing cost included).
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return RequesterFunc(func(ctx context.Context) (*http.Request, error) {
				body := mustJSON(map[string]string{"key_id": fmt.Sprintf("bench-%s-%d", k.runID, k.seq.Add(1))})
				t := k.tmpl("POST", "/kms/keys", body)
				return t.Request(ctx)
			}), nil
		}
	}
	return p
}

// vaultKey is the Transit key the Vault target uses.
const vaultKey = "keyward-bench"

// vaultTarget drives Vault Transit directly.
type vaultTarget struct {
	addr, token, mount string
	client             *http.Client
	runID              string
	seq                atomic.Int64 // create: key names unique across steps
}

func (v *vaultTarget) name() string { return "vault" }
func (v *vaultTarget) close()       {}

func (v *vaultTarget) url(path string) string {
	return strings.TrimRight(v.addr, "/") + "/v1/" + strings.Trim(v.mount, "/") + "/" + path
}

func (v *vaultTarget) header() http.Header {
	h := http.Header{}
	h.Set("X-Vault-Token", v.token)
	h.Set("Content-Type", "application/json")
	return h
}

func (v *vaultTarget) call(ctx context.Context, method, path string, body []byte, out any) error {
	r, err := http.NewRequest(method, v.url(path), bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header = v.header()
	return doJSON(ctx, v.client, r, out)
}

func (v *vaultTarget) setup(ctx context.Context) error {
	v.runID = randomHex(4)
	if err := v.call(ctx, "POST", "keys/"+vaultKey, []byte(`{"type":"aes256-gcm96"}`), nil); err != nil {
		return fmt.Errorf("creating the Transit key %s: %w", vaultKey, err)
	}
	return nil
}

func (v *vaultTarget) tmpl(method, path string, body []byte) *template {
	return &template{method: method, url: v.url(path), body: body, base: v.header()}
}

func (v *vaultTarget) plan(op string) Plan {
	p := Plan{Target: v.name(), Op: op}
	switch op {
	case "generate":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(v.tmpl("POST", "datakey/plaintext/"+vaultKey, []byte(`{"bits":256}`)))
		}
	case "decrypt":
		p.NewRequester = func(ctx context.Context, _ int) (Requester, error) {
			var dk struct {
				Data struct {
					Ciphertext string `json:"ciphertext"`
				} `json:"data"`
			}
			if err := v.call(ctx, "POST", "datakey/plaintext/"+vaultKey, []byte(`{"bits":256}`), &dk); err != nil {
				return nil, err
			}
			return prepared(v.tmpl("POST", "decrypt/"+vaultKey, mustJSON(map[string]string{"ciphertext": dk.Data.Ciphertext})))
		}
	case "encrypt":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(v.tmpl("POST", "encrypt/"+vaultKey, mustJSON(map[string]string{"plaintext": randomB64(32)})))
		}
	case "describe":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(v.tmpl("GET", "keys/"+vaultKey, nil))
		}
	case "list", "list-disabled": // Transit keys have no state to filter by
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(v.tmpl("LIST", "keys", nil))
		}
	case "create":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return RequesterFunc(func(ctx context.Context) (*http.Request, error) {
				path := fmt.Sprintf("keys/%s-%s-%d", vaultKey, v.runID, v.seq.Add(1))
				return v.tmpl("POST", path, []byte(`{"type":"aes256-gcm96"}`)).Request(ctx)
			}), nil
		}
	}
	return p
}
