package config

// The JSON shapes of /kms/status and /kms/config (seed field names). None
// carries a secret: they are built field by field, never by serializing a
// Config.

// Summary is config_summary in /kms/status.
type Summary struct {
	BackendType    string          `json:"backend_type"`
	DefaultKeyID   *string         `json:"default_key_id"`
	TimeoutSeconds int             `json:"timeout_seconds"`
	RetryAttempts  int             `json:"retry_attempts"`
	EnableCache    bool            `json:"enable_cache"`
	MaxCachedKeys  int             `json:"max_cached_keys"`
	CacheTTL       int             `json:"cache_ttl_seconds"`
	CacheSummary   *CacheSummary   `json:"cache_summary"`
	BackendSummary *BackendSummary `json:"backend_summary"`
}

// CacheSummary is null when the cache is disabled.
type CacheSummary struct {
	MaxKeys       int  `json:"max_keys"`
	TTLSeconds    int  `json:"ttl_seconds"`
	EnableMetrics bool `json:"enable_metrics"`
}

// BackendSummary describes the backend without secrets. Fields that do not
// apply to a backend type are omitted.
type BackendSummary struct {
	BackendType     string  `json:"backend_type"`
	KeyDir          string  `json:"key_dir,omitempty"`
	HasMasterKey    *bool   `json:"has_master_key,omitempty"`
	FilePermissions *uint32 `json:"file_permissions,omitempty"`
	Address         string  `json:"address,omitempty"`
	AuthMethodType  string  `json:"auth_method_type,omitempty"`
	Namespace       *string `json:"namespace,omitempty"`
	MountPath       string  `json:"mount_path,omitempty"`
	KVMount         string  `json:"kv_mount,omitempty"`
	KeyPathPrefix   string  `json:"key_path_prefix,omitempty"`
	SkipTLSVerify   *bool   `json:"skip_tls_verify,omitempty"`
}

// Summary returns the secret-free summary.
func (c *Config) Summary() Summary {
	s := Summary{
		BackendType:    c.BackendType,
		DefaultKeyID:   optional(c.DefaultKeyID),
		TimeoutSeconds: c.TimeoutSeconds,
		RetryAttempts:  c.RetryAttempts,
		EnableCache:    c.EnableCache,
		MaxCachedKeys:  c.MaxCachedKeys,
		CacheTTL:       c.CacheTTLSeconds,
		BackendSummary: &BackendSummary{BackendType: c.BackendType},
	}
	if c.EnableCache {
		s.CacheSummary = &CacheSummary{MaxKeys: c.MaxCachedKeys, TTLSeconds: c.CacheTTLSeconds, EnableMetrics: true}
	}
	b := s.BackendSummary
	if l := c.Local; l != nil {
		has, perm := l.MasterKey != "", l.FilePermissions
		b.KeyDir, b.HasMasterKey, b.FilePermissions = l.KeyDir, &has, &perm
	}
	if v := c.Vault; v != nil {
		skip := v.SkipTLSVerify
		b.Address, b.AuthMethodType, b.Namespace = v.Address, v.Auth.Method, optional(v.Namespace)
		b.MountPath, b.SkipTLSVerify = v.MountPath, &skip
		if c.BackendType == BackendVault {
			b.KVMount, b.KeyPathPrefix = v.KVMount, v.KeyPathPrefix
		}
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
