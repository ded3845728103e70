package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/keyward/keyward/client"
)

// configFlags mirror the configuration fields of docs/api.md, "Configuration
// fields".
var configFlags = []flagDef{
	strFlag("file", "FILE", "read the configuration from a JSON file (the API's field names); flags override it"),
	strFlag("backend", "TYPE", "backend: local, vault or vault-transit"),
	strFlag("default-key-id", "ID", "the key used when a call names none (created on start if missing)"),
	boolFlagDef("enable-cache", "cache key material and metadata (--enable-cache=false turns it off)"),
	strFlag("cache-ttl", "SECONDS", "how long a cache entry lives: 300 or 5m"),
	strFlag("max-cached-keys", "N", "cache size in keys"),
	strFlag("timeout-seconds", "N", "timeout of one backend call"),
	strFlag("retry-attempts", "N", "retries of idempotent backend reads"),
	strFlag("key-dir", "DIR", "local: key directory on the server (default: DATA_DIR/keys)"),
	strFlag("master-key", "PASSPHRASE|-", "local: passphrase sealing the keys; - reads it from stdin"),
	strFlag("master-key-file", "FILE", "local: read the passphrase from FILE on this machine and send it"),
	strFlag("master-key-file-on-server", "PATH", "local: the server reads the passphrase from PATH, a file inside its --secrets-dir, and stores only the path"),
	strFlag("master-key-env-on-server", "VAR", "local: the server reads the passphrase from its KEYWARD_SECRET_* variable VAR, and stores only the name"),
	strFlag("file-permissions", "MODE", "local: mode of the key files, octal (0600)"),
	strFlag("address", "URL[,URL...]", "vault: Vault's address; the nodes of a Vault cluster separated by commas"),
	strFlag("token", "TOKEN|-", "vault: token auth; - reads the token from stdin"),
	strFlag("token-file", "FILE", "vault: read the token from FILE on this machine and send it"),
	strFlag("token-file-on-server", "PATH", "vault: the server reads the token from PATH inside its --secrets-dir (stores only the path)"),
	strFlag("token-env-on-server", "VAR", "vault: the server reads the token from its KEYWARD_SECRET_* variable VAR"),
	strFlag("role-id", "ID", "vault: AppRole auth, with a secret id"),
	strFlag("secret-id", "ID|-", "vault: AppRole secret id; - reads it from stdin"),
	strFlag("secret-id-file", "FILE", "vault: read the AppRole secret id from FILE on this machine and send it"),
	strFlag("secret-id-file-on-server", "PATH", "vault: the server reads the secret id from PATH inside its --secrets-dir"),
	strFlag("secret-id-env-on-server", "VAR", "vault: the server reads the secret id from its KEYWARD_SECRET_* variable VAR"),
	strFlag("namespace", "NS", "vault: namespace (Vault Enterprise)"),
	strFlag("mount-path", "PATH", "vault: Transit mount"),
	strFlag("kv-mount", "PATH", "vault: KV v2 mount"),
	strFlag("key-path-prefix", "PREFIX", "vault: path prefix of the key records in KV"),
	strFlag("ca-cert-path", "FILE", "vault: CA certificate of Vault (a path on the server, or PEM)"),
	boolFlagDef("skip-tls-verify", "vault: do not verify Vault's certificate (tests only)"),
}

