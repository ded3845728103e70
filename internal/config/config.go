// Package config is the KMS service configuration: what /kms/configure and
// /kms/reconfigure accept, how it is validated and merged, what is persisted
// in the data dir, and the secret-free summaries /kms/status and
// /kms/config report.
package config

import (
	"crypto/sha256"
	"fmt"
	"net/url"
	"strings"

	"github.com/keyward/keyward/internal/kms"
)

// Backend type names (the wire names Keyward writes).
const (
	BackendLocal        = "local"
	BackendVault        = "vault"
	BackendVaultTransit = "vault-transit"
)

// Defaults (docs/api.md, "Configuration fields").
const (
	DefaultCacheTTLSeconds = 300
	DefaultMaxCachedKeys   = 1000
	DefaultTimeoutSeconds  = 30
	DefaultRetryAttempts   = 3
	DefaultMountPath       = "transit"
	DefaultKVMount         = "secret"
	DefaultKeyPathPrefix   = "keyward/keys"
	DefaultFilePermissions = 0o600
)

// Config is a complete, validated KMS configuration. It is persisted as
// JSON in the data dir (mode 0600) in the form ForDisk gives: secrets given
// by reference (a file in the secrets dir, an environment variable) are
// persisted as the reference only, and with --no-persist-secrets inline
// secrets are not persisted at all. In memory it holds the secrets in force
// (master key, Vault credentials), which no API response or log line ever
// shows.
type Config struct {
	BackendType     string `json:"backend_type"`
	DefaultKeyID    string `json:"default_key_id,omitempty"`
	EnableCache     bool   `json:"enable_cache"`
	CacheTTLSeconds int    `json:"cache_ttl_seconds"`
	MaxCachedKeys   int    `json:"max_cached_keys"`
	TimeoutSeconds  int    `json:"timeout_seconds"`
	RetryAttempts   int    `json:"retry_attempts"`

	Local *Local `json:"local,omitempty"`
	Vault *Vault `json:"vault,omitempty"`

	// Awaiting names the secrets (SecretMasterKey, SecretToken,
	// SecretSecretID) that were withheld from disk and that this process
	// has not been given yet: a configuration awaiting a secret validates
	// but must not be opened. Kept in memory; the state file records it
	// separately.
	Awaiting []string `json:"-"`
}

// The names of the secrets a configuration can hold inline, as the API
// spells them (configure body, start body, secrets_required).
const (
	SecretMasterKey = "master_key"
	SecretToken     = "token"
	SecretSecretID  = "secret_id"
)

// Local configures the local key directory backend.
type Local struct {
	KeyDir string `json:"key_dir"`
	// MasterKey is the passphrase in force: given inline, or read from
	// MasterKeyFile or MasterKeyEnv (then only in memory, never
	// persisted). Empty without a reference means a random root key kept
	// in the data dir.
	MasterKey string `json:"master_key,omitempty"`
	// MasterKeyFile is the absolute path of a file in the secrets dir
	// holding the passphrase; MasterKeyEnv the name of a KEYWARD_SECRET_*
	// environment variable of the server holding it. At most one is set.
	MasterKeyFile   string `json:"master_key_file,omitempty"`
	MasterKeyEnv    string `json:"master_key_env,omitempty"`
	FilePermissions uint32 `json:"file_permissions"`
}

// Vault configures both Vault backends.
type Vault struct {
	// Address is one Vault URL, or the nodes of one Vault cluster
	// separated by commas (NormalizeAddresses; docs/vault.md).
	Address       string    `json:"address"`
	Auth          VaultAuth `json:"auth"`
	Namespace     string    `json:"namespace,omitempty"`
	MountPath     string    `json:"mount_path"`
	KVMount       string    `json:"kv_mount"`
	KeyPathPrefix string    `json:"key_path_prefix"`
	CACert        string    `json:"ca_cert,omitempty"`
	SkipTLSVerify bool      `json:"skip_tls_verify,omitempty"`
}

// VaultAuth is token or AppRole authentication. Token and SecretID are the
// credentials in force; like Local.MasterKey each may instead come from a
// file in the secrets dir or a KEYWARD_SECRET_* environment variable (the
// *File and *Env fields), and is then held in memory only.
type VaultAuth struct {
	Method       string `json:"method"` // "token" or "approle"
	Token        string `json:"token,omitempty"`
	TokenFile    string `json:"token_file,omitempty"`
	TokenEnv     string `json:"token_env,omitempty"`
	RoleID       string `json:"role_id,omitempty"`
	SecretID     string `json:"secret_id,omitempty"`
	SecretIDFile string `json:"secret_id_file,omitempty"`
	SecretIDEnv  string `json:"secret_id_env,omitempty"`
}

