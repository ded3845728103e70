// Package backend opens the backend a configuration names: it is the only
// place that knows every backend package. Each backend hands the one
// metadata engine (internal/keyring) its three parts: a store of sealed
// records, a sealer, and the material (keyring.Options).
package backend

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/internal/backend/local"
	"github.com/keyward/keyward/internal/backend/vault"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// Env is what backends are opened with besides their configuration. It
// implements lifecycle.Backends.
type Env struct {
	// DataDir holds the local backend's random root key (no master_key).
	DataDir string
	Rand    io.Reader
	Now     func() time.Time
	// Log receives the Vault backends' token-maintenance warnings
	// (discarded when nil).
	Log *slog.Logger
}

// Open builds the engine for cfg, and the backend's own metrics (nil when
// it has none).
func (e Env) Open(ctx context.Context, cfg config.Config) (kms.Engine, prometheus.Collector, error) {
	var parts keyring.Options
	var collector prometheus.Collector
	switch cfg.BackendType {
	case config.BackendLocal:
		var err error
		if parts, err = e.openLocal(cfg.Local); err != nil {
			return nil, nil, err
		}
	case config.BackendVault, config.BackendVaultTransit:
		b, err := vault.Open(ctx, VaultConfig(cfg), vault.Options{Rand: e.Rand, Now: e.Now, Log: e.Log})
		if err != nil {
			return nil, nil, err
		}
		parts, collector = b.KeyringOptions(), b.Collector()
	default:
		return nil, nil, fmt.Errorf("%w: unknown backend type %q", kms.ErrInvalidRequest, cfg.BackendType)
	}
	if cfg.EnableCache {
		parts.CacheEntries = cfg.MaxCachedKeys
		parts.CacheTTL = time.Duration(cfg.CacheTTLSeconds) * time.Second
	}
	if e.Log != nil {
		backendType := cfg.BackendType
		parts.IndexLoaded = func(keys, unreadable, pending int, took time.Duration) {
			e.Log.Info("key index loaded", "backend_type", backendType, "keys", keys, "unreadable", unreadable, "pending", pending, "took", took.Round(time.Millisecond).String())
		}
	}
	return keyring.New(parts), collector, nil
}

// openLocal: records in a key directory, sealed under a key derived from
// master_key (the KDF parameters live in the key directory, with the
// records sealed under them) or under a random root key kept in the data
// dir; material in the records.
func (e Env) openLocal(l *config.Local) (keyring.Options, error) {
	store, err := local.OpenFileStore(l.KeyDir, os.FileMode(l.FilePermissions))
	if err != nil {
		return keyring.Options{}, err
	}
	aliases, err := local.OpenAliasStore(l.KeyDir, os.FileMode(l.FilePermissions))
	if err != nil {
		return keyring.Options{}, err
	}
	var sealer *local.AEADSealer
	if l.MasterKey != "" {
		pass := []byte(l.MasterKey)
		sealer, err = local.NewPassphraseSealer(filepath.Join(l.KeyDir, local.DefaultParamsFile), pass, e.Rand)
		clear(pass)
	} else {
		sealer, err = local.NewRootKeySealer(filepath.Join(e.DataDir, local.DefaultRootKeyFile), e.Rand)
	}
	if err != nil {
		return keyring.Options{}, err
	}
	return keyring.Options{
		Store:    store,
		Aliases:  aliases,
		Sealer:   sealer,
		Material: keyring.SealedMaterial{Rand: e.Rand},
		Now:      e.Now,
		Close:    func() error { sealer.Close(); return nil },
	}, nil
}

// VaultConfig is the Vault backends' view of a configuration.
func VaultConfig(cfg config.Config) vault.Config {
	v := cfg.Vault
	return vault.Config{
		Transit:   cfg.BackendType == config.BackendVaultTransit,
		Address:   v.Address,
		Namespace: v.Namespace,
		Auth:      vault.Auth{Method: v.Auth.Method, Token: v.Auth.Token, RoleID: v.Auth.RoleID, SecretID: v.Auth.SecretID},
		MountPath: v.MountPath, KVMount: v.KVMount, KeyPathPrefix: v.KeyPathPrefix,
		CACert: v.CACert, SkipTLSVerify: v.SkipTLSVerify,
		Timeout: time.Duration(cfg.TimeoutSeconds) * time.Second,
		Retries: cfg.RetryAttempts,
	}
}

// HoldsKeys reports whether the backend of cfg stores any key.
func (e Env) HoldsKeys(ctx context.Context, cfg config.Config) (bool, error) {
	switch cfg.BackendType {
	case config.BackendVault, config.BackendVaultTransit:
		return vault.HoldsKeys(ctx, VaultConfig(cfg))
	case config.BackendLocal:
		return local.HoldsKeys(cfg.Local.KeyDir)
	}
	return false, nil
}
