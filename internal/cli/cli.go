// Package cli is Keyward's admin command line, `keyward <noun> <verb>`,
// built only on the public client package (github.com/keyward/keyward/client).
//
// cmd/keyward hands every noun of Nouns to Main. Endpoint and credentials
// come from flags, then the KEYWARD_ENDPOINT, KEYWARD_ACCESS_KEY and
// KEYWARD_SECRET_KEY environment variables, then an alias saved in the
// user's config directory (see alias.go). Output is an aligned table for
// humans, or JSON with --json. Exit codes are the Exit* constants.
package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/client"
)

// Exit codes of Main.
const (
	ExitOK          = 0 // success
	ExitError       = 1 // any other error (a server error not below, a local I/O error)
	ExitUsage       = 2 // bad command line: unknown command or flag, missing argument
	ExitNotFound    = 3 // no such key (404 NotFound)
	ExitAccess      = 4 // authentication or authorization failed (401, 403), or no credentials
	ExitConflict    = 5 // conflict or invalid state (409 Conflict, InvalidKeyState)
	ExitUnavailable = 6 // cannot reach the server, timed out, or 503 ServiceUnavailable
)

const (
	defaultEndpoint = "http://127.0.0.1:9000"
	defaultTimeout  = 2 * time.Minute
	maxStdin        = 1 << 20
)

// Nouns are the first words of the command lines that Main handles.
var Nouns = []string{"kms", "key", "key-alias", "datakey", "encrypt", "decrypt", "re-encrypt", "backup", "restore", "alias", "completion"}

var nounSummaries = map[string]string{
	"kms":        "the KMS service: configure it, start and stop it, see its status",
	"key":        "master keys: create, list, describe, schedule deletion, enable, disable, rotate, tag",
	"key-alias":  "aliases of master keys (alias/NAME): create, list, update, delete",
	"datakey":    "data keys for envelope encryption",
	"encrypt":    "encrypt a small secret (at most 4096 bytes) under a master key",
	"decrypt":    "decrypt a blob made by encrypt",
	"re-encrypt": "re-wrap a blob under another key or context, on the server",
	"backup":     "write an encrypted archive of every key and alias (age)",
	"restore":    "restore an archive into the running backend (also: migrate between backends)",
	"alias":      "saved endpoints and credentials",
	"completion": "print a shell completion script (bash, zsh, fish)",
}

// command is one `keyward <noun> [<verb>]`.
type command struct {
	noun, verb string
	aliases    []string // other spellings of the verb
	args       string   // synopsis of the positional arguments
	summary    string
	help       string // longer description, may be empty
	flags      []flagDef
	minArgs    int
	maxArgs    int // -1: no limit
	// timeout is the command's --timeout default (0: defaultTimeout).
	timeout time.Duration
	run     func(r *run) error
}

func (c *command) name() string { return strings.TrimSpace(c.noun + " " + c.verb) }

// commands is every command, in help order.
var commands []*command

func init() {
	commands = slices.Concat(kmsCommands(), keyCommands(), keyAliasCommands(), dataCommands(), backupCommands(), aliasCommands(), completionCommands())
}

func commandsOf(noun string) []*command {
	var out []*command
	for _, c := range commands {
		if c.noun == noun {
			out = append(out, c)
		}
	}
	return out
}

func lookup(noun, verb string) *command {
	for _, c := range commandsOf(noun) {
		if c.verb == verb || slices.Contains(c.aliases, verb) {
			return c
		}
	}
	return nil
}

// run is one invocation of a command.
type run struct {
	cmd            *command
	p              parsed
	stdin          io.Reader
	stdout, stderr io.Writer
	getenv         func(string) string
	json           bool
	ctx            context.Context
	timeout        time.Duration

	what     string // the operation, for error messages: `describe key "k1"`
	keyID    string // the key the command is about, for hints
	stdinBy  string // what already read stdin
	endpoint string
	access   string
	c        *client.Client
}

