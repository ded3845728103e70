package e2e

// Keyward over a Vault cluster with integrated (raft) storage that loses
// its active node (docs/vault.md, "A Vault cluster").

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// haCall is one call of an HA stream.
type haCall struct {
	node       string
	op         string
	start, end time.Time
	status     int // 0: transport error
	err        error
	keyID      string
	blob       string
	plain      []byte
	ctx        map[string]string
}

// haStream runs, from several goroutines against one Keyward node, a mix
// of creates (fresh ids), data-key generations, decryptions of the blobs
// it got, and describes, recording every call.
type haStream struct {
	stop atomic.Bool
	wg   sync.WaitGroup
	mu   sync.Mutex
	res  []haCall
}

func startHAStream(c *client, node string, workers int, shared string) *haStream {
	s := &haStream{}
	for w := range workers {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			encCtx := map[string]string{"node": node, "worker": fmt.Sprint(w)}
			var blobs []haCall
			for i := 0; !s.stop.Load(); i++ {
				call := haCall{node: node, start: time.Now()}
				var r *response
				var err error
				switch i % 4 {
				case 0:
					call.op, call.keyID = "create", fmt.Sprintf("ha-%s-%d-%d", node, w, i)
					r, err = c.send("POST", adminPrefix+"/kms/keys", map[string]any{"key_id": call.keyID})
				case 1:
					call.op, call.keyID, call.ctx = "generate", shared, encCtx
					r, err = c.send("POST", adminPrefix+"/kms/generate-data-key", map[string]any{"key_id": shared, "key_spec": "AES_256", "encryption_context": encCtx})
				case 2:
					call.op = "decrypt"
					if len(blobs) == 0 {
						call.op = "describe"
						r, err = c.send("GET", adminPrefix+"/kms/keys/"+shared, nil)
						break
					}
					b := blobs[i%len(blobs)]
					call.blob, call.plain, call.ctx = b.blob, b.plain, b.ctx
					r, err = c.send("POST", adminPrefix+"/kms/decrypt", map[string]any{"ciphertext_blob": b.blob, "encryption_context": b.ctx})
				default:
					call.op = "describe"
					r, err = c.send("GET", adminPrefix+"/kms/keys/"+shared, nil)
				}
				call.end, call.err = time.Now(), err
				if r != nil {
					call.status = r.Status
					if r.Status == 200 {
						switch call.op {
						case "generate":
							call.blob = str(r.JSON, "ciphertext_blob")
							call.plain, _ = base64.StdEncoding.DecodeString(str(r.JSON, "plaintext_key"))
							blobs = append(blobs, call)
						case "decrypt":
							got, _ := base64.StdEncoding.DecodeString(str(r.JSON, "plaintext"))
							if !bytes.Equal(got, call.plain) {
								call.err = fmt.Errorf("decrypt answered 200 with another plaintext (a wrong answer)")
							}
						}
					}
				}
				s.mu.Lock()
				s.res = append(s.res, call)
				s.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		}()
	}
	return s
}

func (s *haStream) halt() []haCall {
	s.stop.Store(true)
	s.wg.Wait()
	return s.res
}

