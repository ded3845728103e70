package config

// Secrets at rest (docs/operations.md, "Secrets at rest"). Each secret of a
// configuration (the local master key, a Vault token, an AppRole secret
// id) is given one of three ways:
//
//   - inline, and persisted in kms-state.json (0600 in the 0700 data dir);
//   - by reference — a file inside the operator's secrets dir, or a
//     KEYWARD_SECRET_* environment variable of the server — persisted as
//     the reference only and read again at every start;
//   - inline under --no-persist-secrets: held in memory only; a restarted
//     server waits (Configured, secrets_required) until an operator gives
//     it again with /kms/start.
//
// A caller with kms:Configure chooses the references. They are confined
// (secrets dir, variable prefix) so that such a caller cannot make Keyward
// read an arbitrary server file or variable and send it to a Vault address
// of the caller's choosing.

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

const (
	// SecretEnvPrefix starts the name of every environment variable a
	// configuration may reference.
	SecretEnvPrefix = "KEYWARD_SECRET_"
	// MaxSecretFileSize bounds a referenced secret file.
	MaxSecretFileSize = 64 << 10
	maxRefLen         = 4096
)

// validateRefs checks the references of one secret without touching the
// file system: at most one, a file as a clean absolute path, a variable
// named with SecretEnvPrefix.
func validateRefs(secret, file, env string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", kms.ErrInvalidRequest, fmt.Sprintf(format, a...))
	}
	if file != "" && env != "" {
		return bad("give one of %s, %s_file or %s_env", secret, secret, secret)
	}
	if file != "" && (len(file) > maxRefLen || !filepath.IsAbs(file) || filepath.Clean(file) != file || strings.ContainsRune(file, 0)) {
		return bad("%s_file must be a clean absolute path on the server, inside its secrets dir (--secrets-dir)", secret)
	}
	if env != "" && !validSecretEnvName(env) {
		return bad("%s_env must name an environment variable of the server that starts with %s (letters, digits and _ only), such as %s%s",
			secret, SecretEnvPrefix, SecretEnvPrefix, strings.ToUpper(secret))
	}
	return nil
}

