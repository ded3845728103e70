package cli

import (
	"fmt"
	"io"
	"strings"
)

// topLevel are the commands of cmd/keyward that are not the CLI's.
var topLevel = []struct{ name, summary string }{
	{"server", "run the server"},
	{"bench", "load generator"},
	{"version", "print the version"},
}

// Value completions of flags that take a closed set of values or a file.
var (
	fileFlags = []string{"--in", "--out", "--file", "--ca-cert", "--master-key-file", "--token-file", "--secret-id-file"}
	enumFlags = map[string]string{
		"--backend": "local vault vault-transit",
		"--spec":    "AES_256 AES_128",
		"--state":   "Enabled Disabled PendingDeletion",
	}
	keyIDFlags = []string{"--key", "--to", "--from-key"}
)

func completionCommands() []*command {
	return []*command{{noun: "completion", args: "bash|zsh|fish", summary: nounSummaries["completion"],
		help:    "Print a completion script for the shell:\n\n  bash: source <(keyward completion bash)   (or save it in /etc/bash_completion.d/keyward)\n  zsh:  source <(keyward completion zsh)    (in ~/.zshrc)\n  fish: keyward completion fish > ~/.config/fish/completions/keyward.fish\n\nKey ids and alias names are completed by asking `keyward key list` and\n`keyward alias list` (bash and zsh).",
		minArgs: 1, maxArgs: 1, run: func(r *run) error {
			switch r.p.args[0] {
			case "bash":
				writeBash(r.stdout)
			case "zsh":
				io.WriteString(r.stdout, "# zsh completion for keyward: source <(keyward completion zsh)\nautoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n")
				writeBash(r.stdout)
			case "fish":
				writeFish(r.stdout)
			default:
				return usagef("completion takes bash, zsh or fish, not %q", r.p.args[0])
			}
			return nil
		}}}
}

func flagNames(flags []flagDef) string {
	names := make([]string, len(flags))
	for i, f := range flags {
		names[i] = "--" + f.name
	}
	return strings.Join(names, " ")
}

// valueFlags are the global flags that take a value (skipped when looking
// for the noun and the verb).
func valueFlags() string {
	var names []string
	for _, f := range globalFlags {
		if f.kind != boolFlag {
			names = append(names, "--"+f.name)
		}
	}
	return strings.Join(names, "|")
}

func writeBash(w io.Writer) {
	var nouns []string
	for _, t := range topLevel {
		nouns = append(nouns, t.name)
	}
	nouns = append(nouns, Nouns...)
	fmt.Fprintf(w, `# bash completion for keyward: source <(keyward completion bash)
_keyward() {
    local cur prev noun="" verb="" i w words="" flags=""
    cur="${COMP_WORDS[COMP_CWORD]}"
    prev="${COMP_WORDS[COMP_CWORD-1]}"
    for ((i = 1; i < COMP_CWORD; i++)); do
        w="${COMP_WORDS[i]}"
        case "$w" in
        %s) ((i++)); continue ;;
        -*) continue ;;
        esac
        if [[ -z $noun ]]; then noun=$w; elif [[ -z $verb ]]; then verb=$w; break; fi
    done
    case "$prev" in
    %s)
        COMPREPLY=($(compgen -f -- "$cur")); return ;;
`, valueFlags(), strings.Join(fileFlags, "|"))
	for _, f := range []string{"--backend", "--spec", "--state"} {
		fmt.Fprintf(w, "    %s) COMPREPLY=($(compgen -W %q -- \"$cur\")); return ;;\n", f, enumFlags[f])
	}
	fmt.Fprintf(w, `    --alias)
        words=$(keyward alias list --json 2>/dev/null | sed -n 's/^ *"name": "\(.*\)",$/\1/p')
        COMPREPLY=($(compgen -W "$words" -- "$cur")); return ;;
    %s)
        words=$(keyward key list --all --json --timeout 3s 2>/dev/null | sed -n 's/^ *"key_id": "\(.*\)",$/\1/p')
        COMPREPLY=($(compgen -W "$words" -- "$cur")); return ;;
    esac
    case "$noun $verb" in
    " ") words=%q ;;
`, strings.Join(keyIDFlags, "|"), strings.Join(nouns, " "))
	for _, noun := range Nouns {
		cmds := commandsOf(noun)
		if cmds[0].verb == "" {
			c := cmds[0]
			fmt.Fprintf(w, "    \"%s \"*) flags=%q", noun, flagNames(c.flags))
			if noun == "completion" {
				fmt.Fprintf(w, "; [[ -z $verb ]] && words=\"bash zsh fish\"")
			}
			fmt.Fprintf(w, " ;;\n")
			continue
		}
		var verbs []string
		for _, c := range cmds {
			verbs = append(verbs, c.verb)
		}
		fmt.Fprintf(w, "    \"%s \") words=%q ;;\n", noun, strings.Join(verbs, " "))
		for _, c := range cmds {
			pattern := fmt.Sprintf("%q", noun+" "+c.verb)
			for _, a := range c.aliases {
				pattern += fmt.Sprintf("|%q", noun+" "+a)
			}
			fmt.Fprintf(w, "    %s) flags=%q", pattern, flagNames(c.flags))
			if noun == "key" && strings.HasPrefix(c.args, "ID") {
				fmt.Fprintf(w, "; words=$(keyward key list --all --json --timeout 3s 2>/dev/null | sed -n 's/^ *\"key_id\": \"\\(.*\\)\",$/\\1/p')")
			}
			if noun == "alias" && strings.Contains(c.args, "NAME") && c.verb != "set" {
				fmt.Fprintf(w, "; words=$(keyward alias list --json 2>/dev/null | sed -n 's/^ *\"name\": \"\\(.*\\)\",$/\\1/p')")
			}
			fmt.Fprintf(w, " ;;\n")
		}
	}
	fmt.Fprintf(w, `    esac
    if [[ $cur == -* ]]; then
        [[ -n $noun ]] && flags="$flags %s"
        [[ -z $noun ]] && flags="--help --version"
        COMPREPLY=($(compgen -W "$flags" -- "$cur"))
    else
        COMPREPLY=($(compgen -W "$words" -- "$cur"))
    fi
}
complete -F _keyward keyward
`, flagNames(globalFlags))
}

