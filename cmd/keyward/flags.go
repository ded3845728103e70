package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"

	"github.com/keyward/keyward/internal/httpapi"
	"github.com/keyward/keyward/internal/iam"
)

// environment is the process environment as runServer is given it: the one
// place the server's flags, credentials and settings are read from. The
// first entry of a name wins, as for the process environment.
type environment map[string]string

func parseEnv(kv []string) environment {
	env := environment{}
	for _, e := range kv {
		if k, v, ok := strings.Cut(e, "="); ok {
			if _, seen := env[k]; !seen {
				env[k] = v
			}
		}
	}
	return env
}

func (e environment) get(name string) string { return e[name] }

func (e environment) lookup(name string) (string, bool) {
	v, ok := e[name]
	return v, ok
}

// serverFlags are the flags of keyward server. Each can also come from
// KEYWARD_<FLAG> (upper case, dashes as underscores); a flag on the
// command line wins.
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
	awsAccountID           string
	kesAPI                 bool
	kesPageSize            int
	console                bool
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

// envName is the environment variable of a flag.
func envName(flagName string) string {
	return "KEYWARD_" + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

func parseServerFlags(args []string, env environment, stderr io.Writer) (serverFlags, error) {
	f := serverFlags{}
	fs := flag.NewFlagSet("keyward server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.address, "address", "127.0.0.1:9000", "listen address")
	fs.StringVar(&f.dataDir, "data-dir", "./keyward-data", "data directory: configuration and local keys")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "TLS certificate file; HTTPS when set with --tls-key")
	fs.StringVar(&f.tlsKey, "tls-key", "", "TLS private key file")
	fs.BoolVar(&f.allowImmediateDeletion, "allow-immediate-deletion", false, "allow force_immediate key destruction")
	fs.BoolVar(&f.dev, "dev", false, "start a ready local backend with a default key and print dev credentials")
	fs.StringVar(&f.iamFile, "iam-file", "", "JSON file of users and policies, reloaded on SIGHUP and when it changes")
	fs.StringVar(&f.auditLog, "audit-log", "", "audit log file, or - for stdout; reopened on SIGHUP")
	fs.BoolVar(&f.metricsAuth, "metrics-auth", true, "require a signed request with kms:ServiceControl for /metrics")
	fs.BoolVar(&f.allowUnsignedPayload, "allow-unsigned-payload", false, "RISK: accept UNSIGNED-PAYLOAD and presigned URLs for requests with a body; such a request can be replayed with another body while its signature is valid")
	fs.IntVar(&f.maxConnections, "max-connections", defaultMaxConnections, "client connections held open at once; more wait to be accepted")
	fs.IntVar(&f.maxBodyMemoryMiB, "max-body-memory", defaultMaxBodyMemoryMiB, "MiB of request bodies read before their sender is authenticated (requests without x-amz-content-sha256); past it such requests get 503")
	fs.StringVar(&f.secretsDir, "secrets-dir", "", "the only directory whose files a configuration may name as secrets (master_key_file, token_file, secret_id_file); none: file references are refused")
	fs.BoolVar(&f.noPersistSecrets, "no-persist-secrets", false, "keep inline secrets (master key, Vault token, AppRole secret id) in memory only; after a restart the service waits for them in kms start")
	fs.StringVar(&f.awsAccountID, "aws-account-id", iam.DefaultAWSAccountID, "the AWS account id of the AWS KMS API: key ARNs name it, and policy resources must name it (or no account)")
	fs.BoolVar(&f.kesAPI, "kes-api", true, "serve the KES API for MinIO (docs/kes-api.md): the TLS listener asks clients for a certificate (optional; SigV4 clients send none)")
	fs.IntVar(&f.kesPageSize, "kes-page-size", httpapi.DefaultKESPageSize, "key names per page of the KES API's key listing (1-1000)")
	fs.BoolVar(&f.console, "console", true, "serve the web console at /console/ (it signs every call in the browser with the operator's own keys)")
	if err := applyEnv(fs, env); err != nil {
		return f, err
	}
	if err := fs.Parse(args); err != nil {
		return f, err
	}
	if fs.NArg() > 0 {
		return f, fmt.Errorf("unexpected arguments: %v", fs.Args())
	}
	return f, f.check()
}

// applyEnv sets every flag whose variable is set (and not empty) in env,
// before the command line is parsed, so that the command line wins. Each
// flag's usage names its variable.
func applyEnv(fs *flag.FlagSet, env environment) error {
	var errs []error
	fs.VisitAll(func(fl *flag.Flag) {
		name := envName(fl.Name)
		fl.Usage += " (" + name + ")"
		v := env.get(name)
		if v == "" {
			return
		}
		if err := fl.Value.Set(v); err != nil {
			kind := "not a valid value"
			switch fl.Value.(flag.Getter).Get().(type) {
			case bool:
				kind = "not a boolean"
			case int:
				kind = "not an integer"
			}
			errs = append(errs, fmt.Errorf("%s: %s: %q", name, kind, v))
		}
	})
	return errors.Join(errs...)
}

// check validates combinations and ranges.
func (f *serverFlags) check() error {
	switch {
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return errors.New("--tls-cert and --tls-key must be given together")
	case f.maxConnections < 1:
		return fmt.Errorf("--max-connections must be at least 1, got %d", f.maxConnections)
	// At least one body at the 1 MiB route limit must fit; at most 1 TiB
	// keeps the byte count far from overflowing.
	case f.maxBodyMemoryMiB < 1 || f.maxBodyMemoryMiB > 1<<20:
		return fmt.Errorf("--max-body-memory must be between 1 and %d MiB, got %d", 1<<20, f.maxBodyMemoryMiB)
	case !iam.ValidAWSAccountID(f.awsAccountID):
		return fmt.Errorf("--aws-account-id must be 12 digits, got %q", f.awsAccountID)
	case f.kesPageSize < 1 || f.kesPageSize > httpapi.DefaultKESPageSize:
		return fmt.Errorf("--kes-page-size must be between 1 and %d, got %d", httpapi.DefaultKESPageSize, f.kesPageSize)
	case f.dev && f.noPersistSecrets:
		return errors.New("--dev keeps a generated root key in the data dir, which --no-persist-secrets (KEYWARD_NO_PERSIST_SECRETS) forbids: run one or the other")
	}
	return nil
}