func validSecretEnvName(name string) bool {
	if len(name) <= len(SecretEnvPrefix) || len(name) > 256 || !strings.HasPrefix(name, SecretEnvPrefix) {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// awaits reports whether the named secret is awaited.
func (c *Config) awaits(secret string) bool { return slices.Contains(c.Awaiting, secret) }

// validateAwaiting checks that every awaited secret is one this
// configuration holds inline and does not hold yet.
func (c *Config) validateAwaiting() error {
	for i, s := range c.Awaiting {
		ok := false
		switch s {
		case SecretMasterKey:
			l := c.Local
			ok = l != nil && l.MasterKey == "" && l.MasterKeyFile == "" && l.MasterKeyEnv == ""
		case SecretToken:
			v := c.Vault
			ok = v != nil && v.Auth.Method == "token" && v.Auth.Token == "" && v.Auth.TokenFile == "" && v.Auth.TokenEnv == ""
		case SecretSecretID:
			v := c.Vault
			ok = v != nil && v.Auth.Method == "approle" && v.Auth.SecretID == "" && v.Auth.SecretIDFile == "" && v.Auth.SecretIDEnv == ""
		}
		if !ok || slices.Contains(c.Awaiting[:i], s) {
			return fmt.Errorf("%w: the configuration cannot await the secret %q", kms.ErrInvalidRequest, s)
		}
	}
	return nil
}

// ForDisk returns the configuration as it is persisted, and the secrets
// left out of it that a restarted process must be given again (withheld
// now, or still awaited). A secret given by reference is always left out:
// its reference is what is kept. With withhold (--no-persist-secrets)
// inline secrets are left out too.
func (c Config) ForDisk(withhold bool) (disk Config, withheld []string) {
	withheld = slices.Clone(c.Awaiting)
	keep := func(value *string, name string, byRef bool) {
		switch {
		case byRef:
			*value = ""
		case withhold && *value != "":
			*value = ""
			if !slices.Contains(withheld, name) {
				withheld = append(withheld, name)
			}
		}
	}
	if c.Local != nil {
		l := *c.Local
		keep(&l.MasterKey, SecretMasterKey, l.MasterKeyFile != "" || l.MasterKeyEnv != "")
		c.Local = &l
	}
	if c.Vault != nil {
		v := *c.Vault
		keep(&v.Auth.Token, SecretToken, v.Auth.TokenFile != "" || v.Auth.TokenEnv != "")
		keep(&v.Auth.SecretID, SecretSecretID, v.Auth.SecretIDFile != "" || v.Auth.SecretIDEnv != "")
		c.Vault = &v
	}
	c.Awaiting = nil
	return c, withheld
}

// SecretResolver reads the secrets a configuration names by reference.
// main wires it from --secrets-dir and the server's environment. The zero
// value refuses every reference.
type SecretResolver struct {
	// Dir is the only directory file references may point into; empty:
	// file references are refused.
	Dir string
	// LookupEnv reads an environment variable of the server process; nil:
	// environment references are refused.
	LookupEnv func(string) (string, bool)
}

// Resolve returns c with the value of every reference read afresh (a
// rotated file takes effect). Errors wrap kms.ErrInvalidRequest and never
// quote what a file holds.
func (r *SecretResolver) Resolve(c Config) (Config, error) {
	if l := c.Local; l != nil && (l.MasterKeyFile != "" || l.MasterKeyEnv != "") {
		v, err := r.read(SecretMasterKey, l.MasterKeyFile, l.MasterKeyEnv)
		if err != nil {
			return Config{}, err
		}
		nl := *l
		nl.MasterKey = v
		c.Local = &nl
	}
	if v := c.Vault; v != nil {
		a := v.Auth
		var err error
		if a.TokenFile != "" || a.TokenEnv != "" {
			if a.Token, err = r.read(SecretToken, a.TokenFile, a.TokenEnv); err != nil {
				return Config{}, err
			}
		}
		if a.SecretIDFile != "" || a.SecretIDEnv != "" {
			if a.SecretID, err = r.read(SecretSecretID, a.SecretIDFile, a.SecretIDEnv); err != nil {
				return Config{}, err
			}
		}
		if a != v.Auth {
			nv := *v
			nv.Auth = a
			c.Vault = &nv
		}
	}
	return c, nil
}

func (r *SecretResolver) read(secret, file, env string) (string, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", kms.ErrInvalidRequest, fmt.Sprintf(format, a...))
	}
	if env != "" {
		if r == nil || r.LookupEnv == nil {
			return "", bad("%s_env: environment references are not available", secret)
		}
		v, ok := r.LookupEnv(env)
		if !ok || v == "" {
			return "", bad("%s_env %q: the variable is unset or empty in the server's environment", secret, env)
		}
		return v, nil
	}
	if r == nil || r.Dir == "" {
		return "", bad("%s_file: file references are disabled on this server; start it with --secrets-dir DIR (KEYWARD_SECRETS_DIR) and put the file inside DIR", secret)
	}
	b, err := readSecretFile(r.Dir, file)
	if err != nil {
		// One message whatever went wrong (missing, outside the dir, a
		// link leading out, not a regular file, too large, unreadable):
		// the answer must not tell which files exist outside the dir.
		return "", bad("%s_file %q: no readable regular file of at most %d KiB at this path inside the secrets dir %s", secret, file, MaxSecretFileSize>>10, r.Dir)
	}
	s := strings.TrimRight(string(b), "\r\n")
	clear(b)
	if s == "" {
		return "", bad("%s_file %q: the file is empty", secret, file)
	}
	return s, nil
}

var errOutsideSecretsDir = errors.New("outside the secrets dir")

// readSecretFile reads path, which must lie inside dir both as written and
// once every symbolic link is resolved (Kubernetes mounts its secrets
// through links inside the mount), be a regular file and hold at most
// MaxSecretFileSize bytes. Nothing outside dir is looked at unless a link
// inside dir leads there, and nothing outside is ever opened: the open
// goes through an os.Root of the resolved dir, which also refuses a link
// swapped in after the check.
func readSecretFile(dir, path string) ([]byte, error) {
	dir = filepath.Clean(dir)
	realDir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		return nil, err
	}
	if !within(dir, path) && !within(realDir, path) {
		return nil, errOutsideSecretsDir
	}
	real, err := filepath.EvalSymlinks(path)
	if err != nil {
		return nil, err
	}
	if !within(realDir, real) {
		return nil, errOutsideSecretsDir
	}
	rel, err := filepath.Rel(realDir, real)
	if err != nil {
		return nil, err
	}
	root, err := os.OpenRoot(realDir)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	// O_NONBLOCK: a FIFO planted in the dir fails the regular-file check
	// below instead of blocking the open until a writer comes.
	f, err := root.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := fsutil.ReadRegular(f, MaxSecretFileSize)
	if err != nil {
		return nil, errors.New("not a regular file of the allowed size, or unreadable")
	}
	return b, nil
}

