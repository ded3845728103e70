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
	"strings"
	"syscall"
	"time"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/backend"
	"github.com/keyward/keyward/internal/certs"
	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/iam"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/netlimit"
	"github.com/keyward/keyward/internal/sigv4"
)

// serverFlags are the flags of SPEC.md section 1; each can also come from
// KEYWARD_<FLAG> (dashes as underscores). A flag on the command line wins.
type serverFlags struct {
	address                string
	dataDir                string
	tlsCert, tlsKey        string
	allowImmediateDeletion bool
	dev                    bool
	iamFile                string
	auditLog               string
	metricsAuth            bool
	allowUnsignedPayload   bool
	maxConnections         int
	maxBodyMemoryMiB       int
	secretsDir             string
	noPersistSecrets       bool
}

// Defaults of the bounds on work done for callers not yet authenticated.
const (
	// defaultMaxConnections is far above what a KMS's clients need at
	// once (they keep a few pooled connections each), and keeps the memory
	// and goroutines of open connections bounded (each holds buffers of a
	// few KB plus up to 64 KB of headers while they are read).
	defaultMaxConnections = 1024
	// defaultMaxBodyMemoryMiB: see httpapi.DefaultUnauthenticatedBodyBytes.
	defaultMaxBodyMemoryMiB = httpapi.DefaultUnauthenticatedBodyBytes >> 20
)

// maxClockSkew is how far a request's X-Amz-Date may be from the server's.
const maxClockSkew = 15 * time.Minute

// devDefaultKeyID is the default key --dev creates.
const devDefaultKeyID = "keyward-default"

// serverGCPercent is the GOGC the server (and the bench ceiling) run with
// unless GOGC is set; see runServer.
const serverGCPercent = 400

