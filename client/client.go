package client

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

// AdminPrefix is where the admin routes live on the server.
const AdminPrefix = "/rustfs/admin/v3"

// Defaults of the options.
const (
	DefaultRegion     = "us-east-1"
	DefaultService    = "kms"
	DefaultRetries    = 3
	DefaultRetryDelay = 100 * time.Millisecond
	// DefaultTimeout bounds one attempt (request and response body). It is
	// above the server's own 60 s limit for its slowest routes (start,
	// configure), so that the server answers first.
	DefaultTimeout   = 90 * time.Second
	DefaultUserAgent = "keyward-go-client/1"

	maxRetryDelay   = 5 * time.Second
	maxRetryAfter   = 30 * time.Second
	maxResponseBody = 16 << 20
	maxMetricsBody  = 64 << 20
)

// Client talks to one Keyward server, or to one of several serving the
// same keys (see New). It is safe for concurrent use.
type Client struct {
	// endpoints are scheme://host[:port][/path], no trailing slash; cur
	// is the index of the one in use (failover.go).
	endpoints []string
	cur       atomic.Int32
	hc        *http.Client
	signer    *sigv4.Signer
	userAgent string
	retries   int
	baseDelay time.Duration
	timeout   time.Duration
	now       func() time.Time
}

// Option configures a Client (see New).
type Option func(*settings) error

type settings struct {
	hc                 *http.Client
	tlsConfig          *tls.Config
	caPEM              [][]byte
	insecureSkipVerify bool
	region, service    string
	userAgent          string
	retries            int
	baseDelay          time.Duration
	timeout            time.Duration
}

// WithHTTPClient sends requests with hc instead of a client of its own. The
// Client works on a shallow copy (hc itself is not modified) that does not
// follow redirects: a signed request is never replayed to another URL. TLS
// options are applied to a clone of hc's transport, which must then be an
// *http.Transport (or nil).
func WithHTTPClient(hc *http.Client) Option {
	return func(s *settings) error {
		if hc == nil {
			return errors.New("WithHTTPClient: nil *http.Client")
		}
		s.hc = hc
		return nil
	}
}

// WithTLSConfig uses a clone of cfg for HTTPS. WithCACert and
// WithInsecureSkipVerify apply on top of it.
func WithTLSConfig(cfg *tls.Config) Option {
	return func(s *settings) error {
		if cfg == nil {
			return errors.New("WithTLSConfig: nil *tls.Config")
		}
		s.tlsConfig = cfg.Clone()
		return nil
	}
}

// WithCACert trusts the PEM certificates in pem (one or more) to verify the
// server, instead of the system roots (for a private CA). It can be given
// several times. pem holding no certificate is an error from New.
func WithCACert(pem []byte) Option {
	return func(s *settings) error {
		if !x509.NewCertPool().AppendCertsFromPEM(pem) {
			return errors.New("WithCACert: no PEM certificate found")
		}
		s.caPEM = append(s.caPEM, bytes.Clone(pem))
		return nil
	}
}

// WithInsecureSkipVerify disables the verification of the server's
// certificate. For tests and local drills only: anyone on the path can
// then read the data keys the server returns.
func WithInsecureSkipVerify() Option {
	return func(s *settings) error {
		s.insecureSkipVerify = true
		return nil
	}
}

// WithRegion sets the SigV4 region (default us-east-1; the server accepts
// any).
func WithRegion(region string) Option {
	return func(s *settings) error {
		if region == "" {
			return errors.New("WithRegion: empty region")
		}
		s.region = region
		return nil
	}
}

// WithService sets the SigV4 service name (default "kms"; the server also
// accepts "s3").
func WithService(service string) Option {
	return func(s *settings) error {
		if service == "" {
			return errors.New("WithService: empty service")
		}
		s.service = service
		return nil
	}
}

// WithRetries sets how many times a retryable call is retried (n = 0
// disables retries) and the first backoff delay, which doubles at each
// retry (with jitter, capped at 5 s). Default: 3 retries from 100 ms. See
// the package documentation for which calls retry.
func WithRetries(n int, baseDelay time.Duration) Option {
	return func(s *settings) error {
		if n < 0 || baseDelay < 0 {
			return errors.New("WithRetries: negative value")
		}
		s.retries, s.baseDelay = n, baseDelay
		return nil
	}
}

