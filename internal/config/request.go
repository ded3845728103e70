package config

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Request is a configure or reconfigure body. Every field is optional so
// that reconfigure can merge only what is present; configure fills the
// missing ones with defaults. Both Keyward's and RustFS's spellings are
// read (docs/api.md, "Bodies": input liberal, output exact).
type Request struct {
	BackendType     *string
	DefaultKeyID    *string
	EnableCache     *bool
	CacheTTLSeconds *int
	MaxCachedKeys   *int
	TimeoutSeconds  *int
	RetryAttempts   *int

	KeyDir          *string
	MasterKey       *string
	MasterKeyFile   *string
	MasterKeyEnv    *string
	FilePermissions *uint32

	Address       *string
	Auth          *VaultAuth
	Namespace     *string
	MountPath     *string
	KVMount       *string
	KeyPathPrefix *string
	CACert        *string
	SkipTLSVerify *bool
}

// wireRequest is the JSON shape. Unknown fields are refused so that a typo
// ("enable_cahce") is an error, not a silently ignored setting.
type wireRequest struct {
	BackendType     *string         `json:"backend_type"`
	DefaultKeyID    *string         `json:"default_key_id"`
	EnableCache     *bool           `json:"enable_cache"`
	CacheTTLSeconds *int            `json:"cache_ttl_seconds"`
	MaxCachedKeys   *int            `json:"max_cached_keys"`
	TimeoutSeconds  *int            `json:"timeout_seconds"`
	RetryAttempts   *int            `json:"retry_attempts"`
	KeyDir          *string         `json:"key_dir"`
	MasterKey       *string         `json:"master_key"`
	MasterKeyFile   *string         `json:"master_key_file"`
	MasterKeyEnv    *string         `json:"master_key_env"`
	FilePermissions json.RawMessage `json:"file_permissions"`
	Address         *string         `json:"address"`
	Addresses       []string        `json:"addresses"`
	AuthMethod      json.RawMessage `json:"auth_method"`
	Namespace       *string         `json:"namespace"`
	MountPath       *string         `json:"mount_path"`
	KVMount         *string         `json:"kv_mount"`
	KeyPathPrefix   *string         `json:"key_path_prefix"`
	CACert          *string         `json:"ca_cert"`
	SkipTLSVerify   *bool           `json:"skip_tls_verify"`
	// RustFS Transit spellings of the metadata location.
	MetadataKVMount   *string `json:"metadata_kv_mount"`
	MetadataKeyPrefix *string `json:"metadata_key_prefix"`
	// Accepted from RustFS clients and ignored: Keyward has no insecure
	// development defaults to switch on.
	AllowInsecureDevDefaults *bool `json:"allow_insecure_dev_defaults"`
}

// ParseRequest decodes a configure/reconfigure body.
func ParseRequest(body []byte) (*Request, error) {
	if jsonbody.IsEmpty(body) {
		return nil, fmt.Errorf("%w: a JSON body is required", kms.ErrInvalidRequest)
	}
	var w wireRequest
	if err := jsonbody.Decode(body, &w); err != nil {
		return nil, err
	}
	r := &Request{
		BackendType: w.BackendType, DefaultKeyID: w.DefaultKeyID, EnableCache: w.EnableCache,
		CacheTTLSeconds: w.CacheTTLSeconds, MaxCachedKeys: w.MaxCachedKeys, TimeoutSeconds: w.TimeoutSeconds,
		RetryAttempts: w.RetryAttempts, KeyDir: w.KeyDir, MasterKey: w.MasterKey, MasterKeyFile: w.MasterKeyFile,
		MasterKeyEnv: w.MasterKeyEnv, Address: w.Address,
		Namespace: w.Namespace, MountPath: w.MountPath, KVMount: firstNonNil(w.KVMount, w.MetadataKVMount),
		KeyPathPrefix: firstNonNil(w.KeyPathPrefix, w.MetadataKeyPrefix), CACert: w.CACert, SkipTLSVerify: w.SkipTLSVerify,
	}
	if w.Addresses != nil {
		if w.Address != nil {
			return nil, fmt.Errorf("%w: give address or addresses, not both", kms.ErrInvalidRequest)
		}
		joined := strings.Join(w.Addresses, ",")
		r.Address = &joined
	}
	if r.Address != nil {
		norm := NormalizeAddresses(*r.Address)
		r.Address = &norm
	}
	if countSet(w.MasterKey, w.MasterKeyFile, w.MasterKeyEnv) > 1 {
		return nil, fmt.Errorf("%w: give one of master_key, master_key_file or master_key_env", kms.ErrInvalidRequest)
	}
	if len(w.FilePermissions) > 0 && string(w.FilePermissions) != "null" {
		p, err := parsePermissions(w.FilePermissions)
		if err != nil {
			return nil, err
		}
		r.FilePermissions = &p
	}
	if len(w.AuthMethod) > 0 && string(w.AuthMethod) != "null" {
		a, err := parseAuthMethod(w.AuthMethod)
		if err != nil {
			return nil, err
		}
		r.Auth = a
	}
	return r, nil
}

