// Package httpapi is the admin HTTP API (docs/api.md): one route
// table where every route declares its method, path, action, body limit and
// timeout; one file per resource; one table mapping domain errors to HTTP
// status and code (errors.go).
package httpapi

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/sigv4"
	"github.com/keyward/keyward/internal/wipe"
)

// Prefix is where the admin routes live.
const Prefix = "/rustfs/admin/v3"

// MaxBody is the default request body cap (docs/api.md, "Bodies").
const MaxBody = 1 << 20

// Authenticator verifies request signatures in two steps, so that no body
// is read for a request whose headers do not verify (*sigv4.Verifier).
type Authenticator interface {
	// Begin checks everything but the body into p; p.BodyNeeded then says
	// whether the signature itself still depends on the body.
	Begin(r *http.Request, p *sigv4.Pending) error
	// Finish completes p with the body and returns the authenticated
	// access key.
	Finish(p *sigv4.Pending, body []byte) (accessKey string, err error)
}

// Authorizer decides whether an access key may perform an action on a
// resource ("arn:aws:kms:::key/<id>", or "*").
type Authorizer interface {
	// AllowedOnKey reports whether accessKey may do action on the key
	// keyID (resource arn:aws:kms:::key/<keyID>), or on the key-less
	// resource "*" when keyID is empty.
	AllowedOnKey(accessKey, action, keyID string) bool
	// AllowedOnAlias reports whether accessKey may do action on the alias
	// name ("alias/<name>"; resource arn:aws:kms:::alias/<name>).
	AllowedOnAlias(accessKey, action, name string) bool
}

// Options wire a Server.
type Options struct {
	Manager       *lifecycle.Manager
	Authenticator Authenticator
	Authorizer    Authorizer
	Log           *slog.Logger
	// RequestIDSeed makes request ids unique across restarts.
	RequestIDSeed uint64
	// Audit and Metrics may be nil.
	Audit   *audit.Logger
	Metrics *metrics.Metrics
	// MetricsAuth gates /metrics behind SigV4 and kms:ServiceControl;
	// otherwise it is served unauthenticated, like /health.
	MetricsAuth bool
	// UnauthenticatedBodyBytes bounds the bytes of request bodies read
	// before their sender is authenticated (see bodyBudget); 0 means
	// DefaultUnauthenticatedBodyBytes.
	UnauthenticatedBodyBytes int64
	// AWSAccountID is the account of the key ARNs of the AWS KMS door
	// (aws.go); "" means DefaultAWSAccountID.
	AWSAccountID string
	// KES, when set, serves the KES API (kes.go) next to the admin API.
	KES *KESOptions
}

// Server serves the API.
type Server struct {
	opts   Options
	mux    *http.ServeMux
	routes []*route
	// exact maps the admin paths without a wildcard to their handlers:
	// most requests name one, and a map lookup costs a tenth of the mux's
	// pattern matching (ServeHTTP).
	exact  map[string]http.Handler
	reqSeq atomic.Uint64
	bodies bodyBudget
	// The AWS KMS door (aws.go): its operations by name, and the route of
	// every other X-Amz-Target.
	awsOps         map[string]*route
	awsUnsupported *route
	// The KES API (kes.go); kes is nil when it is off.
	kes           *KESOptions
	kesRouteTable []*kesRoute
	kesStats      kesStats
}

