package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

var prefixSeq atomic.Int64

// freshPrefix gives each test its own key_path_prefix on a shared server.
func freshPrefix() string { return fmt.Sprintf("kwtest/p%d", prefixSeq.Add(1)) }

// testConfig is a valid configuration for one of the two backends
// (config.BackendVault or config.BackendVaultTransit) against addr with a
// token.
func testConfig(addr, token, backendType, prefix string) Config {
	return Config{
		Transit: backendType == config.BackendVaultTransit,
		Address: addr, Auth: Auth{Method: "token", Token: token},
		MountPath: "transit", KVMount: "secret", KeyPathPrefix: prefix,
		Timeout: 5 * time.Second, Retries: 2,
	}
}

// engine is an opened backend under the keyring, as the server runs it.
type engine struct {
	*keyring.Keyring
	vb *Backend
}

// openT opens a backend with a cache of 100 keys and closes it when the
// test ends.
func openT(t testing.TB, cfg Config, o Options) *engine { return openCached(t, cfg, o, 100) }

// openCached is openT with a cache of entries keys (0: no cache).
func openCached(t testing.TB, cfg Config, o Options, entries int) *engine {
	t.Helper()
	vb, err := Open(context.Background(), cfg, o)
	if err != nil {
		t.Fatalf("open (transit %v): %v", cfg.Transit, err)
	}
	parts := vb.KeyringOptions()
	parts.CacheEntries, parts.CacheTTL = entries, 5*time.Minute
	e := &engine{keyring.New(parts), vb}
	t.Cleanup(func() { e.Close() })
	return e
}

// connOf returns the backend's Vault connection.
func connOf(e kms.Engine) *conn { return e.(*engine).vb.conn }

func testMeta(id string) kms.Metadata {
	return kms.Metadata{ID: id, State: kms.StateEnabled, Usage: kms.UsageEncryptDecrypt, CreationDate: time.Now().UTC().Truncate(time.Second)}
}

// mustDo sends a request as root and decodes the answer into out.
func mustDo(t testing.TB, s *vaulttest.Server, method, path string, body, out any) {
	t.Helper()
	status, b := s.Do(method, path, body, s.Token)
	if status >= 300 {
		t.Fatalf("%s %s: %d %s", method, path, status, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
	}
}

// proxy is a Vault front for tests: it forwards to a real Vault, counts
// requests ("METHOD /v1/path"), and lets a test inject failures.
type proxy struct {
	*httptest.Server
	mu     sync.Mutex
	counts map[string]int
	// fail, when set, may answer a request itself: it returns true when it
	// did (and the request is not forwarded).
	fail func(w http.ResponseWriter, r *http.Request) bool
}

func newProxy(t testing.TB, target string) *proxy {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{counts: map[string]int{}}
	rp := httputil.NewSingleHostReverseProxy(u)
	p.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		method := r.Method
		if r.URL.Query().Get("list") == "true" {
			method = "LIST"
		}
		p.mu.Lock()
		p.counts[method+" "+r.URL.Path]++
		fail := p.fail
		p.mu.Unlock()
		if fail != nil && fail(w, r) {
			return
		}
		rp.ServeHTTP(w, r)
	}))
	t.Cleanup(p.Close)
	return p
}

// take returns the counts since the last take, skipping sys/health.
func (p *proxy) take() map[string]int {
	p.mu.Lock()
	defer p.mu.Unlock()
	c := p.counts
	p.counts = map[string]int{}
	delete(c, "GET /v1/sys/health")
	return c
}

func (p *proxy) setFail(f func(w http.ResponseWriter, r *http.Request) bool) {
	p.mu.Lock()
	p.fail = f
	p.mu.Unlock()
}

// total sums counts whose key contains substr.
func total(counts map[string]int, substr string) int {
	n := 0
	for k, v := range counts {
		if strings.Contains(k, substr) {
			n += v
		}
	}
	return n
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Now()} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// interruptedDestroy destroys key id through a proxy that lets the
// tombstone be written and then fails every later write of the key's KV
// record and of its Transit key (the purge, the restore, deletion_allowed):
// what a node that dies in the middle of a destruction leaves behind, a
// tombstone of Keyward's own (and, on vault-transit, the Transit key).
func interruptedDestroy(t *testing.T, s *vaulttest.Server, cfg Config, o Options, id string) {
	t.Helper()
	p := newProxy(t, s.Addr)
	pcfg := cfg
	pcfg.Address = p.URL
	b := openT(t, pcfg, o)
	data := "/v1/" + cfg.KVMount + "/data/" + cfg.KeyPathPrefix + "/" + id
	meta := "/v1/" + cfg.KVMount + "/metadata/" + cfg.KeyPathPrefix + "/" + id
	key := "/v1/" + cfg.MountPath + "/keys/" + id
	var writes atomic.Int64
	p.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		fail := r.URL.Path == data && r.Method != http.MethodGet && writes.Add(1) > 1 ||
			r.URL.Path == meta && r.Method == http.MethodDelete ||
			strings.HasPrefix(r.URL.Path, key) && r.Method != http.MethodGet
		if fail {
			http.Error(w, `{"errors":["injected"]}`, http.StatusInternalServerError)
		}
		return fail
	})
	if err := b.Destroy(context.Background(), id, nil); err == nil {
		t.Fatalf("the interrupted destruction of %q succeeded", id)
	}
}
