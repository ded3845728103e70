package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// flagKind is how a flag takes its value.
type flagKind int

const (
	boolFlag   flagKind = iota // --name, --name=false
	stringFlag                 // --name VALUE, --name=VALUE; once
	listFlag                   // like stringFlag, repeatable
)

// flagDef declares a flag of a command (or a global one).
type flagDef struct {
	name string
	kind flagKind
	arg  string // placeholder of the value in the help ("ID", "FILE")
	help string
}

func strFlag(name, arg, help string) flagDef { return flagDef{name, stringFlag, arg, help} }
func listOf(name, arg, help string) flagDef  { return flagDef{name, listFlag, arg, help} }
func boolFlagDef(name, help string) flagDef  { return flagDef{name, boolFlag, "", help} }

// synopsis is "--name ARG" ("--name" for a boolean).
func (d flagDef) synopsis() string {
	if d.kind == boolFlag {
		return "--" + d.name
	}
	return "--" + d.name + " " + d.arg
}

func findFlag(defs []flagDef, name string) *flagDef {
	for i := range defs {
		if defs[i].name == name {
			return &defs[i]
		}
	}
	return nil
}

// globalFlags are accepted by every command, before or after the verb.
var globalFlags = []flagDef{
	strFlag("endpoint", "URL[,URL...]", "server URL; several servers of the same keys separated by commas, tried in turn (KEYWARD_ENDPOINT, else the alias, else "+defaultEndpoint+")"),
	strFlag("access-key", "KEY", "access key (KEYWARD_ACCESS_KEY)"),
	strFlag("secret-key", "KEY|-", "secret key; - reads it from stdin (KEYWARD_SECRET_KEY)"),
	strFlag("alias", "NAME", "use a saved alias (KEYWARD_ALIAS; see `keyward alias --help`)"),
	boolFlagDef("json", "print JSON for scripts; errors as JSON on stderr"),
	boolFlagDef("insecure", "do not verify the server's TLS certificate (tests only; KEYWARD_INSECURE)"),
	strFlag("ca-cert", "FILE", "trust the PEM CA certificate(s) in FILE for HTTPS (KEYWARD_CA_CERT)"),
	strFlag("timeout", "DURATION", "give up after this long, e.g. 30s (KEYWARD_TIMEOUT; default 2m)"),
	boolFlagDef("help", "print the usage of the command (also -h)"),
}

// parsed is a parsed command line: flag values by name, and positionals.
type parsed struct {
	flags map[string][]string
	args  []string
}

// parseArgs parses args against defs. Flags and positional arguments may be
// interleaved; "--" ends the flags; "-" alone is a positional (stdin). A
// flag is written --name or -name, its value as the next argument or after
// "=". -h is --help.
func parseArgs(defs []flagDef, args []string) (parsed, error) {
	p := parsed{flags: map[string][]string{}}
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			p.args = append(p.args, args[i+1:]...)
			break
		}
		if len(a) < 2 || a[0] != '-' {
			p.args = append(p.args, a)
			continue
		}
		name := strings.TrimPrefix(a[1:], "-")
		value, hasValue := "", false
		if n, v, ok := strings.Cut(name, "="); ok {
			name, value, hasValue = n, v, true
		}
		if name == "h" {
			name = "help"
		}
		d := findFlag(defs, name)
		if d == nil {
			return p, usagef("unknown flag %s", a)
		}
		switch d.kind {
		case boolFlag:
			if !hasValue {
				value = "true"
			} else {
				b, err := strconv.ParseBool(value)
				if err != nil {
					return p, usagef("flag --%s takes true or false, not %q", name, value)
				}
				value = strconv.FormatBool(b)
			}
			p.flags[name] = []string{value}
			continue
		default:
			if !hasValue {
				if i+1 >= len(args) {
					return p, usagef("flag --%s needs a value (%s)", name, d.arg)
				}
				i++
				value = args[i]
			}
			if d.kind == stringFlag && len(p.flags[name]) > 0 {
				return p, usagef("flag --%s given more than once", name)
			}
		}
		p.flags[name] = append(p.flags[name], value)
	}
	return p, nil
}

// helpRequested reports a -h or --help before any "--".
func helpRequested(args []string) bool {
	for _, a := range args {
		switch a {
		case "--":
			return false
		case "-h", "--help", "-help", "--help=true", "-help=true":
			return true
		}
	}
	return false
}

// findVerb returns the index of the verb in args (the arguments after the
// noun): the first positional, skipping global flags and their values. It
// returns -1 when there is none. A command flag before the verb is a usage
// error: its arity is not known until the verb is.
func findVerb(args []string) (int, error) {
	for i := 0; i < len(args); i++ {
		a := args[i]
		if a == "--" {
			if i+1 < len(args) {
				return i + 1, nil
			}
			return -1, nil
		}
		if len(a) < 2 || a[0] != '-' {
			return i, nil
		}
		name, _, hasValue := strings.Cut(strings.TrimPrefix(a[1:], "-"), "=")
		if name == "h" {
			continue
		}
		d := findFlag(globalFlags, name)
		if d == nil {
			return -1, usagef("flag %s must come after the verb", a)
		}
		if d.kind != boolFlag && !hasValue {
			i++
		}
	}
	return -1, nil
}

// Accessors of a run's flags.

func (r *run) has(name string) bool { return len(r.p.flags[name]) > 0 }

func (r *run) str(name string) string {
	if v := r.p.flags[name]; len(v) > 0 {
		return v[len(v)-1]
	}
	return ""
}

func (r *run) list(name string) []string { return r.p.flags[name] }

func (r *run) boolean(name string) bool { return r.str(name) == "true" }

// intFlag parses an integer flag; ok is false when it is absent.
func (r *run) intFlag(name string) (n int, ok bool, err error) {
	if !r.has(name) {
		return 0, false, nil
	}
	n, err = strconv.Atoi(r.str(name))
	if err != nil {
		return 0, false, usagef("flag --%s takes an integer, not %q", name, r.str(name))
	}
	return n, true, nil
}

// parseSeconds reads "300", "300s" or "5m" as whole seconds.
func parseSeconds(flag, s string) (int, error) {
	if n, err := strconv.Atoi(s); err == nil {
		return n, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d%time.Second != 0 {
		return 0, usagef("flag --%s takes seconds (300) or a duration (5m), not %q", flag, s)
	}
	return int(d / time.Second), nil
}

// keyValues parses K=V arguments into a map (for tags and contexts).
func keyValues(flag string, items []string) (map[string]string, error) {
	if len(items) == 0 {
		return nil, nil
	}
	m := make(map[string]string, len(items))
	for _, it := range items {
		k, v, ok := strings.Cut(it, "=")
		if !ok || k == "" {
			return nil, usagef("%s takes KEY=VALUE, not %q", flag, it)
		}
		if _, dup := m[k]; dup {
			return nil, usagef("%s: key %q given twice", flag, k)
		}
		m[k] = v
	}
	return m, nil
}

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e *usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return &usageError{fmt.Sprintf(format, args...)}
}
