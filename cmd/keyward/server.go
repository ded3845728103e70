package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"syscall"
	"time"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/backend"
	"github.com/keyward/keyward/internal/certs"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/gctune"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/iam"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/netlimit"
	"github.com/keyward/keyward/internal/sigv4"
)

// maxClockSkew is how far a request's X-Amz-Date may be from the server's.
const maxClockSkew = 15 * time.Minute

// devDefaultKeyID is the default key --dev creates.
const devDefaultKeyID = "keyward-default"

// serverGCPercent is the GOGC the server (and the bench ceiling) run with
// unless GOGC is set: the hot path allocates short-lived request garbage
// over a small live heap (a few MB), and collecting at 5x instead of 2x
// the live heap cuts the GC's share of CPU (docs/PERFORMANCE.md). As the
// live heap grows past 16 MiB (the key index of many keys) the server
// lowers it towards 100, for at most 64 MiB of garbage (internal/gctune).
const serverGCPercent = 400

// runServer is keyward server: load the settings, build the parts, serve.
func runServer(args, environ []string, stdout, stderr io.Writer) error {
	settings, err := loadServer(args, parseEnv(environ), stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	srv, err := buildServer(settings)
	if err != nil {
		return err
	}
	defer srv.close()
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if _, set := settings.env.lookup("GOGC"); !set {
		// serverGCPercent while the live heap is small, less as the key
		// index makes it grow.
		go gctune.Run(ctx, gctune.Settings{Max: serverGCPercent, Min: 100, Headroom: gctune.Defaults.Headroom, Every: gctune.Defaults.Every})
	}
	return srv.serve(ctx, stdout)
}

// serverSettings is everything the server reads from its command line and
// environment, checked.
type serverSettings struct {
	flags                serverFlags
	env                  environment
	log                  *slog.Logger
	dataDir              string
	rootUser, rootSecret string
	secrets              *config.SecretResolver
	// day is the length of a deletion-window day; sweep how often the
	// sweeper runs (KEYWARD_TEST_DAY_SECONDS shortens both).
	day, sweep time.Duration
}

// loadServer reads and checks the flags, the environment and the data dir.
func loadServer(args []string, env environment, stderr io.Writer) (*serverSettings, error) {
	f, err := parseServerFlags(args, env, stderr)
	if err != nil {
		return nil, err
	}
	s := &serverSettings{flags: f, env: env, day: 24 * time.Hour, sweep: time.Minute}
	s.log = slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel(env)}))
	if _, set := env.lookup("GOGC"); !set {
		debug.SetGCPercent(serverGCPercent)
	}
	if err := s.loadRoot(); err != nil {
		return nil, err
	}
	if s.dataDir, err = filepath.Abs(f.dataDir); err != nil {
		return nil, err
	}
	if _, err := fsutil.SecureDir(s.dataDir); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	if s.secrets, err = secretResolver(f.secretsDir, s.dataDir, env); err != nil {
		return nil, err
	}
	return s, s.loadTestDay()
}

// loadRoot reads the root credentials (generated with --dev when unset).
func (s *serverSettings) loadRoot() error {
	s.rootUser, s.rootSecret = s.env.get("KEYWARD_ROOT_USER"), s.env.get("KEYWARD_ROOT_PASSWORD")
	if s.rootUser == "" || s.rootSecret == "" {
		if !s.flags.dev {
			return errors.New("KEYWARD_ROOT_USER and KEYWARD_ROOT_PASSWORD must be set (or run with --dev)")
		}
		var err error
		if s.rootUser, s.rootSecret, err = devCredentials(); err != nil {
			return err
		}
	}
	if len(s.rootSecret) < 8 {
		return errors.New("KEYWARD_ROOT_PASSWORD must be at least 8 characters")
	}
	return nil
}

