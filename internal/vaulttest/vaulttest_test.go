package vaulttest

import (
	"strings"
	"testing"
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