// ParseBackendType reads a backend type liberally: Keyward's names and the
// RustFS spellings, case-insensitive.
func ParseBackendType(s string) (string, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "local":
		return BackendLocal, nil
	case "vault", "vault-kv2", "vault_kv2", "vaultkv2", "vault-kv", "vault_kv":
		return BackendVault, nil
	case "vault-transit", "vault_transit", "vaulttransit":
		return BackendVaultTransit, nil
	}
	return "", fmt.Errorf("%w: unknown backend_type %q (expected local, vault or vault-transit)", kms.ErrInvalidRequest, s)
}

// Validate checks a complete configuration.
func (c *Config) Validate() error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", kms.ErrInvalidRequest, fmt.Sprintf(format, a...))
	}
	if c.DefaultKeyID != "" {
		if err := kms.ValidateKeyID(c.DefaultKeyID); err != nil {
			return bad("default_key_id: %v", strings.TrimPrefix(err.Error(), kms.ErrInvalidRequest.Error()+": "))
		}
	}
	if c.CacheTTLSeconds < 1 || c.CacheTTLSeconds > 86400 {
		return bad("cache_ttl_seconds must be between 1 and 86400")
	}
	if c.MaxCachedKeys < 1 || c.MaxCachedKeys > 1_000_000 {
		return bad("max_cached_keys must be between 1 and 1000000")
	}
	if c.TimeoutSeconds < 1 || c.TimeoutSeconds > 300 {
		return bad("timeout_seconds must be between 1 and 300")
	}
	if c.RetryAttempts < 0 || c.RetryAttempts > 10 {
		return bad("retry_attempts must be between 0 and 10")
	}
	switch c.BackendType {
	case BackendLocal:
		if c.Local == nil || c.Vault != nil {
			return bad("a local configuration needs local settings only")
		}
		if !strings.HasPrefix(c.Local.KeyDir, "/") {
			return bad("key_dir must be an absolute path")
		}
		if err := ValidateFilePermissions(c.Local.FilePermissions); err != nil {
			return err
		}
		if err := validateRefs(SecretMasterKey, c.Local.MasterKeyFile, c.Local.MasterKeyEnv); err != nil {
			return err
		}
	case BackendVault, BackendVaultTransit:
		if c.Vault == nil || c.Local != nil {
			return bad("a vault configuration needs vault settings only")
		}
		v := c.Vault
		if err := validateAddresses(v.Address); err != nil {
			return err
		}
		a := v.Auth
		switch a.Method {
		case "token":
			if a.RoleID != "" || a.SecretID != "" || a.SecretIDFile != "" || a.SecretIDEnv != "" {
				return bad("token auth takes no AppRole fields")
			}
			if err := validateRefs(SecretToken, a.TokenFile, a.TokenEnv); err != nil {
				return err
			}
			if a.Token == "" && a.TokenFile == "" && a.TokenEnv == "" && !c.awaits(SecretToken) {
				return bad("auth_method.token must not be empty")
			}
		case "approle":
			if a.Token != "" || a.TokenFile != "" || a.TokenEnv != "" {
				return bad("AppRole auth takes no token fields")
			}
			if err := validateRefs(SecretSecretID, a.SecretIDFile, a.SecretIDEnv); err != nil {
				return err
			}
			if a.RoleID == "" || (a.SecretID == "" && a.SecretIDFile == "" && a.SecretIDEnv == "" && !c.awaits(SecretSecretID)) {
				return bad("auth_method.approle needs role_id and one of secret_id, secret_id_file or secret_id_env")
			}
		default:
			return bad("auth_method is required (token or approle)")
		}
		if v.MountPath == "" || v.KVMount == "" {
			return bad("mount_path and kv_mount must not be empty")
		}
	default:
		return bad("backend_type is required (local, vault or vault-transit)")
	}
	return c.validateAwaiting()
}

// ValidateFilePermissions allows owner read (and write), optionally group
// read: key files are never writable by others, never executable.
func ValidateFilePermissions(p uint32) error {
	if p&^0o640 != 0 || p&0o400 == 0 {
		return fmt.Errorf("%w: file_permissions %#o not allowed (use 0600, 0400, 0640 or 0440)", kms.ErrInvalidRequest, p)
	}
	return nil
}

