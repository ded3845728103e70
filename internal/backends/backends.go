// Package backends opens the kms.Backend a configuration names. It is the
// only place that knows every backend package; main hands it to the
// lifecycle manager.
package backends

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/keyward/keyward/internal/backend/local"
	"github.com/keyward/keyward/internal/backend/vault"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// Registry opens backends. It implements lifecycle.Backends.
type Registry struct {
	DataDir string
	Rand    io.Reader
	Now     func() time.Time
	// Log receives the Vault backends' token-maintenance warnings
	// (discarded when nil).
	Log *slog.Logger
}

// Open builds the backend for cfg.
func (r *Registry) Open(ctx context.Context, cfg config.Config) (kms.Backend, error) {
	switch cfg.BackendType {
	case config.BackendLocal:
		return r.openLocal(cfg)
	case config.BackendVault, config.BackendVaultTransit:
		return vault.Open(ctx, cfg, vault.Options{Rand: r.Rand, Now: r.Now, Log: r.Log})
	}
	return nil, fmt.Errorf("%w: unknown backend type %q", kms.ErrInvalidRequest, cfg.BackendType)
}

func (r *Registry) openLocal(cfg config.Config) (kms.Backend, error) {
	l := cfg.Local
	store, err := local.OpenFileStore(l.KeyDir, os.FileMode(l.FilePermissions))
	if err != nil {
		return nil, err
	}
	var sealer *local.AEADSealer
	// The KDF parameters (salt) live in the key directory, with the records
	// sealed under them; the random root key (no master_key) lives in the
	// data dir.
	if l.MasterKey != "" {
		pass := []byte(l.MasterKey)
		sealer, err = local.NewPassphraseSealer(filepath.Join(l.KeyDir, local.DefaultParamsFile), pass, r.Rand)
		clear(pass)
	} else {
		sealer, err = local.NewRootKeySealer(filepath.Join(r.DataDir, local.DefaultRootKeyFile), r.Rand)
	}
	if err != nil {
		return nil, err
	}
	return keyring.New(keyring.Options{
		Store:        store,
		Sealer:       sealer,
		Rand:         r.Rand,
		Now:          r.Now,
		CacheEntries: cacheEntries(cfg),
		CacheTTL:     time.Duration(cfg.CacheTTLSeconds) * time.Second,
	}), nil
}

// cacheEntries is zero (no cache) when the cache is disabled.
func cacheEntries(cfg config.Config) int {
	if !cfg.EnableCache {
		return 0
	}
	return cfg.MaxCachedKeys
}

// HoldsKeys reports whether the backend of cfg stores any key.
func (r *Registry) HoldsKeys(ctx context.Context, cfg config.Config) (bool, error) {
	switch cfg.BackendType {
	case config.BackendVault, config.BackendVaultTransit:
		return vault.HoldsKeys(ctx, cfg)
	case config.BackendLocal:
	default:
		return false, nil
	}
	return local.HoldsKeys(cfg.Local.KeyDir)
}