// within reports whether path lies strictly below dir (lexically).
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != "." && filepath.IsLocal(rel)
}

// Secrets are the secrets a start body may carry: those a configuration
// awaits (withheld from disk, not given to this process yet). nil: not
// given.
type Secrets struct {
	MasterKey *string
	Token     *string
	SecretID  *string
}

// Empty reports whether no secret is given.
func (s Secrets) Empty() bool { return s.MasterKey == nil && s.Token == nil && s.SecretID == nil }

// StartRequest is a /kms/start body: empty, {"force": true} (RustFS), or
// the awaited secrets.
type StartRequest struct {
	Force   bool
	Secrets Secrets
}

// ParseStartRequest decodes a start body; an empty body is a plain start.
func ParseStartRequest(body []byte) (*StartRequest, error) {
	var w struct {
		Force     bool    `json:"force"`
		MasterKey *string `json:"master_key"`
		Token     *string `json:"token"`
		SecretID  *string `json:"secret_id"`
	}
	if !jsonbody.IsEmpty(body) {
		if err := jsonbody.Decode(body, &w); err != nil {
			return nil, err
		}
	}
	return &StartRequest{Force: w.Force, Secrets: Secrets{MasterKey: w.MasterKey, Token: w.Token, SecretID: w.SecretID}}, nil
}

// Supply returns c with the awaited secrets taken from s. A secret given
// that c does not await is refused (400): a start body is not a way to
// change a secret, and a misdirected one must not pass unnoticed. An
// awaited secret not given is a 409: the service cannot start yet.
func (c Config) Supply(s Secrets) (Config, error) {
	given := []struct {
		name  string
		value *string
	}{{SecretMasterKey, s.MasterKey}, {SecretToken, s.Token}, {SecretSecretID, s.SecretID}}
	for _, g := range given {
		if g.value == nil {
			continue
		}
		if !c.awaits(g.name) {
			return Config{}, fmt.Errorf("%w: %s was given, but the KMS service does not wait for it: a start body carries only the secrets listed in secrets_required of /kms/status; change a secret with reconfigure", kms.ErrInvalidRequest, g.name)
		}
		if *g.value == "" {
			return Config{}, fmt.Errorf("%w: %s must not be empty", kms.ErrInvalidRequest, g.name)
		}
	}
	var missing []string
	for _, g := range given {
		if g.value == nil && c.awaits(g.name) {
			missing = append(missing, g.name)
		}
	}
	if len(missing) > 0 {
		return Config{}, fmt.Errorf("%w: the KMS service waits for secrets withheld from disk (--no-persist-secrets): give %s in the start body (keyward kms start --%s -)",
			kms.ErrConflict, strings.Join(missing, " and "), strings.ReplaceAll(missing[0], "_", "-"))
	}
	if len(c.Awaiting) == 0 {
		return c, nil
	}
	if c.Local != nil {
		l := *c.Local
		if s.MasterKey != nil {
			l.MasterKey = *s.MasterKey
		}
		c.Local = &l
	}
	if c.Vault != nil {
		v := *c.Vault
		if s.Token != nil {
			v.Auth.Token = *s.Token
		}
		if s.SecretID != nil {
			v.Auth.SecretID = *s.SecretID
		}
		c.Vault = &v
	}
	c.Awaiting = nil
	return c, nil
}

// withoutAwaiting returns list without the names given (a new slice: the
// list may be shared with a published configuration).
func withoutAwaiting(list []string, names ...string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(names, s) {
			out = append(out, s)
		}
	}
	return out
}