func countSet(ptrs ...*string) int {
	n := 0
	for _, p := range ptrs {
		if p != nil {
			n++
		}
	}
	return n
}

func firstNonNil(a, b *string) *string {
	if a != nil {
		return a
	}
	return b
}

// parsePermissions reads 384, "0600", "600" or "0o600".
func parsePermissions(raw json.RawMessage) (uint32, error) {
	var n uint32
	if err := json.Unmarshal(raw, &n); err == nil {
		return n, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err == nil {
		s = strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0")
		if v, err := strconv.ParseUint(s, 8, 32); err == nil {
			return uint32(v), nil
		}
	}
	return 0, fmt.Errorf("%w: file_permissions must be a mode such as 384 or \"0600\"", kms.ErrInvalidRequest)
}

// parseAuthMethod reads token auth as {"token": "..."}, {"token_file":
// "..."}, {"token_env": "..."} or RustFS's {"Token": {"token": "..."}}
// (whose inner object may also hold token_file or token_env), and AppRole
// as {"approle": {"role_id": "...", "secret_id": "..."}} (or
// secret_id_file, secret_id_env; "AppRole" too). Exactly one source per
// secret.
func parseAuthMethod(raw json.RawMessage) (*VaultAuth, error) {
	bad := fmt.Errorf("%w: auth_method must be {\"token\": \"...\"}, {\"token_file\": \"...\"}, {\"token_env\": \"...\"} or "+
		"{\"approle\": {\"role_id\": \"...\", \"secret_id\" (or secret_id_file, secret_id_env): \"...\"}}", kms.ErrInvalidRequest)
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || len(m) == 0 {
		return nil, bad
	}
	var top struct{ token, tokenFile, tokenEnv *string }
	var approle json.RawMessage
	seen := map[string]bool{}
	for k, v := range m {
		var s string
		k = strings.ToLower(k)
		if seen[k] {
			return nil, bad // "token" and "Token" both: ambiguous
		}
		seen[k] = true
		switch k {
		case "token":
			if json.Unmarshal(v, &s) == nil {
				top.token = &s
				continue
			}
			var inner struct {
				Token     *string `json:"token"`
				TokenFile *string `json:"token_file"`
				TokenEnv  *string `json:"token_env"`
			}
			if jsonbody.Decode(v, &inner) != nil || len(m) != 1 {
				return nil, bad
			}
			top.token, top.tokenFile, top.tokenEnv = inner.Token, inner.TokenFile, inner.TokenEnv
		case "token_file":
			if json.Unmarshal(v, &s) != nil {
				return nil, bad
			}
			top.tokenFile = &s
		case "token_env":
			if json.Unmarshal(v, &s) != nil {
				return nil, bad
			}
			top.tokenEnv = &s
		case "approle":
			if len(m) != 1 {
				return nil, bad
			}
			approle = v
		default:
			return nil, bad
		}
	}
	if approle != nil {
		var inner struct {
			RoleID       string  `json:"role_id"`
			SecretID     *string `json:"secret_id"`
			SecretIDFile *string `json:"secret_id_file"`
			SecretIDEnv  *string `json:"secret_id_env"`
		}
		if jsonbody.Decode(approle, &inner) != nil {
			return nil, bad
		}
		if countSet(inner.SecretID, inner.SecretIDFile, inner.SecretIDEnv) > 1 {
			return nil, fmt.Errorf("%w: auth_method.approle: give one of secret_id, secret_id_file or secret_id_env", kms.ErrInvalidRequest)
		}
		return &VaultAuth{Method: "approle", RoleID: inner.RoleID, SecretID: deref(inner.SecretID),
			SecretIDFile: deref(inner.SecretIDFile), SecretIDEnv: deref(inner.SecretIDEnv)}, nil
	}
	switch countSet(top.token, top.tokenFile, top.tokenEnv) {
	case 0:
		return nil, bad
	case 1:
	default:
		return nil, fmt.Errorf("%w: auth_method: give one of token, token_file or token_env", kms.ErrInvalidRequest)
	}
	return &VaultAuth{Method: "token", Token: deref(top.token), TokenFile: deref(top.tokenFile), TokenEnv: deref(top.tokenEnv)}, nil
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// Build makes a complete configuration from a configure request: missing
// fields take their defaults. dataDir resolves a relative key_dir and is
// the default home of the local key directory.
func (r *Request) Build(dataDir string) (Config, error) {
	if r.BackendType == nil {
		return Config{}, fmt.Errorf("%w: backend_type is required (local, vault or vault-transit)", kms.ErrInvalidRequest)
	}
	c := Config{
		EnableCache:     true,
		CacheTTLSeconds: DefaultCacheTTLSeconds,
		MaxCachedKeys:   DefaultMaxCachedKeys,
		TimeoutSeconds:  DefaultTimeoutSeconds,
		RetryAttempts:   DefaultRetryAttempts,
	}
	return r.apply(c, dataDir)
}

// Merge applies the fields present in a reconfigure request onto the
// stored configuration (a partial update).
func (r *Request) Merge(stored Config, dataDir string) (Config, error) {
	c := stored
	if c.Local != nil {
		l := *c.Local
		c.Local = &l
	}
	if c.Vault != nil {
		v := *c.Vault
		c.Vault = &v
	}
	return r.apply(c, dataDir)
}

func (r *Request) apply(c Config, dataDir string) (Config, error) {
	if r.BackendType != nil {
		t, err := ParseBackendType(*r.BackendType)
		if err != nil {
			return Config{}, err
		}
		if t != c.BackendType {
			c.BackendType, c.Local, c.Vault, c.Awaiting = t, nil, nil, nil
		}
	}
	setS(&c.DefaultKeyID, r.DefaultKeyID)
	setB(&c.EnableCache, r.EnableCache)
	setI(&c.CacheTTLSeconds, r.CacheTTLSeconds)
	setI(&c.MaxCachedKeys, r.MaxCachedKeys)
	setI(&c.TimeoutSeconds, r.TimeoutSeconds)
	setI(&c.RetryAttempts, r.RetryAttempts)
	switch c.BackendType {
	case BackendLocal:
		if r.Address != nil || r.Auth != nil || r.KVMount != nil {
			return Config{}, fmt.Errorf("%w: vault fields given for the local backend", kms.ErrInvalidRequest)
		}
		if c.Local == nil {
			c.Local = &Local{KeyDir: filepath.Join(dataDir, "keys"), FilePermissions: DefaultFilePermissions}
		}
		if r.KeyDir != nil {
			dir := *r.KeyDir
			if dir != "" && !filepath.IsAbs(dir) {
				dir = filepath.Join(dataDir, dir)
			}
			if dir != "" {
				dir, _ = filepath.Abs(dir)
			}
			c.Local.KeyDir = dir
		}
		if countSet(r.MasterKey, r.MasterKeyFile, r.MasterKeyEnv) > 0 {
			// A new source replaces the old one, whichever it was.
			c.Local.MasterKey, c.Local.MasterKeyFile, c.Local.MasterKeyEnv = "", "", ""
			setS(&c.Local.MasterKey, r.MasterKey)
			setS(&c.Local.MasterKeyFile, r.MasterKeyFile)
			setS(&c.Local.MasterKeyEnv, r.MasterKeyEnv)
			c.Awaiting = withoutAwaiting(c.Awaiting, SecretMasterKey)
		}
		if r.FilePermissions != nil {
			c.Local.FilePermissions = *r.FilePermissions
		}
	case BackendVault, BackendVaultTransit:
		if r.KeyDir != nil || countSet(r.MasterKey, r.MasterKeyFile, r.MasterKeyEnv) > 0 || r.FilePermissions != nil {
			return Config{}, fmt.Errorf("%w: local fields given for a vault backend", kms.ErrInvalidRequest)
		}
		if c.Vault == nil {
			c.Vault = &Vault{MountPath: DefaultMountPath, KVMount: DefaultKVMount, KeyPathPrefix: DefaultKeyPathPrefix}
		}
		v := c.Vault
		before := *v
		setS(&v.Address, r.Address)
		if r.Auth != nil {
			v.Auth = *r.Auth
			c.Awaiting = withoutAwaiting(c.Awaiting, SecretToken, SecretSecretID)
		}
		setS(&v.Namespace, r.Namespace)
		setS(&v.MountPath, r.MountPath)
		setS(&v.KVMount, r.KVMount)
		setS(&v.KeyPathPrefix, r.KeyPathPrefix)
		setS(&v.CACert, r.CACert)
		setB(&v.SkipTLSVerify, r.SkipTLSVerify)
		if r.Auth == nil && before.Address != "" && redirectsCredential(before, *v) {
			return Config{}, fmt.Errorf("%w: auth_method must be given again when address, namespace, ca_cert or skip_tls_verify changes: a stored Vault credential is only ever sent to the Vault it was given for", kms.ErrInvalidRequest)
		}
	}
	if err := c.Validate(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// redirectsCredential reports whether a change of Vault settings would send
// the stored credential somewhere else, or over a channel it was not given
// for: another address or namespace, another CA, or certificate checks
// turned off. Otherwise a caller allowed to reconfigure, but not trusted
// with the Vault token, could point Keyward at a server of theirs and
// receive the token with the next login.
func redirectsCredential(before, after Vault) bool {
	return before.Address != after.Address || before.Namespace != after.Namespace ||
		before.CACert != after.CACert || (after.SkipTLSVerify && !before.SkipTLSVerify)
}

func setS(dst *string, src *string) {
	if src != nil {
		*dst = *src
	}
}

func setB(dst *bool, src *bool) {
	if src != nil {
		*dst = *src
	}
}

func setI(dst *int, src *int) {
	if src != nil {
		*dst = *src
	}
}
