package vault

import (
	"context"
	"crypto/rand"
	"fmt"
	"hash/maphash"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// DefaultRevalidate is how often cached key state is re-checked against KV
// (the bound on how long another node's state change takes to be seen).
const DefaultRevalidate = 5 * time.Second

// Options are what the registry passes besides the configuration.
type Options struct {
	// Rand is the source of key material and nonces (vault backend);
	// crypto/rand when nil.
	Rand io.Reader
	// Now is the clock; time.Now when nil.
	Now func() time.Time
	// Log receives token-maintenance warnings; discarded when nil.
	Log *slog.Logger
	// Revalidate: see DefaultRevalidate (used when zero; negative: never).
	Revalidate time.Duration
}

func (o *Options) defaults() {
	if o.Rand == nil {
		o.Rand = rand.Reader
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Revalidate == 0 {
		o.Revalidate = DefaultRevalidate
	}
	if o.Revalidate < 0 {
		o.Revalidate = 0
	}
}

// Open logs in to Vault, checks that the configured mounts are usable,
// starts token maintenance and returns the backend cfg.BackendType names:
// config.BackendVault or config.BackendVaultTransit.
func Open(ctx context.Context, cfg config.Config, o Options) (kms.Backend, error) {
	o.defaults()
	if cfg.BackendType != config.BackendVault && cfg.BackendType != config.BackendVaultTransit {
		return nil, fmt.Errorf("%w: %q is not a Vault backend", kms.ErrInvalidRequest, cfg.BackendType)
	}
	c, l, err := dial(ctx, cfg, o.Log)
	if err != nil {
		return nil, err
	}
	b, err := open(ctx, c, cfg, o)
	if err != nil {
		c.close()
		return nil, credentialError(err)
	}
	c.startMaintenance(l)
	return b, nil
}

func open(ctx context.Context, c *conn, cfg config.Config, o Options) (kms.Backend, error) {
	v := cfg.Vault
	kvMount, transitMount := strings.Trim(v.KVMount, "/"), strings.Trim(v.MountPath, "/")
	if err := c.verifyMount(ctx, "kv_mount", kvMount, "kv", "2"); err != nil {
		return nil, err
	}
	if err := c.verifyMount(ctx, "mount_path", transitMount, "transit", ""); err != nil {
		return nil, err
	}
	kv := newKVStore(c, kvMount, v.KeyPathPrefix, o.Now, o.Log)
	entries, ttl := cacheEntries(cfg), time.Duration(cfg.CacheTTLSeconds)*time.Second
	if cfg.BackendType == config.BackendVaultTransit {
		return &transitBackend{
			conn: c, kv: kv, mount: transitMount, now: o.Now, revalidate: o.Revalidate,
			cache: cache.New[string, *metaEntry](entries, ttl, o.Now, nil),
			seed:  maphash.MakeSeed(),
		}, nil
	}
	sealer := &transitSealer{c: c, mount: transitMount}
	if err := sealer.ensureKEK(ctx); err != nil {
		return nil, err
	}
	kr := keyring.New(keyring.Options{
		Store: kvRecords{kv}, Sealer: sealer, Rand: o.Rand, Now: o.Now,
		CacheEntries: entries, CacheTTL: ttl, Revalidate: o.Revalidate,
	})
	return &kvBackend{Keyring: kr, conn: c}, nil
}

// cacheEntries is zero (no cache) when the cache is disabled.
func cacheEntries(cfg config.Config) int {
	if !cfg.EnableCache {
		return 0
	}
	return cfg.MaxCachedKeys
}

// HoldsKeys reports whether any key record lives under the configured KV
// prefix (a tombstone left by a destruction does not count). It logs in
// for the check only.
func HoldsKeys(ctx context.Context, cfg config.Config) (bool, error) {
	c, _, err := dial(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return false, err
	}
	defer c.close()
	return newKVStore(c, cfg.Vault.KVMount, cfg.Vault.KeyPathPrefix, time.Now, slog.New(slog.DiscardHandler)).holdsKeys(ctx)
}

// TokenTTL reports how long the backend's Vault token has left (ok false
// for a token that never expires), for the keyward_vault_token_ttl_seconds
// metric.
func (b *kvBackend) TokenTTL() (time.Duration, bool) { return b.conn.TokenTTL() }

// TokenTTL: see kvBackend.TokenTTL.
func (b *transitBackend) TokenTTL() (time.Duration, bool) { return b.conn.TokenTTL() }

// TransitBatches reports the Transit calls sent in batch requests (see
// batch.go): the number of batch requests and the calls they carried.
func (b *transitBackend) TransitBatches() (requests, calls uint64) { return b.conn.TransitBatches() }
