package e2e

// Vault token rotation through reconfigure, and two Keyward nodes sharing
// one Vault (state propagation within the 5-second revalidation interval,
// exactly one destruction by the two sweepers).

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// TestVaultTokenRotation rotates the Vault token with /kms/reconfigure while
// requests stream: none fails, the old token can then be revoked, and a bad
// token is refused while the service keeps serving.
func TestVaultTokenRotation(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			t1 := createVaultToken(t, v, "root")
			t2 := createVaultToken(t, v, "root")
			guard := newLeakGuard(t, t1, t2)
			srv := startServer(t, serverOpts{})
			c := guard.client(t, srv)
			configureVault(t, c, vaultConfig(v.Addr, backend, vaultPrefix(t), tokenAuth(t1)))
			startVaultKMS(t, c)
			createKey(t, c, "rot-key")
			preCtx := map[string]string{"phase": "pre"}
			pre := generate(t, c, "rot-key", preCtx)

			s := startGenerateStream(c, 4, "rot-key", 10*time.Millisecond)
			defer s.halt()
			time.Sleep(700 * time.Millisecond)
			start := time.Now()
			st, m, raw := c.do("POST", "/kms/reconfigure", map[string]any{"auth_method": tokenAuth(t2)})
			took := time.Since(start)
			if wantStatus(t, "reconfigure with a new token", st, raw, 200) && (m["success"] != true || str(m, "status") != "Running") {
				t.Errorf("reconfigure: want {success:true, status:Running}; got %s", short(raw))
			}
			t.Logf("reconfigure took %s", took.Round(time.Millisecond))
			time.Sleep(700 * time.Millisecond)

			revokeAt := time.Now()
			vaultOK(t, v, "POST", "/v1/auth/token/revoke", map[string]any{"token": t1}, v.Token)
			if tokenValid(t, v, t1) {
				t.Fatalf("the old token still works after its revocation")
			}
			time.Sleep(500 * time.Millisecond)
			// Force Vault round trips with the current credentials.
			if st, _, raw := c.do("POST", "/kms/clear-cache", nil); st != 204 {
				t.Errorf("clear-cache: want 204; got %d %s", st, short(raw))
			}
			time.Sleep(time.Second)
			rs := s.halt()
			var failed []callResult
			afterRevoke := 0
			for _, r := range rs {
				if !is200(r) {
					failed = append(failed, r)
				} else if r.start.After(revokeAt) {
					afterRevoke++
				}
			}
			if len(failed) > 0 {
				t.Errorf("token rotation: %d of %d streamed calls failed (%s); first: %s", len(failed), len(rs), summarize(failed), failed[0])
			}
			if afterRevoke == 0 {
				t.Errorf("no call succeeded after the old token was revoked")
			}
			t.Logf("%d calls during the rotation, %d after the revocation", len(rs), afterRevoke)
			if st, p, raw := decrypt(t, c, pre.Blob, preCtx); st != 200 || !bytes.Equal(p, pre.Plaintext) {
				t.Errorf("decrypt after the rotation: got %d %s", st, short(raw))
			}
			createKey(t, c, "after-rotation") // a write with the new token
			for _, r := range []callResult{rs[0], rs[len(rs)-1]} {
				if st, p, raw := decrypt(t, c, r.blob, r.ctx); st != 200 || !bytes.Equal(p, r.plain) {
					t.Errorf("decrypt a streamed blob: got %d %s", st, short(raw))
				}
			}

			// A bad token: the call fails, the service serves on with t2.
			bad := "hvs.bogus" + randomHex(12)
			guard.add(bad)
			st, _, raw = c.do("POST", "/kms/reconfigure", map[string]any{"auth_method": tokenAuth(bad)})
			if st < 400 {
				t.Errorf("reconfigure with a bad token: want an error; got %d %s", st, short(raw))
			} else {
				var e struct{ Code, Message, RequestID string }
				if json.Unmarshal(raw, &e) != nil || e.Code == "" || e.Message == "" {
					t.Errorf("reconfigure with a bad token: want a JSON error body; got %d %s", st, short(raw))
				}
				// docs/api.md, "Errors": a client error is never a 500;
				// docs/vault.md: credentials refused while reconfiguring
				// answer 400 InvalidRequest.
				if st == 500 {
					t.Errorf("reconfigure with a bad token: want a 4xx (docs/vault.md: 400 InvalidRequest), not 500: %s", short(raw))
				}
				t.Logf("reconfigure with a bad token: %d %s", st, short(raw))
			}
			if status, m, raw := kmsStatus(t, c); status != "Running" || m["healthy"] != true {
				t.Errorf("status after a refused reconfigure: want Running and healthy; got %s", short(raw))
			}
			c.do("POST", "/kms/clear-cache", nil)
			if st, p, raw := decrypt(t, c, pre.Blob, preCtx); st != 200 || !bytes.Equal(p, pre.Plaintext) {
				t.Errorf("decrypt after a refused reconfigure (cache cleared): got %d %s", st, short(raw))
			}
			generate(t, c, "rot-key", nil)
			createKey(t, c, "after-bad-token")

			// The new token was persisted: a restarted process runs on it.
			srv.Stop()
			srv2 := startServer(t, serverOpts{DataDir: srv.DataDir})
			c2 := guard.client(t, srv2)
			if status, _, raw := kmsStatus(t, c2); status != "Running" {
				t.Errorf("status after a restart (old token revoked): want Running; got %s", short(raw))
			}
			if st, p, raw := decrypt(t, c2, pre.Blob, preCtx); st != 200 || !bytes.Equal(p, pre.Plaintext) {
				t.Errorf("decrypt after a restart: got %d %s", st, short(raw))
			}
		})
	}
}

