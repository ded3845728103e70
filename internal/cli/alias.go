package cli

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
)

// The alias file, $XDG_CONFIG_HOME/keyward/aliases.json (mode 0600 in a
// 0700 directory), keeps named endpoints and credentials.
type aliasFile struct {
	Default string            `json:"default,omitempty"`
	Aliases map[string]*alias `json:"aliases"`
}

type alias struct {
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"access_key"`
	SecretKey string `json:"secret_key"`
	Insecure  bool   `json:"insecure,omitempty"`
	CACert    string `json:"ca_cert,omitempty"`
}

// aliasView is an alias as printed: never with its secret.
type aliasView struct {
	Name      string `json:"name"`
	Endpoint  string `json:"endpoint"`
	AccessKey string `json:"access_key"`
	Insecure  bool   `json:"insecure"`
	CACert    string `json:"ca_cert,omitempty"`
	Default   bool   `json:"default"`
}

var aliasName = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)

// aliasPath is where the alias file lives.
func aliasPath(getenv func(string) string) (string, error) {
	var dir string
	switch runtime.GOOS {
	case "windows", "darwin", "ios", "plan9":
		d, err := os.UserConfigDir()
		if err != nil {
			return "", err
		}
		dir = d
	default:
		dir = getenv("XDG_CONFIG_HOME")
		if !filepath.IsAbs(dir) {
			home := getenv("HOME")
			if home == "" {
				return "", errors.New("neither $XDG_CONFIG_HOME nor $HOME is set")
			}
			dir = filepath.Join(home, ".config")
		}
	}
	return filepath.Join(dir, "keyward", "aliases.json"), nil
}

// loadAliases reads the alias file; a missing file is an empty one.
func (r *run) loadAliases() (*aliasFile, string, error) {
	path, err := aliasPath(r.getenv)
	if err != nil {
		return nil, "", &cliError{code: ExitError, name: "AliasFile", msg: "alias file: " + err.Error()}
	}
	f := &aliasFile{Aliases: map[string]*alias{}}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return f, path, nil
	}
	if err != nil {
		return nil, path, &cliError{code: ExitError, name: "AliasFile", msg: "alias file: " + err.Error()}
	}
	defer clear(data)
	if err := json.Unmarshal(data, f); err != nil {
		return nil, path, &cliError{code: ExitError, name: "AliasFile", msg: fmt.Sprintf("alias file %s: %v", path, err),
			hint: "fix or remove the file, then save the aliases again with `keyward alias set`"}
	}
	if f.Aliases == nil {
		f.Aliases = map[string]*alias{}
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 && runtime.GOOS != "windows" {
		fmt.Fprintf(r.stderr, "warning: %s holds secrets but others can read it: chmod 600 %s\n", path, path)
	}
	return f, path, nil
}

// save writes the alias file atomically, mode 0600 in a 0700 directory.
func (f *aliasFile) save(path string) error {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return err
	}
	data, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return err
	}
	defer clear(data)
	tmp, err := os.CreateTemp(dir, ".aliases-*.json")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(append(data, '\n')); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}

// conn is where and as whom to connect.
type conn struct {
	endpoint, accessKey, secretKey string
	insecure                       bool
	caCert                         string
}

// resolveConn applies the precedence: flag > environment > alias >
// default. An alias chosen with --alias ranks as a flag (above the
// environment); one chosen by KEYWARD_ALIAS or `keyward alias use` ranks
// below the environment.
func (r *run) resolveConn() (conn, error) {
	name, explicit := r.str("alias"), true
	if name == "" {
		name, explicit = r.getenv("KEYWARD_ALIAS"), false
	}
	var a alias
	missing := func(flag, env string) bool { return !r.has(flag) && r.getenv(env) == "" }
	if name != "" || missing("endpoint", "KEYWARD_ENDPOINT") || missing("access-key", "KEYWARD_ACCESS_KEY") ||
		missing("secret-key", "KEYWARD_SECRET_KEY") {
		f, path, err := r.loadAliases()
		if err != nil {
			return conn{}, err
		}
		if name == "" {
			name = f.Default
		}
		if name != "" {
			p := f.Aliases[name]
			if p == nil {
				return conn{}, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("no alias %q in %s", name, path),
					hint: "`keyward alias list` shows the aliases; `keyward alias set` saves one"}
			}
			a = *p
		}
	}
	pick := func(flag, env, fromAlias, def string) (string, bool) {
		switch {
		case r.has(flag):
			return r.str(flag), false
		case explicit && fromAlias != "":
			return fromAlias, true
		case r.getenv(env) != "":
			return r.getenv(env), false
		case fromAlias != "":
			return fromAlias, true
		}
		return def, false
	}
	var c conn
	endpoint, aliasEndpoint := pick("endpoint", "KEYWARD_ENDPOINT", a.Endpoint, defaultEndpoint)
	c.endpoint = endpoint
	c.accessKey, _ = pick("access-key", "KEYWARD_ACCESS_KEY", a.AccessKey, "")
	if !aliasEndpoint {
		// The alias's TLS settings belong to its endpoint only.
		a.CACert, a.Insecure = "", false
	}
	c.caCert, _ = pick("ca-cert", "KEYWARD_CA_CERT", a.CACert, "")
	if r.has("secret-key") {
		s, err := r.secretValue("secret-key", r.str("secret-key"))
		if err != nil {
			return conn{}, err
		}
		c.secretKey = s
	} else {
		c.secretKey, _ = pick("secret-key", "KEYWARD_SECRET_KEY", a.SecretKey, "")
	}
	switch v := r.getenv("KEYWARD_INSECURE"); {
	case r.has("insecure"):
		c.insecure = r.boolean("insecure")
	case explicit && aliasEndpoint || v == "":
		c.insecure = a.Insecure
	default:
		b, err := strconv.ParseBool(v)
		if err != nil {
			return conn{}, usagef("KEYWARD_INSECURE takes true or false, not %q", v)
		}
		c.insecure = b
	}
	return c, nil
}

func aliasCommands() []*command {
	return []*command{
		{noun: "alias", verb: "set", args: "NAME", summary: "save (or update) an endpoint and its credentials under a name",
			help:  "Save an alias: --endpoint, --access-key and --secret-key (with --secret-key -\nthe secret is read from stdin, out of the shell history), plus --insecure or\n--ca-cert FILE. Updating an alias changes only the flags given. The file is\n$XDG_CONFIG_HOME/keyward/aliases.json, mode 0600.",
			flags: []flagDef{boolFlagDef("default", "also make it the default alias")}, minArgs: 1, maxArgs: 1, run: runAliasSet},
		{noun: "alias", verb: "list", aliases: []string{"ls"}, summary: "list the aliases (never their secrets)", maxArgs: 0, run: runAliasList},
		{noun: "alias", verb: "use", args: "[NAME]", summary: "make an alias the default (KEYWARD_ALIAS and --alias override it)",
			flags: []flagDef{boolFlagDef("clear", "no default alias")}, maxArgs: 1, run: runAliasUse},
		{noun: "alias", verb: "remove", aliases: []string{"rm"}, args: "NAME", summary: "delete an alias", minArgs: 1, maxArgs: 1, run: runAliasRemove},
	}
}

func runAliasSet(r *run) error {
	name := r.p.args[0]
	if !aliasName.MatchString(name) {
		return usagef("an alias name is 1-64 characters of A-Z a-z 0-9 . _ -, not %q", name)
	}
	f, path, err := r.loadAliases()
	if err != nil {
		return err
	}
	a := f.Aliases[name]
	if a == nil {
		if !r.has("endpoint") || !r.has("access-key") || !r.has("secret-key") {
			return usagef("a new alias needs --endpoint, --access-key and --secret-key")
		}
		a = &alias{}
	}
	if r.has("endpoint") {
		for _, e := range strings.Split(r.str("endpoint"), ",") {
			u, err := url.Parse(strings.TrimSpace(e))
			if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
				return usagef("--endpoint takes http(s)://host[:port] (several separated by commas), not %q", r.str("endpoint"))
			}
		}
		a.Endpoint = r.str("endpoint")
	}
	if r.has("access-key") {
		a.AccessKey = r.str("access-key")
	}
	if r.has("secret-key") {
		if r.str("secret-key") != "-" {
			fmt.Fprintln(r.stderr, "note: a secret on the command line can end up in the shell history; --secret-key - reads it from stdin")
		}
		if a.SecretKey, err = r.secretValue("secret-key", r.str("secret-key")); err != nil {
			return err
		}
	}
	if r.has("insecure") {
		a.Insecure = r.boolean("insecure")
	}
	if r.has("ca-cert") {
		if a.CACert, err = filepath.Abs(r.str("ca-cert")); err != nil {
			return err
		}
	}
	if a.Endpoint == "" || a.AccessKey == "" || a.SecretKey == "" {
		return usagef("the endpoint, access key and secret key of an alias cannot be empty")
	}
	f.Aliases[name] = a
	if r.boolean("default") {
		f.Default = name
	}
	if err := f.save(path); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if r.json {
		return r.printJSON(view(name, a, f.Default))
	}
	r.printf("Alias %s saved in %s.\n", name, path)
	if f.Default != name {
		r.printf("Use it with --alias %s, KEYWARD_ALIAS=%s, or `keyward alias use %s`.\n", name, name, name)
	}
	return nil
}

func view(name string, a *alias, def string) aliasView {
	return aliasView{Name: name, Endpoint: a.Endpoint, AccessKey: a.AccessKey, Insecure: a.Insecure, CACert: a.CACert, Default: name == def}
}

func runAliasList(r *run) error {
	f, _, err := r.loadAliases()
	if err != nil {
		return err
	}
	views := []aliasView{}
	for _, name := range slices.Sorted(maps.Keys(f.Aliases)) {
		views = append(views, view(name, f.Aliases[name], f.Default))
	}
	if r.json {
		return r.printJSON(views)
	}
	rows := make([][]string, 0, len(views))
	for _, v := range views {
		tls := "verified"
		switch {
		case v.Insecure:
			tls = "NOT VERIFIED"
		case v.CACert != "":
			tls = "CA " + v.CACert
		}
		rows = append(rows, []string{v.Name, v.Endpoint, v.AccessKey, tls, yesNo(v.Default)})
	}
	writeTable(r.stdout, []string{"NAME", "ENDPOINT", "ACCESS KEY", "TLS", "DEFAULT"}, rows)
	if len(views) == 0 {
		fmt.Fprintln(r.stderr, "no aliases; save one with `keyward alias set`")
	}
	return nil
}

func runAliasUse(r *run) error {
	if r.boolean("clear") == (len(r.p.args) == 1) {
		return usagef("give an alias NAME, or --clear")
	}
	f, path, err := r.loadAliases()
	if err != nil {
		return err
	}
	name := ""
	if !r.boolean("clear") {
		name = r.p.args[0]
		if f.Aliases[name] == nil {
			return &cliError{code: ExitNotFound, name: "NotFound", msg: fmt.Sprintf("no alias %q", name),
				hint: "`keyward alias list` shows the aliases"}
		}
	}
	f.Default = name
	if err := f.save(path); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if r.json {
		return r.printJSON(map[string]string{"default": name})
	}
	if name == "" {
		r.printf("No default alias.\n")
	} else {
		r.printf("Default alias: %s.\n", name)
	}
	return nil
}

func runAliasRemove(r *run) error {
	name := r.p.args[0]
	f, path, err := r.loadAliases()
	if err != nil {
		return err
	}
	if f.Aliases[name] == nil {
		return &cliError{code: ExitNotFound, name: "NotFound", msg: fmt.Sprintf("no alias %q", name),
			hint: "`keyward alias list` shows the aliases"}
	}
	delete(f.Aliases, name)
	if f.Default == name {
		f.Default = ""
	}
	if err := f.save(path); err != nil {
		return fmt.Errorf("saving %s: %w", path, err)
	}
	if r.json {
		return r.printJSON(map[string]any{"name": name, "removed": true})
	}
	r.printf("Alias %s removed.\n", name)
	return nil
}
