package vault

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hashicorp/vault/api"

	"github.com/keyward/keyward/internal/fsutil"
	"github.com/keyward/keyward/internal/kms"
)

// Call policy (see doc.go): reads are retried with exponential backoff,
// writes never are, and every attempt has its own deadline.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
	// healthTimeout caps the health probe: readiness checks must answer
	// quickly even when timeout_seconds is generous.
	healthTimeout = 3 * time.Second
	// maxResponse bounds what is read from Vault (a key listing of
	// thousands of ids stays far below it).
	maxResponse = 16 << 20
)

// conn is one authenticated Vault client with Keyward's call policy on top
// of it. The vault/api client's own retries are disabled (MaxRetries 0) so
// that this policy is the only one: the library would otherwise retry 5xx
// answers and transport failures of every method, writes included, on its
// own schedule and past our deadlines.
type conn struct {
	client *api.Client
	// loginClient has the same address, TLS and namespace but never a
	// token: an expired token sent along with a login request must not be
	// what makes the login fail.
	loginClient *api.Client
	// httpClient and bases serve the Transit hot path (fast.go) and the
	// health checks: the client's own *http.Client and each node's address
	// (nil: not plain http(s), not usable).
	httpClient *http.Client
	// addrs are the configured nodes (nodes.go); node is the one in use,
	// changed under nodeMu; switches counts the moves.
	addrs    []string
	bases    []*url.URL
	node     atomic.Int32
	nodeMu   sync.Mutex
	switches atomic.Int64
	// batches coalesces concurrent Transit calls (batch.go); nil when the
	// fast path is not usable.
	batches *coalescer
	auth    Auth // holds secrets: never logged, never in an error
	timeout time.Duration
	retries int
	log     *slog.Logger

	authMu     sync.Mutex // serializes logins and token swaps
	lastReauth time.Time  // guarded by authMu
	leases     chan lease // fresh leases for the maintenance loop (on-demand re-logins)
	stop       chan struct{}
	done       chan struct{}
	started    atomic.Bool
	closing    sync.Once

	// current is the lease in force, for the token TTL metric.
	current atomic.Pointer[lease]

	// Counters, for tests: every login, every renewal, and the logins
	// forced by a refused request.
	logins, renewals, reauths atomic.Int64
}