func parseServerFlags(args, env []string, stderr io.Writer) (serverFlags, error) {
	envMap := map[string]string{}
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			envMap[k] = v
		}
	}
	fromEnv := func(name, def string) string {
		if v, ok := envMap["KEYWARD_"+strings.ToUpper(strings.ReplaceAll(name, "-", "_"))]; ok {
			return v
		}
		return def
	}
	boolEnv := func(name string) (bool, error) {
		v := fromEnv(name, "")
		if v == "" {
			return false, nil
		}
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, fmt.Errorf("KEYWARD_%s: not a boolean: %q", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), v)
		}
		return b, nil
	}
	var f serverFlags
	allow, err := boolEnv("allow-immediate-deletion")
	if err != nil {
		return f, err
	}
	dev, err := boolEnv("dev")
	if err != nil {
		return f, err
	}
	noPersist, err := boolEnv("no-persist-secrets")
	if err != nil {
		return f, err
	}
	metricsAuth := true
	if v := fromEnv("metrics-auth", ""); v != "" {
		if metricsAuth, err = strconv.ParseBool(v); err != nil {
			return f, fmt.Errorf("KEYWARD_METRICS_AUTH: not a boolean: %q", v)
		}
	}
	allowUnsigned, err := boolEnv("allow-unsigned-payload")
	if err != nil {
		return f, err
	}
	intEnv := func(name string, def int) (int, error) {
		v := fromEnv(name, "")
		if v == "" {
			return def, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, fmt.Errorf("KEYWARD_%s: not an integer: %q", strings.ToUpper(strings.ReplaceAll(name, "-", "_")), v)
		}
		return n, nil
	}
	maxConns, err := intEnv("max-connections", defaultMaxConnections)
	if err != nil {
		return f, err
	}
	maxBodyMiB, err := intEnv("max-body-memory", defaultMaxBodyMemoryMiB)
	if err != nil {
		return f, err
	}
	fs := flag.NewFlagSet("keyward server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.address, "address", fromEnv("address", "127.0.0.1:9000"), "listen address (KEYWARD_ADDRESS)")
	fs.StringVar(&f.dataDir, "data-dir", fromEnv("data-dir", "./keyward-data"), "data directory: configuration and local keys (KEYWARD_DATA_DIR)")
	fs.StringVar(&f.tlsCert, "tls-cert", fromEnv("tls-cert", ""), "TLS certificate file; HTTPS when set with --tls-key (KEYWARD_TLS_CERT)")
	fs.StringVar(&f.tlsKey, "tls-key", fromEnv("tls-key", ""), "TLS private key file (KEYWARD_TLS_KEY)")
	fs.BoolVar(&f.allowImmediateDeletion, "allow-immediate-deletion", allow, "allow force_immediate key destruction (KEYWARD_ALLOW_IMMEDIATE_DELETION)")
	fs.BoolVar(&f.dev, "dev", dev, "start a ready local backend with a default key and print dev credentials (KEYWARD_DEV)")
	fs.StringVar(&f.iamFile, "iam-file", fromEnv("iam-file", ""), "JSON file of users and policies, reloaded on SIGHUP and when it changes (KEYWARD_IAM_FILE)")
	fs.StringVar(&f.auditLog, "audit-log", fromEnv("audit-log", ""), "audit log file, or - for stdout; reopened on SIGHUP (KEYWARD_AUDIT_LOG)")
	fs.BoolVar(&f.metricsAuth, "metrics-auth", metricsAuth, "require a signed request with kms:ServiceControl for /metrics (KEYWARD_METRICS_AUTH)")
	fs.BoolVar(&f.allowUnsignedPayload, "allow-unsigned-payload", allowUnsigned, "RISK: accept UNSIGNED-PAYLOAD and presigned URLs for requests with a body; such a request can be replayed with another body while its signature is valid (KEYWARD_ALLOW_UNSIGNED_PAYLOAD)")
	fs.IntVar(&f.maxConnections, "max-connections", maxConns, "client connections held open at once; more wait to be accepted (KEYWARD_MAX_CONNECTIONS)")
	fs.IntVar(&f.maxBodyMemoryMiB, "max-body-memory", maxBodyMiB, "MiB of request bodies read before their sender is authenticated (requests without x-amz-content-sha256); past it such requests get 503 (KEYWARD_MAX_BODY_MEMORY)")
	fs.StringVar(&f.secretsDir, "secrets-dir", fromEnv("secrets-dir", ""), "the only directory whose files a configuration may name as secrets (master_key_file, token_file, secret_id_file); none: file references are refused (KEYWARD_SECRETS_DIR)")
	fs.BoolVar(&f.noPersistSecrets, "no-persist-secrets", noPersist, "keep inline secrets (master key, Vault token, AppRole secret id) in memory only; after a restart the service waits for them in kms start (KEYWARD_NO_PERSIST_SECRETS)")
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	if (f.tlsCert == "") != (f.tlsKey == "") {
		return f, errors.New("--tls-cert and --tls-key must be given together")
	}
	if f.maxConnections < 1 {
		return f, fmt.Errorf("--max-connections must be at least 1, got %d", f.maxConnections)
	}
	// At least one body at the 1 MiB route limit must fit; at most 1 TiB
	// keeps the byte count far from overflowing.
	if f.maxBodyMemoryMiB < 1 || f.maxBodyMemoryMiB > 1<<20 {
		return f, fmt.Errorf("--max-body-memory must be between 1 and %d MiB, got %d", 1<<20, f.maxBodyMemoryMiB)
	}
	if f.dev && f.noPersistSecrets {
		return f, errors.New("--dev keeps a generated root key in the data dir, which --no-persist-secrets forbids: run one or the other")
	}
	return f, nil
}

