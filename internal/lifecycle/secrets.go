package lifecycle

// Secrets at rest: how the manager persists a configuration's secrets, reads
// the ones given by reference, and, with NoPersistSecrets, waits after a
// restart for an operator to give the ones withheld from disk, as Vault
// waits to be unsealed.

import (
	"context"
	"errors"
	"fmt"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
)

// save persists cfg in its disk form and whether the service runs.
func (m *Manager) save(cfg config.Config, running bool) error {
	disk, withheld := cfg.ForDisk(m.opts.NoPersistSecrets)
	return saveState(m.opts.DataDir, persisted{Format: stateFormat, Running: running, Config: disk, SecretsWithheld: withheld,
		NeverStarted: m.neverStarted && !running})
}

// prepare applies the server's secret policy to a configuration about to
// be stored or started, and reads its references afresh.
func (m *Manager) prepare(cfg config.Config) (config.Config, error) {
	if l := cfg.Local; m.opts.NoPersistSecrets && l != nil && l.MasterKey == "" && l.MasterKeyFile == "" && l.MasterKeyEnv == "" &&
		len(cfg.Awaiting) == 0 {
		return config.Config{}, fmt.Errorf("%w: this server keeps no secret on disk (--no-persist-secrets), but a local backend without a master key keeps its root key in the data dir: give master_key, master_key_file or master_key_env",
			kms.ErrInvalidRequest)
	}
	return m.opts.Secrets.Resolve(cfg)
}

// restoreSecrets prepares a loaded state for this process: under
// NoPersistSecrets a state file that holds inline secrets (written without
// the flag) is rewritten without them, and references are read so that
// the identity guard compares what they hold. A reference that does not
// resolve now is not fatal: start says why.
func (m *Manager) restoreSecrets(st *persisted) (config.Config, error) {
	cfg := st.Config
	if m.opts.NoPersistSecrets {
		if _, withheld := cfg.ForDisk(true); len(withheld) > len(cfg.Awaiting) {
			if err := m.save(cfg, st.Running); err != nil {
				return config.Config{}, err
			}
			m.opts.Log.Warn("the state file held inline secrets; rewritten without them (--no-persist-secrets): they stay in memory for this process only. " +
				"Their bytes may survive in the file system's free blocks: rotate them if that matters")
		}
	}
	resolved, err := m.opts.Secrets.Resolve(cfg)
	if err != nil {
		m.opts.Log.Warn("a secret reference of the stored configuration does not resolve; start fails until it does", "error", err.Error())
		return cfg, nil
	}
	return resolved, nil
}

// unsealLocked starts the service with the secrets given in a start body.
// Whatever fails — a secret missing or not awaited, a wrong master key
// (the local backend's KDF check value), a Vault credential Vault refuses
// — leaves the service as it was (Configured, still awaiting) and writes
// nothing.
func (m *Manager) unsealLocked(ctx context.Context, given config.Secrets) error {
	cfg, err := m.state.Load().cfg.Supply(given)
	if err != nil {
		return err
	}
	if cfg, err = m.prepare(cfg); err != nil {
		return err
	}
	gen, err := m.build(ctx, cfg)
	if err != nil {
		if errors.Is(err, kms.ErrInvalidRequest) {
			return fmt.Errorf("the secrets given do not open the backend; the service stays Configured and waits for them: %w", err)
		}
		return err
	}
	if err := m.save(cfg, true); err != nil {
		gen.retire()
		return err
	}
	m.publish(gen, cfg)
	m.opts.Log.Info("KMS service started with the secrets given", "backend_type", cfg.BackendType)
	return nil
}
