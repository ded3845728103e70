package bench

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSoakLeavesNoLeak is the short soak of the test suite: `keyward bench
// --soak` against the real server, mixed load in three intervals, each
// with connections of its own. No request fails, every interval reads the
// server's RSS, goroutines and open files, and once the load is over the
// goroutines and open files come back within a small slack of their
// count before it (a count, not a timing: the wait for it is bounded only
// so that a leak ends the test).
func TestSoakLeavesNoLeak(t *testing.T) {
	bin := buildKeyward(t)
	const user, secret = "bench-root", "bench-secret-0123456789"
	endpoint := startKeyward(t, bin, user, secret)
	cmd := exec.Command(bin, "bench", "--soak", "3s", "--soak-interval", "1s", "--concurrency", "8", "--json")
	cmd.Env = append(os.Environ(), "KEYWARD_ENDPOINT="+endpoint, "KEYWARD_ACCESS_KEY="+user, "KEYWARD_SECRET_KEY="+secret)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("keyward bench --soak: %v\n%s\n%s", err, stderr.String(), stdout.String())
	}
	var res SoakResult
	if err := json.Unmarshal(stdout.Bytes(), &res); err != nil {
		t.Fatalf("JSON: %v\n%s", err, stdout.String())
	}
	if res.Errors != 0 || len(res.Intervals) != 3 || !res.Settled {
		t.Fatalf("soak: %d errors, %d intervals, settled %v\n%s", res.Errors, len(res.Intervals), res.Settled, stderr.String())
	}
	for i, iv := range res.Intervals {
		if iv.Requests < 10 || iv.Server.RSSBytes <= 0 || iv.Server.Goroutines <= 0 || iv.Server.OpenFDs <= 0 {
			t.Errorf("interval %d: %+v", i, iv)
		}
		// Eight workers hold eight connections: the server's counts show
		// them during the load, over the idle level (the lower of before
		// and after: the count before may hold a goroutine that was just
		// ending, such as the key index loader's).
		idleFDs, idleGoroutines := min(res.Before.OpenFDs, res.After.OpenFDs), min(res.Before.Goroutines, res.After.Goroutines)
		if iv.Server.OpenFDs < idleFDs+8 || iv.Server.Goroutines < idleGoroutines+8 {
			t.Errorf("interval %d: the load's connections do not show in the counts: %+v (before %+v)", i, iv.Server, res.Before)
		}
	}
	if !strings.Contains(stderr.String(), "after the load:") || !strings.Contains(stderr.String(), "back within the slack") {
		t.Errorf("report:\n%s", stderr.String())
	}
	t.Logf("before %s, after %s", res.Before, res.After)
}

// The server's /metrics as Prometheus text: the three process series, and
// an error naming a missing one.
func TestParseServerStats(t *testing.T) {
	body := "# HELP go_goroutines x\n# TYPE go_goroutines gauge\ngo_goroutines 42\nprocess_open_fds 17\nprocess_resident_memory_bytes 2.5e+07\nkeyward_x{a=\"b\"} 1\n"
	s, err := parseServerStats([]byte(body))
	if err != nil || s.Goroutines != 42 || s.OpenFDs != 17 || s.RSSBytes != 2.5e7 {
		t.Fatalf("%+v %v", s, err)
	}
	if _, err := parseServerStats([]byte("go_goroutines 1\nprocess_open_fds 2\n")); err == nil || !strings.Contains(err.Error(), "process_resident_memory_bytes") {
		t.Fatalf("missing series: %v", err)
	}
	if _, err := parseServerStats([]byte("go_goroutines x\n")); err == nil {
		t.Fatal("a non-number accepted")
	}
}

func FuzzParseServerStats(f *testing.F) {
	f.Add([]byte("go_goroutines 42\nprocess_open_fds 17\nprocess_resident_memory_bytes 2.5e+07\n"))
	f.Add([]byte("go_goroutines NaN\n"))
	f.Fuzz(func(t *testing.T, body []byte) {
		if _, err := parseServerStats(body); err == nil {
			for _, name := range []string{"process_resident_memory_bytes ", "go_goroutines ", "process_open_fds "} {
				if !strings.Contains(string(body), name) {
					t.Fatalf("parsed without %s: %q", name, body)
				}
			}
		}
	})
}
