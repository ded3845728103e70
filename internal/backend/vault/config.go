package vault

import "time"

// Config is what the Vault backends need of a KMS configuration: the
// connection, the mounts, and where Keyward's records live (docs/vault.md).
type Config struct {
	// Transit selects the vault-transit backend (material in Transit keys
	// that never leave Vault) over vault (material in the sealed records).
	Transit   bool
	Address   string
	Namespace string
	Auth      Auth
	// MountPath is the Transit mount; KVMount the KV v2 mount, and
	// KeyPathPrefix the folder of Keyward's records in it.
	MountPath     string
	KVMount       string
	KeyPathPrefix string
	// CACert is PEM content, or the path of a PEM file.
	CACert        string
	SkipTLSVerify bool
	// Timeout bounds each HTTP attempt; Retries is how often a read is
	// tried again (writes never are).
	Timeout time.Duration
	Retries int
}

// Auth is token or AppRole authentication. It holds secrets: it is never
// logged and never part of an error.
type Auth struct {
	Method   string // "token" or "approle"
	Token    string
	RoleID   string
	SecretID string
}

// defaultTimeout is used when Config.Timeout is not positive.
const defaultTimeout = 30 * time.Second