// route is one admin endpoint.
type route struct {
	method string
	path   string // relative to Prefix (unless absolute); may hold one {key_id} wildcard
	// absolute: path is not under Prefix (/metrics).
	absolute bool
	action   string // the kms:* action it needs
	// alsoActions are further actions the handler checks on some of the
	// keys it names (re-encrypt: kms:ReEncryptTo on the destination, with
	// action kms:ReEncryptFrom on the source). Declared here so the route
	// table says everything a route can ask for.
	alsoActions []string
	maxBody     int64
	// streamBody: the handler reads the body as a stream (up to maxBody)
	// through call.stream instead of getting it in call.body; the request
	// must declare its payload hash so that it is authenticated before
	// the body is read (stream.go).
	streamBody bool
	timeout    time.Duration
	// service: the route needs the running KMS service (else 503).
	service bool
	// keyScoped: the route acts on keys named in the request, and is
	// authorized per key (resource arn:aws:kms:::key/<id>). Its handler can
	// reach the service only through call.authorize, so a key-scoped route
	// cannot skip its check: c.svc stays nil until then.
	keyScoped bool
	// aws: an operation of the AWS KMS door, answered in AWS's shapes.
	aws    bool
	handle func(*call) error
	// pattern is fullPath, computed once in New (metrics and audit use it
	// on every request); series are its request metrics.
	pattern string
	series  *metrics.RouteSeries
}

// fullPath is the route's pattern as served.
func (rt *route) fullPath() string {
	if rt.absolute {
		return rt.path
	}
	return Prefix + rt.path
}

// exchange is what a request in flight holds on every door: the request
// and its answer, the route's deadline, the key service, and what the
// audit line and the metrics need.
type exchange struct {
	w       http.ResponseWriter
	r       *http.Request
	ctx     context.Context
	body    []byte
	reqID   string
	svc     *kms.Service // set when the route uses the service (after authorize if key-scoped)
	pending *kms.Service // the acquired service of a key-scoped route

	// For the audit line and metrics.
	start time.Time
	rec   recorder
	code  string // error code, "" on success
	keyID string // the first key the call was authorized on
	// The route's deadline, kept in the call's one allocation.
	deadline deadlineCtx
}

// call is one admin or AWS request in flight.
type call struct {
	exchange
	auth      sigv4.Pending
	accessKey string // authenticated; "" until then
	route     *route
	srv       *Server
	// stream is the body of a streamBody route (stream.go); archive the
	// counts of a backup or restore, for the audit line.
	stream  *streamedBody
	archive *audit.ArchiveCounts
	// The request id header's value, in the call's allocation.
	reqIDHeader [1]string
}

// authorize checks the route's action on every named key (an empty id, a
// key not yet named, checks the key-less resource "*") and then makes the
// service available. It answers 403 whether or not a key exists.
func (c *call) authorize(keyIDs ...string) error {
	return c.authorizeAs(c.route.action, keyIDs...)
}

// authorizeAs is authorize with another of the route's actions (one of
// route.alsoActions). Like authorize, it releases the service only when
// every check passed; a handler that checks several actions calls it once
// per action, and the service is usable after the last successful one.
func (c *call) authorizeAs(action string, keyIDs ...string) error {
	c.svc = nil
	for _, id := range keyIDs {
		if c.keyID == "" {
			c.keyID = id
		}
		if !c.srv.opts.Authorizer.AllowedOnKey(c.accessKey, action, id) {
			return errAccessDenied
		}
	}
	c.svc = c.pending
	return nil
}

// resolveKey turns a key reference into the key id to authorize on: a key
// id as it is, an alias ("alias/<name>") into its key. A caller learns
// nothing from a missing alias unless it may use the route's action on
// every key (then it gets 404; anyone else 403, as for a key it may not
// use). It runs before authorization, on the pending service.
func (c *call) resolveKey(ref string) (string, error) {
	if !kms.IsAlias(ref) {
		return ref, nil
	}
	id, err := c.pending.ResolveKey(c.ctx, ref)
	if errors.Is(err, kms.ErrNotFound) && !c.srv.opts.Authorizer.AllowedOnKey(c.accessKey, c.route.action, "") {
		return "", errAccessDenied
	}
	return id, err
}

// mayDescribe reports whether the caller may see a key's metadata: a
// listing shows a key the caller may not describe by its id alone
// (docs/api.md, "GET /kms/keys"), so ListKeys cannot be used to read what
// DescribeKey denies.
func (c *call) mayDescribe(keyID string) bool {
	return c.srv.opts.Authorizer.AllowedOnKey(c.accessKey, "kms:DescribeKey", keyID)
}

