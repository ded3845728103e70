package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"runtime/pprof"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/keyward/keyward/internal/bench"
)

const benchUsage = `usage: keyward bench [flags]

Load generator for the hot paths of a Keyward server, with Vault Transit
(--vault-addr) and a trivial net/http handler (--ceiling: a child process
sent the same signed bytes as Keyward's generate) as points of comparison,
all driven by the same engine: one keep-alive HTTP/1.1 connection per
worker, requests serialized once. For each target, op and concurrency step
it prints requests, errors, successful req/s and the p50/p95/p99/max
latency in ms (or a JSON array with --json).

Each worker signs its request once and replays it (re-signed every 5
minutes), so the client's signing cost does not compete with the server;
only "create" signs every request. The Keyward target runs unless
--endpoint is set to "" (e.g. to measure only Vault or the ceiling).
"create" leaves the keys it creates behind; run it on a scratch server.

--soak DURATION runs mixed load instead of steps (each worker cycles
through generate, decrypt, describe and a list page over --keys, 8 by
default) and prints, every --soak-interval, the throughput, errors and
p99, and the server's resident memory, goroutines and open files read
from its /metrics; after the load it waits for the goroutines and open
files to come back near their level before it, and fails if they do not.

--keys N measures a server holding N keys: the missing keys of the set
are created first (16 at a time; the rate is reported), then generate,
decrypt, encrypt and describe use one key of the set per worker, "list"
replays pages of 100 keys at random places in the set and
"list-disabled" the same pages filtered by state (one key in ten).

The exit status is 1 when any request failed.

flags:
`

// benchSettings are keyward bench's flags, checked.
type benchSettings struct {
	opts       bench.Options
	jsonOut    bool
	cpuProfile string
	soak       bench.SoakOptions // Duration > 0: a soak instead of steps
}

func runBench(args []string, env environment, stdout, stderr io.Writer) error {
	b, err := parseBenchFlags(args, env, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	o := b.opts
	o.Log, o.Progress = stderr, stderr
	if f, ok := stderr.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			o.ProgressTTY = true
		}
	}
	// The load generator shares the machine with what it measures: its own
	// garbage collection shows up as latency in every target's figures. It
	// collects as rarely as the server does (GOGC still wins).
	if _, ok := env.lookup("GOGC"); !ok {
		debug.SetGCPercent(serverGCPercent)
	}
	m := bench.ThisMachine()
	if b.jsonOut {
		fmt.Fprintf(stderr, "keyward bench on %s\n", m)
	} else {
		bench.WriteHeader(stdout, m, o.Config)
	}
	if b.cpuProfile != "" {
		stopProfile, err := startCPUProfile(b.cpuProfile)
		if err != nil {
			return err
		}
		defer stopProfile()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if b.soak.Duration > 0 {
		return runSoak(ctx, o, b, stdout)
	}
	rows, runErr := bench.Run(ctx, o)
	if b.jsonOut {
		if err := bench.WriteJSON(stdout, rows); err != nil {
			return err
		}
	} else {
		bench.WriteTable(stdout, rows)
	}
	switch {
	case runErr != nil && ctx.Err() != nil:
		return errors.New("bench: interrupted")
	case runErr != nil:
		return fmt.Errorf("bench: %w", runErr)
	}
	var failed int64
	for _, r := range rows {
		failed += r.Errors
	}
	if failed > 0 {
		return fmt.Errorf("bench: %d requests failed", failed)
	}
	return nil
}

// runSoak runs --soak: a line per interval on stdout (or the JSON result);
// it fails when a request failed or the server's goroutines or open files
// did not come back after the load.
func runSoak(ctx context.Context, o bench.Options, b benchSettings, stdout io.Writer) error {
	w := stdout
	if b.jsonOut {
		w = o.Log
	}
	res, err := bench.RunSoak(ctx, o, b.soak, w)
	if b.jsonOut {
		if jerr := bench.WriteSoakJSON(stdout, res); jerr != nil && err == nil {
			err = jerr
		}
	}
	switch {
	case err != nil && ctx.Err() != nil:
		return errors.New("bench: soak interrupted")
	case err != nil:
		return fmt.Errorf("bench: soak: %w", err)
	case res.Errors > 0:
		return fmt.Errorf("bench: soak: %d requests failed", res.Errors)
	case !res.Settled:
		return fmt.Errorf("bench: soak: the server's goroutines or open files did not come back after the load (%s; before: %s)", res.After, res.Before)
	}
	return nil
}

