// Package lifecycle runs the KMS service state machine of docs/api.md,
// "Service lifecycle": NotConfigured → Configured → Running (and Error),
// the configuration persisted in the data dir, hot swaps on reconfigure,
// and the background sweeper of each running generation.
//
// Lifecycle operations are serialized by one mutex; the running service is
// published through an atomic pointer so the request path never takes that
// mutex. A replaced service keeps serving the requests that already hold it
// and is closed (its cached material wiped) when the last one finishes.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/metrics"
)

// Status names (as docs/api.md spells them).
const (
	StatusNotConfigured = "NotConfigured"
	StatusConfigured    = "Configured"
	StatusRunning       = "Running"
	StatusError         = "Error"
)

// Backends opens backends for configurations; main wires the real ones
// (internal/backend).
type Backends interface {
	// Open builds the engine for cfg, and the backend's own metrics (nil:
	// none). It must not create keys.
	Open(ctx context.Context, cfg config.Config) (kms.Engine, prometheus.Collector, error)
	// HoldsKeys reports whether the backend described by cfg stores any key
	// (used to refuse a reconfiguration that would strand them).
	HoldsKeys(ctx context.Context, cfg config.Config) (bool, error)
}

// Options configure a Manager.
type Options struct {
	DataDir  string
	Backends Backends
	Now      func() time.Time
	Rand     io.Reader
	Log      *slog.Logger
	// Day is the length of a deletion-window day (24h unless testing).
	Day time.Duration
	// SweepInterval is how often a running service sweeps due deletions.
	SweepInterval          time.Duration
	AllowImmediateDeletion bool
	// Metrics, if set, instruments every backend and counts sweeps.
	Metrics *metrics.Metrics
	// Secrets reads the secrets a configuration gives by reference (nil:
	// references are refused).
	Secrets *config.SecretResolver
	// NoPersistSecrets keeps inline secrets out of the state file: they
	// live in memory only, and a restarted process waits for them
	// (secrets.go).
	NoPersistSecrets bool
}

// Manager owns the service state.
type Manager struct {
	opts Options
	mu   sync.Mutex // serializes lifecycle operations

	// state is read lock-free by status calls and the request path.
	state   atomic.Pointer[snapshot]
	current atomic.Pointer[generation]

	// stopRetry cancels the background start retries after a boot whose
	// backend was unreachable (guarded by mu).
	stopRetry context.CancelFunc

	// neverStarted: the stored configuration's identity has not been
	// opened by a start since it was stored (guarded by mu; persisted as
	// persisted.NeverStarted). See guardLocked.
	neverStarted bool
}

// Boot retry backoff: a service that was running when the process stopped
// is started again once its backend (Vault) comes back.
const (
	bootRetryFirst = time.Second
	bootRetryMax   = 30 * time.Second
)

type snapshot struct {
	status   string
	errorMsg string
	cfg      *config.Config // nil when not configured
}

// New returns a Manager in NotConfigured; call Restore to load the
// persisted state.
func New(o Options) *Manager {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	m := &Manager{opts: o}
	m.state.Store(&snapshot{status: StatusNotConfigured})
	return m
}

// Restore loads the persisted configuration and, if the service was running
// when the process stopped, starts it again. A failed start is not fatal:
// the status shows the error and an operator can fix the configuration.
func (m *Manager) Restore(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	st, err := loadState(m.opts.DataDir)
	if err != nil || st == nil {
		return err
	}
	cfg, err := m.restoreSecrets(st)
	if err != nil {
		return err
	}
	m.neverStarted = st.NeverStarted
	m.state.Store(&snapshot{status: StatusConfigured, cfg: &cfg})
	if len(cfg.Awaiting) > 0 {
		m.opts.Log.Warn("the KMS service waits for secrets withheld from disk (--no-persist-secrets): give them with POST /kms/start (keyward kms start --master-key -, --token -, --secret-id -); key routes answer 503 until then",
			"secrets_required", cfg.Awaiting, "was_running", st.Running)
		return nil
	}
	if st.Running {
		if err := m.startLocked(ctx); err != nil {
			m.opts.Log.Error("restoring the running KMS service failed", "error", err.Error())
			if errors.Is(err, kms.ErrUnavailable) {
				m.retryStartLocked()
			}
		}
	}
	return nil
}

