package e2e

// Vault outages: Vault stopped (connections refused, then sealed), Vault
// unresponsive (connections accepted, nothing answered), and Keyward
// booting while Vault is down. Each test runs one Keyward per Vault backend
// type against the same Vault, on the same timeline.

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// outageNode is one Keyward (one backend type) in an outage test.
type outageNode struct {
	backend string
	srv     *server
	c       *client
	pre     []callResult // data keys made before the outage
	st      *stream
}

func (n *outageNode) label() string { return n.backend }

// startOutageNodes starts one configured, running Keyward per backend type
// on addr, each with a key "outage-key" and three data keys made under it.
func startOutageNodes(t *testing.T, addr string, auth map[string]any, guard *leakGuard, env ...string) []*outageNode {
	t.Helper()
	var nodes []*outageNode
	for _, backend := range vaultBackends {
		n := &outageNode{backend: backend, srv: startServer(t, serverOpts{Env: env})}
		n.c = guard.client(t, n.srv)
		configureVault(t, n.c, vaultConfig(addr, backend, vaultPrefix(t)+"-"+backend, auth))
		startVaultKMS(t, n.c)
		createKey(t, n.c, "outage-key")
		for i := range 3 {
			encCtx := map[string]string{"pre": strings.Repeat("x", i+1)}
			dk := generate(t, n.c, "outage-key", encCtx)
			n.pre = append(n.pre, callResult{blob: dk.Blob, plain: dk.Plaintext, ctx: encCtx})
		}
		nodes = append(nodes, n)
	}
	return nodes
}

// checkCalls asserts what every call of a stream must satisfy during an
// outage: an answer (no transport error), 200 or 503 ServiceUnavailable
// (never a 500), within maxCall.
func checkCalls(t *testing.T, label string, rs []callResult) {
	t.Helper()
	bad := 0
	for _, r := range rs {
		var problem string
		switch {
		case r.err != nil:
			problem = "no answer"
		case r.status != 200 && r.status != 503:
			problem = "want 200 or 503"
		case r.status == 503 && r.code != "ServiceUnavailable":
			problem = "a 503 must be ServiceUnavailable"
		case r.took > maxCall:
			problem = "took longer than timeout*(retries+1)+2s = " + maxCall.String()
		}
		if problem != "" {
			bad++
			if bad <= 10 {
				t.Errorf("%s: %s: %s", label, problem, r)
			}
		}
	}
	if bad > 10 {
		t.Errorf("%s: %d bad calls in all (first 10 shown)", label, bad)
	}
	var longest time.Duration
	for _, r := range rs {
		longest = max(longest, r.took)
	}
	t.Logf("%s: %d calls (%s); longest %s", label, len(rs), summarize(rs), longest.Round(time.Millisecond))
}

// checkWindow asserts that every call started at or after from and
// finished before to matches want.
func checkWindow(t *testing.T, label, what string, rs []callResult, from, to time.Time, want func(callResult) bool) {
	t.Helper()
	var in, bad []callResult
	for _, r := range rs {
		if r.start.Before(from) || r.start.Add(r.took).After(to) {
			continue
		}
		in = append(in, r)
		if !want(r) {
			bad = append(bad, r)
		}
	}
	if len(bad) > 0 {
		t.Errorf("%s: %s: %d of %d calls between %s and %s do not (%s); first: %s", label, what, len(bad), len(in),
			from.Format("15:04:05.000"), to.Format("15:04:05.000"), summarize(bad), bad[0])
	}
}

// checkDecrypts decrypts the data keys made before the outage and a sample
// of those the stream made.
func checkDecrypts(t *testing.T, n *outageNode, rs []callResult) {
	t.Helper()
	sample := append([]callResult(nil), n.pre...)
	var made []callResult
	for _, r := range rs {
		if is200(r) {
			made = append(made, r)
		}
	}
	for i := 0; i < len(made); i += max(1, len(made)/12) {
		sample = append(sample, made[i])
	}
	if len(made) > 0 {
		sample = append(sample, made[len(made)-1])
	}
	for _, r := range sample {
		if st, p, raw := decrypt(t, n.c, r.blob, r.ctx); st != 200 || !bytes.Equal(p, r.plain) {
			t.Errorf("%s: decrypt a blob made at %s: want 200 and its plaintext; got %d %s", n.label(), r.start.Format("15:04:05.000"), st, short(raw))
		}
	}
}