func runServer(args, env []string, stdout, stderr io.Writer) error {
	f, err := parseServerFlags(args, env, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: logLevel(env)}))
	// The hot path allocates short-lived request garbage over a small live
	// heap (a few MB): collecting at 5x instead of 2x the live heap cuts
	// the GC's share of CPU (measured in docs/PERFORMANCE.md). GOGC in the
	// environment still wins.
	if !hasEnv(env, "GOGC") {
		debug.SetGCPercent(serverGCPercent)
	}
	getenv := func(k string) string {
		for _, kv := range env {
			if key, v, ok := strings.Cut(kv, "="); ok && key == k {
				return v
			}
		}
		return ""
	}

	rootUser, rootSecret := getenv("KEYWARD_ROOT_USER"), getenv("KEYWARD_ROOT_PASSWORD")
	if rootUser == "" || rootSecret == "" {
		if !f.dev {
			return errors.New("KEYWARD_ROOT_USER and KEYWARD_ROOT_PASSWORD must be set (or run with --dev)")
		}
		if rootUser, rootSecret, err = devCredentials(); err != nil {
			return err
		}
	}
	if len(rootSecret) < 8 {
		return errors.New("KEYWARD_ROOT_PASSWORD must be at least 8 characters")
	}
	identities := iam.New(rootUser, rootSecret, log)
	if f.iamFile != "" {
		if err := identities.LoadFile(f.iamFile, getenv); err != nil {
			return fmt.Errorf("--iam-file: %w", err)
		}
	}

	dataDir, err := filepath.Abs(f.dataDir)
	if err != nil {
		return err
	}
	if _, err := fsutil.SecureDir(dataDir); err != nil {
		return fmt.Errorf("data dir: %w", err)
	}

	secrets, err := secretResolver(f.secretsDir, dataDir, env)
	if err != nil {
		return err
	}
	if f.noPersistSecrets {
		log.Info("inline secrets are kept in memory only (--no-persist-secrets): after a restart the KMS service waits for them in kms start")
	}

	day, sweep := 24*time.Hour, time.Minute
	if v := getenv("KEYWARD_TEST_DAY_SECONDS"); v != "" {
		secs, err := strconv.ParseFloat(v, 64)
		if err != nil || secs < 0.001 || secs > 86400 {
			return fmt.Errorf("KEYWARD_TEST_DAY_SECONDS must be a number of seconds between 0.001 and 86400, got %q", v)
		}
		day = time.Duration(secs * float64(time.Second))
		// At least once a second, and often enough for a day of a few
		// milliseconds (automatic rotation tests use 90 such days).
		sweep = min(time.Second, max(day/10, 10*time.Millisecond))
		log.Warn("KEYWARD_TEST_DAY_SECONDS is set: a deletion-window day lasts only this many seconds; keys scheduled for deletion are destroyed far sooner than their window says. Never use this in production.", "day_seconds", secs)
	}

	var seed [8]byte
	if _, err := rand.Read(seed[:]); err != nil {
		return err
	}
	now := time.Now
	var aud *audit.Logger
	if f.auditLog != "" {
		if aud, err = audit.Open(f.auditLog, 0, log); err != nil {
			return fmt.Errorf("--audit-log: %w", err)
		}
		defer aud.Close() // after the HTTP server has drained: nothing queued is lost
	}
	met := metrics.New()
	mgr := lifecycle.New(lifecycle.Options{
		DataDir:                dataDir,
		Backends:               backend.Env{DataDir: dataDir, Rand: rand.Reader, Now: now, Log: log},
		Now:                    now,
		Rand:                   rand.Reader,
		Log:                    log,
		Day:                    day,
		SweepInterval:          sweep,
		AllowImmediateDeletion: f.allowImmediateDeletion,
		Metrics:                met,
		Secrets:                secrets,
		NoPersistSecrets:       f.noPersistSecrets,
	})
	met.SetSource(metrics.ServiceSource(mgr.Acquire, mgr.Collector))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if f.iamFile != "" {
		iamHup := make(chan os.Signal, 1)
		signal.Notify(iamHup, syscall.SIGHUP)
		defer signal.Stop(iamHup)
		go identities.Watch(ctx, f.iamFile, getenv, 2*time.Second, iamHup)
	}
	if err := mgr.Restore(ctx); err != nil {
		return fmt.Errorf("restoring the KMS state: %w", err)
	}
	defer mgr.Shutdown()
	if f.dev {
		if err := startDev(ctx, mgr); err != nil {
			return fmt.Errorf("--dev: %w", err)
		}
	}

	if f.allowUnsignedPayload {
		log.Warn("--allow-unsigned-payload is set: requests signed with UNSIGNED-PAYLOAD and presigned URLs are accepted with a body, which their signature does not cover; anyone who sees such a request can replay it with another body while it is valid (15 minutes, or a presigned URL's lifetime)")
	}
	api := httpapi.New(httpapi.Options{
		Manager:                  mgr,
		Authenticator:            sigv4.New(identities, now, maxClockSkew, sigv4.WithUnsignedPayload(f.allowUnsignedPayload)),
		Authorizer:               identities,
		Log:                      log,
		RequestIDSeed:            binary.BigEndian.Uint64(seed[:]),
		Audit:                    aud,
		Metrics:                  met,
		MetricsAuth:              f.metricsAuth,
		UnauthenticatedBodyBytes: int64(f.maxBodyMemoryMiB) << 20,
	})
	srv := &http.Server{
		Handler:           api,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       60 * time.Second,
		WriteTimeout:      90 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ConnState: func(_ net.Conn, state http.ConnState) {
			switch state {
			case http.StateNew:
				met.ConnOpened()
			case http.StateClosed, http.StateHijacked:
				met.ConnClosed()
			}
		},
	}
	tcp, err := net.Listen("tcp", f.address)
	if err != nil {
		return err
	}
	// Connections past the bound wait in the listen backlog (before TLS:
	// a handshake is work too).
	var ln net.Listener = netlimit.New(tcp, f.maxConnections)
	scheme := "http"
	var tlsCerts *certs.Reloader
	if f.tlsCert != "" {
		if tlsCerts, err = certs.New(f.tlsCert, f.tlsKey); err != nil {
			ln.Close()
			return err
		}
		srv.TLSConfig = tlsCerts.Config()
		ln = tls.NewListener(ln, srv.TLSConfig)
		scheme = "https"
	}
	// SIGHUP reloads what can change without a restart.
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			if err := aud.Reopen(); err != nil {
				log.Error("reopening the audit log failed", "error", err.Error())
			}
			if tlsCerts != nil {
				if err := tlsCerts.Reload(); err != nil {
					log.Error("TLS certificate reload failed; the previous certificate stays in use", "error", err.Error())
				} else {
					log.Info("TLS certificate reloaded")
				}
			}
		}
	}()
	if f.dev {
		fmt.Fprintf(stdout, "\nKeyward dev server on %s://%s\n  access key: %s\n  secret key: %s\n  default key: %s\n  data dir:   %s\n\n",
			scheme, ln.Addr(), rootUser, rootSecret, devDefaultKeyID, dataDir)
	}

	// KEYWARD_PPROF_ADDR starts Go's profiler on a separate (loopback)
	// listener, for performance work; it is off unless set.
	if addr := getenv("KEYWARD_PPROF_ADDR"); addr != "" {
		go func() {
			mux := http.NewServeMux()
			mux.HandleFunc("/debug/pprof/", pprof.Index)
			mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
			log.Warn("profiler listening", "address", addr, "error", fmt.Sprint(http.ListenAndServe(addr, mux)))
		}()
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	status, _ := mgr.State()
	log.Info("keyward ready", "address", ln.Addr().String(), "scheme", scheme, "version", version, "status", status, "data_dir", dataDir)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down: finishing in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	log.Info("keyward stopped")
	return nil
}