// WithTimeout bounds each attempt (sending the request and reading the
// whole response); 0 means no bound other than the context. The context
// passed to a call bounds the call as a whole, retries included.
func WithTimeout(d time.Duration) Option {
	return func(s *settings) error {
		if d < 0 {
			return errors.New("WithTimeout: negative timeout")
		}
		s.timeout = d
		return nil
	}
}

// WithUserAgent sets the User-Agent header.
func WithUserAgent(ua string) Option {
	return func(s *settings) error {
		s.userAgent = ua
		return nil
	}
}

// New returns a client for the server at endpoint ("https://kms.example:9000";
// a path prefix is kept, for a server behind a reverse proxy), signing
// with the access key and secret key. endpoint may name several servers
// that serve the same keys, separated by commas
// ("https://a:9000,https://b:9000"): the client uses one at a time and
// moves to the next as the package documentation ("Several endpoints")
// says.
func New(endpoint, accessKey, secretKey string, opts ...Option) (*Client, error) {
	endpoints, err := parseEndpoints(endpoint)
	if err != nil {
		return nil, err
	}
	if accessKey == "" || secretKey == "" {
		return nil, errors.New("keyward: access key and secret key are required")
	}
	s := settings{region: DefaultRegion, service: DefaultService, userAgent: DefaultUserAgent,
		retries: DefaultRetries, baseDelay: DefaultRetryDelay, timeout: DefaultTimeout}
	for _, o := range opts {
		if err := o(&s); err != nil {
			return nil, fmt.Errorf("keyward: %w", err)
		}
	}
	hc, err := s.httpClient()
	if err != nil {
		return nil, fmt.Errorf("keyward: %w", err)
	}
	return &Client{
		endpoints: endpoints,
		hc:        hc,
		signer:    &sigv4.Signer{AccessKey: accessKey, SecretKey: secretKey, Region: s.region, Service: s.service},
		userAgent: s.userAgent,
		retries:   s.retries,
		baseDelay: s.baseDelay,
		timeout:   s.timeout,
		now:       time.Now,
	}, nil
}

// httpClient builds the HTTP client from the options.
func (s *settings) httpClient() (*http.Client, error) {
	var hc http.Client
	if s.hc != nil {
		hc = *s.hc
	}
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if s.tlsConfig == nil && len(s.caPEM) == 0 && !s.insecureSkipVerify {
		if hc.Transport == nil {
			hc.Transport = http.DefaultTransport.(*http.Transport).Clone()
		}
		return &hc, nil
	}
	var tr *http.Transport
	switch t := hc.Transport.(type) {
	case nil:
		tr = http.DefaultTransport.(*http.Transport).Clone()
	case *http.Transport:
		tr = t.Clone()
	default:
		return nil, fmt.Errorf("TLS options need an *http.Transport, the HTTP client has a %T", hc.Transport)
	}
	cfg := s.tlsConfig
	if cfg == nil {
		if tr.TLSClientConfig != nil {
			cfg = tr.TLSClientConfig.Clone()
		} else {
			cfg = &tls.Config{MinVersion: tls.VersionTLS12}
		}
	}
	if len(s.caPEM) > 0 {
		pool := cfg.RootCAs
		if pool == nil {
			pool = x509.NewCertPool()
		} else {
			pool = pool.Clone()
		}
		for _, pem := range s.caPEM {
			pool.AppendCertsFromPEM(pem)
		}
		cfg.RootCAs = pool
	}
	if s.insecureSkipVerify {
		cfg.InsecureSkipVerify = true
	}
	tr.TLSClientConfig = cfg
	hc.Transport = tr
	return &hc, nil
}

// request is one API call.
type request struct {
	method string
	path   string // from the server root, escaped
	query  url.Values
	body   []byte // wiped when the call is done
	// tracker hands out the body's readers and wipes it (set by send).
	tracker *bodyTracker
	// retry: the call is idempotent, retried on 503 and transport errors.
	// Every call is retried when the connection could not be made at all.
	retry bool
	// unsigned: sent without a signature (health).
	unsigned bool
	// anyStatus: every status is an answer, not an error (health).
	anyStatus bool
	accept    string
	limit     int64
}

// response is a complete answer; body is wiped by the caller.
type response struct {
	status int
	header http.Header
	body   []byte
}

