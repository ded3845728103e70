package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

// TestScripts runs testdata/script/*.txtar: the real keyward binary (on
// PATH as "keyward") against real servers. Besides the standard
// commands, scripts have:
//
//	server [flags]          start `keyward server` (random root credentials);
//	                        sets KEYWARD_ENDPOINT, KEYWARD_ACCESS_KEY,
//	                        KEYWARD_SECRET_KEY and DATA (its data dir)
//	stopserver              stop the servers started so far (the next
//	                        `server` restarts on the same data dir)
//	exitcode N prog args... run prog and require exit code N
//	jsonget VAR FIELD       set VAR to FIELD (a.b.c) of the last stdout's JSON
//	aligned                 the last stdout is a table with aligned columns
//	envequal A B            variables A and B are set and equal
//
// and $UNREACHABLE, an endpoint where nothing listens. HOME and
// XDG_CONFIG_HOME point into $WORK.
func TestScripts(t *testing.T) {
	bin := keywardBinary(t)
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata/script",
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			env.Setenv("PATH", filepath.Dir(bin)+string(os.PathListSeparator)+os.Getenv("PATH"))
			home := filepath.Join(env.WorkDir, "home")
			env.Setenv("HOME", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			u, err := unreachableEndpoint()
			if err != nil {
				return err
			}
			env.Setenv("UNREACHABLE", u)
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"server":     cmdServer(bin),
			"stopserver": cmdStopServer,
			"exitcode":   cmdExitCode,
			"jsonget":    cmdJSONGet,
			"aligned":    cmdAligned,
			"envequal":   cmdEnvEqual,
		},
	})
}

func cmdServer(bin string) func(ts *testscript.TestScript, neg bool, args []string) {
	return func(ts *testscript.TestScript, neg bool, args []string) {
		if neg {
			ts.Fatalf("unsupported: ! server")
		}
		dataDir := ts.MkAbs("data")
		s, err := startServer(bin, dataDir, args...)
		ts.Check(err)
		ts.Defer(s.stop)
		runningServers.Lock()
		runningServers.m[ts] = append(runningServers.m[ts], s)
		runningServers.Unlock()
		ts.Setenv("KEYWARD_ENDPOINT", s.URL)
		ts.Setenv("KEYWARD_ACCESS_KEY", s.AccessKey)
		ts.Setenv("KEYWARD_SECRET_KEY", s.SecretKey)
		ts.Setenv("DATA", dataDir)
	}
}

// runningServers are the servers each script started.
var runningServers = struct {
	sync.Mutex
	m map[*testscript.TestScript][]*testServer
}{m: map[*testscript.TestScript][]*testServer{}}

func cmdStopServer(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 0 {
		ts.Fatalf("usage: stopserver")
	}
	runningServers.Lock()
	servers := runningServers.m[ts]
	delete(runningServers.m, ts)
	runningServers.Unlock()
	for _, s := range servers {
		s.stop()
	}
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N program [args...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	err = ts.Exec(args[1], args[2:]...)
	got := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		got = ee.ExitCode()
	case err != nil:
		ts.Fatalf("%v", err)
	}
	if got != want {
		ts.Fatalf("exit code %d, want %d", got, want)
	}
}

func cmdJSONGet(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: jsonget VAR FIELD")
	}
	var v any
	ts.Check(json.Unmarshal([]byte(ts.ReadFile("stdout")), &v))
	for _, part := range strings.Split(args[1], ".") {
		m, ok := v.(map[string]any)
		if !ok {
			ts.Fatalf("jsonget: %s: not an object at %q", args[1], part)
		}
		if v, ok = m[part]; !ok {
			ts.Fatalf("jsonget: no field %q", args[1])
		}
	}
	switch x := v.(type) {
	case string:
		ts.Setenv(args[0], x)
	default:
		b, _ := json.Marshal(x)
		ts.Setenv(args[0], string(b))
	}
}

func cmdAligned(ts *testscript.TestScript, neg bool, args []string) {
	err := checkAligned(ts.ReadFile("stdout"))
	switch {
	case err != nil && !neg:
		ts.Fatalf("%v", err)
	case err == nil && neg:
		ts.Fatalf("the table is aligned")
	}
}

// checkAligned verifies that every line of a table starts its cells at the
// header's column positions (columns are three or more spaces apart).
func checkAligned(out string) error {
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	if len(lines) < 2 {
		return fmt.Errorf("want a header and at least one row, got %q", out)
	}
	header := lines[0]
	var starts []int
	for i := range len(header) {
		if header[i] != ' ' && (i == 0 || i >= 3 && header[i-3:i] == "   ") {
			starts = append(starts, i)
		}
	}
	if len(starts) < 2 {
		return fmt.Errorf("header %q has fewer than two columns", header)
	}
	for _, line := range lines[1:] {
		for _, c := range starts[1:] {
			if len(line) <= c || line[c] == ' ' || line[c-1] != ' ' {
				return fmt.Errorf("row %q does not start a cell at column %d of header %q", line, c, header)
			}
		}
	}
	return nil
}

func cmdEnvEqual(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: envequal A B")
	}
	a, b := ts.Getenv(args[0]), ts.Getenv(args[1])
	if a == "" || b == "" {
		ts.Fatalf("envequal: $%s or $%s is empty", args[0], args[1])
	}
	if (a == b) == neg {
		ts.Fatalf("$%s = %q, $%s = %q", args[0], a, args[1], b)
	}
}