// retryStartLocked keeps trying to start the configured service in the
// background, with backoff, until it starts or an operator changes the
// lifecycle (configure, reconfigure, start, stop) or the process shuts down.
func (m *Manager) retryStartLocked() {
	ctx, cancel := context.WithCancel(context.Background())
	m.stopRetry = cancel
	go func() {
		delay := bootRetryFirst
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(delay):
			}
			delay = min(2*delay, bootRetryMax)
			m.mu.Lock()
			if ctx.Err() != nil || m.current.Load() != nil {
				m.mu.Unlock()
				return
			}
			err := m.startLocked(ctx)
			m.mu.Unlock()
			if err == nil {
				m.opts.Log.Info("KMS service started after its backend became reachable")
				return
			}
			if !errors.Is(err, kms.ErrUnavailable) {
				m.opts.Log.Error("giving up restarting the KMS service", "error", err.Error())
				return
			}
		}
	}()
}

// cancelRetryLocked stops background start retries: an operator action
// takes over.
func (m *Manager) cancelRetryLocked() {
	if m.stopRetry != nil {
		m.stopRetry()
		m.stopRetry = nil
	}
}

// Configure validates and stores a full configuration; it does not start.
func (m *Manager) Configure(ctx context.Context, req *config.Request) error {
	cfg, err := req.Build(m.opts.DataDir)
	if err != nil {
		return err
	}
	if cfg, err = m.prepare(cfg); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelRetryLocked()
	if m.current.Load() != nil {
		return fmt.Errorf("%w: the KMS service is running; use reconfigure to change it", kms.ErrConflict)
	}
	if err := m.guardLocked(ctx, cfg); err != nil {
		return err
	}
	m.noteIdentityLocked(cfg)
	if err := m.save(cfg, false); err != nil {
		return err
	}
	m.state.Store(&snapshot{status: StatusConfigured, cfg: &cfg})
	m.opts.Log.Info("KMS configured", "backend_type", cfg.BackendType)
	return nil
}

// Reconfigure merges the fields present onto the stored configuration. A
// running service is rebuilt, health-checked and swapped in; if that fails
// the old one keeps serving and nothing changes.
func (m *Manager) Reconfigure(ctx context.Context, req *config.Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelRetryLocked()
	snap := m.state.Load()
	var cfg config.Config
	var err error
	if snap.cfg == nil {
		cfg, err = req.Build(m.opts.DataDir)
	} else {
		cfg, err = req.Merge(*snap.cfg, m.opts.DataDir)
	}
	if err != nil {
		return err
	}
	if cfg, err = m.prepare(cfg); err != nil {
		return err
	}
	if err := m.guardLocked(ctx, cfg); err != nil {
		return err
	}
	old := m.current.Load()
	if old == nil {
		m.noteIdentityLocked(cfg)
		if err := m.save(cfg, false); err != nil {
			return err
		}
		m.state.Store(&snapshot{status: StatusConfigured, cfg: &cfg})
		return nil
	}
	gen, err := m.build(ctx, cfg)
	if err != nil {
		return err
	}
	if err := m.save(cfg, true); err != nil {
		gen.retire()
		return err
	}
	m.publish(gen, cfg)
	old.retire()
	m.opts.Log.Info("KMS reconfigured", "backend_type", cfg.BackendType)
	return nil
}

