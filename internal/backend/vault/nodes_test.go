package vault

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// TestSeveralAddresses gives a backend two "nodes" (two counting proxies
// in front of one real Vault, as two nodes of a cluster reach the same
// data) and makes the one in use fail in each way a cluster node can: a
// standby's redirect (the request was not executed: a write moves to the
// other node), a connection dropped after a write was sent (the write is
// not repeated: 503), a dropped read (sent again to the other node), and
// a dead first address at open. Node moves are logged by position only.
func TestSeveralAddresses(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	for _, typ := range []string{config.BackendVault, config.BackendVaultTransit} {
		t.Run(typ, func(t *testing.T) {
			p1, p2 := newProxy(t, s.Addr), newProxy(t, s.Addr)
			cfg := testConfig(p1.URL+","+p2.URL, s.Token, typ, freshPrefix())
			b := openT(t, cfg, Options{IndexRefresh: -1})
			c := connOf(b)
			if _, err := b.Create(ctx, testMeta("k1")); err != nil {
				t.Fatal(err)
			}
			if n := total(p2.take(), "/v1/"); n != 0 || c.nodeInUse() != 0 {
				t.Fatalf("a healthy first node: node 2 got %d calls, node in use %d", n, c.nodeInUse()+1)
			}
			ct, err := b.Wrap(ctx, "k1", 1, []byte("0123456789abcdef"), nil)
			if err != nil {
				t.Fatal(err)
			}

			// Node 1 redirects everything (a standby during an election):
			// the create is not executed there and goes to node 2.
			p1.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				w.Header().Set("Location", p1.URL+r.URL.RequestURI())
				w.WriteHeader(http.StatusTemporaryRedirect)
				return true
			})
			if _, err := b.Create(ctx, testMeta("k2")); err != nil {
				t.Fatalf("create with node 1 redirecting: %v", err)
			}
			if c.nodeInUse() != 1 || total(p2.take(), "PUT /v1/"+cfg.KVMount+"/data/") == 0 {
				t.Fatalf("create with node 1 redirecting: node in use %d", c.nodeInUse()+1)
			}
			p1.take()

			// Node 2 drops the connection after a KV write arrived: it may
			// have been executed, so it is not sent again; 503.
			p1.setFail(nil)
			p2.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/data/") {
					hangUp(w)
					return true
				}
				return false
			})
			_, err = b.Update(ctx, "k1", func(m *kms.Metadata) error { m.Description = "x"; return nil })
			if !errors.Is(err, kms.ErrUnavailable) {
				t.Fatalf("a write whose connection dropped: %v, want ErrUnavailable", err)
			}
			if n := total(p1.take(), "PUT /v1/"+cfg.KVMount+"/data/"); n != 0 {
				t.Fatalf("the dropped write was sent again to node 1 (%d times)", n)
			}
			if c.nodeInUse() != 0 {
				t.Fatalf("after node 2 failed: node in use %d", c.nodeInUse()+1)
			}
			p2.setFail(nil)

			// Node 1 drops reads and Transit calls: they go to node 2.
			p1.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				if r.URL.Path != "/v1/sys/health" {
					hangUp(w)
					return true
				}
				return false
			})
			b.ClearCache()
			if m, err := b.Describe(ctx, "k1"); err != nil || m.Description != "" {
				t.Fatalf("describe with node 1 dropping connections: %+v %v", m, err)
			}
			if got, err := b.Unwrap(ctx, "k1", 1, ct, nil); err != nil || string(got) != "0123456789abcdef" {
				t.Fatalf("unwrap after moving to node 2: %q %v", got, err)
			}
			if c.nodeInUse() != 1 {
				t.Fatalf("node in use %d, want 2", c.nodeInUse()+1)
			}
			if err := b.Health(ctx); err != nil {
				t.Fatal(err)
			}

			// Both nodes down: an answer within the per-attempt bounds, 503.
			p2.setFail(func(w http.ResponseWriter, r *http.Request) bool { hangUp(w); return true })
			p1.setFail(func(w http.ResponseWriter, r *http.Request) bool { hangUp(w); return true })
			b.ClearCache()
			if _, err := b.Describe(ctx, "k1"); !errors.Is(err, kms.ErrUnavailable) {
				t.Fatalf("both nodes down: %v", err)
			}
			if err := b.Health(ctx); !errors.Is(err, kms.ErrUnavailable) {
				t.Fatalf("health with both nodes down: %v", err)
			}
		})
	}

	// A first address that refuses connections: open moves on at once.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	b := openT(t, testConfig(dead+","+s.Addr, s.Token, config.BackendVault, freshPrefix()), Options{IndexRefresh: -1})
	if _, err := b.Create(ctx, testMeta("k")); err != nil {
		t.Fatalf("create with a dead first address: %v", err)
	}
	if err := b.Health(ctx); err != nil || connOf(b).nodeInUse() != 1 {
		t.Fatalf("health with a dead first address: %v, node %d", err, connOf(b).nodeInUse()+1)
	}
}

func hangUp(w http.ResponseWriter) {
	if conn, _, err := w.(http.Hijacker).Hijack(); err == nil {
		conn.Close()
	}
}
