package client

import (
	"context"
	"encoding/json"
	"net/http"
)

// ServiceState is the state of the KMS service.
type ServiceState string

// Service states (docs/api.md, "Service lifecycle").
const (
	StateNotConfigured ServiceState = "NotConfigured"
	StateConfigured    ServiceState = "Configured"
	StateRunning       ServiceState = "Running"
	StateError         ServiceState = "Error"
)

// Backend types accepted by ConfigureRequest.BackendType.
const (
	BackendLocal        = "local"
	BackendVault        = "vault"
	BackendVaultTransit = "vault-transit"
)

// ConfigureRequest is the body of Configure and Reconfigure. Every field is
// a pointer and only the fields set are sent: Configure fills the missing
// ones with the server's defaults, Reconfigure merges them onto the stored
// configuration (rotate a Vault token, change cache settings). With Go 1.26
// a field is set with new: ConfigureRequest{BackendType: new("local")}.
//
// The secrets (MasterKey, Auth) are written into a request buffer that is
// wiped after the call; they never appear in an error. Each secret may
// instead be named by reference, for the server to read: a file on the
// server inside its --secrets-dir (MasterKeyFile, VaultAuth.TokenFile,
// AppRole.SecretIDFile) or a KEYWARD_SECRET_* environment variable of the
// server process (the *Env fields). The server persists only the
// reference. Give one source per secret.
type ConfigureRequest struct {
	BackendType     *string `json:"backend_type,omitempty"` // local, vault, vault-transit
	DefaultKeyID    *string `json:"default_key_id,omitempty"`
	EnableCache     *bool   `json:"enable_cache,omitempty"`
	CacheTTLSeconds *int    `json:"cache_ttl_seconds,omitempty"`
	MaxCachedKeys   *int    `json:"max_cached_keys,omitempty"`
	TimeoutSeconds  *int    `json:"timeout_seconds,omitempty"`
	RetryAttempts   *int    `json:"retry_attempts,omitempty"`

	// Local backend.
	KeyDir          *string `json:"key_dir,omitempty"`
	MasterKey       *string `json:"master_key,omitempty"`      // a passphrase
	MasterKeyFile   *string `json:"master_key_file,omitempty"` // a path on the server, in its secrets dir
	MasterKeyEnv    *string `json:"master_key_env,omitempty"`  // KEYWARD_SECRET_*, in the server's environment
	FilePermissions *uint32 `json:"file_permissions,omitempty"`

	// Vault backends.
	Address       *string    `json:"address,omitempty"`
	Auth          *VaultAuth `json:"auth_method,omitempty"`
	Namespace     *string    `json:"namespace,omitempty"`
	MountPath     *string    `json:"mount_path,omitempty"` // Transit mount
	KVMount       *string    `json:"kv_mount,omitempty"`   // KV v2 mount
	KeyPathPrefix *string    `json:"key_path_prefix,omitempty"`
	CACert        *string    `json:"ca_cert,omitempty"` // PEM, or a file path on the server
	SkipTLSVerify *bool      `json:"skip_tls_verify,omitempty"`
}

// VaultAuth is how the server authenticates to Vault: a token (Token, or
// by reference TokenFile or TokenEnv), or AppRole. Set exactly one.
type VaultAuth struct {
	Token string
	// TokenFile is a path on the server, inside its --secrets-dir.
	TokenFile string
	// TokenEnv names a KEYWARD_SECRET_* variable of the server's
	// environment.
	TokenEnv string
	AppRole  *AppRole
}

// AppRole is a Vault AppRole login. Set one of SecretID, SecretIDFile (a
// path on the server, inside its --secrets-dir) or SecretIDEnv (a
// KEYWARD_SECRET_* variable of the server's environment).
type AppRole struct {
	RoleID       string
	SecretID     string
	SecretIDFile string
	SecretIDEnv  string
}