// TestVaultOutage stops Vault under load: requests answer 503 within 10 s
// (never a 500, never a hang), readiness follows, and when Vault is back
// and unsealed the service recovers by itself with nothing lost.
func TestVaultOutage(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartFile(t)
	guard := newLeakGuard(t, v.Token)
	nodes := startOutageNodes(t, v.Addr, tokenAuth(v.Token), guard)
	for _, n := range nodes {
		n.st = startGenerateStream(n.c, 8, "outage-key", 20*time.Millisecond)
		defer n.st.halt()
	}
	time.Sleep(1500 * time.Millisecond)

	stopAt := time.Now()
	v.Stop()
	t.Logf("vault stopped at %s", stopAt.Format("15:04:05.000"))
	first503 := map[string]time.Duration{}
	waitUntil(12*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range nodes {
			if _, ok := first503[n.backend]; ok {
				continue
			}
			if r, ok := n.st.first(stopAt, is503); ok {
				first503[n.backend] = r.start.Add(r.took).Sub(stopAt)
			}
		}
		return len(first503) == len(nodes)
	})
	for _, n := range nodes {
		d, ok := first503[n.backend]
		switch {
		case !ok:
			t.Errorf("%s: no 503 within 12 s of stopping Vault (calls since: %s)", n.label(), summarize(since(n.st.results(), stopAt)))
		case d > 10*time.Second:
			t.Errorf("%s: the first 503 came %s after stopping Vault; want within 10 s", n.label(), d.Round(time.Millisecond))
		default:
			t.Logf("%s: first 503 %s after stopping Vault", n.label(), d.Round(time.Millisecond))
		}
	}
	for _, n := range nodes {
		code, took := readyStatus(n.srv)
		if code != 503 || took > maxCall {
			t.Errorf("%s: /health/ready while Vault is down: want 503 within %s; got %d in %s", n.label(), maxCall, code, took.Round(time.Millisecond))
		}
		start := time.Now()
		st, m, raw := n.c.do("GET", "/kms/status", nil)
		if took := time.Since(start); st != 200 || took > maxCall {
			t.Errorf("%s: /kms/status while Vault is down: want 200 within %s; got %d in %s: %s", n.label(), maxCall, st, took, short(raw))
		} else {
			t.Logf("%s: status while Vault is down: status %s, healthy %v", n.label(), str(m, "status"), m["healthy"])
		}
	}
	if d := time.Until(stopAt.Add(12 * time.Second)); d > 0 {
		time.Sleep(d)
	}
	downUntil := time.Now()

	v.Start() // sealed
	time.Sleep(time.Second)
	v.Unseal()
	unsealAt := time.Now()
	t.Logf("vault started and unsealed at %s", unsealAt.Format("15:04:05.000"))
	recovered := map[string]time.Duration{}
	ready := map[string]bool{}
	waitUntil(15*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range nodes {
			if _, ok := recovered[n.backend]; !ok {
				if r, ok := n.st.first(unsealAt, is200); ok {
					recovered[n.backend] = r.start.Add(r.took).Sub(unsealAt)
				}
			}
			if !ready[n.backend] {
				code, _ := readyStatus(n.srv)
				ready[n.backend] = code == 200
			}
		}
		for _, n := range nodes {
			if !ready[n.backend] {
				return false
			}
		}
		return len(recovered) == len(nodes)
	})
	recoveryEnd := time.Now()
	time.Sleep(time.Second)

	for _, n := range nodes {
		rs := n.st.halt()
		if d, ok := recovered[n.backend]; !ok {
			t.Errorf("%s: no 200 within 15 s of unsealing Vault (calls since: %s)", n.label(), summarize(since(rs, unsealAt)))
		} else {
			t.Logf("%s: first 200 %s after unsealing Vault", n.label(), d.Round(time.Millisecond))
		}
		if !ready[n.backend] {
			t.Errorf("%s: /health/ready not 200 within 15 s of unsealing Vault", n.label())
		}
		checkCalls(t, n.label(), rs)
		checkWindow(t, n.label(), "before the outage every call succeeds", rs, time.Time{}, stopAt, is200)
		checkWindow(t, n.label(), "10 s into the outage every call answers 503", rs, stopAt.Add(10*time.Second), downUntil, is503)
		checkWindow(t, n.label(), "after recovery every call succeeds", rs, recoveryEnd, time.Now(), is200)
		if status, m, raw := kmsStatus(t, n.c); status != "Running" || m["healthy"] != true {
			t.Errorf("%s: status after recovery: want Running and healthy; got %s", n.label(), short(raw))
		}
		checkDecrypts(t, n, rs)
		if strings.Contains(n.srv.Stderr(), "panic") {
			t.Errorf("%s: keyward logged a panic:\n%s", n.label(), tail(n.srv.Stderr(), 3000))
		}
	}
}