// New builds the handler.
func New(o Options) *Server {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.UnauthenticatedBodyBytes <= 0 {
		o.UnauthenticatedBodyBytes = DefaultUnauthenticatedBodyBytes
	}
	s := &Server{opts: o, mux: http.NewServeMux(), kes: o.KES}
	s.bodies.limit = o.UnauthenticatedBodyBytes
	s.routes = append(s.routes, s.serviceRoutes()...)
	s.routes = append(s.routes, s.keyRoutes()...)
	s.routes = append(s.routes, s.keyStateRoutes()...)
	s.routes = append(s.routes, s.dataKeyRoutes()...)
	s.routes = append(s.routes, s.legacyRoutes()...)
	s.routes = append(s.routes, s.aliasRoutes()...)
	s.routes = append(s.routes, s.archiveRoutes()...)
	if o.MetricsAuth {
		s.routes = append(s.routes, &route{method: "GET", path: "/metrics", absolute: true, action: "kms:ServiceControl", timeout: 10 * time.Second, handle: s.metrics})
	} else {
		s.mux.Handle("GET /metrics", o.Metrics.Handler())
	}
	byPath := map[string][]*route{}
	var order, patterns []string
	for _, rt := range s.routes {
		rt.pattern = rt.fullPath()
		rt.series = o.Metrics.Route(rt.pattern, rt.method)
		p := rt.pattern
		if _, ok := byPath[p]; !ok {
			order = append(order, p)
			patterns = append(patterns, p)
		}
		byPath[p] = append(byPath[p], rt)
	}
	s.exact = map[string]http.Handler{}
	for _, p := range order {
		h := s.dispatch(byPath[p])
		s.mux.Handle(p, h)
		if !strings.Contains(p, "{") {
			s.exact[p] = h
		}
	}
	s.awsOps, s.awsUnsupported = s.awsRoutes(), newAWSUnsupported()
	for op, rt := range s.awsOps {
		rt.pattern = awsTargetPrefix + op
	}
	s.awsUnsupported.pattern = awsUnsupportedPattern
	for _, rt := range append(slices.Collect(maps.Values(s.awsOps)), s.awsUnsupported) {
		rt.series = o.Metrics.Route(rt.pattern, rt.method)
		patterns = append(patterns, rt.pattern)
	}
	s.mux.HandleFunc("POST /{$}", s.serveAWS)
	patterns = append(patterns, s.registerKES()...)
	o.Metrics.RestrictRoutes(patterns...)
	s.mux.HandleFunc("/health/live", s.live)
	s.mux.HandleFunc("/health/ready", s.ready)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		status, _ := s.writeError(w, r, s.newRequestID(), errRouteNotFound)
		s.opts.Metrics.ObserveRequest(metrics.Unmatched, r.Method, status, time.Since(start))
	})
	return s
}

// ServeHTTP implements http.Handler. The data plane's paths skip the mux:
// an admin path without a wildcard is one map lookup, and the AWS door is
// POST /. The mux would pick the same handler (TestExactRoutesAgreeWithMux);
// a path with escapes (RawPath set) goes to the mux, which owns the
// matching rules for those.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.RawPath == "" {
		if h, ok := s.exact[r.URL.Path]; ok {
			h.ServeHTTP(w, r)
			return
		}
		if r.URL.Path == "/" && r.Method == http.MethodPost {
			s.serveAWS(w, r)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// dispatch picks the route for the method; a known path with another
// method is 405.
func (s *Server) dispatch(routes []*route) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range routes {
			if rt.method == r.Method {
				s.serve(rt, w, r)
				return
			}
		}
		allow := make([]string, 0, len(routes))
		for _, rt := range routes {
			allow = append(allow, rt.method)
		}
		w.Header().Set("Allow", strings.Join(allow, ", "))
		start := time.Now()
		status, _ := s.writeError(w, r, s.newRequestID(), errMethodNotAllowed)
		s.opts.Metrics.ObserveRequest(routes[0].pattern, r.Method, status, time.Since(start))
	})
}