func fishQuote(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

func writeFish(w io.Writer) {
	var skip []string
	for _, f := range globalFlags {
		if f.kind != boolFlag {
			skip = append(skip, "--"+f.name)
		}
	}
	fmt.Fprintf(w, `# fish completion for keyward: keyward completion fish > ~/.config/fish/completions/keyward.fish
function __keyward_words
    set -l words (commandline -opc)
    set -e words[1]
    set -l out
    set -l skip 0
    for w in $words
        if test $skip = 1
            set skip 0
            continue
        end
        switch $w
            case %s
                set skip 1
                continue
            case '-*'
                continue
        end
        set out $out $w
    end
    if set -q out[1]
        printf '%%s\n' $out
    end
end
function __keyward_at
    test (count (__keyward_words)) -eq $argv[1]
end
function __keyward_is
    set -l w (__keyward_words)
    test "$w[1]" = "$argv[1]"; or return 1
    if set -q argv[2]
        test "$w[2]" = "$argv[2]"; or return 1
    end
end
complete -c keyward -f
`, strings.Join(skip, " "))
	for _, t := range topLevel {
		fmt.Fprintf(w, "complete -c keyward -n '__keyward_at 0' -a %s -d %s\n", t.name, fishQuote(t.summary))
	}
	for _, noun := range Nouns {
		fmt.Fprintf(w, "complete -c keyward -n '__keyward_at 0' -a %s -d %s\n", noun, fishQuote(nounSummaries[noun]))
	}
	flagLine := func(cond string, f flagDef) {
		kind := ""
		switch {
		case f.kind == boolFlag:
		case contains(fileFlags, "--"+f.name):
			kind = " -r -F"
		case enumFlags["--"+f.name] != "":
			kind = " -x -a " + fishQuote(enumFlags["--"+f.name])
		default:
			kind = " -x"
		}
		fmt.Fprintf(w, "complete -c keyward -n %s -l %s%s -d %s\n", fishQuote(cond), f.name, kind, fishQuote(f.help))
	}
	for _, c := range commands {
		cond := "__keyward_is " + c.noun
		if c.verb != "" {
			fmt.Fprintf(w, "complete -c keyward -n '__keyward_at 1; and __keyward_is %s' -a %s -d %s\n", c.noun, c.verb, fishQuote(c.summary))
			cond += " " + c.verb
		}
		for _, f := range c.flags {
			flagLine(cond, f)
		}
	}
	fmt.Fprintf(w, "complete -c keyward -n '__keyward_at 1; and __keyward_is completion' -a 'bash zsh fish'\n")
	for _, f := range globalFlags {
		flagLine("not __keyward_at 0", f)
	}
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}