// loadTestDay reads KEYWARD_TEST_DAY_SECONDS, for tests and drills.
func (s *serverSettings) loadTestDay() error {
	v := s.env.get("KEYWARD_TEST_DAY_SECONDS")
	if v == "" {
		return nil
	}
	secs, err := strconv.ParseFloat(v, 64)
	if err != nil || secs < 0.001 || secs > 86400 {
		return fmt.Errorf("KEYWARD_TEST_DAY_SECONDS must be a number of seconds between 0.001 and 86400, got %q", v)
	}
	s.day = time.Duration(secs * float64(time.Second))
	// At least once a second, and often enough for a day of a few
	// milliseconds (automatic rotation tests use 90 such days).
	s.sweep = min(time.Second, max(s.day/10, 10*time.Millisecond))
	s.log.Warn("KEYWARD_TEST_DAY_SECONDS is set: a deletion-window day lasts only this many seconds; keys scheduled for deletion are destroyed far sooner than their window says. Never use this in production.", "day_seconds", secs)
	return nil
}

// server is a built server, not yet serving.
type server struct {
	*serverSettings
	identities *iam.Store
	audit      *audit.Logger
	mgr        *lifecycle.Manager
	http       *http.Server
	ln         net.Listener
	limit      *netlimit.Listener
	scheme     string
	tlsCerts   *certs.Reloader
}

// buildServer makes every part: identities, the audit log, metrics, the
// lifecycle manager, the API and the listener.
func buildServer(s *serverSettings) (*server, error) {
	srv := &server{serverSettings: s, scheme: "http"}
	srv.identities = iam.New(s.rootUser, s.rootSecret, s.log)
	if err := srv.identities.SetAWSAccountID(s.flags.awsAccountID); err != nil {
		return nil, fmt.Errorf("--aws-account-id: %w", err)
	}
	if s.flags.iamFile != "" {
		if err := srv.identities.LoadFile(s.flags.iamFile, s.env.get); err != nil {
			return nil, fmt.Errorf("--iam-file: %w", err)
		}
	}
	var err error
	if s.flags.auditLog != "" {
		if srv.audit, err = audit.Open(s.flags.auditLog, 0, s.log); err != nil {
			return nil, fmt.Errorf("--audit-log: %w", err)
		}
	}
	met := metrics.New()
	srv.mgr = lifecycle.New(lifecycle.Options{
		DataDir:                s.dataDir,
		Backends:               backend.Env{DataDir: s.dataDir, Rand: rand.Reader, Now: time.Now, Log: s.log},
		Now:                    time.Now,
		Rand:                   rand.Reader,
		Log:                    s.log,
		Day:                    s.day,
		SweepInterval:          s.sweep,
		AllowImmediateDeletion: s.flags.allowImmediateDeletion,
		Metrics:                met,
		Secrets:                s.secrets,
		NoPersistSecrets:       s.flags.noPersistSecrets,
	})
	met.SetSource(metrics.ServiceSource(srv.mgr.Acquire, srv.mgr.Collector))
	if srv.http, err = srv.newHTTPServer(met); err != nil {
		srv.close()
		return nil, err
	}
	if err := srv.listen(); err != nil {
		srv.close()
		return nil, err
	}
	return srv, nil
}

// newHTTPServer makes the admin API and the net/http server around it.
func (srv *server) newHTTPServer(met *metrics.Metrics) (*http.Server, error) {
	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return nil, err
	}
	f := srv.flags
	var kes *httpapi.KESOptions
	if f.kesAPI {
		kes = &httpapi.KESOptions{Identities: srv.identities, Version: version, Started: time.Now(), PageSize: f.kesPageSize}
	}
	api := httpapi.New(httpapi.Options{
		Manager:                  srv.mgr,
		Authenticator:            sigv4.New(srv.identities, time.Now, maxClockSkew, sigv4.WithUnsignedPayload(f.allowUnsignedPayload)),
		Authorizer:               srv.identities,
		Log:                      srv.log,
		RequestIDSeed:            binary.BigEndian.Uint64(seed[:]),
		Audit:                    srv.audit,
		Metrics:                  met,
		MetricsAuth:              f.metricsAuth,
		UnauthenticatedBodyBytes: int64(f.maxBodyMemoryMiB) << 20,
		AWSAccountID:             f.awsAccountID,
		KES:                      kes,
	})
	return &http.Server{
		Handler:           withConsole(api, f.console),
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(srv.log.Handler(), slog.LevelWarn),
		ConnState: func(c net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				met.ConnOpened()
			case http.StateClosed, http.StateHijacked:
				met.ConnClosed()
			}
			srv.limit.SetState(c, state) // idle connections make room for new ones
		},
	}, nil
}

