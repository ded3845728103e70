package cli

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// exitCodeHelp documents the exit codes.
const exitCodeHelp = `Exit codes of the admin commands:
  0  success
  1  any other error (a server error not listed here, a local I/O error)
  2  usage error: unknown command or flag, missing or invalid argument
  3  not found: no such key (or alias)
  4  access denied: authentication or authorization failed, or no credentials
  5  conflict: the service or the key is in a state that forbids the call
  6  unavailable: cannot connect, timed out, or the KMS service is not running
`

// Usage is the admin CLI's part of `keyward --help`.
func Usage() string {
	var b strings.Builder
	b.WriteString("Admin commands (`keyward <noun> --help`, `keyward <noun> <verb> --help` for details):\n")
	tw := tabwriter.NewWriter(&b, 0, 8, 1, ' ', 0)
	for _, noun := range Nouns {
		cmds := commandsOf(noun)
		if cmds[0].verb == "" {
			fmt.Fprintf(tw, "  keyward %s\t%s\n", noun, strings.TrimSpace(cmds[0].args+" [flags]"))
			continue
		}
		prefix, line := "keyward "+noun, ""
		for i, c := range cmds {
			if i > 0 {
				line += "|"
			}
			if len(line)+len(c.verb) > 60 {
				fmt.Fprintf(tw, "  %s\t%s\n", prefix, line)
				prefix, line = "", ""
			}
			line += c.verb
		}
		fmt.Fprintf(tw, "  %s\t%s\n", prefix, line)
	}
	tw.Flush()
	b.WriteString("\nFlags of every admin command, before or after the verb:\n")
	writeFlagList(&b, globalFlags)
	b.WriteString(`
Connection settings: a flag wins over the environment (KEYWARD_ENDPOINT,
KEYWARD_ACCESS_KEY, KEYWARD_SECRET_KEY, KEYWARD_CA_CERT, KEYWARD_INSECURE,
KEYWARD_TIMEOUT), which wins over the default alias (KEYWARD_ALIAS, or
` + "`keyward alias use`" + `), then ` + defaultEndpoint + `. An alias named with --alias wins
over the environment. Aliases live in $XDG_CONFIG_HOME/keyward/aliases.json.

`)
	b.WriteString(exitCodeHelp)
	return b.String()
}

func writeFlagList(w io.Writer, flags []flagDef) {
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for _, f := range flags {
		fmt.Fprintf(tw, "  %s\t%s\n", f.synopsis(), f.help)
	}
	tw.Flush()
}

// writeNounHelp lists the verbs of a noun.
func writeNounHelp(w io.Writer, noun string) {
	fmt.Fprintf(w, "usage: keyward %s <verb> [flags]\n\n%s.\n\nverbs:\n", noun, capitalize(nounSummaries[noun]))
	tw := tabwriter.NewWriter(w, 0, 8, 3, ' ', 0)
	for _, c := range commandsOf(noun) {
		name := c.verb
		if c.args != "" {
			name += " " + c.args
		}
		fmt.Fprintf(tw, "  %s\t%s\n", name, c.summary)
	}
	tw.Flush()
	fmt.Fprintf(w, "\nRun `keyward %s <verb> --help` for the flags of a verb, `keyward --help` for the\nglobal flags and the exit codes.\n", noun)
}

// writeCommandHelp prints a command's usage, description and flags.
func writeCommandHelp(w io.Writer, c *command) {
	fmt.Fprintf(w, "usage: keyward %s", c.name())
	if c.args != "" {
		fmt.Fprintf(w, " %s", c.args)
	}
	fmt.Fprintf(w, " [flags]\n\n")
	if len(c.aliases) > 0 {
		fmt.Fprintf(w, "Also: keyward %s %s.\n\n", c.noun, strings.Join(c.aliases, ", "))
	}
	desc := c.help
	if desc == "" {
		desc = capitalize(c.summary) + "."
	}
	fmt.Fprintf(w, "%s\n", desc)
	if len(c.flags) > 0 {
		fmt.Fprintf(w, "\nflags:\n")
		writeFlagList(w, c.flags)
	}
	fmt.Fprintf(w, "\nglobal flags:\n")
	writeFlagList(w, globalFlags)
	fmt.Fprintf(w, "\nExit codes: 0 ok, 1 error, 2 usage, 3 not found, 4 access denied, 5 conflict,\n6 unavailable (see `keyward --help`).\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