// since returns the calls started at or after t0.
func since(rs []callResult, t0 time.Time) []callResult {
	var out []callResult
	for _, r := range rs {
		if !r.start.Before(t0) {
			out = append(out, r)
		}
	}
	return out
}

// TestVaultUnresponsive makes Vault accept connections but answer nothing
// (a black-holing proxy in front of it): every call still completes within
// timeout*(retries+1)+2 s; requests answer 503 once the cached state is
// older than the 5-second revalidation interval plus one bounded call
// (5 s + maxCall); the service recovers when Vault answers again.
func TestVaultUnresponsive(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	proxy := startBlackhole(t, v.Addr)
	tok := createVaultToken(t, v, "root")
	guard := newLeakGuard(t, tok)
	nodes := startOutageNodes(t, proxy.Addr(), tokenAuth(tok), guard)
	for _, n := range nodes {
		n.st = startGenerateStream(n.c, 4, "outage-key", 20*time.Millisecond)
		defer n.st.halt()
	}
	time.Sleep(time.Second)

	freezeAt := time.Now()
	proxy.frozen.Store(true)
	bound := 5*time.Second + maxCall
	first503 := map[string]time.Duration{}
	waitUntil(bound+time.Second, 100*time.Millisecond, func() bool {
		for _, n := range nodes {
			if _, ok := first503[n.backend]; ok {
				continue
			}
			if r, ok := n.st.first(freezeAt, is503); ok {
				first503[n.backend] = r.start.Add(r.took).Sub(freezeAt)
			}
		}
		return len(first503) == len(nodes)
	})
	for _, n := range nodes {
		d, ok := first503[n.backend]
		switch {
		case !ok:
			t.Errorf("%s: no 503 within %s of Vault going silent (calls since: %s)", n.label(), bound+time.Second, summarize(since(n.st.results(), freezeAt)))
		case d > bound:
			t.Errorf("%s: the first 503 came %s after Vault went silent; want within %s", n.label(), d.Round(time.Millisecond), bound)
		default:
			t.Logf("%s: first 503 %s after Vault went silent", n.label(), d.Round(time.Millisecond))
		}
		code, took := readyStatus(n.srv)
		if code != 503 || took > maxCall {
			t.Errorf("%s: /health/ready while Vault is silent: want 503 within %s; got %d in %s", n.label(), maxCall, code, took.Round(time.Millisecond))
		}
	}
	if d := time.Until(freezeAt.Add(bound + 5*time.Second)); d > 0 {
		time.Sleep(d)
	}
	thawAt := time.Now()
	proxy.frozen.Store(false)

	recovered := map[string]time.Duration{}
	waitUntil(15*time.Second, 100*time.Millisecond, func() bool {
		for _, n := range nodes {
			if _, ok := recovered[n.backend]; !ok {
				if r, ok := n.st.first(thawAt, is200); ok {
					recovered[n.backend] = r.start.Add(r.took).Sub(thawAt)
				}
			}
		}
		return len(recovered) == len(nodes)
	})
	time.Sleep(500 * time.Millisecond)
	for _, n := range nodes {
		rs := n.st.halt()
		if d, ok := recovered[n.backend]; !ok {
			t.Errorf("%s: no 200 within 15 s of Vault answering again (calls since: %s)", n.label(), summarize(since(rs, thawAt)))
		} else {
			t.Logf("%s: first 200 %s after Vault answered again", n.label(), d.Round(time.Millisecond))
		}
		if code, _ := readyStatus(n.srv); code != 200 {
			t.Errorf("%s: /health/ready after Vault answers again: want 200; got %d", n.label(), code)
		}
		checkCalls(t, n.label(), rs)
		checkWindow(t, n.label(), bound.String()+" into Vault's silence every call answers 503", rs, freezeAt.Add(bound), thawAt, is503)
		checkDecrypts(t, n, rs)
	}
}