// TestVaultTwoNodes runs two Keyward processes (two data dirs) on the same
// Vault settings: keys are shared, a state change on one node is honoured
// by the other within the revalidation interval, and a due deletion is
// carried out exactly once.
func TestVaultTwoNodes(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			// A created token, not the dev root token "root": a secret short
			// enough to occur by chance in a base64 data key is no canary.
			tok := createVaultToken(t, v, "root")
			guard := newLeakGuard(t, tok)
			env := []string{"KEYWARD_TEST_DAY_SECONDS=1"}
			a := startServer(t, serverOpts{Env: env})
			b := startServer(t, serverOpts{Env: env})
			ca, cb := guard.client(t, a), guard.client(t, b)
			body := vaultConfig(v.Addr, backend, vaultPrefix(t), tokenAuth(tok))
			configureVault(t, ca, body)
			configureVault(t, cb, body)
			// Both start at once: both find the default key missing.
			var wg sync.WaitGroup
			starts := make([]*response, 2)
			errs := make([]error, 2)
			for i, c := range []*client{ca, cb} {
				wg.Add(1)
				go func() {
					defer wg.Done()
					starts[i], errs[i] = c.send("POST", adminPrefix+"/kms/start", nil)
				}()
			}
			wg.Wait()
			for i, r := range starts {
				if errs[i] != nil || r.Status != 200 {
					t.Fatalf("node %c: start (both nodes at once): want 200; got %v %v", 'A'+i, errs[i], r)
				}
			}

			// A key made on A is usable on B, and the other way round.
			createKey(t, ca, "shared")
			encCtx := map[string]string{"tenant": "t1"}
			onB := generate(t, cb, "shared", encCtx)
			if st, p, raw := decrypt(t, ca, onB.Blob, encCtx); st != 200 || !bytes.Equal(p, onB.Plaintext) {
				t.Errorf("decrypt on A a data key generated on B: got %d %s", st, short(raw))
			}
			onA := generate(t, ca, "shared", nil)
			if st, p, raw := decrypt(t, cb, onA.Blob, nil); st != 200 || !bytes.Equal(p, onA.Plaintext) {
				t.Errorf("decrypt on B a data key generated on A: got %d %s", st, short(raw))
			}
			if ids, _ := listAll(t, cb, 100); !contains(ids, "shared") || !contains(ids, vaultDefaultKey) {
				t.Errorf("list on B: want shared and %s; got %v", vaultDefaultKey, ids)
			}
			if st, md, raw := describe(t, cb, "shared"); st != 200 || str(md, "description") != "e2e key shared" {
				t.Errorf("describe on B: got %d %s", st, short(raw))
			}

			// Schedule deletion on A (30 one-second days: not due during
			// this part): B refuses within the revalidation interval.
			generate(t, cb, "shared", nil) // B's cache is warm
			st, _, raw := ca.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "shared", "pending_window_in_days": 30})
			if !wantStatus(t, "schedule deletion on A", st, raw, 200) {
				t.FailNow()
			}
			scheduled := time.Now()
			waitState(t, "B refuses generate after A scheduled the deletion", cb, scheduled, 409, "InvalidKeyState")
			st, _, raw = decrypt(t, cb, onA.Blob, nil)
			wantError(t, "decrypt on B while the key is pending deletion", st, raw, 409, "InvalidKeyState")
			st, _, raw = ca.do("POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": "shared"})
			if !wantStatus(t, "cancel deletion on A", st, raw, 200) {
				t.FailNow()
			}
			cancelled := time.Now()
			waitState(t, "B serves again after A cancelled the deletion", cb, cancelled, 200, "")
			if st, p, raw := decrypt(t, cb, onB.Blob, encCtx); st != 200 || !bytes.Equal(p, onB.Plaintext) {
				t.Errorf("decrypt on B after the cancellation: got %d %s", st, short(raw))
			}

			// Disable on A is honoured by B within the revalidation interval;
			// enable on A restores B.
			st, _, raw = ca.do("POST", "/kms/keys/disable", map[string]any{"key_id": "shared"})
			if !wantStatus(t, "disable on A", st, raw, 200) {
				t.FailNow()
			}
			waitState(t, "B refuses generate after A disabled the key", cb, time.Now(), 409, "InvalidKeyState")
			st, _, raw = ca.do("POST", "/kms/keys/enable", map[string]any{"key_id": "shared"})
			if !wantStatus(t, "enable on A", st, raw, 200) {
				t.FailNow()
			}
			waitState(t, "B serves again after A enabled the key", cb, time.Now(), 200, "")

			// A due deletion is carried out once, by one of the two sweepers.
			createKey(t, ca, "doomed")
			doomedA := generate(t, ca, "doomed", nil)
			doomedB := generate(t, cb, "doomed", nil)
			// Timed from before the request: the window starts while the
			// server handles it, which on a loaded machine can take seconds.
			scheduled = time.Now()
			st, _, raw = ca.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "doomed", "pending_window_in_days": 7})
			if !wantStatus(t, "schedule deletion of doomed on A", st, raw, 200) {
				t.FailNow()
			}
			goneOn := map[string]time.Duration{}
			waitUntil(20*time.Second, 200*time.Millisecond, func() bool {
				for name, c := range map[string]*client{"A": ca, "B": cb} {
					if _, ok := goneOn[name]; ok {
						continue
					}
					r, err := c.send("GET", adminPrefix+"/kms/keys/doomed", nil)
					if err == nil && r.Status == 404 {
						goneOn[name] = time.Since(scheduled)
					} else if err != nil || (r.Status != 200 && r.Status != 404) {
						t.Errorf("node %s: describe doomed while pending: %v %v", name, err, r)
					}
				}
				return len(goneOn) == 2
			})
			for _, name := range []string{"A", "B"} {
				d, ok := goneOn[name]
				switch {
				case !ok:
					t.Errorf("node %s: doomed still described 20 s after a 7-second window", name)
				case d < 6*time.Second:
					t.Errorf("node %s: doomed gone %s after scheduling, before its 7-second window ended", name, d)
				default:
					t.Logf("node %s: doomed gone %s after scheduling", name, d.Round(time.Millisecond))
				}
			}
			time.Sleep(2500 * time.Millisecond) // a few more sweeps on both nodes
			for name, c := range map[string]*client{"A": ca, "B": cb} {
				for _, dk := range []dataKey{doomedA, doomedB} {
					st, _, raw := decrypt(t, c, dk.Blob, nil)
					wantError(t, "node "+name+": decrypt under the destroyed key", st, raw, 404, "NotFound")
				}
				if ids, _ := listAll(t, c, 100); contains(ids, "doomed") {
					t.Errorf("node %s: the destroyed key is still listed", name)
				}
			}
			destroyed := 0
			for name, s := range map[string]*server{"A": a, "B": b} {
				for _, l := range logLines(s.Stderr()) {
					if strings.Contains(str(l, "msg"), "key destroyed") && str(l, "key_id") == "doomed" {
						destroyed++
						t.Logf("node %s: %s", name, str(l, "msg"))
					}
					if str(l, "level") == "ERROR" {
						t.Errorf("node %s logged an error: %v", name, l)
					}
				}
			}
			if destroyed != 1 {
				t.Errorf("want exactly one \"key destroyed\" log line for doomed across both nodes; got %d", destroyed)
			}
			prefix := str(body, "key_path_prefix")
			if kvExists(t, v, prefix+"/doomed") {
				t.Errorf("the destroyed key's KV record secret/metadata/%s/doomed still exists (material not gone for good)", prefix)
			}
			if backend == "vault-transit" {
				if st, raw := v.Do("GET", "/v1/transit/keys/doomed", nil, v.Token); st != 404 {
					t.Errorf("the destroyed key's Transit key still exists: %d %s", st, short(raw))
				}
			}
			// The surviving key works on both nodes.
			for name, c := range map[string]*client{"A": ca, "B": cb} {
				if st, p, raw := decrypt(t, c, onB.Blob, encCtx); st != 200 || !bytes.Equal(p, onB.Plaintext) {
					t.Errorf("node %s: decrypt under shared at the end: got %d %s", name, st, short(raw))
				}
			}
		})
	}
}