// send performs the call with its retries. The request body is wiped when
// it returns. A non-2xx answer is an *APIError.
func (c *Client) send(ctx context.Context, rq *request) (*response, error) {
	if rq.body != nil {
		rq.tracker = &bodyTracker{buf: rq.body}
		defer rq.tracker.wipe()
	}
	tried := 1 // endpoints tried since the last backoff
	for attempt := 1; ; attempt++ {
		ep := c.endpointInUse()
		resp, err := c.attempt(ctx, rq, ep)
		if err == nil && (rq.anyStatus || resp.status >= 200 && resp.status < 300) {
			return resp, nil
		}
		retry := false
		var retryAfter time.Duration
		if err != nil {
			err = fmt.Errorf("keyward: %s %s: %w", rq.method, rq.path, err)
			retry = (rq.retry || isDialError(err)) && !isPermanent(err)
		} else {
			err = newAPIError(resp.status, resp.header, resp.body)
			clear(resp.body)
			retry = rq.retry && resp.status == http.StatusServiceUnavailable
			if s, convErr := strconv.Atoi(resp.header.Get("Retry-After")); convErr == nil && s > 0 {
				retryAfter = min(time.Duration(s)*time.Second, maxRetryAfter)
			}
		}
		if retry && len(c.endpoints) > 1 {
			// Another server may answer at once (failover.go).
			c.moveOn(ep)
			if tried < len(c.endpoints) && ctx.Err() == nil {
				tried++
				attempt--
				continue
			}
		}
		tried = 1
		if !retry || attempt > c.retries || ctx.Err() != nil {
			return nil, err
		}
		delay := c.backoff(attempt)
		if retryAfter > 0 {
			delay = retryAfter
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("keyward: giving up after %d attempt(s): %w; last error: %w", attempt, ctx.Err(), err)
		case <-t.C:
		}
	}
}

// backoff is the delay before retry number n (1-based): the base delay
// doubled n-1 times, capped, with the upper half jittered.
func (c *Client) backoff(n int) time.Duration {
	d := c.baseDelay
	for i := 1; i < n && d < maxRetryDelay; i++ {
		d *= 2
	}
	d = min(d, max(maxRetryDelay, c.baseDelay))
	if d <= 1 {
		return d
	}
	return d/2 + rand.N(d/2+1)
}

// isDialError reports an error that happened before any byte of the
// request was sent (connection refused, DNS failure): safe to retry for
// every call.
func isDialError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isPermanent reports a transport error that a retry would only repeat:
// the server's certificate is not trusted, or it does not speak TLS.
func isPermanent(err error) bool {
	var verr *tls.CertificateVerificationError
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var invalid x509.CertificateInvalidError
	var record tls.RecordHeaderError
	return errors.As(err, &verr) || errors.As(err, &unknownCA) || errors.As(err, &hostErr) ||
		errors.As(err, &invalid) || errors.As(err, &record) || errors.Is(err, errResponseTooLarge)
}

// attempt sends the request once to endpoint ep and reads the whole
// response.
func (c *Client) attempt(ctx context.Context, rq *request, ep int) (*response, error) {
	if c.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	target := c.endpoints[ep] + rq.path
	if len(rq.query) > 0 {
		target += "?" + rq.query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, rq.method, target, nil)
	if err != nil {
		return nil, err
	}
	if rq.body != nil {
		req.Body = rq.tracker.reader()
		req.ContentLength = int64(len(rq.body))
		req.GetBody = func() (io.ReadCloser, error) { return rq.tracker.reader(), nil }
		req.Header.Set("Content-Type", "application/json")
	}
	accept := rq.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if !rq.unsigned {
		c.signer.Sign(req, rq.body, c.now())
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	limit := rq.limit
	if limit == 0 {
		limit = maxResponseBody
	}
	data, err := readBody(resp.Body, resp.ContentLength, limit)
	if err != nil {
		return nil, err
	}
	return &response{status: resp.StatusCode, header: resp.Header, body: data}, nil
}

// call sends rq and decodes a JSON answer into out (nil: ignore the body).
// The response body is wiped after decoding.
func (c *Client) call(ctx context.Context, rq *request, out any) error {
	resp, err := c.send(ctx, rq)
	if err != nil {
		return err
	}
	defer clear(resp.body)
	if out == nil || len(bytes.TrimSpace(resp.body)) == 0 && resp.status == http.StatusNoContent {
		return nil
	}
	if err := json.Unmarshal(resp.body, out); err != nil {
		return fmt.Errorf("keyward: %s %s: decoding the response: %w", rq.method, rq.path, err)
	}
	return nil
}

// jsonBody encodes a request body that carries no secret.
func jsonBody(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil { // only the package's own request types are encoded
		panic("keyward client: encoding a request: " + err.Error())
	}
	return b
}

// admin is the path of an admin route.
func admin(route string) string { return AdminPrefix + route }