// MarshalJSON encodes the request as sent: only the fields set, with the
// wire names of the tags, and auth_method as {"token": "..."} (or
// "token_file", "token_env") or {"approle": {"role_id": "...",
// "secret_id": "..."}} (or "secret_id_file", "secret_id_env").
func (r ConfigureRequest) MarshalJSON() ([]byte, error) { return r.body(), nil }

// body writes the request with the JSON writer (secrets never pass through
// encoding/json's pooled buffers).
func (r *ConfigureRequest) body() []byte {
	o := newJSONObject(256)
	str := func(k string, v *string) {
		if v != nil {
			o.String(k, *v)
		}
	}
	num := func(k string, v *int) {
		if v != nil {
			o.Int(k, int64(*v))
		}
	}
	boolean := func(k string, v *bool) {
		if v != nil {
			o.Bool(k, *v)
		}
	}
	str("backend_type", r.BackendType)
	str("default_key_id", r.DefaultKeyID)
	boolean("enable_cache", r.EnableCache)
	num("cache_ttl_seconds", r.CacheTTLSeconds)
	num("max_cached_keys", r.MaxCachedKeys)
	num("timeout_seconds", r.TimeoutSeconds)
	num("retry_attempts", r.RetryAttempts)
	str("key_dir", r.KeyDir)
	str("master_key", r.MasterKey)
	str("master_key_file", r.MasterKeyFile)
	str("master_key_env", r.MasterKeyEnv)
	if r.FilePermissions != nil {
		o.Int("file_permissions", int64(*r.FilePermissions))
	}
	str("address", r.Address)
	if a := r.Auth; a != nil {
		auth := newJSONObject(128)
		// Every source set is sent: the server refuses more than one.
		if ar := a.AppRole; ar != nil {
			role := newJSONObject(128)
			role.String("role_id", ar.RoleID)
			if ar.SecretIDFile != "" {
				role.String("secret_id_file", ar.SecretIDFile)
			}
			if ar.SecretIDEnv != "" {
				role.String("secret_id_env", ar.SecretIDEnv)
			}
			if ar.SecretID != "" || ar.SecretIDFile == "" && ar.SecretIDEnv == "" {
				role.String("secret_id", ar.SecretID)
			}
			auth.Object("approle", role)
		} else {
			if a.TokenFile != "" {
				auth.String("token_file", a.TokenFile)
			}
			if a.TokenEnv != "" {
				auth.String("token_env", a.TokenEnv)
			}
			if a.Token != "" || a.TokenFile == "" && a.TokenEnv == "" {
				auth.String("token", a.Token)
			}
		}
		o.Object("auth_method", auth)
	}
	str("namespace", r.Namespace)
	str("mount_path", r.MountPath)
	str("kv_mount", r.KVMount)
	str("key_path_prefix", r.KeyPathPrefix)
	str("ca_cert", r.CACert)
	boolean("skip_tls_verify", r.SkipTLSVerify)
	return o.Done()
}

// LifecycleResponse answers Configure, Reconfigure, Start and Stop.
type LifecycleResponse struct {
	Success bool         `json:"success"`
	Message string       `json:"message"`
	Status  ServiceState `json:"status"` // the state after the call
}

// StartRequest is the body of Start.
type StartRequest struct {
	// Force rebuilds a running service in place (RustFS's force start)
	// instead of failing with ErrConflict.
	Force bool `json:"force,omitempty"`
	// The secrets a server run with --no-persist-secrets waits for after a
	// restart (Status.SecretsRequired): only those may be given. A wrong
	// master key or a token Vault refuses is ErrInvalidRequest, and the
	// service stays Configured. They are written into a request buffer
	// that is wiped after the call.
	MasterKey *string `json:"master_key,omitempty"`
	Token     *string `json:"token,omitempty"`
	SecretID  *string `json:"secret_id,omitempty"`
}

// MarshalJSON encodes the request as sent.
func (r StartRequest) MarshalJSON() ([]byte, error) { return r.body(), nil }