// guardLocked refuses a new configuration that would strand existing keys:
// another backend type, or another place or key-encryption key for the
// same type, while the stored backend holds keys. Credentials (a Vault
// token, an AppRole secret) and cache settings may change freely.
//
// A stored configuration that no start has opened cannot hold keys this
// server made or served, so it is replaced without looking: otherwise an
// operator who stored an unusable one (Vault unreachable, a bad ca_cert)
// could never leave it. One that has run but cannot be inspected now is
// kept: the error says why, and fixing it (same identity) or reaching it
// again is the way out.
func (m *Manager) guardLocked(ctx context.Context, next config.Config) error {
	prev := m.state.Load().cfg
	if prev == nil || m.neverStarted || config.SameKeys(*prev, next) {
		return nil
	}
	if len(prev.Awaiting) > 0 {
		// Without its secrets the stored backend cannot be inspected (nor
		// can a master key given here be checked against it).
		return fmt.Errorf("%w: the KMS service waits for secrets withheld from disk (%s): give them with start before changing the backend type, where the keys live or what seals them",
			kms.ErrConflict, strings.Join(prev.Awaiting, ", "))
	}
	holds, err := m.opts.Backends.HoldsKeys(ctx, *prev)
	if err != nil {
		return fmt.Errorf("cannot check whether the configured %s backend holds keys, so it is kept (fix it with reconfigure, or make it reachable): %w", prev.BackendType, err)
	}
	if holds {
		return fmt.Errorf("%w: the configured backend holds keys; changing the backend type, where the keys live or what seals them would strand them", kms.ErrConflict)
	}
	return nil
}

// Start starts the configured backend.
func (m *Manager) Start(ctx context.Context) error { return m.StartWith(ctx, config.Secrets{}) }

// StartWith starts the configured backend with the secrets it awaits
// (--no-persist-secrets after a restart; see unsealLocked). With no secret
// given and none awaited it is Start.
func (m *Manager) StartWith(ctx context.Context, given config.Secrets) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelRetryLocked()
	if m.current.Load() != nil {
		return fmt.Errorf("%w: the KMS service is already running", kms.ErrConflict)
	}
	cfg := m.state.Load().cfg
	if cfg == nil {
		return fmt.Errorf("%w: the KMS service is not configured", kms.ErrConflict)
	}
	if given.Empty() && len(cfg.Awaiting) == 0 {
		return m.startLocked(ctx)
	}
	return m.unsealLocked(ctx, given)
}

func (m *Manager) startLocked(ctx context.Context) error {
	cfg := *m.state.Load().cfg
	if len(cfg.Awaiting) > 0 {
		_, err := cfg.Supply(config.Secrets{}) // says which secrets to give
		return err
	}
	fail := func(err error) error {
		m.state.Store(&snapshot{status: StatusError, errorMsg: publicMessage(err), cfg: &cfg})
		return err
	}
	// References are read again at every start: a rotated file or
	// variable takes effect.
	run, err := m.prepare(cfg)
	if err != nil {
		return fail(err)
	}
	gen, err := m.build(ctx, run)
	if err != nil {
		return fail(err)
	}
	cfg = run
	if err := m.save(cfg, true); err != nil {
		gen.retire()
		return err
	}
	m.publish(gen, cfg)
	m.opts.Log.Info("KMS service started", "backend_type", cfg.BackendType)
	return nil
}

// Stop stops the running service; the configuration is kept.
func (m *Manager) Stop(ctx context.Context) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelRetryLocked()
	snap := m.state.Load()
	if snap.cfg == nil {
		return nil
	}
	if err := m.save(*snap.cfg, false); err != nil {
		return err
	}
	if g := m.current.Swap(nil); g != nil {
		g.retire()
		m.opts.Log.Info("KMS service stopped")
	}
	m.state.Store(&snapshot{status: StatusConfigured, cfg: snap.cfg})
	return nil
}

// Shutdown stops the service without changing the persisted state, so it
// starts again on the next boot.
func (m *Manager) Shutdown() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cancelRetryLocked()
	if g := m.current.Swap(nil); g != nil {
		g.retire()
	}
}