// TestVaultBootWhileDown restarts Keyward while Vault is down: it boots,
// reports the service not running, answers 503, and starts the service by
// itself once Vault is back and unsealed.
func TestVaultBootWhileDown(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartFile(t)
	guard := newLeakGuard(t, v.Token)
	nodes := startOutageNodes(t, v.Addr, tokenAuth(v.Token), guard)
	for _, n := range nodes {
		if code := n.srv.Stop(); code != 0 {
			t.Errorf("%s: exit code after SIGTERM: want 0; got %d", n.label(), code)
		}
	}
	v.Stop()

	for _, n := range nodes {
		n.srv = startServer(t, serverOpts{DataDir: n.srv.DataDir})
		n.c = guard.client(t, n.srv)
	}
	checkDown := func(phase string) {
		for _, n := range nodes {
			status, m, raw := kmsStatus(t, n.c)
			if status == "Running" {
				t.Errorf("%s: status after booting while Vault is %s: want not Running (Error); got %s", n.label(), phase, short(raw))
			} else {
				t.Logf("%s: status while Vault is %s: %s %q", n.label(), phase, status, str(m, "message"))
			}
			for _, r := range []struct {
				method, path string
				body         any
			}{
				{"GET", "/kms/keys", nil},
				{"GET", "/kms/keys/outage-key", nil},
				{"POST", "/kms/generate-data-key", map[string]any{"key_id": "outage-key"}},
				{"POST", "/kms/decrypt", map[string]any{"ciphertext_blob": n.pre[0].blob, "encryption_context": n.pre[0].ctx}},
			} {
				start := time.Now()
				st, _, raw := n.c.do(r.method, r.path, r.body)
				wantError(t, n.label()+": "+r.method+" "+r.path+" while Vault is "+phase, st, raw, 503, "ServiceUnavailable")
				if took := time.Since(start); took > maxCall {
					t.Errorf("%s: %s %s while Vault is %s took %s", n.label(), r.method, r.path, phase, took)
				}
			}
			if code, took := readyStatus(n.srv); code != 503 || took > maxCall {
				t.Errorf("%s: /health/ready while Vault is %s: want 503; got %d in %s", n.label(), phase, code, took)
			}
		}
	}
	checkDown("down")
	v.Start()
	checkDown("sealed")
	v.Unseal()
	upAt := time.Now()

	for _, n := range nodes {
		_, ok := waitUntil(35*time.Second-time.Since(upAt), 250*time.Millisecond, func() bool {
			st, m, _ := n.c.do("GET", "/kms/status", nil)
			return st == 200 && str(m, "status") == "Running"
		})
		if !ok {
			_, _, raw := kmsStatus(t, n.c)
			t.Errorf("%s: the service did not start by itself within 35 s of Vault coming back: %s", n.label(), short(raw))
			continue
		}
		t.Logf("%s: Running %s after Vault was unsealed", n.label(), time.Since(upAt).Round(time.Millisecond))
		for _, p := range n.pre {
			if st, pt, raw := decrypt(t, n.c, p.blob, p.ctx); st != 200 || !bytes.Equal(pt, p.plain) {
				t.Errorf("%s: decrypt a blob made before the restart: got %d %s", n.label(), st, short(raw))
			}
		}
		generate(t, n.c, "outage-key", nil)
		if code, _ := readyStatus(n.srv); code != 200 {
			t.Errorf("%s: /health/ready after the service started: want 200; got %d", n.label(), code)
		}
	}
}
