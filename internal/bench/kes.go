package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/kesid"
)

// kesTarget drives Keyward's KES API (docs/kes-api.md) as a KES client
// does: over TLS, authenticated by a client certificate made from an API
// key, no request signing.
type kesTarget struct {
	base   string // endpoint
	keyID  string
	tls    *tls.Config // with the client certificate
	client *http.Client
	log    io.Writer
	runID  string
	seq    atomic.Int64
}

// kesBenchContext is the context of KES generate and decrypt: the admin
// target's encryption context, as the bytes a KES client would send.
var kesBenchContext = mustJSON(benchContext)

func newKESTarget(base, apiKey, keyID string, serverTLS *tls.Config, log io.Writer) (*kesTarget, error) {
	key, err := kesid.ParseAPIKey(apiKey)
	if err != nil {
		return nil, fmt.Errorf("--kes-api-key: %w", err)
	}
	defer key.Wipe()
	cert, err := key.Certificate(nil, nil)
	if err != nil {
		return nil, err
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if serverTLS != nil {
		cfg = serverTLS.Clone()
	}
	cfg.Certificates = []tls.Certificate{cert}
	k := &kesTarget{base: base, keyID: keyID, tls: cfg, log: log}
	k.client = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg, MaxIdleConnsPerHost: 1}}
	fmt.Fprintf(log, "keyward-kes: identity %s\n", key.Identity())
	return k, nil
}

func (k *kesTarget) name() string { return "keyward-kes" }
func (k *kesTarget) close()       { k.client.CloseIdleConnections() }

func (k *kesTarget) call(ctx context.Context, method, path string, body []byte, out any) error {
	r, err := http.NewRequest(method, k.base+path, bytesReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		r.Header.Set("Content-Type", "application/json")
	}
	return doJSON(ctx, k.client, r, out)
}

func (k *kesTarget) setup(ctx context.Context) error {
	k.runID = randomHex(4)
	if k.keyID != "" {
		return k.call(ctx, "GET", "/v1/key/describe/"+url.PathEscape(k.keyID), nil, nil)
	}
	k.keyID = "bench-kes-" + k.runID
	if err := k.call(ctx, "POST", "/v1/key/create/"+k.keyID, nil, nil); err != nil {
		return fmt.Errorf("creating the bench key: %w", err)
	}
	fmt.Fprintf(k.log, "keyward-kes: created key %s\n", k.keyID)
	return nil
}

func (k *kesTarget) tmpl(method, path string, body []byte) *template {
	h := http.Header{}
	if body != nil {
		h.Set("Content-Type", "application/json")
	}
	return &template{method: method, url: k.base + path, body: body, base: h, now: time.Now}
}

func (k *kesTarget) plan(op string) Plan {
	p := Plan{Target: k.name(), Op: op, TLS: k.tls}
	key := url.PathEscape(k.keyID)
	generateBody := mustJSON(map[string]any{"context": kesBenchContext})
	switch op {
	case "generate":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("POST", "/v1/key/generate/"+key, generateBody))
		}
	case "decrypt":
		p.NewRequester = func(ctx context.Context, _ int) (Requester, error) {
			var dek struct {
				Ciphertext []byte `json:"ciphertext"`
			}
			if err := k.call(ctx, "POST", "/v1/key/generate/"+key, generateBody, &dek); err != nil {
				return nil, err
			}
			body := mustJSON(map[string]any{"ciphertext": dek.Ciphertext, "context": kesBenchContext})
			return prepared(k.tmpl("POST", "/v1/key/decrypt/"+key, body))
		}
	case "encrypt":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			body, _ := json.Marshal(map[string]any{"plaintext": []byte(randomHex(16)), "context": kesBenchContext})
			return prepared(k.tmpl("POST", "/v1/key/encrypt/"+key, body))
		}
	case "describe":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("GET", "/v1/key/describe/"+key, nil))
		}
	case "list":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(k.tmpl("GET", "/v1/key/list/*", nil))
		}
	case "create":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return RequesterFunc(func(ctx context.Context) (*http.Request, error) {
				path := fmt.Sprintf("/v1/key/create/bench-kes-%s-%d", k.runID, k.seq.Add(1))
				return k.tmpl("POST", path, nil).Request(ctx)
			}), nil
		}
	}
	return p
}

func bytesReader(b []byte) io.Reader {
	if b == nil {
		return nil
	}
	return bytes.NewReader(b)
}
