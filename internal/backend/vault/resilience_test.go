package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// TestOutage stops a file-storage Vault under both backends: within the
// revalidation interval the vault backend still serves its warm cache;
// after it, and for everything vault-transit does, calls fail with
// kms.ErrUnavailable well within timeout_seconds × (retries+1); a
// restarted but sealed Vault is unavailable too; once unsealed, every
// call works again and old ciphertexts still unwrap.
func TestOutage(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartFile(t)
	ctx := context.Background()
	clk := newClock()
	const timeout, retries = 2, 2
	bound := timeout*time.Second*(retries+1) + time.Second
	open := func(typ string) kms.Engine {
		cfg := testConfig(s.Addr, s.Token, typ, freshPrefix())
		cfg.Timeout, cfg.Retries = timeout*time.Second, retries
		return openT(t, cfg, Options{Now: clk.Now})
	}
	kv, tr := open(config.BackendVault), open(config.BackendVaultTransit)
	pt, aad := []byte("a data key of 32 bytes, really!!"), []byte("ctx")
	cts := map[kms.Engine][]byte{}
	for _, b := range []kms.Engine{kv, tr} {
		if _, err := b.Create(ctx, testMeta("k")); err != nil {
			t.Fatal(err)
		}
		ct, err := b.Wrap(ctx, "k", 1, pt, aad)
		if err != nil {
			t.Fatal(err)
		}
		cts[b] = ct
	}
	unavailable := func(name string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if elapsed := time.Since(start); !errors.Is(err, kms.ErrUnavailable) || elapsed > bound {
			t.Errorf("%s: %v after %v (want ErrUnavailable within %v)", name, err, elapsed, bound)
		}
	}
	allDown := func(phase string) {
		t.Helper()
		for name, b := range map[string]kms.Engine{"vault": kv, "vault-transit": tr} {
			b := b
			unavailable(phase+" "+name+" wrap", func() error { _, err := b.Wrap(ctx, "k", 1, pt, aad); return err })
			unavailable(phase+" "+name+" unwrap", func() error { _, err := b.Unwrap(ctx, "k", 1, cts[b], aad); return err })
			unavailable(phase+" "+name+" create", func() error { _, err := b.Create(ctx, testMeta("new")); return err })
			unavailable(phase+" "+name+" list", func() error { _, err := b.List(ctx, "", 10); return err })
			unavailable(phase+" "+name+" health", func() error { return b.Health(ctx) })
			b.ClearCache()
			unavailable(phase+" "+name+" describe", func() error { _, err := b.Describe(ctx, "k"); return err })
		}
	}

	s.Stop()
	if _, err := kv.Wrap(ctx, "k", 1, pt, aad); err != nil {
		t.Fatalf("vault backend, warm cache, Vault down: %v", err)
	}
	if got, err := kv.Unwrap(ctx, "k", 1, cts[kv], aad); err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("vault backend, warm cache, Vault down: unwrap: %v", err)
	}
	// The key's state must now be confirmed, and the names listed again
	// (a listing is at most 2 × DefaultIndexRefresh old).
	clk.Advance(max(DefaultRevalidate, 2*DefaultIndexRefresh) + time.Second)
	allDown("stopped:")

	s.Start() // sealed
	allDown("sealed:")

	s.Unseal()
	for _, b := range []kms.Engine{kv, tr} {
		if err := b.Health(ctx); err != nil {
			t.Fatalf("health after unseal: %v", err)
		}
		if got, err := b.Unwrap(ctx, "k", 1, cts[b], aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatalf("old ciphertext after the outage: %v", err)
		}
		if _, err := b.Create(ctx, testMeta("after")); err != nil {
			t.Fatalf("create after the outage: %v", err)
		}
		if page, err := b.List(ctx, "", 10); err != nil || len(page.Keys) != 2 {
			t.Fatalf("list after the outage: %+v %v", page, err)
		}
	}
}

