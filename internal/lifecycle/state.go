package lifecycle

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/kms"
)

// stateFile holds the configuration (with its inline secrets unless
// --no-persist-secrets, hence 0600 in a 0700 data dir) and whether the
// service was running.
const stateFile = "kms-state.json"

const stateFormat = 1

type persisted struct {
	Format  int           `json:"format"`
	Running bool          `json:"running"`
	Config  config.Config `json:"config"` // in its disk form (config.Config.ForDisk)
	// SecretsWithheld names the secrets left out of Config that a
	// restarted process must be given before it can start.
	SecretsWithheld []string `json:"secrets_withheld,omitempty"`
	// NeverStarted marks a configuration (identity) that no start has
	// opened yet: it cannot hold keys this server made or served, so the
	// identity guard lets it be replaced without inspecting its backend.
	// Absent (older state files) means it may have run.
	NeverStarted bool `json:"never_started,omitempty"`
}

func saveState(dataDir string, st persisted) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	defer clear(b)
	if err := fsutil.PublishReplace(dataDir, filepath.Join(dataDir, stateFile), b, 0o600); err != nil {
		return fmt.Errorf("persisting the KMS configuration: %w", err)
	}
	return nil
}

// loadState returns nil when nothing was persisted yet. A state file that
// does not decode or validate is an error: starting NotConfigured would
// hide it.
func loadState(dataDir string) (*persisted, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, stateFile))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer clear(b)
	var st persisted
	if err := json.Unmarshal(b, &st); err != nil || st.Format != stateFormat {
		return nil, fmt.Errorf("%w: %s is not a Keyward state file of format %d", kms.ErrCorrupt, stateFile, stateFormat)
	}
	st.Config.Awaiting = st.SecretsWithheld
	if err := st.Config.Validate(); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	return &st, nil
}