func kmsCommands() []*command {
	return []*command{
		{noun: "kms", verb: "configure", summary: "store a full configuration (does not start the service)",
			help: "Validate and store the configuration of the KMS service. It does not start it:\nrun `keyward kms start` next. While the service runs, use `keyward kms reconfigure`.\n" +
				"Secrets (--master-key, --token, --secret-id) are best given with - (stdin) or a file;\nthey are never printed back. " + secretSourcesHelp,
			flags: configFlags, maxArgs: 0, run: runConfigure(false)},
		{noun: "kms", verb: "reconfigure", summary: "change some settings; a running service swaps in place",
			help:  "Merge the settings given onto the stored configuration: only the flags given are\nsent (rotate a Vault token, change the cache). A running service switches to the\nnew settings without dropping requests; if they do not work, the old ones stay.",
			flags: configFlags, maxArgs: 0, run: runConfigure(true)},
		{noun: "kms", verb: "start", summary: "start the configured service (with the secrets it waits for, if any)",
			help: "Start the configured KMS service. A server run with --no-persist-secrets keeps its\n" +
				"inline secrets in memory only: after a restart it waits (`keyward kms status` shows\n" +
				"\"Secrets required\") until they are given here, e.g.\n\n" +
				"  keyward kms start --master-key -      (reads the passphrase from stdin)\n\n" +
				"A wrong master key, or a token Vault refuses, is an error and the service stays\nConfigured. Only the secrets the server waits for may be given.",
			flags: []flagDef{
				boolFlagDef("force", "rebuild a running service in place instead of failing"),
				strFlag("master-key", "PASSPHRASE|-", "local: the master key the server waits for; - reads it from stdin"),
				strFlag("master-key-file", "FILE", "local: read that master key from FILE on this machine"),
				strFlag("token", "TOKEN|-", "vault: the token the server waits for; - reads it from stdin"),
				strFlag("token-file", "FILE", "vault: read that token from FILE on this machine"),
				strFlag("secret-id", "ID|-", "vault: the AppRole secret id the server waits for; - reads it from stdin"),
				strFlag("secret-id-file", "FILE", "vault: read that secret id from FILE on this machine"),
			}, maxArgs: 0, run: runStart},
		{noun: "kms", verb: "stop", summary: "stop the service (the configuration is kept)", maxArgs: 0,
			run: func(r *run) error {
				c, err := r.client()
				if err != nil {
					return err
				}
				r.setWhat("stop the KMS")
				res, err := c.Stop(r.ctx)
				return r.lifecycle(res, err, "KMS stopped; start it again with `keyward kms start`")
			}},
		{noun: "kms", verb: "status", summary: "show the state of the service and a summary of its configuration", maxArgs: 0, run: runStatus},
		{noun: "kms", verb: "config", summary: "show the stored configuration (cache, default key)", maxArgs: 0, run: runConfig},
		{noun: "kms", verb: "clear-cache", summary: "drop every cached key and metadata entry", maxArgs: 0,
			run: func(r *run) error {
				c, err := r.client()
				if err != nil {
					return err
				}
				r.setWhat("clear the cache")
				if err := c.ClearCache(r.ctx); err != nil {
					return err
				}
				if r.json {
					return r.printJSON(map[string]bool{"success": true})
				}
				r.printf("Cache cleared.\n")
				return nil
			}},
	}
}

// lifecycle prints the answer of configure, reconfigure, start and stop.
func (r *run) lifecycle(res *client.LifecycleResponse, err error, done string) error {
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(res)
	}
	r.printf("%s (status: %s).\n", done, res.Status)
	return nil
}

// secretSourcesHelp explains the two kinds of secret files.
const secretSourcesHelp = "--*-file flags read a file\non this machine and send its content. --*-file-on-server and --*-env-on-server\n" +
	"instead name a file inside the server's --secrets-dir or a KEYWARD_SECRET_* variable\nof the server's environment: the server reads it at every start and stores only\n" +
	"the reference, never the secret (see \"Secrets at rest\" in docs/operations.md).\nIn --file, master_key_file, token_file and secret_id_file are such server-side\nreferences (the API's fields)."