// dial builds the client from cfg and logs in. It does not start token
// maintenance (see startMaintenance): HoldsKeys needs a short-lived conn.
func dial(ctx context.Context, v Config, log *slog.Logger) (*conn, lease, error) {
	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: v.SkipTLSVerify}
	if v.CACert != "" {
		pool, err := loadCA(v.CACert, log)
		if err != nil {
			return nil, lease{}, err
		}
		tlsConfig.RootCAs = pool
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = tlsConfig
	transport.MaxIdleConnsPerHost = 64
	httpClient := &http.Client{
		Transport: transport,
		// The vault/api client follows Vault's redirects itself.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	c := &conn{
		auth:    v.Auth,
		timeout: v.Timeout,
		retries: max(v.Retries, 0),
		log:     log,
		leases:  make(chan lease, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	if c.timeout <= 0 {
		c.timeout = defaultTimeout
	}
	// Timeout stays 0: attempt sets each attempt's deadline itself, and the
	// library's own timeout context is cancelled by WriteRaw when it
	// returns, before the caller has read the answer (over HTTP/2 that
	// aborts the body read).
	c.addrs = splitAddresses(v.Address)
	if len(c.addrs) == 0 {
		return nil, lease{}, fmt.Errorf("%w: vault address: empty", kms.ErrInvalidRequest)
	}
	for _, a := range c.addrs {
		c.bases = append(c.bases, parseBase(a))
	}
	// With several nodes a redirect is a failure to move on from (see
	// nodes.go), not something to follow.
	client, err := api.NewClient(&api.Config{Address: c.addrs[0], HttpClient: httpClient, Timeout: 0, MaxRetries: 0, DisableRedirects: c.multi()})
	if err != nil {
		return nil, lease{}, fmt.Errorf("%w: vault address: %v", kms.ErrInvalidRequest, err)
	}
	for _, a := range c.addrs[1:] {
		if _, err := client.CloneConfig().ParseAddress(a); err != nil {
			return nil, lease{}, fmt.Errorf("%w: vault address: %v", kms.ErrInvalidRequest, err)
		}
	}
	// NewClient picks up VAULT_TOKEN and VAULT_NAMESPACE from the
	// environment; only the configuration counts.
	client.ClearToken()
	client.ClearNamespace()
	if v.Namespace != "" {
		client.SetNamespace(v.Namespace)
	}
	loginClient, err := client.CloneWithHeaders()
	if err != nil {
		return nil, lease{}, fmt.Errorf("vault: %v", err)
	}
	loginClient.ClearToken()
	c.client, c.loginClient = client, loginClient
	c.httpClient = httpClient
	if c.bases[0] != nil {
		c.batches = newCoalescer(transitLanes, transitMaxBatch, c.timeout, c.sendBatch)
	}
	l, err := c.login(ctx)
	if err != nil {
		return nil, lease{}, credentialError(err)
	}
	return c, l, nil
}

// credentialError marks a refusal of the configured credentials (a 4xx
// from Vault while opening) as kms.ErrInvalidRequest: a configure or
// reconfigure with a bad token or secret id is the client's error, not a
// server fault. An unreachable Vault stays kms.ErrUnavailable.
func credentialError(err error) error {
	var ce *callError
	if errors.As(err, &ce) && ce.Status >= 400 && ce.Status < 500 && !ce.unavailable() {
		return fmt.Errorf("%w: %w", kms.ErrInvalidRequest, err)
	}
	return err
}

// maxCACert bounds a ca_cert file (a bundle of a few hundred CA
// certificates stays far below it).
const maxCACert = 1 << 20

// loadCA reads ca_cert: PEM content when it starts with "-----BEGIN",
// else the path of a PEM file. The read is bounded (a path such as
// /dev/zero must not exhaust memory), and every way a path can fail
// (missing, unreadable, not a regular file, too large, no certificate)
// gives the caller the same answer: a configure call must not become a way
// to learn which files exist on the server. The operator finds the reason
// in the server log.
func loadCA(caCert string, log *slog.Logger) (*x509.CertPool, error) {
	pemBytes := []byte(caCert)
	if !strings.HasPrefix(strings.TrimSpace(caCert), "-----BEGIN") {
		b, err := readCAFile(caCert)
		if err != nil {
			log.Warn("vault: ca_cert file refused", "reason", err.Error())
			return nil, errCACert
		}
		pemBytes = b
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pemBytes) {
		return nil, errCACert
	}
	return pool, nil
}

var errCACert = fmt.Errorf("%w: ca_cert must be PEM certificates, or the path of a readable PEM file of at most %d bytes", kms.ErrInvalidRequest, maxCACert)

func readCAFile(path string) ([]byte, error) {
	// Open without blocking (a named pipe with no writer would block an
	// ordinary open forever, inside the lifecycle manager's lock), then
	// make sure it is a regular file before reading.
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := fsutil.ReadRegular(f, maxCACert)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return b, nil
}

// callError is a failed Vault call. Its message names the method and the
// Vault path and Vault's own error strings, never a token, a secret id or
// a request body. Unwrap maps it onto the domain errors.
type callError struct {
	Method, Path string
	// Status is the HTTP status; 0 when Vault did not answer.
	Status   int
	Messages []string
	// Cause describes a transport failure (Status 0); dial is set when
	// the connection could not be made (nothing was sent).
	Cause string
	dial  bool
}

func (e *callError) Error() string {
	switch {
	case e.Status == 0:
		return fmt.Sprintf("Vault is unreachable (%s %s: %s)", e.Method, e.Path, e.Cause)
	case e.Status == http.StatusForbidden:
		return fmt.Sprintf("vault: permission denied for %s %s (the token's policy does not allow it, or the token expired)", e.Method, e.Path)
	case e.unavailable():
		return fmt.Sprintf("Vault is unavailable (%s %s: HTTP %d: %s)", e.Method, e.Path, e.Status, e.message())
	}
	return fmt.Sprintf("vault: %s %s: HTTP %d: %s", e.Method, e.Path, e.Status, e.message())
}

func (e *callError) message() string {
	var parts []string
	for _, m := range e.Messages {
		if m = strings.TrimSpace(strings.ReplaceAll(m, "\n\t", " ")); m != "" {
			parts = append(parts, m)
		}
	}
	if len(parts) == 0 {
		return http.StatusText(e.Status)
	}
	return strings.Join(parts, "; ")
}

// Unwrap: unreachable, 5xx gateway answers and a sealed or leaderless Vault
// are kms.ErrUnavailable (503 to clients); a 404 is kms.ErrNotFound; the
// rest (403, other 4xx) is a plain error (500, logged by the HTTP layer).
func (e *callError) Unwrap() error {
	switch {
	case e.unavailable():
		return kms.ErrUnavailable
	case e.Status == http.StatusNotFound:
		return kms.ErrNotFound
	}
	return nil
}

// redirect reports a 3xx: a standby that did not forward the request.
func (e *callError) redirect() bool { return e.Status >= 300 && e.Status < 400 }

func (e *callError) unavailable() bool {
	if e.redirect() {
		return true
	}
	switch e.Status {
	case 0, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusTooManyRequests:
		return true
	}
	return e.has("Vault is sealed") || e.has("local node not active")
}

// retryable: transport failures and any 5xx; never a 4xx (the request
// itself is wrong and would fail again).
func (e *callError) retryable() bool { return e.Status == 0 || e.Status >= 500 || e.unavailable() }

// has reports whether one of Vault's messages contains s.
func (e *callError) has(s string) bool {
	for _, m := range e.Messages {
		if strings.Contains(m, s) {
			return true
		}
	}
	return false
}

// isStatus reports whether err is a Vault answer with that status whose
// messages contain substr (any message when substr is empty).
func isStatus(err error, status int, substr string) bool {
	var ce *callError
	return errors.As(err, &ce) && ce.Status == status && (substr == "" || ce.has(substr))
}

// call sends one request and decodes the JSON answer into out (nil: the
// answer is dropped). body is JSON-encoded, or sent as is when it is
// []byte. GET and LIST are retried up to retry_attempts times with
// exponential backoff on transport failures and 5xx; writes are sent once.
// With AppRole, a 403 triggers one re-login and one resend: the token may
// have expired while Vault was unreachable, and the 403 proves the request
// was not executed.
func (c *conn) call(ctx context.Context, method, path string, body, out any) error {
	var payload []byte
	switch b := body.(type) {
	case nil:
	case []byte:
		payload = b
	default:
		p, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("vault: encoding the %s %s request: %w", method, path, err)
		}
		// The payload may hold plaintext (Transit encrypt): wipe our copy.
		defer clear(p)
		payload = p
	}
	read := method == http.MethodGet || method == "LIST"
	attempts := 1
	if read {
		attempts += c.retries
	}
	reauthed := false
	tried := 1 // nodes tried since the last backoff
	for i := 0; ; i++ {
		token := c.client.Token()
		err := c.attempt(ctx, c.client, method, path, payload, out)
		if err == nil {
			return nil
		}
		if !reauthed && c.auth.Method == "approle" && isStatus(err, http.StatusForbidden, "") {
			reauthed = true
			if c.reauth(ctx, token) == nil {
				i--
				continue
			}
		}
		// Another node, at once (attempt moved to it): a read, or a write
		// that provably did not happen; once per node (nodes.go).
		if c.multi() && nodeFailure(err) && tried < len(c.addrs) && (read || notExecuted(err)) && ctx.Err() == nil {
			tried++
			i--
			continue
		}
		tried = 1
		var ce *callError
		if i+1 >= attempts || !errors.As(err, &ce) || !ce.retryable() || ctx.Err() != nil {
			return err
		}
		wait := min(firstBackoff<<i, maxBackoff)
		select {
		case <-ctx.Done():
			return err
		case <-time.After(wait):
		}
	}
}

// attempt is one HTTP exchange under its own deadline (timeout_seconds).
// A failure of the node moves the connection to the next one (nodes.go).
func (c *conn) attempt(ctx context.Context, client *api.Client, method, path string, payload []byte, out any) error {
	return c.attemptWithin(ctx, c.timeout, client, method, path, payload, out)
}

// attemptWithin is attempt with another deadline than timeout_seconds.
func (c *conn) attemptWithin(ctx context.Context, timeout time.Duration, client *api.Client, method, path string, payload []byte, out any) error {
	node := c.nodeInUse()
	err := c.attemptOnce(ctx, timeout, client, method, path, payload, out)
	if err != nil && nodeFailure(err) {
		c.failover(node)
	}
	return err
}

func (c *conn) attemptOnce(ctx context.Context, timeout time.Duration, client *api.Client, method, path string, payload []byte, out any) error {
	actx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var resp *api.Response
	var err error
	switch method {
	case http.MethodGet:
		resp, err = client.Logical().ReadRawWithContext(actx, path)
	case "LIST":
		resp, err = client.Logical().ReadRawWithDataWithContext(actx, path, map[string][]string{"list": {"true"}})
	case http.MethodPut:
		resp, err = client.Logical().WriteRawWithContext(actx, path, payload)
	case http.MethodDelete:
		resp, err = client.Logical().DeleteRawWithContext(actx, path)
	default:
		return fmt.Errorf("vault: unsupported method %s", method)
	}
	if resp != nil {
		defer resp.Body.Close()
	}
	if err != nil {
		return c.classify(ctx, method, path, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return redirectError(method, path, resp.StatusCode)
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	// The answer may hold plaintext (Transit decrypt): decode it into
	// out's []byte fields, which the caller wipes, then wipe the raw copy.
	defer clear(raw)
	if err != nil {
		return c.classify(ctx, method, path, err)
	}
	if out == nil || len(bytes.TrimSpace(raw)) == 0 {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("vault: %s %s: the answer does not decode: %v", method, path, err)
	}
	return nil
}

// classify turns a vault/api or transport error into a callError. When the
// caller's own context ended, the error says so (and still wraps
// kms.ErrUnavailable: Vault did not answer in the time allowed).
func (c *conn) classify(ctx context.Context, method, path string, err error) error {
	var re *api.ResponseError
	if errors.As(err, &re) {
		return &callError{Method: method, Path: path, Status: re.StatusCode, Messages: re.Errors}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("%w: vault %s %s: %w", kms.ErrUnavailable, method, path, ctx.Err())
	}
	return &callError{Method: method, Path: path, Cause: c.cause(err), dial: isDial(err)}
}

// cause summarizes a transport error without the URL (which names Vault's
// address: not a secret, but not something to hand to every API client).
func (c *conn) cause(err error) string {
	var netErr net.Error
	var certErr *tls.CertificateVerificationError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", c.timeout)
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection reset"
	case errors.As(err, &certErr), errors.As(err, &unknownAuth), errors.As(err, &hostErr):
		return "TLS certificate not trusted: check ca_cert"
	}
	var dnsErr *net.DNSError
	if errors.As(err, &dnsErr) {
		return "DNS lookup failed"
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	return err.Error()
}

// verifyMount checks through sys/internal/ui/mounts (answered for any token
// with a capability under the path, so the minimal policies need nothing
// extra) that path is mounted with the expected engine; version is the KV
// version ("" for Transit).
func (c *conn) verifyMount(ctx context.Context, setting, path, engine, version string) error {
	var m struct {
		Data struct {
			Type    string            `json:"type"`
			Path    string            `json:"path"`
			Options map[string]string `json:"options"`
		} `json:"data"`
	}
	err := c.call(ctx, http.MethodGet, "sys/internal/ui/mounts/"+path, nil, &m)
	if isStatus(err, http.StatusForbidden, "") || isStatus(err, http.StatusNotFound, "") {
		return fmt.Errorf("%w: vault: %s %q is not mounted, or the token cannot use it (invalid or expired token, or no policy for it)", kms.ErrInvalidRequest, setting, path)
	}
	if err != nil {
		return err
	}
	if m.Data.Type != engine || (version != "" && m.Data.Options["version"] != version) {
		want := engine
		if version != "" {
			want += " version " + version
		}
		return fmt.Errorf("%w: %s %q is a %s mount (%s), not %s", kms.ErrInvalidRequest, setting, path, m.Data.Type, m.Data.Path, want)
	}
	return nil
}

// close stops token maintenance. Idempotent.
func (c *conn) close() {
	c.closing.Do(func() {
		close(c.stop)
		if c.started.Load() {
			<-c.done
		}
		c.client.ClearToken()
	})
}