// startDev configures a local backend in the data dir (unless a
// configuration exists) and starts it.
func startDev(ctx context.Context, mgr *lifecycle.Manager) error {
	switch status, _ := mgr.State(); status {
	case lifecycle.StatusRunning:
		return nil
	case lifecycle.StatusNotConfigured:
		body := fmt.Sprintf(`{"backend_type":"local","default_key_id":%q}`, devDefaultKeyID)
		if err := mgr.Configure(ctx, []byte(body)); err != nil {
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
func secretResolver(dir, dataDir string, env []string) (*config.SecretResolver, error) {
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
	lookup := func(name string) (string, bool) {
		for _, kv := range env {
			if k, v, ok := strings.Cut(kv, "="); ok && k == name {
				return v, true
			}
		}
		return "", false
	}
	return &config.SecretResolver{Dir: dir, LookupEnv: lookup}, nil
}

// devCredentials makes a random root credential pair for --dev.
func devCredentials() (string, string, error) {
	var b [28]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", err
	}
	return "keyward-dev-" + hex.EncodeToString(b[:4]), hex.EncodeToString(b[4:]), nil
}

func logLevel(env []string) slog.Level {
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "KEYWARD_LOG_LEVEL="); ok {
			var l slog.Level
			if l.UnmarshalText([]byte(v)) == nil {
				return l
			}
		}
	}
	return slog.LevelInfo
}

func hasEnv(env []string, key string) bool {
	for _, kv := range env {
		if strings.HasPrefix(kv, key+"=") {
			return true
		}
	}
	return false
}
