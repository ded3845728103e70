package config

// The JSON shapes of /kms/status and /kms/config (docs/api.md). None
// carries a secret: they are built field by field, never by serializing a
// Config.

// Summary is config_summary in /kms/status.
type Summary struct {
	BackendType    string        `json:"backend_type"`
	DefaultKeyID   *string       `json:"default_key_id"`
	TimeoutSeconds int           `json:"timeout_seconds"`
	RetryAttempts  int           `json:"retry_attempts"`
	EnableCache    bool          `json:"enable_cache"`
	CacheSummary   *CacheSummary `json:"cache_summary"`
	// BackendSummary is a LocalSummary or a VaultSummary.
	BackendSummary any `json:"backend_summary"`
}

// CacheSummary is null when the cache is disabled.
type CacheSummary struct {
	MaxKeys       int  `json:"max_keys"`
	TTLSeconds    int  `json:"ttl_seconds"`
	EnableMetrics bool `json:"enable_metrics"`
}

// LocalSummary describes a local backend without its master key. Where
// the master key comes from (a file path, a variable name) is not secret
// and is shown.
type LocalSummary struct {
	BackendType     string `json:"backend_type"`
	KeyDir          string `json:"key_dir"`
	HasMasterKey    bool   `json:"has_master_key"`
	MasterKeyFile   string `json:"master_key_file,omitempty"`
	MasterKeyEnv    string `json:"master_key_env,omitempty"`
	FilePermissions uint32 `json:"file_permissions"`
}

// VaultSummary describes a Vault backend without its credentials.
type VaultSummary struct {
	BackendType    string  `json:"backend_type"`
	Address        string  `json:"address"`
	AuthMethodType string  `json:"auth_method_type"`
	Namespace      *string `json:"namespace"`
	MountPath      string  `json:"mount_path"`
	KVMount        string  `json:"kv_mount"`
	KeyPathPrefix  string  `json:"key_path_prefix"`
	SkipTLSVerify  bool    `json:"skip_tls_verify"`
	// Where a credential given by reference comes from.
	TokenFile    string `json:"token_file,omitempty"`
	TokenEnv     string `json:"token_env,omitempty"`
	SecretIDFile string `json:"secret_id_file,omitempty"`
	SecretIDEnv  string `json:"secret_id_env,omitempty"`
}

// Summary returns the secret-free summary.
func (c *Config) Summary() Summary {
	s := Summary{
		BackendType:    c.BackendType,
		DefaultKeyID:   optional(c.DefaultKeyID),
		TimeoutSeconds: c.TimeoutSeconds,
		RetryAttempts:  c.RetryAttempts,
		EnableCache:    c.EnableCache,
	}
	if c.EnableCache {
		s.CacheSummary = &CacheSummary{MaxKeys: c.MaxCachedKeys, TTLSeconds: c.CacheTTLSeconds, EnableMetrics: true}
	}
	if l := c.Local; l != nil {
		has := l.MasterKey != "" || l.MasterKeyFile != "" || l.MasterKeyEnv != "" || c.awaits(SecretMasterKey)
		s.BackendSummary = LocalSummary{c.BackendType, l.KeyDir, has, l.MasterKeyFile, l.MasterKeyEnv, l.FilePermissions}
	}
	if v := c.Vault; v != nil {
		a := v.Auth
		s.BackendSummary = VaultSummary{c.BackendType, v.Address, a.Method, optional(v.Namespace), v.MountPath, v.KVMount, v.KeyPathPrefix, v.SkipTLSVerify,
			a.TokenFile, a.TokenEnv, a.SecretIDFile, a.SecretIDEnv}
	}
	return s
}

// View is the body of GET /kms/config.
type View struct {
	Backend         string  `json:"backend"`
	CacheEnabled    bool    `json:"cache_enabled"`
	CacheMaxKeys    int     `json:"cache_max_keys"`
	CacheTTLSeconds int     `json:"cache_ttl_seconds"`
	DefaultKeyID    *string `json:"default_key_id"`
}

// View returns the /kms/config body.
func (c *Config) View() View {
	return View{c.BackendType, c.EnableCache, c.MaxCachedKeys, c.CacheTTLSeconds, optional(c.DefaultKeyID)}
}

func optional(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}
