package e2e

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sync"
	"testing"

	"github.com/keyward/keyward/internal/vaulttest"
)

// TestVaultTransitConcurrentDataPlane drives the vault-transit backend with
// many concurrent callers, each with its own data and encryption context,
// so that Transit calls are coalesced into batch requests
// (internal/backend/vault/batch.go; batching itself is proven request by
// request in that package's tests). Every caller must get its own answer:
// an encrypt round trip returns the caller's plaintext, a generated data
// key decrypts to the caller's key, and a caller with a wrong context is
// refused alone while the others in the same batches succeed. The metrics
// show the batches.
func TestVaultTransitConcurrentDataPlane(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	configureVault(t, c, vaultConfig(v.Addr, "vault-transit", vaultPrefix(t), tokenAuth(v.Token)))
	startVaultKMS(t, c)
	createKey(t, c, "busy")

	const workers, rounds = 32, 12
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				ctx := map[string]string{"worker": fmt.Sprint(w), "round": fmt.Sprint(r)}
				plaintext := []byte(fmt.Sprintf("worker %d round %d: %x", w, r, w*1000+r))
				st, m, raw := c.do("POST", "/kms/encrypt", map[string]any{"key_id": "busy", "plaintext": b64(plaintext), "encryption_context": ctx})
				if st != 200 {
					t.Errorf("encrypt w%d r%d: %d %s", w, r, st, short(raw))
					return
				}
				blob := str(m, "ciphertext_blob")
				st, m, raw = c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": blob, "encryption_context": ctx})
				if st != 200 {
					t.Errorf("decrypt w%d r%d: %d %s", w, r, st, short(raw))
					return
				}
				if got, _ := base64.StdEncoding.DecodeString(str(m, "plaintext")); !bytes.Equal(got, plaintext) {
					t.Errorf("decrypt w%d r%d: got %q, want %q", w, r, got, plaintext)
				}

				st, m, raw = c.do("POST", "/kms/generate-data-key", map[string]any{"key_id": "busy", "encryption_context": ctx})
				if st != 200 {
					t.Errorf("generate w%d r%d: %d %s", w, r, st, short(raw))
					return
				}
				key, dkBlob := str(m, "plaintext_key"), str(m, "ciphertext_blob")
				wrong := map[string]string{"worker": fmt.Sprint(w), "round": fmt.Sprint(r + 1)}
				if r%3 == 0 {
					st, _, raw = c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": dkBlob, "encryption_context": wrong})
					wantError(t, fmt.Sprintf("decrypt w%d r%d with a wrong context", w, r), st, raw, 400, "InvalidCiphertext")
				}
				st, m, raw = c.do("POST", "/kms/decrypt", map[string]any{"ciphertext_blob": dkBlob, "encryption_context": ctx})
				if st != 200 || str(m, "plaintext") != key {
					t.Errorf("data key w%d r%d: %d, plaintext matches: %v (%s)", w, r, st, str(m, "plaintext") == key, short(raw))
				}
			}
		})
	}
	wg.Wait()

	// 32 callers and 2 lanes per key: calls did queue and go out batched.
	m := scrape(t, c)
	requests, calls := m["keyward_vault_transit_batch_requests_total"], m["keyward_vault_transit_batched_calls_total"]
	if requests < 1 || calls < 2*requests {
		t.Errorf("batch metrics: %v requests carrying %v calls; want batches of two or more", requests, calls)
	}
	t.Logf("%v Transit batch requests carried %v calls", requests, calls)
}
