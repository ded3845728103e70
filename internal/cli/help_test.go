package cli

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/testenv"
)

// TestHelpEverywhere walks every noun and every verb of the real binary
// with --help and -h (also placed after other arguments): the usage goes
// to stdout and the exit code is 0.
func TestHelpEverywhere(t *testing.T) {
	type invocation []string
	var cases []invocation
	for _, noun := range Nouns {
		cmds := commandsOf(noun)
		if cmds[0].verb != "" {
			cases = append(cases, invocation{noun, "--help"}, invocation{noun, "-h"})
		}
		for _, c := range cmds {
			words := strings.Fields(c.name())
			cases = append(cases,
				append(append(invocation{}, words...), "--help"),
				append(append(invocation{}, words...), "-h"),
				append(append(invocation{}, words...), "some-arg", "--json", "--help"))
			for _, a := range c.aliases {
				cases = append(cases, invocation{c.noun, a, "--help"})
			}
		}
	}
	// No server, no credentials: help never connects.
	env := []string{"HOME=" + t.TempDir(), "KEYWARD_ENDPOINT=http://127.0.0.1:1"}
	for _, args := range cases {
		res := runCLI(t, env, "", args...)
		if res.code != 0 {
			t.Errorf("keyward %s: exit code %d, want 0\nstderr: %s", strings.Join(args, " "), res.code, res.stderr)
			continue
		}
		if !strings.HasPrefix(res.stdout, "usage: keyward "+args[0]) {
			t.Errorf("keyward %s: stdout does not start with the usage:\n%s", strings.Join(args, " "), res.stdout)
		}
		if res.stderr != "" {
			t.Errorf("keyward %s: unexpected stderr: %s", strings.Join(args, " "), res.stderr)
		}
	}
	t.Logf("%d help invocations", len(cases))

	// The top-level help lists every noun and documents the exit codes.
	res := runCLI(t, env, "", "--help")
	if res.code != 0 {
		t.Fatalf("keyward --help: exit code %d", res.code)
	}
	for _, noun := range Nouns {
		if !strings.Contains(res.stderr+res.stdout, "keyward "+noun) {
			t.Errorf("keyward --help does not list %q", noun)
		}
	}
	for _, code := range []string{"  0  success", "  2  usage", "  3  not found", "  4  access denied", "  5  conflict", "  6  unavailable"} {
		if !strings.Contains(res.stderr+res.stdout, code) {
			t.Errorf("keyward --help does not document exit code %q", code)
		}
	}
}

// TestCompletionScripts checks that each script parses in its shell (when
// the shell is installed) and that bash completes nouns, verbs, flags and
// flag values.
func TestCompletionScripts(t *testing.T) {
	bin := keywardBinary(t)
	dir := t.TempDir()
	for _, shell := range []string{"bash", "zsh", "fish"} {
		res := runCLI(t, nil, "", "completion", shell)
		if res.code != 0 {
			t.Fatalf("completion %s: exit code %d: %s", shell, res.code, res.stderr)
		}
		for _, c := range commands {
			if c.verb != "" && !strings.Contains(res.stdout, c.verb) {
				t.Errorf("completion %s: no %q", shell, c.name())
			}
		}
		script := filepath.Join(dir, "keyward."+shell)
		if err := os.WriteFile(script, []byte(res.stdout), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := exec.LookPath(shell); err != nil {
			testenv.Missing(t, shell, "apt-get install zsh fish (.ci/run installs them)")
			continue
		}
		if out, err := exec.Command(shell, "-n", script).CombinedOutput(); err != nil {
			t.Errorf("%s -n: %v\n%s", shell, err, out)
		}
	}
	if _, err := exec.LookPath("bash"); err != nil {
		t.Fatal("bash is not installed")
	}
	complete := func(words ...string) string {
		t.Helper()
		var arr []string
		for _, w := range words {
			arr = append(arr, "'"+w+"'")
		}
		prog := "source " + filepath.Join(dir, "keyward.bash") + "\nCOMP_WORDS=(" + strings.Join(arr, " ") + ")\nCOMP_CWORD=" +
			strconv.Itoa(len(words)-1) + "\n_keyward\necho \"${COMPREPLY[*]}\"\n"
		cmd := exec.Command("bash", "-c", prog)
		cmd.Env = []string{"PATH=" + filepath.Dir(bin) + ":" + os.Getenv("PATH"), "HOME=" + dir, "KEYWARD_ENDPOINT=http://127.0.0.1:1"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("bash completion of %q: %v\n%s", words, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	for _, tc := range []struct {
		words []string
		want  string
	}{
		{[]string{"keyward", "ke"}, "key key-alias"},
		{[]string{"keyward", "key-alias", "up"}, "update"},
		{[]string{"keyward", "key", "cr"}, "create"},
		{[]string{"keyward", "--alias", "x", "kms", "st"}, "start stop status"},
		{[]string{"keyward", "datakey", "generate", "--sh"}, "--show-plaintext"},
		{[]string{"keyward", "key", "list", "--js"}, "--json"},
		{[]string{"keyward", "kms", "configure", "--backend", "v"}, "vault vault-transit"},
		{[]string{"keyward", "completion", "f"}, "fish"},
		{[]string{"keyward", "encrypt", "--con"}, "--context"},
	} {
		if got := complete(tc.words...); got != tc.want {
			t.Errorf("completing %q: got %q, want %q", tc.words, got, tc.want)
		}
	}
}