func (r *StartRequest) body() []byte {
	o := newJSONObject(64)
	if r.Force {
		o.Bool("force", true)
	}
	for _, f := range []struct {
		k string
		v *string
	}{{"master_key", r.MasterKey}, {"token", r.Token}, {"secret_id", r.SecretID}} {
		if f.v != nil {
			o.String(f.k, *f.v)
		}
	}
	return o.Done()
}

// Status is GET /kms/status and /kms/service-status. No secret is ever
// part of it.
type Status struct {
	Status ServiceState `json:"status"`
	// Error explains the Error state.
	Error       string `json:"error,omitempty"`
	BackendType string `json:"backend_type"` // "" while not configured
	// Healthy is nil while the service is not running.
	Healthy       *bool          `json:"healthy"`
	ConfigSummary *ConfigSummary `json:"config_summary"`
	// SecretsRequired names the secrets a server run with
	// --no-persist-secrets waits for after a restart ("master_key",
	// "token", "secret_id"): give them with Start.
	SecretsRequired []string `json:"secrets_required,omitempty"`
}

// ConfigSummary is the secret-free summary of the stored configuration.
type ConfigSummary struct {
	BackendType    string `json:"backend_type"`
	DefaultKeyID   string `json:"default_key_id"`
	TimeoutSeconds int    `json:"timeout_seconds"`
	RetryAttempts  int    `json:"retry_attempts"`
	EnableCache    bool   `json:"enable_cache"`
	// CacheSummary is nil when the cache is disabled.
	CacheSummary   *CacheSummary   `json:"cache_summary"`
	BackendSummary *BackendSummary `json:"backend_summary"`
}

// CacheSummary describes the key cache.
type CacheSummary struct {
	MaxKeys       int  `json:"max_keys"`
	TTLSeconds    int  `json:"ttl_seconds"`
	EnableMetrics bool `json:"enable_metrics"`
}

// BackendSummary describes the backend without its secrets: the local
// fields are set for a local backend, the Vault fields for a Vault one.
type BackendSummary struct {
	BackendType string `json:"backend_type"`
	// Local.
	KeyDir       string `json:"key_dir,omitempty"`
	HasMasterKey bool   `json:"has_master_key,omitempty"`
	// Where the master key comes from when given by reference (not
	// secret): a file on the server, or a variable of its environment.
	MasterKeyFile   string `json:"master_key_file,omitempty"`
	MasterKeyEnv    string `json:"master_key_env,omitempty"`
	FilePermissions uint32 `json:"file_permissions,omitempty"`
	// Vault.
	Address        string `json:"address,omitempty"`
	AuthMethodType string `json:"auth_method_type,omitempty"`
	Namespace      string `json:"namespace,omitempty"`
	MountPath      string `json:"mount_path,omitempty"`
	KVMount        string `json:"kv_mount,omitempty"`
	KeyPathPrefix  string `json:"key_path_prefix,omitempty"`
	SkipTLSVerify  bool   `json:"skip_tls_verify,omitempty"`
	// Where a Vault credential given by reference comes from.
	TokenFile    string `json:"token_file,omitempty"`
	TokenEnv     string `json:"token_env,omitempty"`
	SecretIDFile string `json:"secret_id_file,omitempty"`
	SecretIDEnv  string `json:"secret_id_env,omitempty"`
}

// ConfigView is GET /kms/config.
type ConfigView struct {
	Backend         string `json:"backend"`
	CacheEnabled    bool   `json:"cache_enabled"`
	CacheMaxKeys    int    `json:"cache_max_keys"`
	CacheTTLSeconds int    `json:"cache_ttl_seconds"`
	DefaultKeyID    string `json:"default_key_id"`
}

// Configure validates and stores a full configuration; it does not start
// the service. While the service runs it fails with ErrConflict (use
// Reconfigure). Not retried.
func (c *Client) Configure(ctx context.Context, req ConfigureRequest) (*LifecycleResponse, error) {
	var out LifecycleResponse
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/configure"), body: req.body()}, &out)
	return ret(&out, err)
}