// TestRetryPolicy puts a failure-injecting proxy in front of a real Vault
// and counts attempts: reads are retried (5xx, dropped connections,
// per-attempt timeouts) up to retry_attempts times with backoff; writes
// and 4xx answers are sent once.
func TestRetryPolicy(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	p := newProxy(t, s.Addr)
	ctx := context.Background()
	cfg := testConfig(p.URL, s.Token, config.BackendVaultTransit, freshPrefix())
	cfg.Timeout, cfg.Retries = time.Second, 3
	// No background index refresh: every request the proxy counts is the
	// test's own.
	b := openT(t, cfg, Options{IndexRefresh: -1})
	if _, err := b.Create(ctx, testMeta("k")); err != nil {
		t.Fatal(err)
	}
	record := "GET /v1/secret/data/" + cfg.KeyPathPrefix + "/k"

	// inject answers the first n requests of method (GET, LIST, PUT) to a
	// secret/ or transit/ path with f.
	inject := func(method string, n int, f func(w http.ResponseWriter, r *http.Request)) {
		var seen atomic.Int64
		p.setFail(func(w http.ResponseWriter, r *http.Request) bool {
			m := r.Method
			if r.URL.Query().Get("list") == "true" {
				m = "LIST"
			}
			if m != method || !strings.Contains(r.URL.Path, "/secret/") && !strings.Contains(r.URL.Path, "/transit/") || seen.Add(1) > int64(n) {
				return false
			}
			f(w, r)
			return true
		})
		b.ClearCache()
		p.take()
	}
	status := func(code int, msg string) func(http.ResponseWriter, *http.Request) {
		return func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(code)
			fmt.Fprintf(w, `{"errors":[%q]}`, msg)
		}
	}
	hangUp := func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := w.(http.Hijacker).Hijack()
		if err == nil {
			conn.Close()
		}
	}
	stall := func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
	}
	describe := func() (error, time.Duration, int) {
		start := time.Now()
		_, err := b.Describe(ctx, "k")
		return err, time.Since(start), p.take()[record]
	}

	inject("GET", 2, status(503, "Vault is sealed"))
	if err, _, n := describe(); err != nil || n != 3 {
		t.Errorf("503 twice: %v after %d attempts", err, n)
	}
	inject("GET", 1, hangUp)
	if err, _, n := describe(); err != nil || n != 2 {
		t.Errorf("dropped connection: %v after %d attempts", err, n)
	}
	inject("GET", 1, stall)
	if err, d, n := describe(); err != nil || n != 2 || d < time.Second || d > 2*time.Second {
		t.Errorf("stalled first attempt: %v after %d attempts, %v", err, n, d)
	}
	inject("GET", 100, status(502, "bad gateway"))
	if err, d, n := describe(); !errors.Is(err, kms.ErrUnavailable) || n != 4 || d < 700*time.Millisecond {
		t.Errorf("502 forever: %v after %d attempts, %v (want 4 attempts, 100+200+400 ms backoff)", err, n, d)
	}
	inject("GET", 100, stall)
	if err, d, n := describe(); !errors.Is(err, kms.ErrUnavailable) || n != 4 || d > 4*time.Second+2*time.Second || !strings.Contains(err.Error(), "no answer within 1s") {
		t.Errorf("stalled forever: %v after %d attempts, %v", err, n, d)
	}
	inject("LIST", 1, status(500, "internal error"))
	if _, err := HoldsKeys(ctx, cfg); err != nil || total(p.take(), "LIST ") != 2 {
		t.Errorf("LIST after a 500: %v", err)
	}
	for _, code := range []int{400, 403, 404, 405} {
		inject("GET", 1, status(code, "no"))
		if err, _, n := describe(); err == nil || errors.Is(err, kms.ErrUnavailable) || n != 1 {
			t.Errorf("%d: %v after %d attempts (4xx: no retry, not unavailable)", code, err, n)
		}
	}

	// Writes: sent once, whatever the failure.
	for name, f := range map[string]func(http.ResponseWriter, *http.Request){"503": status(503, "unavailable"), "hang-up": hangUp} {
		b.Wrap(ctx, "k", 1, []byte("x"), nil) // warm, so only the write goes out
		inject("PUT", 1, f)
		p.take()
		_, err := b.Wrap(ctx, "k", 1, []byte("x"), nil)
		if c := p.take(); !errors.Is(err, kms.ErrUnavailable) || total(c, "PUT ") != 1 {
			t.Errorf("wrap (a Transit write) with %s: %v, calls %v", name, err, c)
		}
		inject("PUT", 1, f)
		_, err = b.Update(ctx, "k", func(m *kms.Metadata) error { m.Description = "x"; return nil })
		if c := p.take(); !errors.Is(err, kms.ErrUnavailable) || total(c, "PUT ") != 1 {
			t.Errorf("update (a KV write) with %s: %v, calls %v", name, err, c)
		}
	}
	p.setFail(nil)
}