// parseBenchFlags reads keyward bench's flags (defaults from env) into
// bench.Options.
func parseBenchFlags(args []string, env environment, stderr io.Writer) (benchSettings, error) {
	def := func(k, d string) string {
		if v, ok := env.lookup(k); ok {
			return v
		}
		return d
	}
	var (
		b                 benchSettings
		o                 = &b.opts
		ops, conc, caCert string
		apis              string
		insecure          bool
	)
	fs := flag.NewFlagSet("keyward bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	fs.StringVar(&o.Endpoint, "endpoint", def("KEYWARD_ENDPOINT", "http://127.0.0.1:9000"), `Keyward server URL, "" to skip the Keyward target (KEYWARD_ENDPOINT)`)
	fs.StringVar(&o.AccessKey, "access-key", def("KEYWARD_ACCESS_KEY", ""), "access key (KEYWARD_ACCESS_KEY)")
	fs.StringVar(&o.SecretKey, "secret-key", def("KEYWARD_SECRET_KEY", ""), "secret key (KEYWARD_SECRET_KEY)")
	fs.StringVar(&o.KeyID, "key-id", "", `key to use; default: create a key "bench-<random>"`)
	fs.StringVar(&o.KESAPIKey, "kes-api-key", def("KEYWARD_KES_API_KEY", ""), "the KES target's API key (kes:v1:...), whose identity the server's IAM file pins (KEYWARD_KES_API_KEY)")
	fs.IntVar(&o.Keys, "keys", 0, `prepare a set of N keys "bench-set-NNNNNNN" (every tenth disabled; existing ones reused) and spread the ops over it`)
	fs.StringVar(&ops, "ops", "generate,decrypt", "comma-separated ops: "+strings.Join(bench.Ops, ","))
	fs.StringVar(&apis, "api", "admin", `the Keyward server's front doors to measure, comma-separated: admin (the admin API), aws (the AWS KMS API, target "kw-aws", each step right after the matching admin step), kes (the KES API over TLS with a client certificate; docs/kes-api.md)`)
	fs.StringVar(&conc, "concurrency", "1,4,16,64", "comma-separated concurrency steps (workers, one connection each)")
	fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each step")
	fs.Int64Var(&o.Requests, "requests", 0, "requests per step instead of --duration")
	fs.DurationVar(&o.Warmup, "warmup", time.Second, "unrecorded load before each step")
	fs.DurationVar(&o.Timeout, "timeout", 30*time.Second, "per-request timeout")
	fs.StringVar(&o.VaultAddr, "vault-addr", "", "also benchmark Vault Transit directly at this address")
	fs.StringVar(&o.VaultToken, "vault-token", def("VAULT_TOKEN", ""), "Vault token (VAULT_TOKEN)")
	fs.StringVar(&o.VaultMount, "vault-mount", "transit", "Vault Transit mount path")
	fs.BoolVar(&o.Ceiling, "ceiling", false, `also benchmark a trivial net/http handler answering {"ok":true}, in a child process`)
	fs.BoolVar(&b.jsonOut, "json", false, "print a JSON array of rows instead of the table")
	fs.BoolVar(&insecure, "insecure", false, "skip TLS certificate verification for https endpoints")
	fs.StringVar(&caCert, "ca-cert", "", "PEM file of CA certificates to trust for https endpoints")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of the load generator itself to this file")
	fs.DurationVar(&b.soak.Duration, "soak", 0, "instead of steps: mixed load (generate, decrypt, describe, list over --keys, 8 by default) for this long, reporting every --soak-interval")
	fs.DurationVar(&b.soak.Interval, "soak-interval", 30*time.Second, "reporting interval of --soak: throughput, errors, p99, and the server's RSS, goroutines and open files from /metrics")
	if err := fs.Parse(args); err != nil {
		return b, err
	}
	if fs.NArg() > 0 {
		return b, fmt.Errorf("bench: unexpected arguments: %v", fs.Args())
	}
	explicit := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { explicit[f.Name] = true })
	if explicit["duration"] && explicit["requests"] {
		return b, errors.New("bench: give --duration or --requests, not both")
	}
	if o.Requests < 0 {
		return b, errors.New("bench: --requests must not be negative")
	}
	if ops != "" {
		o.Ops = strings.Split(ops, ",")
	}
	if apis != "" {
		o.APIs = strings.Split(apis, ",")
	}
	for _, s := range strings.Split(conc, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil {
			return b, fmt.Errorf("bench: --concurrency: %q is not a number", s)
		}
		o.Concurrency = append(o.Concurrency, n)
	}
	if b.soak.Duration < 0 || b.soak.Interval <= 0 {
		return b, errors.New("bench: --soak and --soak-interval must be positive")
	}
	if b.soak.Duration > 0 {
		// One level of load: the one given, else 16 workers.
		b.soak.Concurrency = 16
		if explicit["concurrency"] {
			if len(o.Concurrency) != 1 {
				return b, errors.New("bench: --soak takes one --concurrency value")
			}
			b.soak.Concurrency = o.Concurrency[0]
		}
	}
	var err error
	if o.TLS, err = benchTLS(insecure, caCert); err != nil {
		return b, err
	}
	if o.Ceiling {
		exe, err := os.Executable()
		if err != nil {
			return b, fmt.Errorf("bench: --ceiling needs this program's path: %w", err)
		}
		o.CeilingCommand = []string{exe, benchCeilingCommand}
	}
	if err := o.Validate(); err != nil {
		return b, fmt.Errorf("bench: %w", err)
	}
	return b, nil
}

// benchTLS is the client TLS configuration of --insecure and --ca-cert
// (nil: the defaults).
func benchTLS(insecure bool, caCert string) (*tls.Config, error) {
	if !insecure && caCert == "" {
		return nil, nil
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: insecure}
	if caCert != "" {
		pem, err := os.ReadFile(caCert)
		if err != nil {
			return nil, fmt.Errorf("bench: --ca-cert: %w", err)
		}
		c.RootCAs = x509.NewCertPool()
		if !c.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("bench: --ca-cert %s: no PEM certificate", caCert)
		}
	}
	return c, nil
}

// startCPUProfile profiles the load generator itself into path.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("bench: --cpuprofile: %w", err)
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// benchCeilingCommand is the hidden subcommand that serves the bench
// ceiling in a process of its own, as the Keyward server runs.
const benchCeilingCommand = "bench-ceiling-server"

// runBenchCeiling serves the ceiling handler on a loopback port, prints its
// URL, and stops when stdin closes (its parent, keyward bench, went away).
// It tunes the garbage collector as the server does, so the two processes
// differ only in their handlers.
func runBenchCeiling(stdin io.Reader, stdout io.Writer) error {
	if _, ok := os.LookupEnv("GOGC"); !ok {
		debug.SetGCPercent(serverGCPercent)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		io.Copy(io.Discard, stdin)
		cancel()
	}()
	return bench.ServeCeiling(ctx, ln, stdout)
}