// Reconfigure merges the fields set in req onto the stored configuration;
// a running service swaps to the new backend without dropping requests.
// Changing the backend type, key directory or master key of a
// configuration that holds keys is ErrConflict. Not retried.
func (c *Client) Reconfigure(ctx context.Context, req ConfigureRequest) (*LifecycleResponse, error) {
	var out LifecycleResponse
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/reconfigure"), body: req.body()}, &out)
	return ret(&out, err)
}

// Start starts the configured service (ErrConflict when not configured or
// already running, unless req.Force, or when it waits for secrets that
// req does not give). Not retried.
func (c *Client) Start(ctx context.Context, req StartRequest) (*LifecycleResponse, error) {
	var out LifecycleResponse
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/start"), body: req.body()}, &out)
	return ret(&out, err)
}

// Stop stops the service; the configuration is kept. Not retried.
func (c *Client) Stop(ctx context.Context) (*LifecycleResponse, error) {
	var out LifecycleResponse
	err := c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/stop")}, &out)
	return ret(&out, err)
}

// Status is GET /kms/status. Retried.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	var out Status
	err := c.call(ctx, &request{method: http.MethodGet, path: admin("/kms/status"), retry: true}, &out)
	return ret(&out, err)
}

// ServiceStatus is GET /kms/service-status (the same answer as Status).
// Retried.
func (c *Client) ServiceStatus(ctx context.Context) (*Status, error) {
	var out Status
	err := c.call(ctx, &request{method: http.MethodGet, path: admin("/kms/service-status"), retry: true}, &out)
	return ret(&out, err)
}

// Config is GET /kms/config (ErrServiceUnavailable while not configured).
// Retried.
func (c *Client) Config(ctx context.Context) (*ConfigView, error) {
	var out ConfigView
	err := c.call(ctx, &request{method: http.MethodGet, path: admin("/kms/config"), retry: true}, &out)
	return ret(&out, err)
}

// ClearCache drops every cached key and metadata entry. Idempotent:
// retried.
func (c *Client) ClearCache(ctx context.Context) error {
	return c.call(ctx, &request{method: http.MethodPost, path: admin("/kms/clear-cache"), retry: true}, nil)
}

// Health is the answer of GET /health/ready.
type Health struct {
	// Ready: the KMS service runs and its backend answers.
	Ready bool
	// Status is the server's word: "ready" or "unready".
	Status string
}

// Health asks GET /health/ready (unauthenticated). A server that answers
// "unready" (503) is not an error: Ready is false. Retried on transport
// errors only.
func (c *Client) Health(ctx context.Context) (*Health, error) {
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: "/health/ready", unsigned: true, anyStatus: true, retry: true})
	if err != nil {
		return nil, err
	}
	defer clear(resp.body)
	var body struct {
		Status string `json:"status"`
	}
	if resp.status != http.StatusOK && resp.status != http.StatusServiceUnavailable {
		return nil, newAPIError(resp.status, resp.header, resp.body)
	}
	_ = json.Unmarshal(resp.body, &body) // the status decides; the word is informative
	return &Health{Ready: resp.status == http.StatusOK, Status: body.Status}, nil
}

// Live asks GET /health/live (unauthenticated): nil while the server
// process serves HTTP. Retried on transport errors.
func (c *Client) Live(ctx context.Context) error {
	return c.call(ctx, &request{method: http.MethodGet, path: "/health/live", unsigned: true, retry: true}, nil)
}

// Metrics scrapes GET /metrics (signed: the server may require
// kms:ServiceControl) and returns the Prometheus text exposition as is.
// Retried.
func (c *Client) Metrics(ctx context.Context) (string, error) {
	resp, err := c.send(ctx, &request{method: http.MethodGet, path: "/metrics", retry: true,
		accept: "text/plain;version=0.0.4", limit: maxMetricsBody})
	if err != nil {
		return "", err
	}
	return string(resp.body), nil
}

// ret returns out, or nil and err.
func ret[T any](out *T, err error) (*T, error) {
	if err != nil {
		return nil, err
	}
	return out, nil
}
