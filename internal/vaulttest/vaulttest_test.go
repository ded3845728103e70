package vaulttest

import (
	"strings"
	"testing"
	"time"
)

// TestFileServerKeepsDataAcrossRestart checks the harness the outage tests
// rely on: a file-storage server comes back sealed, unseals, and still has
// its data.
func TestFileServerKeepsDataAcrossRestart(t *testing.T) {
	f := StartFile(t)
	if st, b := f.Do("POST", "/v1/secret/data/x", map[string]any{"data": map[string]string{"a": "survives"}}, f.Token); st != 200 {
		t.Fatalf("write: %d %s", st, b)
	}
	f.Stop()
	f.Start()
	if st, _ := f.Do("GET", "/v1/sys/health", nil, ""); st != 503 {
		t.Fatalf("restarted server should be sealed (503), got %d", st)
	}
	f.Unseal()
	st, b := f.Do("GET", "/v1/secret/data/x", nil, f.Token)
	if st != 200 || !strings.Contains(string(b), "survives") {
		t.Fatalf("read after restart: %d %s", st, b)
	}
}

// TestClusterElectsAnotherLeader checks the cluster harness: three voters;
// SIGKILL of the active node leaves two that elect one of them, whose data
// includes what the killed leader acknowledged; the killed node comes back
// as a standby.
func TestClusterElectsAnotherLeader(t *testing.T) {
	c := StartCluster(t, 3)
	first := c.Active()
	if first < 0 {
		t.Fatal("no active node")
	}
	if st, b := c.Nodes[first].Do("POST", "/v1/secret/data/x", map[string]any{"data": map[string]string{"a": "acknowledged"}}, c.Token); st != 200 {
		t.Fatalf("write: %d %s", st, b)
	}
	c.Kill(first)
	next := c.WaitActive(time.Minute)
	if next == c.Nodes[first] {
		t.Fatal("the killed node is active")
	}
	if st, b := next.Do("GET", "/v1/secret/data/x", nil, c.Token); st != 200 || !strings.Contains(string(b), "acknowledged") {
		t.Fatalf("read on the new leader: %d %s", st, b)
	}
	c.Restart(first)
	if st, _ := c.Nodes[first].Do("GET", "/v1/sys/health", nil, ""); st != 429 {
		t.Errorf("the restarted node: sys/health %d, want 429 (standby)", st)
	}
}