// TestVaultClusterLosesItsLeader runs two Keyward nodes over a 3-node
// Vault raft cluster, each configured with all three Vault addresses and
// a stream of requests, and kills the active Vault node with SIGKILL.
// Every answer is 200 or 503 (never a hang: the clients' 30 s timeout
// would show as a transport error; never another status, never a wrong
// plaintext), no acknowledged create is lost (each is described and
// listed on both nodes afterwards, and every acknowledged data key
// decrypts on both), and both nodes serve after the election. The error
// window (first to last 503) is logged, not asserted.
func TestVaultClusterLosesItsLeader(t *testing.T) {
	t.Parallel()
	cl := vaulttest.StartCluster(t, 3)
	for _, backend := range vaultBackends {
		t.Run(backend, func(t *testing.T) {
			active := cl.WaitActive(time.Minute)
			tok := createVaultToken(t, active, "root")
			guard := newLeakGuard(t, tok)
			a, b := startServer(t, serverOpts{}), startServer(t, serverOpts{})
			ca, cb := guard.client(t, a), guard.client(t, b)
			body := vaultConfig(strings.Join(cl.Addrs(), ","), backend, vaultPrefix(t), tokenAuth(tok))
			if backend == "vault-transit" {
				body["mount_path"] = active.NewTransitMount()
			}
			for _, c := range []*client{ca, cb} {
				configureVault(t, c, body)
				startVaultKMS(t, c)
			}
			createKey(t, ca, "ha-shared")
			nodes := map[string]*client{"A": ca, "B": cb}
			streams := map[string]*haStream{"A": startHAStream(ca, "A", 3, "ha-shared"), "B": startHAStream(cb, "B", 3, "ha-shared")}

			time.Sleep(1500 * time.Millisecond)
			victim := cl.Active()
			if victim < 0 {
				t.Fatal("no active Vault node before the kill")
			}
			killedAt := time.Now()
			cl.Kill(victim)
			t.Logf("killed Vault node %d (the active one) with SIGKILL", victim+1)
			newActive := cl.WaitActive(time.Minute)
			t.Logf("Vault elected %s %s after the kill", newActive.Addr, time.Since(killedAt).Round(time.Millisecond))

			// Both Keyward nodes serve again (a create and a generate each).
			for name, c := range nodes {
				_, ok := waitUntil(60*time.Second, 100*time.Millisecond, func() bool {
					r, err := c.send("POST", adminPrefix+"/kms/generate-data-key", map[string]any{"key_id": "ha-shared", "key_spec": "AES_256"})
					return err == nil && r.Status == 200
				})
				if !ok {
					t.Fatalf("node %s does not serve 60 s after the kill", name)
				}
				t.Logf("node %s serves generate again %s after the kill", name, time.Since(killedAt).Round(time.Millisecond))
			}
			time.Sleep(time.Second) // load after the election
			var all []haCall
			for _, name := range []string{"A", "B"} {
				all = append(all, streams[name].halt()...)
			}

			// Every answer 200 or 503; the window of 503s per node.
			counts := map[string]int{}
			var created []haCall
			for _, c := range all {
				key := fmt.Sprintf("%s %s %d", c.node, c.op, c.status)
				counts[key]++
				switch {
				case c.err != nil && c.status == 0:
					t.Errorf("node %s %s at +%s: transport error (a hang or a dropped connection): %v", c.node, c.op, c.start.Sub(killedAt).Round(time.Millisecond), c.err)
				case c.err != nil:
					t.Errorf("node %s %s: %v", c.node, c.op, c.err)
				case c.status != 200 && c.status != 503:
					t.Errorf("node %s %s at +%s: status %d (want 200 or 503)", c.node, c.op, c.start.Sub(killedAt).Round(time.Millisecond), c.status)
				}
				if c.op == "create" && c.status == 200 {
					created = append(created, c)
				}
			}
			for _, name := range []string{"A", "B"} {
				var first, last time.Time
				n := 0
				for _, c := range all {
					if c.node == name && c.status == 503 {
						n++
						if first.IsZero() || c.start.Before(first) {
							first = c.start
						}
						if c.end.After(last) {
							last = c.end
						}
					}
				}
				if n == 0 {
					t.Logf("node %s: no 503 at all", name)
				} else {
					t.Logf("node %s: %d answers 503, from +%s to +%s after the kill (error window %s)", name, n,
						first.Sub(killedAt).Round(time.Millisecond), last.Sub(killedAt).Round(time.Millisecond), last.Sub(first).Round(time.Millisecond))
				}
			}
			keys := make([]string, 0, len(counts))
			for k := range counts {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			var summary []string
			for _, k := range keys {
				summary = append(summary, fmt.Sprintf("%s: %d", k, counts[k]))
			}
			t.Logf("answers: %s", strings.Join(summary, ", "))
			if len(created) == 0 {
				t.Fatal("no create was acknowledged")
			}

			// No acknowledged create lost: described on both nodes, and
			// listed on both (within the listing's refresh bound).
			for name, c := range nodes {
				for _, k := range created {
					if st, _, raw := describe(t, c, k.keyID); st != 200 {
						t.Errorf("node %s: the acknowledged key %s (created on %s): describe %d %s", name, k.keyID, k.node, st, short(raw))
					}
				}
				var missing []string
				waitUntil(30*time.Second, 500*time.Millisecond, func() bool {
					ids, _ := listAll(t, c, 1000)
					missing = missing[:0]
					for _, k := range created {
						if !contains(ids, k.keyID) {
							missing = append(missing, k.keyID)
						}
					}
					return len(missing) == 0
				})
				if len(missing) > 0 {
					t.Errorf("node %s: %d acknowledged keys not listed, e.g. %s", name, len(missing), missing[0])
				}
			}
			// Every acknowledged data key decrypts, to its plaintext, on both.
			checked := 0
			for _, c := range all {
				if c.op != "generate" || c.status != 200 || checked >= 200 {
					continue
				}
				checked++
				for name, n := range nodes {
					if st, p, raw := decrypt(t, n, c.blob, c.ctx); st != 200 || !bytes.Equal(p, c.plain) {
						t.Errorf("node %s: an acknowledged data key (made on %s) does not decrypt: %d %s", name, c.node, st, short(raw))
					}
				}
			}
			for name, s := range map[string]*server{"A": a, "B": b} {
				if st, _ := readyStatus(s); st != 200 {
					t.Errorf("node %s: /health/ready %d after the election", name, st)
				}
			}
			t.Logf("%d calls, %d acknowledged creates, %d data keys decrypted on both nodes", len(all), len(created), checked)

			cl.Restart(victim) // three nodes again for the next backend
		})
	}
}
