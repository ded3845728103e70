package vaulttest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Cluster is a Vault cluster with integrated (raft) storage on loopback,
// as scripts/vault.sh start-cluster makes it: three nodes, initialized with
// three Shamir key shares (threshold two), unsealed, joined through
// retry_join, every node a voter; KV v2 at secret/ and Transit at transit/.
// The nodes are stopped when the test ends.
type Cluster struct {
	Nodes []*Server
	Token string // root token

	t    testing.TB
	keys []string // unseal key shares
}

// StartCluster starts a cluster of n nodes (3 for a quorum that survives
// the loss of one).
func StartCluster(t testing.TB, n int) *Cluster {
	t.Helper()
	bin := Binary(t)
	c := &Cluster{t: t}
	dir := t.TempDir()
	for i := range n {
		s := &Server{t: t, bin: bin, port: freePort(t), dir: filepath.Join(dir, fmt.Sprintf("node%d", i+1))}
		s.Addr = fmt.Sprintf("http://127.0.0.1:%d", s.port)
		c.Nodes = append(c.Nodes, s)
	}
	var joins strings.Builder
	for _, s := range c.Nodes {
		fmt.Fprintf(&joins, "  retry_join { leader_api_addr = %q }\n", s.Addr)
	}
	for i, s := range c.Nodes {
		if err := os.MkdirAll(filepath.Join(s.dir, "data"), 0o700); err != nil {
			t.Fatal(err)
		}
		// performance_multiplier 1: production raft timings, so that an
		// election after the loss of the leader takes seconds.
		cfg := fmt.Sprintf(`storage "raft" {
  path = %q
  node_id = "node%d"
  performance_multiplier = 1
%s}
listener "tcp" {
  address = "127.0.0.1:%d"
  cluster_address = "127.0.0.1:%d"
  tls_disable = true
}
api_addr = %q
cluster_addr = "https://127.0.0.1:%d"
disable_mlock = true
`, filepath.Join(s.dir, "data"), i+1, joins.String(), s.port, s.port+1, s.Addr, s.port+1)
		if err := os.WriteFile(filepath.Join(s.dir, "vault.hcl"), []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		s.launch("server", "-config="+filepath.Join(s.dir, "vault.hcl"))
		t.Cleanup(s.Stop)
	}
	for _, s := range c.Nodes {
		s.waitHealthy(200, 429, 501, 503)
	}
	var init struct {
		Keys      []string `json:"keys_base64"`
		RootToken string   `json:"root_token"`
	}
	c.Nodes[0].mustDo("PUT", "/v1/sys/init", map[string]any{"secret_shares": 3, "secret_threshold": 2}, &init, "")
	c.keys, c.Token = init.Keys, init.RootToken
	for i := range c.Nodes {
		c.Nodes[i].Token = c.Token
		c.Unseal(i)
	}
	active := c.WaitActive(time.Minute)
	// Autopilot makes a joined node a voter after 10 s by default.
	active.mustDo("POST", "/v1/sys/storage/raft/autopilot/configuration", map[string]any{"server_stabilization_time": "1s"}, nil, c.Token)
	c.waitVoters(active, n, time.Minute)
	active.mustDo("POST", "/v1/sys/mounts/secret", map[string]any{"type": "kv", "options": map[string]string{"version": "2"}}, nil, c.Token)
	active.MustEnableTransit()
	return c
}

// Addrs returns every node's address.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, s := range c.Nodes {
		out[i] = s.Addr
	}
	return out
}

// Unseal unseals node i with the key shares, again and again while it
// joins the cluster (a joining node asks for the threshold once more).
func (c *Cluster) Unseal(i int) {
	c.t.Helper()
	s := c.Nodes[i]
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		for _, k := range c.keys {
			var st struct {
				Sealed bool `json:"sealed"`
			}
			status, body := s.Do("PUT", "/v1/sys/unseal", map[string]any{"key": k}, "")
			if status == 200 && json.Unmarshal(body, &st) == nil && !st.Sealed {
				return
			}
		}
	}
	c.t.Fatalf("vaulttest: node %d (%s) still sealed after a minute", i+1, s.Addr)
}

// Active returns the index of the node that answers sys/health with 200
// (the active node), or -1.
func (c *Cluster) Active() int {
	client := &http.Client{Timeout: time.Second}
	for i, s := range c.Nodes {
		if s.cmd == nil {
			continue
		}
		resp, err := client.Get(s.Addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return i
			}
		}
	}
	return -1
}

// WaitActive waits until a node is active and returns it.
func (c *Cluster) WaitActive(within time.Duration) *Server {
	c.t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if i := c.Active(); i >= 0 {
			return c.Nodes[i]
		}
	}
	c.t.Fatalf("vaulttest: no active node within %s", within)
	return nil
}

// waitVoters waits until n raft servers are voters.
func (c *Cluster) waitVoters(active *Server, n int, within time.Duration) {
	c.t.Helper()
	var body []byte
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		var status int
		status, body = active.Do("GET", "/v1/sys/storage/raft/configuration", nil, c.Token)
		if status == 200 && strings.Count(string(body), `"voter":true`) == n {
			return
		}
	}
	c.t.Fatalf("vaulttest: not %d raft voters within %s: %s", n, within, body)
}

// Kill stops node i with SIGKILL (no shutdown, as in a crash).
func (c *Cluster) Kill(i int) {
	c.Nodes[i].Kill()
}

// Restart starts a killed or stopped node i again and unseals it.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	s := c.Nodes[i]
	s.launch("server", "-config="+filepath.Join(s.dir, "vault.hcl"))
	s.waitHealthy(200, 429, 503)
	c.Unseal(i)
}

// Kill stops the server with SIGKILL and waits for it. Idempotent.
func (s *Server) Kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	s.cmd.Process.Kill()
	s.cmd.Wait()
	s.cmd = nil
	s.logFile.Close()
}
