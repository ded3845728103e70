package vault

import (
	"context"
	"testing"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/kms/kmstest"
	"github.com/keyward/keyward/internal/vaulttest"
)

// TestConformance runs the backend suite on both Vault backends against a
// real Vault dev server: each subtest gets a fresh key_path_prefix, and
// "reopen" is a second Open over the same configuration.
func TestConformance(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	for _, c := range []struct {
		name        string
		backendType string
		cache       bool
	}{
		{"vault", config.BackendVault, true},
		{"vault-nocache", config.BackendVault, false},
		{"vault-transit", config.BackendVaultTransit, true},
		{"vault-transit-nocache", config.BackendVaultTransit, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			mount := s.NewTransitMount() // the variants reuse key ids
			kmstest.Run(t, func(t *testing.T) (kms.Engine, func() kms.Engine) {
				cfg := testConfig(s.Addr, s.Token, c.backendType, freshPrefix())
				cfg.MountPath = mount
				entries := 0
				if c.cache {
					entries = 100
				}
				return openCached(t, cfg, Options{}, entries), func() kms.Engine { return openCached(t, cfg, Options{}, entries) }
			})
		})
	}
}

// TestHoldsKeys: an empty prefix holds nothing, a created key counts, a
// destroyed one does not.
func TestHoldsKeys(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	for _, typ := range []string{config.BackendVault, config.BackendVaultTransit} {
		cfg := testConfig(s.Addr, s.Token, typ, freshPrefix())
		if holds, err := HoldsKeys(ctx, cfg); err != nil || holds {
			t.Fatalf("%s: empty prefix: %v %v", typ, holds, err)
		}
		b := openT(t, cfg, Options{})
		if _, err := b.Create(ctx, testMeta("k")); err != nil {
			t.Fatal(err)
		}
		if holds, err := HoldsKeys(ctx, cfg); err != nil || !holds {
			t.Fatalf("%s: with a key: %v %v", typ, holds, err)
		}
		if err := b.Destroy(ctx, "k", nil); err != nil {
			t.Fatal(err)
		}
		if holds, err := HoldsKeys(ctx, cfg); err != nil || holds {
			t.Fatalf("%s: after destroy: %v %v", typ, holds, err)
		}
	}
}