// Main runs the command line args (without the program name: args[0] is a
// noun) and returns the exit code. getenv reads the environment (nil:
// os.Getenv).
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	if getenv == nil {
		getenv = os.Getenv
	}
	r := &run{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv, json: jsonRequested(args)}
	if len(args) == 0 {
		io.WriteString(stderr, Usage())
		return ExitUsage
	}
	noun, rest := args[0], args[1:]
	cmds := commandsOf(noun)
	if len(cmds) == 0 {
		return r.report(usagef("unknown command %q", noun))
	}
	cmd := cmds[0]
	if cmd.verb != "" {
		i, err := findVerb(rest)
		switch {
		case helpRequested(rest) && (err != nil || i < 0):
			writeNounHelp(stdout, noun)
			return ExitOK
		case err != nil:
			return r.report(err)
		case i < 0:
			writeNounHelp(stderr, noun)
			return r.report(usagef("keyward %s: missing verb", noun))
		}
		if cmd = lookup(noun, rest[i]); cmd == nil {
			return r.report(&cliError{code: ExitUsage, name: "UsageError",
				msg:  fmt.Sprintf("unknown command \"keyward %s %s\"", noun, rest[i]),
				hint: fmt.Sprintf("run `keyward %s --help` for its verbs", noun)})
		}
		rest = slices.Delete(slices.Clone(rest), i, i+1)
	}
	r.cmd = cmd
	if helpRequested(rest) {
		writeCommandHelp(stdout, cmd)
		return ExitOK
	}
	p, err := parseArgs(slices.Concat(cmd.flags, globalFlags), rest)
	if err != nil {
		return r.report(err)
	}
	r.p = p
	switch n := len(p.args); {
	case n < cmd.minArgs:
		return r.report(usagef("missing argument: usage: keyward %s %s", cmd.name(), cmd.args))
	case cmd.maxArgs >= 0 && n > cmd.maxArgs:
		return r.report(usagef("unexpected argument %q: usage: keyward %s %s", p.args[cmd.maxArgs], cmd.name(), cmd.args))
	}
	if r.timeout, err = r.timeoutSetting(); err != nil {
		return r.report(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	r.ctx = ctx
	if err := cmd.run(r); err != nil {
		return r.report(err)
	}
	return ExitOK
}

// jsonRequested looks for --json before the command is known, so that
// even a usage error is reported as JSON.
func jsonRequested(args []string) bool {
	for _, a := range args {
		if a == "--" {
			break
		}
		if a == "--json" || a == "-json" || a == "--json=true" || a == "-json=true" {
			return true
		}
	}
	return false
}

func (r *run) timeoutSetting() (time.Duration, error) {
	s, src := r.str("timeout"), "--timeout"
	if s == "" {
		s, src = r.getenv("KEYWARD_TIMEOUT"), "KEYWARD_TIMEOUT"
	}
	if s == "" {
		if r.cmd != nil && r.cmd.timeout > 0 {
			return r.cmd.timeout, nil
		}
		return defaultTimeout, nil
	}
	if n, err := strconv.Atoi(s); err == nil && n > 0 {
		return time.Duration(n) * time.Second, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		return 0, usagef("%s takes a positive duration such as 30s or 5m, not %q", src, s)
	}
	return d, nil
}

// readStdin reads all of stdin for purpose (at most 1 MiB). Only one
// thing may read stdin per command.
func (r *run) readStdin(purpose string) ([]byte, error) {
	if r.stdinBy != "" {
		return nil, usagef("both %s and %s want standard input: give one of them from a file", r.stdinBy, purpose)
	}
	r.stdinBy = purpose
	if f, ok := r.stdin.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			fmt.Fprintf(r.stderr, "reading %s from the terminal; end with Ctrl-D\n", purpose)
		}
	}
	data, err := io.ReadAll(io.LimitReader(r.stdin, maxStdin+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s from stdin: %w", purpose, err)
	}
	if len(data) > maxStdin {
		return nil, usagef("%s on stdin is larger than %d bytes", purpose, maxStdin)
	}
	return data, nil
}

// secretValue returns a secret flag's value: "-" reads it from stdin,
// without its final newline.
func (r *run) secretValue(flag, value string) (string, error) {
	if value != "-" {
		return value, nil
	}
	data, err := r.readStdin("--" + flag)
	if err != nil {
		return "", err
	}
	s := strings.TrimRight(string(data), "\r\n")
	clear(data)
	if s == "" {
		return "", usagef("--%s -: standard input is empty", flag)
	}
	return s, nil
}

// secretFile reads a secret from a file, without its final newline.
func secretFile(flag, path string) (string, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return "", &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--%s: %v", flag, err)}
	}
	s := strings.TrimRight(string(data), "\r\n")
	clear(data)
	if s == "" {
		return "", usagef("--%s: %s is empty", flag, path)
	}
	return s, nil
}

// setWhat names the operation for error messages.
func (r *run) setWhat(format string, args ...any) { r.what = fmt.Sprintf(format, args...) }

// client connects (lazily) with the resolved endpoint and credentials.
func (r *run) client() (*client.Client, error) {
	if r.c != nil {
		return r.c, nil
	}
	cn, err := r.resolveConn()
	if err != nil {
		return nil, err
	}
	r.endpoint, r.access = cn.endpoint, cn.accessKey
	if cn.accessKey == "" || cn.secretKey == "" {
		return nil, &cliError{code: ExitAccess, name: "MissingCredentials",
			msg:  "no credentials: the access key or the secret key is not set",
			hint: "set --access-key and --secret-key, or KEYWARD_ACCESS_KEY and KEYWARD_SECRET_KEY, or save an alias with `keyward alias set`"}
	}
	opts := []client.Option{client.WithUserAgent("keyward-cli/1")}
	if cn.insecure {
		opts = append(opts, client.WithInsecureSkipVerify())
	}
	if cn.caCert != "" {
		pem, err := os.ReadFile(cn.caCert)
		if err != nil {
			return nil, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("CA certificate: %v", err)}
		}
		opts = append(opts, client.WithCACert(pem))
	}
	c, err := client.New(cn.endpoint, cn.accessKey, cn.secretKey, opts...)
	if err != nil {
		return nil, &cliError{code: ExitUsage, name: "UsageError", msg: strings.TrimPrefix(err.Error(), "keyward: "),
			hint: "the endpoint looks like http://127.0.0.1:9000 or https://kms.example.com:9000"}
	}
	r.c = c
	return c, nil
}