// Redacted returns a copy with every secret replaced by a marker, safe to log.
func (c Config) Redacted() Config {
	if c.Local != nil {
		l := *c.Local
		if l.MasterKey != "" {
			l.MasterKey = "[redacted]"
		}
		c.Local = &l
	}
	if c.Vault != nil {
		v := *c.Vault
		if v.Auth.Token != "" {
			v.Auth.Token = "[redacted]"
		}
		if v.Auth.SecretID != "" {
			v.Auth.SecretID = "[redacted]"
		}
		c.Vault = &v
	}
	return c
}

// Identity is a digest of what locates and unseals the keys of a
// configuration: two configurations with the same identity reach the same
// keys. It is a SHA-256, so comparing two identities takes no time that
// depends on the master key.
func (c *Config) Identity() [32]byte {
	id := c.BackendType
	if l := c.Local; l != nil {
		// The passphrase in force, whether given inline or read from a
		// reference: moving the same passphrase into a file keeps the
		// identity. A passphrase not known yet (awaited, or a reference
		// not read) matches no identity whose passphrase is known.
		switch {
		case c.awaits(SecretMasterKey):
			id += "\x00" + l.KeyDir + "\x00awaited"
		case l.MasterKey == "" && (l.MasterKeyFile != "" || l.MasterKeyEnv != ""):
			id += "\x00" + l.KeyDir + "\x00unresolved\x00" + l.MasterKeyFile + "\x00" + l.MasterKeyEnv
		default:
			id += "\x00" + l.KeyDir + "\x00passphrase\x00" + l.MasterKey
		}
	}
	if v := c.Vault; v != nil {
		// The address is not part of it: the nodes of one cluster reach
		// the same keys, so it is compared by SameKeys instead.
		id += "\x00" + v.Namespace + "\x00" + v.MountPath + "\x00" + v.KVMount + "\x00" + v.KeyPathPrefix
	}
	return sha256.Sum256([]byte(id))
}

// SameKeys reports whether a and b reach the same keys: the same identity
// and, for Vault, addresses that share at least one node (adding or
// removing nodes of a cluster keeps its keys; naming only other nodes is
// another Vault as far as Keyward can tell).
func SameKeys(a, b Config) bool {
	if a.Identity() != b.Identity() {
		return false
	}
	if a.Vault == nil || b.Vault == nil {
		return a.Vault == nil && b.Vault == nil
	}
	for _, x := range strings.Split(a.Vault.Address, ",") {
		for _, y := range strings.Split(b.Vault.Address, ",") {
			if sameURL(x, y) {
				return true
			}
		}
	}
	return false
}

// sameURL compares two addresses as URLs: scheme and host case-insensitive,
// a trailing slash ignored.
func sameURL(x, y string) bool {
	norm := func(s string) string {
		u, err := url.Parse(strings.TrimSpace(s))
		if err != nil {
			return s
		}
		return strings.ToLower(u.Scheme) + "://" + strings.ToLower(u.Host) + strings.TrimRight(u.Path, "/")
	}
	return norm(x) == norm(y)
}

// MaxVaultAddresses bounds the nodes of one address list.
const MaxVaultAddresses = 16

// NormalizeAddresses is the canonical spelling of an address list: the
// addresses trimmed, empty ones dropped, joined with commas.
func NormalizeAddresses(s string) string {
	var out []string
	for _, a := range strings.Split(s, ",") {
		if a = strings.TrimSpace(a); a != "" {
			out = append(out, a)
		}
	}
	return strings.Join(out, ",")
}

// validateAddresses checks an address list: 1 to MaxVaultAddresses
// http(s) URLs, no two alike.
func validateAddresses(s string) error {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: %s", kms.ErrInvalidRequest, fmt.Sprintf(format, a...))
	}
	addrs := strings.Split(NormalizeAddresses(s), ",")
	if len(addrs) > MaxVaultAddresses {
		return bad("address names %d Vault nodes; at most %d", len(addrs), MaxVaultAddresses)
	}
	for i, a := range addrs {
		u, err := url.Parse(a)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" {
			if len(addrs) > 1 {
				return bad("address: node %d must be an http:// or https:// URL (several nodes are separated by commas)", i+1)
			}
			return bad("address must be an http:// or https:// URL")
		}
		for _, b := range addrs[:i] {
			if sameURL(a, b) {
				return bad("address: node %d is named twice", i+1)
			}
		}
	}
	return nil
}