func runStart(r *run) error {
	req := client.StartRequest{Force: r.boolean("force")}
	for _, s := range []struct {
		flag string
		dst  **string
	}{{"master-key", &req.MasterKey}, {"token", &req.Token}, {"secret-id", &req.SecretID}} {
		v, ok, err := r.secretFlag(s.flag, s.flag+"-file")
		if err != nil {
			return err
		}
		if ok {
			*s.dst = &v
		}
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	r.setWhat("start the KMS")
	res, err := c.Start(r.ctx, req)
	return r.lifecycle(res, err, "KMS started")
}

func runConfigure(partial bool) func(r *run) error {
	return func(r *run) error {
		req, err := r.configRequest()
		if err != nil {
			return err
		}
		c, err := r.client()
		if err != nil {
			return err
		}
		if partial {
			r.setWhat("reconfigure the KMS")
			res, err := c.Reconfigure(r.ctx, req)
			return r.lifecycle(res, err, "KMS reconfigured")
		}
		r.setWhat("configure the KMS")
		res, err := c.Configure(r.ctx, req)
		return r.lifecycle(res, err, "KMS configured; start it with `keyward kms start`")
	}
}

// fileConfig is the JSON of --file: the API's field names.
type fileConfig struct {
	BackendType     *string `json:"backend_type"`
	DefaultKeyID    *string `json:"default_key_id"`
	EnableCache     *bool   `json:"enable_cache"`
	CacheTTLSeconds *int    `json:"cache_ttl_seconds"`
	MaxCachedKeys   *int    `json:"max_cached_keys"`
	TimeoutSeconds  *int    `json:"timeout_seconds"`
	RetryAttempts   *int    `json:"retry_attempts"`
	KeyDir          *string `json:"key_dir"`
	MasterKey       *string `json:"master_key"`
	MasterKeyFile   *string `json:"master_key_file"` // on the server
	MasterKeyEnv    *string `json:"master_key_env"`  // on the server
	FilePermissions *uint32 `json:"file_permissions"`
	Address         *string `json:"address"`
	AuthMethod      *struct {
		Token     *string `json:"token"`
		TokenFile *string `json:"token_file"`
		TokenEnv  *string `json:"token_env"`
		AppRole   *struct {
			RoleID       string `json:"role_id"`
			SecretID     string `json:"secret_id"`
			SecretIDFile string `json:"secret_id_file"`
			SecretIDEnv  string `json:"secret_id_env"`
		} `json:"approle"`
	} `json:"auth_method"`
	Namespace     *string `json:"namespace"`
	MountPath     *string `json:"mount_path"`
	KVMount       *string `json:"kv_mount"`
	KeyPathPrefix *string `json:"key_path_prefix"`
	CACert        *string `json:"ca_cert"`
	SkipTLSVerify *bool   `json:"skip_tls_verify"`
}

func (r *run) readConfigFile(path string) (client.ConfigureRequest, error) {
	var req client.ConfigureRequest
	var data []byte
	var err error
	if path == "-" {
		data, err = r.readStdin("--file")
	} else {
		data, err = os.ReadFile(path)
	}
	if err != nil {
		return req, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--file: %v", err)}
	}
	defer clear(data)
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileConfig
	if err := dec.Decode(&f); err != nil {
		return req, usagef("--file %s: %v", path, err)
	}
	req = client.ConfigureRequest{BackendType: f.BackendType, DefaultKeyID: f.DefaultKeyID, EnableCache: f.EnableCache,
		CacheTTLSeconds: f.CacheTTLSeconds, MaxCachedKeys: f.MaxCachedKeys, TimeoutSeconds: f.TimeoutSeconds,
		RetryAttempts: f.RetryAttempts, KeyDir: f.KeyDir, MasterKey: f.MasterKey, MasterKeyFile: f.MasterKeyFile,
		MasterKeyEnv: f.MasterKeyEnv, FilePermissions: f.FilePermissions,
		Address: f.Address, Namespace: f.Namespace, MountPath: f.MountPath, KVMount: f.KVMount,
		KeyPathPrefix: f.KeyPathPrefix, CACert: f.CACert, SkipTLSVerify: f.SkipTLSVerify}
	if a := f.AuthMethod; a != nil {
		hasToken := a.Token != nil || a.TokenFile != nil || a.TokenEnv != nil
		switch {
		case a.AppRole != nil && hasToken:
			return req, usagef("--file %s: auth_method has both token and approle", path)
		case a.AppRole != nil:
			ar := a.AppRole
			req.Auth = &client.VaultAuth{AppRole: &client.AppRole{RoleID: ar.RoleID, SecretID: ar.SecretID, SecretIDFile: ar.SecretIDFile, SecretIDEnv: ar.SecretIDEnv}}
		case hasToken:
			req.Auth = &client.VaultAuth{Token: deref(a.Token), TokenFile: deref(a.TokenFile), TokenEnv: deref(a.TokenEnv)}
		}
	}
	return req, nil
}

// configRequest builds the request from --file and the flags given.
func (r *run) configRequest() (client.ConfigureRequest, error) {
	var req client.ConfigureRequest
	var err error
	if r.has("file") {
		if req, err = r.readConfigFile(r.str("file")); err != nil {
			return req, err
		}
	}
	str := func(flag string, dst **string) {
		if r.has(flag) {
			v := r.str(flag)
			*dst = &v
		}
	}
	str("default-key-id", &req.DefaultKeyID)
	str("key-dir", &req.KeyDir)
	str("address", &req.Address)
	str("namespace", &req.Namespace)
	str("mount-path", &req.MountPath)
	str("kv-mount", &req.KVMount)
	str("key-path-prefix", &req.KeyPathPrefix)
	str("ca-cert-path", &req.CACert)
	if r.has("backend") {
		b := strings.ToLower(r.str("backend"))
		switch b {
		case client.BackendLocal, client.BackendVault, client.BackendVaultTransit:
		default:
			return req, usagef("--backend takes local, vault or vault-transit, not %q", r.str("backend"))
		}
		req.BackendType = &b
	}
	for _, b := range []struct {
		flag string
		dst  **bool
	}{{"enable-cache", &req.EnableCache}, {"skip-tls-verify", &req.SkipTLSVerify}} {
		if r.has(b.flag) {
			v := r.boolean(b.flag)
			*b.dst = &v
		}
	}
	if r.has("cache-ttl") {
		n, err := parseSeconds("cache-ttl", r.str("cache-ttl"))
		if err != nil {
			return req, err
		}
		req.CacheTTLSeconds = &n
	}
	for _, f := range []struct {
		flag string
		dst  **int
	}{{"max-cached-keys", &req.MaxCachedKeys}, {"timeout-seconds", &req.TimeoutSeconds}, {"retry-attempts", &req.RetryAttempts}} {
		n, ok, err := r.intFlag(f.flag)
		if err != nil {
			return req, err
		}
		if ok {
			*f.dst = &n
		}
	}
	if r.has("file-permissions") {
		m, err := strconv.ParseUint(r.str("file-permissions"), 8, 32)
		if err != nil || m > 0o777 {
			return req, usagef("--file-permissions takes an octal mode such as 0600, not %q", r.str("file-permissions"))
		}
		p := uint32(m)
		req.FilePermissions = &p
	}
	mk, err := r.secretSource("master-key")
	if err != nil {
		return req, err
	}
	if mk.given() {
		// The flag replaces whatever source --file gave.
		req.MasterKey, req.MasterKeyFile, req.MasterKeyEnv = mk.value, mk.file, mk.env
	}
	token, err := r.secretSource("token")
	if err != nil {
		return req, err
	}
	secretID, err := r.secretSource("secret-id")
	if err != nil {
		return req, err
	}
	switch {
	case token.given() && (secretID.given() || r.has("role-id")):
		return req, usagef("give either a token (--token...) or --role-id and a secret id (--secret-id...), not both")
	case token.given():
		req.Auth = &client.VaultAuth{Token: deref(token.value), TokenFile: deref(token.file), TokenEnv: deref(token.env)}
	case secretID.given() || r.has("role-id"):
		if !secretID.given() || !r.has("role-id") {
			return req, usagef("AppRole auth needs both --role-id and a secret id (--secret-id, --secret-id-file, --secret-id-file-on-server or --secret-id-env-on-server)")
		}
		req.Auth = &client.VaultAuth{AppRole: &client.AppRole{RoleID: r.str("role-id"), SecretID: deref(secretID.value),
			SecretIDFile: deref(secretID.file), SecretIDEnv: deref(secretID.env)}}
	}
	return req, nil
}

// secretSource is where one secret of a configuration comes from: its
// value (sent), or a reference the server reads itself.
type secretSource struct {
	value, file, env *string
}

func (s secretSource) given() bool { return s.value != nil || s.file != nil || s.env != nil }

// secretSource reads the flags of one secret: --NAME VALUE, --NAME - (stdin)
// or --NAME-file FILE (read here and sent), or --NAME-file-on-server PATH
// or --NAME-env-on-server VAR (references the server resolves). At most
// one.
func (r *run) secretSource(name string) (secretSource, error) {
	flags := []string{name, name + "-file", name + "-file-on-server", name + "-env-on-server"}
	var given []string
	for _, f := range flags {
		if r.has(f) {
			given = append(given, "--"+f)
		}
	}
	if len(given) > 1 {
		return secretSource{}, usagef("give one of --%s, --%s, --%s or --%s, not %s", flags[0], flags[1], flags[2], flags[3], strings.Join(given, " and "))
	}
	var s secretSource
	switch {
	case r.has(flags[2]):
		v := r.str(flags[2])
		s.file = &v
	case r.has(flags[3]):
		v := r.str(flags[3])
		s.env = &v
	default:
		v, ok, err := r.secretFlag(flags[0], flags[1])
		if err != nil {
			return s, err
		}
		if ok {
			s.value = &v
		}
	}
	return s, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// secretFlag reads a secret given as --NAME VALUE, --NAME - (stdin) or
// --FILEFLAG PATH.
func (r *run) secretFlag(flag, fileFlag string) (string, bool, error) {
	switch {
	case r.has(flag) && r.has(fileFlag):
		return "", false, usagef("give --%s or --%s, not both", flag, fileFlag)
	case r.has(flag):
		if r.str(flag) != "-" {
			fmt.Fprintf(r.stderr, "note: a secret on the command line can end up in the shell history; --%s - reads it from stdin, --%s from a file\n", flag, fileFlag)
		}
		s, err := r.secretValue(flag, r.str(flag))
		return s, err == nil, err
	case r.has(fileFlag):
		s, err := secretFile(fileFlag, r.str(fileFlag))
		return s, err == nil, err
	}
	return "", false, nil
}

func runStatus(r *run) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	r.setWhat("get the KMS status")
	st, err := c.Status(r.ctx)
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(st)
	}
	fs := []field{{"Status", string(st.Status)}}
	if st.Error != "" {
		fs = append(fs, field{"Error", st.Error})
	}
	fs = append(fs, field{"Backend", orDash(st.BackendType)})
	healthy := "-"
	if st.Healthy != nil {
		healthy = yesNo(*st.Healthy)
	}
	fs = append(fs, field{"Healthy", healthy})
	if s := st.ConfigSummary; s != nil {
		fs = append(fs, field{"Default key", orDash(s.DefaultKeyID)})
		cache := "off"
		if s.EnableCache {
			cache = "on"
			if cs := s.CacheSummary; cs != nil {
				cache = fmt.Sprintf("on (at most %d keys, TTL %ds)", cs.MaxKeys, cs.TTLSeconds)
			}
		}
		fs = append(fs, field{"Cache", cache},
			field{"Backend timeout", fmt.Sprintf("%ds", s.TimeoutSeconds)},
			field{"Retry attempts", strconv.Itoa(s.RetryAttempts)})
		if b := s.BackendSummary; b != nil {
			add := func(label, v string) {
				if v != "" {
					fs = append(fs, field{label, v})
				}
			}
			add("Key dir", b.KeyDir)
			if b.KeyDir != "" {
				mk := "generated root key"
				switch {
				case b.MasterKeyFile != "":
					mk = "from the file " + b.MasterKeyFile + " on the server"
				case b.MasterKeyEnv != "":
					mk = "from the variable " + b.MasterKeyEnv + " on the server"
				case b.HasMasterKey:
					mk = "passphrase set"
				}
				fs = append(fs, field{"Master key", mk})
			}
			add("Vault address", b.Address)
			add("Vault auth", b.AuthMethodType)
			for _, ref := range []struct{ label, file, env string }{
				{"Vault token", b.TokenFile, b.TokenEnv}, {"AppRole secret id", b.SecretIDFile, b.SecretIDEnv}} {
				if ref.file != "" {
					fs = append(fs, field{ref.label, "from the file " + ref.file + " on the server"})
				}
				if ref.env != "" {
					fs = append(fs, field{ref.label, "from the variable " + ref.env + " on the server"})
				}
			}
			add("Vault namespace", b.Namespace)
			add("Transit mount", b.MountPath)
			add("KV mount", b.KVMount)
			add("Key path prefix", b.KeyPathPrefix)
			if b.SkipTLSVerify {
				fs = append(fs, field{"Vault TLS", "NOT VERIFIED (skip_tls_verify)"})
			}
		}
	}
	if len(st.SecretsRequired) > 0 {
		fs = append(fs, field{"Secrets required", strings.Join(st.SecretsRequired, ", ")})
	}
	writeFields(r.stdout, fs)
	switch {
	case len(st.SecretsRequired) > 0:
		var flags []string
		for _, s := range st.SecretsRequired {
			flags = append(flags, "--"+strings.ReplaceAll(s, "_", "-")+" -")
		}
		fmt.Fprintf(r.stderr, "next: the server keeps these secrets off disk and waits for them: `keyward kms start %s`\n", strings.Join(flags, " "))
	case st.Status == client.StateNotConfigured:
		fmt.Fprintln(r.stderr, "next: configure the service with `keyward kms configure`")
	case st.Status == client.StateConfigured:
		fmt.Fprintln(r.stderr, "next: start the service with `keyward kms start`")
	}
	return nil
}

func runConfig(r *run) error {
	c, err := r.client()
	if err != nil {
		return err
	}
	r.setWhat("get the KMS configuration")
	cfg, err := c.Config(r.ctx)
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(cfg)
	}
	cache := "off"
	if cfg.CacheEnabled {
		cache = fmt.Sprintf("on (at most %d keys, TTL %ds)", cfg.CacheMaxKeys, cfg.CacheTTLSeconds)
	}
	writeFields(r.stdout, []field{{"Backend", cfg.Backend}, {"Default key", orDash(cfg.DefaultKeyID)}, {"Cache", cache}})
	return nil
}