// listen opens the listener: at --max-connections, a new client takes
// the slot of the oldest idle keep-alive connection, or waits while every
// open one is busy (before TLS: a handshake is work too).
func (srv *server) listen() error {
	tcp, err := net.Listen("tcp", srv.flags.address)
	if err != nil {
		return err
	}
	srv.limit = netlimit.New(tcp, srv.flags.maxConnections)
	srv.ln = srv.limit
	if srv.flags.tlsCert != "" {
		if srv.tlsCerts, err = certs.New(srv.flags.tlsCert, srv.flags.tlsKey); err != nil {
			srv.ln.Close()
			return err
		}
		srv.http.TLSConfig = srv.tlsCerts.Config()
		if srv.flags.kesAPI {
			// KES clients authenticate with a certificate; SigV4 clients
			// send none. Asked for, never required, and not verified
			// against a CA: its public key's hash is pinned in the IAM
			// file (docs/kes-api.md).
			srv.http.TLSConfig.ClientAuth = tls.RequestClientCert
		}
		srv.ln = tls.NewListener(srv.ln, srv.http.TLSConfig)
		srv.scheme = "https"
	}
	return nil
}

// serve restores the KMS state, serves until ctx is done, then drains
// in-flight requests.
func (srv *server) serve(ctx context.Context, stdout io.Writer) error {
	f, log := srv.flags, srv.log
	if f.iamFile != "" {
		iamHup := make(chan os.Signal, 1)
		signal.Notify(iamHup, syscall.SIGHUP)
		defer signal.Stop(iamHup)
		go srv.identities.Watch(ctx, f.iamFile, srv.env.get, 2*time.Second, iamHup)
	}
	if err := srv.mgr.Restore(ctx); err != nil {
		return fmt.Errorf("restoring the KMS state: %w", err)
	}
	defer srv.mgr.Shutdown()
	if f.dev {
		if err := startDev(ctx, srv.mgr); err != nil {
			return fmt.Errorf("--dev: %w", err)
		}
		fmt.Fprintf(stdout, "\nKeyward dev server on %s://%s\n  access key: %s\n  secret key: %s\n  default key: %s\n  data dir:   %s\n",
			srv.scheme, srv.ln.Addr(), srv.rootUser, srv.rootSecret, devDefaultKeyID, srv.dataDir)
		if f.console {
			fmt.Fprintf(stdout, "  console:    %s://%s/console/\n", srv.scheme, srv.ln.Addr())
		}
		fmt.Fprintln(stdout)
	}
	srv.warnings()
	stopHUP := srv.reloadOnHUP()
	defer stopHUP()
	srv.startProfiler()
	errc := make(chan error, 1)
	go func() { errc <- srv.http.Serve(srv.ln) }()
	status, _ := srv.mgr.State()
	log.Info("keyward ready", "address", srv.ln.Addr().String(), "scheme", srv.scheme, "version", version, "status", status, "data_dir", srv.dataDir)
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.http.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("keyward stopped")
	return nil
}

// warnings logs the settings that weaken a default.
func (srv *server) warnings() {
	if srv.flags.noPersistSecrets {
		srv.log.Info("inline secrets are kept in memory only (--no-persist-secrets): after a restart the KMS service waits for them in kms start")
	}
	if srv.flags.allowUnsignedPayload {
		srv.log.Warn("--allow-unsigned-payload is set: requests signed with UNSIGNED-PAYLOAD and presigned URLs are accepted with a body, which their signature does not cover; anyone who sees such a request can replay it with another body while it is valid (15 minutes, or a presigned URL's lifetime)")
	}
}