// build opens a backend, checks its health, makes sure the default key
// exists, and starts the generation's sweeper.
func (m *Manager) build(ctx context.Context, cfg config.Config) (*generation, error) {
	engine, collector, err := m.opts.Backends.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	engine = metrics.InstrumentEngine(engine, cfg.BackendType, m.opts.Metrics)
	if err := engine.Health(ctx); err != nil {
		engine.Close()
		return nil, fmt.Errorf("backend health check failed: %w", err)
	}
	svc := kms.NewService(engine, kms.Options{
		Now: m.opts.Now, Rand: m.opts.Rand, DefaultKeyID: cfg.DefaultKeyID,
		AllowImmediateDeletion: m.opts.AllowImmediateDeletion, Day: m.opts.Day, Log: m.opts.Log,
	})
	if cfg.DefaultKeyID != "" {
		if err := svc.EnsureKey(ctx, cfg.DefaultKeyID, "default key"); err != nil {
			engine.Close()
			return nil, fmt.Errorf("creating the default key: %w", err)
		}
	}
	gen := &generation{svc: svc, collector: collector}
	gen.releaseFunc = gen.release
	gen.startSweeper(m.opts.SweepInterval, m.opts.Log, m.opts.Metrics)
	return gen, nil
}

// noteIdentityLocked records, before cfg is stored while not running,
// whether it is a new identity (never started) or the stored one again.
func (m *Manager) noteIdentityLocked(cfg config.Config) {
	prev := m.state.Load().cfg
	if prev == nil || !config.SameKeys(*prev, cfg) {
		m.neverStarted = true
	}
}

func (m *Manager) publish(gen *generation, cfg config.Config) {
	m.neverStarted = false
	m.current.Store(gen)
	m.state.Store(&snapshot{status: StatusRunning, cfg: &cfg})
}

// Acquire returns the running service and a release function the caller
// must call when done. Not running: an error wrapping kms.ErrUnavailable.
func (m *Manager) Acquire() (*kms.Service, func(), error) {
	for {
		g := m.current.Load()
		if g == nil {
			return nil, nil, fmt.Errorf("%w: the KMS service is not running", kms.ErrUnavailable)
		}
		g.refs.Add(1)
		if m.current.Load() == g {
			return g.svc, g.releaseFunc, nil
		}
		g.release() // swapped meanwhile: take the new one
	}
}

// Collector returns the running backend's own metrics collector (nil when
// it has none or the service is not running).
func (m *Manager) Collector() prometheus.Collector {
	if g := m.current.Load(); g != nil {
		return g.collector
	}
	return nil
}

// Status is a point-in-time view of the service.
type Status struct {
	Status   string
	ErrorMsg string
	Config   *config.Config // nil when not configured
	// Healthy is set only while running.
	Healthy *bool
	// SecretsRequired names the secrets withheld from disk that start
	// must be given (config.SecretMasterKey, ...); empty otherwise.
	SecretsRequired []string
}

// State returns the status name and the configuration (nil when not
// configured) without contacting the backend.
func (m *Manager) State() (string, *config.Config) {
	snap := m.state.Load()
	return snap.status, snap.cfg
}

// Status returns the state; while running it checks backend health
// (bounded by ctx).
func (m *Manager) Status(ctx context.Context) Status {
	snap := m.state.Load()
	st := Status{Status: snap.status, ErrorMsg: snap.errorMsg, Config: snap.cfg}
	if snap.cfg != nil {
		st.SecretsRequired = slices.Clone(snap.cfg.Awaiting)
	}
	if svc, release, err := m.Acquire(); err == nil {
		healthy := svc.Engine().Health(ctx) == nil
		release()
		st.Healthy = &healthy
	}
	return st
}

// Ready reports whether the service runs and its backend answers.
func (m *Manager) Ready(ctx context.Context) error {
	svc, release, err := m.Acquire()
	if err != nil {
		return err
	}
	defer release()
	return svc.Engine().Health(ctx)
}

// ClearCache drops every cached key and metadata entry of the running
// service.
func (m *Manager) ClearCache() error {
	svc, release, err := m.Acquire()
	if err != nil {
		return err
	}
	defer release()
	svc.Engine().ClearCache()
	return nil
}

// publicMessage is the text of an error safe to show in a status: domain
// errors say what went wrong; anything else is summarized.
func publicMessage(err error) string {
	for _, e := range []error{kms.ErrInvalidRequest, kms.ErrConflict, kms.ErrUnavailable, kms.ErrCorrupt, kms.ErrNotImplemented} {
		if errors.Is(err, e) {
			return err.Error()
		}
	}
	return "the backend could not be started (details in the server log)"
}