// serve runs the pipeline every admin route shares: request id, SigV4
// authentication of the headers, bounded body, authentication of the body,
// authorization, timeout, service acquisition; then one audit line and the
// request metrics, whatever the outcome.
func (s *Server) serve(rt *route, w http.ResponseWriter, r *http.Request) {
	c := &call{exchange: exchange{r: r, reqID: s.newRequestID(), start: time.Now()}, route: rt, srv: s}
	c.rec = recorder{ResponseWriter: w, status: http.StatusOK}
	c.w = &c.rec
	// Both names are canonical already (no allocation to canonicalize).
	c.reqIDHeader[0] = c.reqID
	if rt.aws {
		w.Header()["X-Amzn-Requestid"] = c.reqIDHeader[:] // where AWS SDKs look
	} else {
		w.Header()["X-Request-Id"] = c.reqIDHeader[:]
	}
	defer s.finish(c)
	// The headers first: a request whose signature does not verify is
	// answered without reading its body, unless the signature covers the
	// body's hash (no x-amz-content-sha256), and then the body is read
	// from the budget for unauthenticated bodies.
	if err := s.opts.Authenticator.Begin(r, &c.auth); err != nil {
		c.fail(err)
		return
	}
	if rt.streamBody {
		if err := s.openStream(c); err != nil {
			c.fail(err)
			return
		}
		s.serveAuthenticated(c)
		return
	}
	body, reserved, err := s.readBody(r, rt.maxBody, c.auth.BodyNeeded())
	if err != nil {
		if errors.Is(err, errBusy) {
			w.Header().Set("Retry-After", "1")
		}
		c.fail(err)
		return
	}
	c.body = body
	// Bodies can carry plaintext and secrets: wipe once the call is done.
	defer clear(body)
	c.accessKey, err = s.opts.Authenticator.Finish(&c.auth, body)
	s.releaseBody(reserved) // authenticated now, or refused
	if err != nil {
		c.fail(err)
		return
	}
	s.serveAuthenticated(c)
}

// serveAuthenticated is the rest of serve once the caller is known:
// authorization, timeout, service acquisition and the handler.
func (s *Server) serveAuthenticated(c *call) {
	rt := c.route
	if !rt.keyScoped && !s.opts.Authorizer.AllowedOnKey(c.accessKey, rt.action, "") {
		c.fail(errAccessDenied)
		return
	}
	s.runHandler(&c.exchange, rt.timeout, rt.service, rt.keyScoped, rt.path, c.fail, func() error { return rt.handle(c) })
}

// runHandler is the end of every door's pipeline once the caller may go
// on: the route's deadline, the key service (held until the handler
// returns; a key-scoped route's waits in pending until authorize) and the
// handler, whose panic is logged and answered as an internal error.
func (s *Server) runHandler(x *exchange, timeout time.Duration, service, keyScoped bool, path string, fail func(error), handle func() error) {
	x.deadline = deadlineCtx{Context: x.r.Context(), deadline: x.start.Add(timeout), now: time.Now}
	ctx := &x.deadline
	defer ctx.release()
	x.ctx = ctx
	if service {
		svc, release, err := s.opts.Manager.Acquire()
		if err != nil {
			fail(err)
			return
		}
		defer release()
		if keyScoped {
			x.pending = svc
		} else {
			x.svc = svc
		}
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler { // a streamed answer cut on purpose (stream.go)
				panic(p)
			}
			s.opts.Log.Error("handler panic", "request_id", x.reqID, "route", path, "panic", fmt.Sprint(p))
			fail(errInternal)
		}
	}()
	if err := handle(); err != nil {
		fail(err)
	}
}

// fail answers the call with the mapped error and remembers the code for
// the audit line.
func (c *call) fail(err error) {
	if c.route.aws {
		_, c.code = c.srv.writeAWSError(c.w, c.r, c.reqID, err)
		return
	}
	_, c.code = c.srv.writeError(c.w, c.r, c.reqID, err)
}