// waitState polls generate-data-key on "shared" through c until it answers
// wantStatus (and wantCode), and asserts that it took at most 6 s from
// since. Any other answer than the old (200 or 409) or the new one fails.
func waitState(t *testing.T, what string, c *client, since time.Time, wantStatus int, wantCode string) {
	t.Helper()
	var last string
	took, ok := waitUntil(8*time.Second, 100*time.Millisecond, func() bool {
		r, err := c.send("POST", adminPrefix+"/kms/generate-data-key", map[string]any{"key_id": "shared", "key_spec": "AES_256"})
		if err != nil {
			last = err.Error()
			return false
		}
		last = fmt.Sprintf("%d %s", r.Status, short(r.Raw))
		switch {
		case r.Status == wantStatus && (wantCode == "" || str(r.JSON, "code") == wantCode):
			return true
		case r.Status == 200 || (r.Status == 409 && str(r.JSON, "code") == "InvalidKeyState"):
			return false
		}
		t.Errorf("%s: unexpected answer %s", what, last)
		return false
	})
	took = time.Since(since)
	if !ok {
		t.Errorf("%s: not within 8 s (last answer %s)", what, last)
		return
	}
	if took > 6*time.Second {
		t.Errorf("%s: took %s; want at most 6 s (5 s revalidation)", what, took.Round(time.Millisecond))
	}
	t.Logf("%s: %s", what, took.Round(time.Millisecond))
}
