package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

// Options is a whole run: the targets, the operations and the concurrency
// steps, and the engine configuration of every step.
type Options struct {
	// Keyward target, when Endpoint is set.
	Endpoint             string
	AccessKey, SecretKey string
	KeyID                string // empty: create "bench-<random>"
	// APIs are the Keyward front doors to drive: "admin" (the admin API,
	// SigV4), "aws" (the AWS KMS API, each step right after the matching
	// admin step) and "kes" (the KES API over TLS with a client
	// certificate made from KESAPIKey); "admin" when empty.
	APIs      []string
	KESAPIKey string
	// Keys > 0 prepares a key set of that many keys, reusing those that
	// exist, and spreads the operations over it (prepare.go).
	Keys int

	// Vault Transit target, when VaultAddr is set.
	VaultAddr, VaultToken string
	VaultMount            string // "transit" when empty

	// Ceiling adds the trivial net/http handler (see ceiling.go). It runs
	// in a process of its own started with CeilingCommand (which must
	// serve it as ServeCeiling does), or in this process when that is nil.
	Ceiling        bool
	CeilingCommand []string

	Ops         []string // of Ops; generate, decrypt when empty
	Concurrency []int    // steps; 1, 4, 16, 64 when empty

	Config
	Log io.Writer // setup messages; nil for none
}

// Validate checks the options without touching the network.
func (o *Options) Validate() error {
	if o.Endpoint == "" && o.VaultAddr == "" && !o.Ceiling {
		return errors.New("nothing to benchmark: give --endpoint, --vault-addr or --ceiling")
	}
	if o.Endpoint != "" {
		u, err := url.Parse(o.Endpoint)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("endpoint %q: want http(s)://host:port", o.Endpoint)
		}
		if (o.drives("admin") || o.drives("aws")) && (o.AccessKey == "" || o.SecretKey == "") {
			return errors.New("the Keyward target needs an access key and a secret key (--access-key/--secret-key or KEYWARD_ACCESS_KEY/KEYWARD_SECRET_KEY)")
		}
		if o.drives("kes") {
			if u.Scheme != "https" {
				return errors.New("the KES API is served over TLS only: give an https endpoint")
			}
			if o.KESAPIKey == "" {
				return errors.New("the KES target needs an API key whose identity the server's IAM file pins (--kes-api-key or KEYWARD_KES_API_KEY)")
			}
		}
	}
	if o.VaultAddr != "" {
		u, err := url.Parse(o.VaultAddr)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("vault address %q: want http(s)://host:port", o.VaultAddr)
		}
		if o.VaultToken == "" {
			return errors.New("the Vault target needs a token (--vault-token or VAULT_TOKEN)")
		}
	}
	for _, api := range o.APIs {
		if !slices.Contains(APIs, api) {
			return fmt.Errorf("unknown API %q (want some of %s)", api, strings.Join(APIs, ","))
		}
	}
	for _, op := range o.Ops {
		if !slices.Contains(Ops, op) {
			return fmt.Errorf("unknown op %q (want some of %s)", op, strings.Join(Ops, ","))
		}
	}
	for _, c := range o.Concurrency {
		if c < 1 || c > 10000 {
			return fmt.Errorf("concurrency %d out of range 1..10000", c)
		}
	}
	if o.Keys < 0 || o.Keys > 10_000_000 {
		return errors.New("keys must be between 0 and 10,000,000")
	}
	if o.Requests <= 0 && o.Duration <= 0 {
		return errors.New("give a positive duration or request count per step")
	}
	if o.Warmup < 0 {
		return errors.New("warm-up must not be negative")
	}
	return nil
}

// drives reports whether the Keyward target runs through api.
func (o *Options) drives(api string) bool {
	if len(o.APIs) == 0 {
		return api == "admin"
	}
	return slices.Contains(o.APIs, api)
}

// Run sets up the targets and runs every step: for each target, each
// operation, each concurrency. It returns the rows measured so far with
// any error (a cancelled ctx stops the run between or within steps).
func Run(ctx context.Context, o Options) ([]Row, error) {
	if err := o.Validate(); err != nil {
		return nil, err
	}
	ops := o.Ops
	if len(ops) == 0 {
		ops = []string{"generate", "decrypt"}
	}
	conc := o.Concurrency
	if len(conc) == 0 {
		conc = []int{1, 4, 16, 64}
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	now := o.Config.now
	setupClient := &http.Client{Transport: o.Transport(1), Timeout: 30 * time.Second}
	defer setupClient.CloseIdleConnections()

	var targets []target
	var awsDoor *awsTarget // runs after each step of the admin target
	if o.Endpoint != "" && (o.drives("admin") || o.drives("aws")) {
		admin := &keywardTarget{
			api:    strings.TrimRight(o.Endpoint, "/") + "/rustfs/admin/v3",
			signer: &sigv4.Signer{AccessKey: o.AccessKey, SecretKey: o.SecretKey, Region: "us-east-1", Service: "kms"},
			keyID:  o.KeyID, client: setupClient, now: now, log: log,
			keys: o.Keys, prepare: o.Transport,
		}
		admin.skipSteps = !o.drives("admin")
		targets = append(targets, admin)
		if o.drives("aws") {
			awsDoor = &awsTarget{admin: admin, url: awsURL(o.Endpoint)}
		}
	}
	if o.Endpoint != "" && o.drives("kes") {
		kt, err := newKESTarget(strings.TrimRight(o.Endpoint, "/"), o.KESAPIKey, o.KeyID, o.TLS, log)
		if err != nil {
			return nil, err
		}
		targets = append(targets, kt)
	}
	if o.VaultAddr != "" {
		mount := o.VaultMount
		if mount == "" {
			mount = "transit"
		}
		targets = append(targets, &vaultTarget{addr: o.VaultAddr, token: o.VaultToken, mount: mount, client: setupClient})
	}
	if o.Ceiling {
		// The ceiling does not check signatures; signing its requests makes
		// them the same bytes as Keyward's.
		ak, sk := o.AccessKey, o.SecretKey
		if ak == "" {
			ak, sk = "ceiling", "ceiling-secret-key"
		}
		targets = append(targets, &ceilingTarget{
			command: o.CeilingCommand, now: now, log: log,
			signer: &sigv4.Signer{AccessKey: ak, SecretKey: sk, Region: "us-east-1", Service: "kms"},
		})
	}
	for _, t := range targets {
		defer t.close()
		if err := t.setup(ctx); err != nil {
			return nil, fmt.Errorf("%s: %w", t.name(), err)
		}
	}

	var rows []Row
	for _, t := range targets {
		tops := ops
		if _, ok := t.(*ceilingTarget); ok {
			tops = []string{CeilingOp}
		}
		for _, op := range tops {
			for _, c := range conc {
				steps := []target{t}
				if k, ok := t.(*keywardTarget); ok {
					if k.skipSteps {
						steps = nil
					}
					if awsDoor != nil {
						steps = append(steps, awsDoor)
					}
				}
				for _, st := range steps {
					plan := st.plan(op)
					if plan.NewRequester == nil {
						// A front door without the op (the AWS and KES
						// listings have no state filter).
						fmt.Fprintf(log, "%s has no %s operation: skipped\n", st.name(), op)
						continue
					}
					row, err := o.RunStep(ctx, plan, c)
					if err != nil {
						return rows, err
					}
					rows = append(rows, row)
				}
			}
		}
	}
	return rows, nil
}