// TestTwoNodes opens each backend twice over one Vault (two nodes): a key
// created on A wraps on B and unwraps on A; a state change on A is seen by
// B within the 5 s revalidation interval; concurrent destructions from both
// nodes have exactly one winner, the other gets kms.ErrNotFound.
func TestTwoNodes(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	for _, typ := range []string{config.BackendVault, config.BackendVaultTransit} {
		t.Run(typ, func(t *testing.T) {
			t.Parallel()
			cfg := testConfig(s.Addr, s.Token, typ, freshPrefix())
			a, b := openT(t, cfg, Options{}), openT(t, cfg, Options{})
			pt, aad := []byte("a data key of 32 bytes, really!!"), []byte("ctx")
			if _, err := a.Create(ctx, testMeta("k")); err != nil {
				t.Fatal(err)
			}
			ct, err := b.Wrap(ctx, "k", 1, pt, aad)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := a.Unwrap(ctx, "k", 1, ct, aad); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("unwrap on A: %v", err)
			}

			if m, err := b.Describe(ctx, "k"); err != nil || m.State != kms.StateEnabled {
				t.Fatalf("describe on B: %+v %v", m, err)
			}
			start := time.Now()
			if _, err := a.Update(ctx, "k", func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil }); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := b.Describe(ctx, "k")
				if err != nil {
					t.Fatal(err)
				}
				if m.State == kms.StateDisabled {
					break
				}
				if time.Since(start) > DefaultRevalidate+time.Second {
					t.Fatalf("B still sees %s after %v", m.State, time.Since(start))
				}
				time.Sleep(100 * time.Millisecond)
			}
			t.Logf("B saw the change after %v", time.Since(start).Round(time.Millisecond))

			onlyDisabled := func(m kms.Metadata) error {
				if m.State != kms.StateDisabled {
					return errors.New("not disabled")
				}
				return nil
			}
			for i := 0; i < 5; i++ {
				id := fmt.Sprintf("d%d", i)
				if _, err := a.Create(ctx, kms.Metadata{ID: id, State: kms.StateDisabled, Usage: kms.UsageEncryptDecrypt}); err != nil {
					t.Fatal(err)
				}
				b.Describe(ctx, id)
				var wg sync.WaitGroup
				errs := make([]error, 2)
				for j, n := range []kms.Engine{a, b} {
					wg.Add(1)
					go func() { defer wg.Done(); errs[j] = n.Destroy(ctx, id, onlyDisabled) }()
				}
				wg.Wait()
				ok, notFound := 0, 0
				for _, err := range errs {
					switch {
					case err == nil:
						ok++
					case errors.Is(err, kms.ErrNotFound):
						notFound++
					}
				}
				if ok != 1 || notFound != 1 {
					t.Fatalf("%s: concurrent destroys: %v", id, errs)
				}
				for _, n := range []kms.Engine{a, b} {
					if _, err := n.Describe(ctx, id); !errors.Is(err, kms.ErrNotFound) {
						t.Fatalf("%s after destroy: %v", id, err)
					}
				}
			}
		})
	}
}