// reloadOnHUP reopens the audit log and reloads the TLS certificate on
// SIGHUP (the IAM file has its own watcher). It returns the stop function.
func (srv *server) reloadOnHUP() func() {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			if err := srv.audit.Reopen(); err != nil {
				srv.log.Error("reopening the audit log failed", "error", err.Error())
			}
			if srv.tlsCerts == nil {
				continue
			}
			if err := srv.tlsCerts.Reload(); err != nil {
				srv.log.Error("TLS certificate reload failed; the previous certificate stays in use", "error", err.Error())
			} else {
				srv.log.Info("TLS certificate reloaded")
			}
		}
	}()
	return func() { signal.Stop(hup); close(hup) }
}

// startProfiler serves Go's profiler on KEYWARD_PPROF_ADDR (a separate,
// loopback listener for performance work; off unless set).
func (srv *server) startProfiler() {
	addr := srv.env.get("KEYWARD_PPROF_ADDR")
	if addr == "" {
		return
	}
	go func() {
		mux := http.NewServeMux()
		mux.HandleFunc("/debug/pprof/", pprof.Index)
		mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
		srv.log.Warn("profiler listening", "address", addr, "error", fmt.Sprint(http.ListenAndServe(addr, mux)))
	}()
}

// close releases what build made; the audit log is closed after the HTTP
// server has drained, so nothing queued is lost.
func (srv *server) close() {
	if srv.audit != nil {
		srv.audit.Close()
	}
}

// startDev configures a local backend in the data dir (unless a
// configuration exists) and starts it.
func startDev(ctx context.Context, mgr *lifecycle.Manager) error {
	switch status, _ := mgr.State(); status {
	case lifecycle.StatusRunning:
		return nil
	case lifecycle.StatusNotConfigured:
		backendType, defaultKey := config.BackendLocal, devDefaultKeyID
		if err := mgr.Configure(ctx, &config.Request{BackendType: &backendType, DefaultKeyID: &defaultKey}); err != nil {
			return err
		}
	}
	return mgr.Start(ctx)
}

// secretResolver confines secret references to --secrets-dir (which must
// be an existing directory) and to the server's environment. The secrets
// dir may not hold the data dir: a configure caller could otherwise name
// the state file or the local root key as a "secret" and send it to a
// Vault address of its choosing.
func secretResolver(dir, dataDir string, env environment) (*config.SecretResolver, error) {
	if dir != "" {
		abs, err := filepath.Abs(dir)
		if err != nil {
			return nil, fmt.Errorf("--secrets-dir: %w", err)
		}
		fi, err := os.Stat(abs)
		if err != nil {
			return nil, fmt.Errorf("--secrets-dir: %w", err)
		}
		if !fi.IsDir() {
			return nil, fmt.Errorf("--secrets-dir: %s is not a directory", abs)
		}
		realDir, err1 := filepath.EvalSymlinks(abs)
		realData, err2 := filepath.EvalSymlinks(dataDir)
		if err := errors.Join(err1, err2); err != nil {
			return nil, fmt.Errorf("--secrets-dir: %w", err)
		}
		if rel, err := filepath.Rel(realDir, realData); err == nil && filepath.IsLocal(rel) {
			return nil, fmt.Errorf("--secrets-dir %s holds the data dir %s: name a directory that holds only the secrets meant for Keyward", abs, dataDir)
		}
		dir = abs
	}
	return &config.SecretResolver{Dir: dir, LookupEnv: env.lookup}, nil
}

// devCredentials makes a random root credential pair for --dev.
func devCredentials() (string, string, error) {
	var b [28]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	return "keyward-dev-" + hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:]), nil
}

func logLevel(env environment) slog.Level {
	var l slog.Level
	if v := env.get("KEYWARD_LOG_LEVEL"); v != "" && l.UnmarshalText([]byte(v)) == nil {
		return l
	}
	return slog.LevelInfo
}