// finish writes the audit line and the request metrics. Neither carries
// key material: the audit event has fixed fields, and metric labels are
// route patterns.
func (s *Server) finish(c *call) {
	d := time.Since(c.start)
	pattern := c.route.pattern
	c.route.series.Observe(c.rec.status, d)
	accessKey := c.accessKey
	if accessKey == "" {
		// Authentication failed: the audit line names the access key the
		// request claimed (the event's code says the claim failed). This
		// is the only place a claimed key is used.
		accessKey = c.auth.ClaimedAccessKey()
	}
	s.opts.Audit.Record(audit.Event{
		Time: c.start, RequestID: c.reqID, AccessKey: accessKey, SourceAddr: c.r.RemoteAddr,
		Method: c.r.Method, Route: pattern, Action: c.route.action, KeyID: c.keyID,
		Status: c.rec.status, Code: c.code, Latency: d, Archive: c.archive,
	})
}

// recorder remembers the status a handler wrote.
type recorder struct {
	http.ResponseWriter
	status int
}

func (r *recorder) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

// readBody reads at most limit bytes; more is errTooLarge. A body may hold
// plaintext: wipe.ReadAll leaves no copy behind. The body of a request not
// yet authenticated first reserves its size (the limit when unknown) from
// the unauthenticated-body budget, or is refused with errBusy; the caller
// gives back the reservation with releaseBody.
func (s *Server) readBody(r *http.Request, limit int64, unauthenticated bool) (body []byte, reserved int64, err error) {
	if r.Body == nil || r.ContentLength == 0 {
		return nil, 0, nil
	}
	if r.ContentLength > limit {
		return nil, 0, errTooLarge
	}
	if unauthenticated {
		reserved = r.ContentLength
		if reserved < 0 {
			reserved = limit
		}
		if !s.bodies.reserve(reserved) {
			s.opts.Metrics.UnauthenticatedBodyRefused()
			return nil, 0, errBusy
		}
		s.opts.Metrics.UnauthenticatedBody(reserved)
	}
	buf, err := wipe.ReadAll(r.Body, r.ContentLength, limit)
	if err == nil {
		// Closed after EOF, the body tells net/http there is nothing left
		// to discard before the answer (it would otherwise try to read more).
		r.Body.Close()
		return buf, reserved, nil
	}
	if maxBytes := (*http.MaxBytesError)(nil); errors.Is(err, wipe.ErrTooLarge) || errors.As(err, &maxBytes) {
		err = errTooLarge
	} else {
		err = errBadBody
	}
	s.releaseBody(reserved)
	return nil, 0, err
}

// releaseBody gives back a reservation of readBody.
func (s *Server) releaseBody(reserved int64) {
	if reserved > 0 {
		s.bodies.release(reserved)
		s.opts.Metrics.UnauthenticatedBody(-reserved)
	}
}

func (s *Server) newRequestID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], s.opts.RequestIDSeed)
	binary.BigEndian.PutUint64(b[8:], s.reqSeq.Add(1))
	return hex.EncodeToString(b[4:])
}

// Routes lists "METHOD path action" for every admin route (for tests and
// documentation).
func (s *Server) Routes() []RouteInfo {
	out := make([]RouteInfo, 0, len(s.routes))
	for _, rt := range s.routes {
		out = append(out, RouteInfo{Method: rt.method, Path: rt.pattern, Action: rt.action})
	}
	return out
}

// RouteInfo describes one route.
type RouteInfo struct{ Method, Path, Action string }

var (
	errRouteNotFound    = errors.New("no such route")
	errMethodNotAllowed = errors.New("method not allowed on this route")
	errTooLarge         = errors.New("request body larger than the limit")
	errAccessDenied     = errors.New("access denied")
	errBadBody          = errors.New("the request body could not be read")
	errInternal         = errors.New("internal error")
	errBusy             = errors.New("too many request bodies are being received before their senders are authenticated; retry shortly, or declare the body's hash in x-amz-content-sha256 so that the request is authenticated before its body is read")
)
