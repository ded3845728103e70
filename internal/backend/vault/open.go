package vault

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/keyring"
)

// DefaultRevalidate is how often cached key state is re-checked against KV
// (the bound on how long another node's state change takes to be seen).
const DefaultRevalidate = 5 * time.Second

// The key index over KV (keyring.Options; docs/vault.md, "Caching and
// several nodes"): the names under the prefix are listed again every
// DefaultIndexRefresh, so a key made or destroyed by another node shows in
// (or leaves) this node's listings within that time; and at most
// indexRevalidateBatch records per refresh (100 a second) whose metadata
// was not confirmed for indexMaxAge are read again, which bounds how long
// another node's change of a key this node does not use takes to show in
// its listings: max(indexMaxAge, keys / 100 s).
const (
	DefaultIndexRefresh  = 5 * time.Second
	indexMaxAge          = time.Minute
	indexRevalidateBatch = 500
	indexLoaders         = 8
)

// Options are what the caller passes besides the configuration.
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
	// IndexRefresh: see DefaultIndexRefresh (used when zero; negative:
	// never).
	IndexRefresh time.Duration
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
	if o.IndexRefresh == 0 {
		o.IndexRefresh = DefaultIndexRefresh
	}
	if o.IndexRefresh < 0 {
		o.IndexRefresh = 0
	}
}

// Backend is an opened Vault backend: the parts a keyring needs, over one
// authenticated Vault connection. Both backends keep their records in KV
// v2, sealed by the record key; vault keeps the material in the records,
// vault-transit in Transit keys.
type Backend struct {
	conn    *conn
	transit bool
	parts   keyring.Options
}

// Open logs in to Vault, checks that the configured mounts are usable,
// creates the record key if it is missing and starts token maintenance.
func Open(ctx context.Context, cfg Config, o Options) (*Backend, error) {
	o.defaults()
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

func open(ctx context.Context, c *conn, cfg Config, o Options) (*Backend, error) {
	kvMount, transitMount := strings.Trim(cfg.KVMount, "/"), strings.Trim(cfg.MountPath, "/")
	if err := c.verifyMount(ctx, "kv_mount", kvMount, "kv", "2"); err != nil {
		return nil, err
	}
	if err := c.verifyMount(ctx, "mount_path", transitMount, "transit", ""); err != nil {
		return nil, err
	}
	sealer := &transitSealer{c: c, mount: transitMount}
	if err := sealer.ensureKEK(ctx); err != nil {
		return nil, err
	}
	kv := newKVStore(c, kvMount, cfg.KeyPathPrefix, sealer, o.Now, o.Log)
	var material keyring.Material = keyring.SealedMaterial{Rand: o.Rand}
	if cfg.Transit {
		material = &transitMaterial{conn: c, mount: transitMount, rand: o.Rand}
		if err := migrateTransit01(ctx, kv, newMarkerStore(c, kvMount, cfg.KeyPathPrefix, sealer, o.Now, o.Log), sealer, o.Log); err != nil {
			return nil, err
		}
	}
	b := &Backend{conn: c, transit: cfg.Transit}
	b.parts = keyring.Options{
		Store:      kvRecords{kv: kv},
		Aliases:    kvRecords{kv: newAliasKVStore(c, kvMount, cfg.KeyPathPrefix, sealer, o.Now, o.Log)},
		Sealer:     sealer,
		Material:   material,
		Now:        o.Now,
		Revalidate: o.Revalidate,
		Health:     c.health,
		Close:      b.Close,

		IndexRefresh:         o.IndexRefresh,
		IndexMaxAge:          indexMaxAge,
		IndexRevalidateBatch: indexRevalidateBatch,
		IndexLoaders:         indexLoaders,
	}
	return b, nil
}

// KeyringOptions returns the keyring's parts for this backend: store,
// sealer, material, clock, revalidation, health and close. The caller
// adds the cache settings.
func (b *Backend) KeyringOptions() keyring.Options { return b.parts }

// Close stops token maintenance and closes idle connections.
func (b *Backend) Close() error {
	b.conn.close()
	return nil
}

// HoldsKeys reports whether any key record lives under the configured KV
// prefix (a tombstone left by a destruction does not count). It logs in
// for the check only.
func HoldsKeys(ctx context.Context, cfg Config) (bool, error) {
	c, _, err := dial(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		return false, err
	}
	defer c.close()
	return newKVStore(c, cfg.KVMount, cfg.KeyPathPrefix, nil, time.Now, slog.New(slog.DiscardHandler)).holdsKeys(ctx)
}
