package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestKeySet runs `keyward bench --keys` against a real server twice: the
// first run creates the key set (every tenth key disabled), the second
// reuses it; the listing ops page through it with and without the state
// filter, the other ops use keys of the set, all without errors.
func TestKeySet(t *testing.T) {
	bin := buildKeyward(t)
	const user, secret = "bench-root", "bench-secret-0123456789"
	endpoint := startKeyward(t, bin, user, secret)
	run := func(args ...string) (string, string, error) {
		cmd := exec.Command(bin, append([]string{"bench", "--keys", "250", "--json", "--concurrency", "3", "--duration", "300ms", "--warmup", "100ms"}, args...)...)
		cmd.Env = append(os.Environ(), "KEYWARD_ENDPOINT="+endpoint, "KEYWARD_ACCESS_KEY="+user, "KEYWARD_SECRET_KEY="+secret)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	stdout, stderr, err := run("--ops", "list,list-disabled,describe,decrypt")
	if err != nil {
		t.Fatalf("keyward bench --keys: %v\n%s", err, stderr)
	}
	if !strings.Contains(stderr, "key set of 250 keys: 0 exist, creating 250") || !strings.Contains(stderr, "created 250 keys in") {
		t.Errorf("first run, stderr:\n%s", stderr)
	}
	var rows []Row
	if err := json.Unmarshal([]byte(stdout), &rows); err != nil || len(rows) != 4 {
		t.Fatalf("rows: %v\n%s", err, stdout)
	}
	checkRows(t, rows, 0.3)

	_, stderr, err = run("--ops", "generate")
	if err != nil || !strings.Contains(stderr, "key set of 250 keys: 250 exist, creating 0") || strings.Contains(stderr, "created 250") {
		t.Errorf("second run: %v, stderr:\n%s", err, stderr)
	}

	// The set as the server lists it: 25 disabled keys, 225 enabled.
	var listed struct {
		Keys []struct {
			KeyID string `json:"key_id"`
		} `json:"keys"`
	}
	out, err := exec.Command(bin, "key", "list", "--state", "Disabled", "--json", "--endpoint", endpoint, "--access-key", user, "--secret-key", secret, "--all").Output()
	if err != nil {
		t.Fatalf("keyward key list: %v", err)
	}
	if err := json.Unmarshal(out, &listed); err != nil || len(listed.Keys) != 25 || listed.Keys[0].KeyID != keySetID(9) {
		t.Errorf("disabled keys of the set: %v %s", err, out)
	}
}
