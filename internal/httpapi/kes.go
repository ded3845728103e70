package httpapi

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/kesid"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/metrics"
)

// The KES API (docs/kes-api.md): a third front door to the same key service,
// for MinIO and other clients of github.com/minio/kms-go/kes. Its routes
// live under /version and /v1/ on the admin API's listener. A caller is
// authenticated by its TLS client certificate: its identity is the hex
// SHA-256 of the certificate's public key (internal/kesid), pinned in the
// IAM file's "identities" list, and each route is authorized as the
// matching kms:* action on the key it names. Errors are KES's
// ({"message": ...}, kes_errors.go), since the client compares them as
// values.

// IdentityAuthorizer decides what a KES identity may do (*iam.Store).
type IdentityAuthorizer interface {
	// IdentityKnown reports whether the IAM file pins the identity.
	IdentityKnown(identity string) bool
	// IdentityAllowedOnKey is Authorizer.AllowedOnKey for an identity.
	IdentityAllowedOnKey(identity, action, keyID string) bool
	// IdentityPolicies returns the identity's policy names.
	IdentityPolicies(identity string) ([]string, bool)
}

// KESOptions turn the KES API on.
type KESOptions struct {
	Identities IdentityAuthorizer
	// Version is what GET /version and /v1/status report.
	Version string
	// Started is when the server started (/v1/status's uptime).
	Started time.Time
	// PageSize is the number of names of one key listing page (0:
	// DefaultKESPageSize; at most kms.MaxListLimit).
	PageSize int
}

// DefaultKESPageSize is the names per page of GET /v1/key/list.
const DefaultKESPageSize = kms.MaxListLimit

// kesRoute is one KES endpoint. Unlike the admin routes, a KES route has no
// SigV4 step: the caller is known from the TLS handshake before the body
// is read.
type kesRoute struct {
	method string
	// path is the ServeMux pattern without method, with at most one
	// wildcard ({name}, or {prefix...}); apiPath is the path KES lists in
	// /v1/api (the pattern without its wildcard).
	path, apiPath string
	// action is the kms:* action: checked on the named key when keyScoped,
	// else on the key-less resource; "" means any known identity.
	action    string
	keyScoped bool
	maxBody   int64
	timeout   time.Duration
	service   bool // needs the running KMS service (else 503)
	handle    func(*kesCall) error
	series    *metrics.RouteSeries
}

// kesCall is one KES request in flight.
type kesCall struct {
	exchange
	identity string // the caller's, "" until known
	route    *kesRoute
	srv      *Server
}

// authorize checks the route's action on the key and then releases the
// service, as call.authorize does for the admin routes: a KES handler can
// reach the service only through it.
func (c *kesCall) authorize(keyID string) error {
	c.svc = nil
	if c.keyID == "" {
		c.keyID = keyID
	}
	if !c.srv.kes.Identities.IdentityAllowedOnKey(c.identity, c.route.action, keyID) {
		return errAccessDenied
	}
	c.svc = c.pending
	return nil
}

// kesRoutes is the KES route table: every route kms-go/kes v0.3.1 calls
// that Keyward serves.
func (s *Server) kesRoutes() []*kesRoute {
	const t = 10 * time.Second
	return []*kesRoute{
		{method: "GET", path: "/version", apiPath: "/version", timeout: t, handle: s.kesVersion},
		{method: "GET", path: "/v1/ready", apiPath: "/v1/ready", timeout: t, handle: s.kesReady},
		{method: "GET", path: "/v1/status", apiPath: "/v1/status", timeout: t, handle: s.kesStatus},
		{method: "GET", path: "/v1/api", apiPath: "/v1/api", timeout: t, handle: s.kesAPIs},
		{method: "GET", path: "/v1/metrics", apiPath: "/v1/metrics", action: s.kesMetricsAction(), timeout: t, handle: s.kesMetrics},
		{method: "GET", path: "/v1/identity/self/describe", apiPath: "/v1/identity/self/describe", timeout: t, handle: s.kesSelfDescribe},
		{method: "POST", path: "/v1/key/create/{name}", apiPath: "/v1/key/create/", action: "kms:CreateKey", keyScoped: true, maxBody: 0, timeout: 30 * time.Second, service: true, handle: s.kesCreateKey},
		{method: "POST", path: "/v1/key/import/{name}", apiPath: "/v1/key/import/", action: "kms:CreateKey", keyScoped: true, maxBody: MaxBody, timeout: t, service: true, handle: s.kesImportKey},
		{method: "GET", path: "/v1/key/describe/{name}", apiPath: "/v1/key/describe/", action: "kms:DescribeKey", keyScoped: true, timeout: t, service: true, handle: s.kesDescribeKey},
		{method: "GET", path: "/v1/key/list/{prefix...}", apiPath: "/v1/key/list/", action: "kms:ListKeys", keyScoped: true, timeout: 30 * time.Second, service: true, handle: s.kesListKeys},
		{method: "GET", path: "/v1/key/list", apiPath: "", action: "kms:ListKeys", keyScoped: true, timeout: 30 * time.Second, service: true, handle: s.kesListKeys},
		{method: "DELETE", path: "/v1/key/delete/{name}", apiPath: "/v1/key/delete/", action: "kms:DeleteKey", keyScoped: true, timeout: 30 * time.Second, service: true, handle: s.kesDeleteKey},
		{method: "POST", path: "/v1/key/generate/{name}", apiPath: "/v1/key/generate/", action: "kms:GenerateDataKey", keyScoped: true, maxBody: MaxBody, timeout: t, service: true, handle: s.kesGenerateKey},
		{method: "POST", path: "/v1/key/encrypt/{name}", apiPath: "/v1/key/encrypt/", action: "kms:Encrypt", keyScoped: true, maxBody: MaxBody, timeout: t, service: true, handle: s.kesEncrypt},
		{method: "POST", path: "/v1/key/decrypt/{name}", apiPath: "/v1/key/decrypt/", action: "kms:Decrypt", keyScoped: true, maxBody: MaxBody, timeout: t, service: true, handle: s.kesDecrypt},
	}
}

// kesNotServed is the pattern of every other KES path (policies, enclaves,
// secrets, HMAC, logs, identity management): 501 in KES's format.
const kesNotServed = "/v1/"

// registerKES adds the KES routes to the mux and returns their patterns
// (the metrics' route label values).
func (s *Server) registerKES() []string {
	if s.kes == nil {
		return nil
	}
	k := *s.kes // the server's own copy
	s.kes = &k
	if s.kes.PageSize <= 0 || s.kes.PageSize > kms.MaxListLimit {
		s.kes.PageSize = DefaultKESPageSize
	}
	s.kesRouteTable = s.kesRoutes()
	byPath := map[string][]*kesRoute{}
	var order, patterns []string
	for _, rt := range s.kesRouteTable {
		rt.series = s.opts.Metrics.Route(rt.path, rt.method)
		if _, ok := byPath[rt.path]; !ok {
			order = append(order, rt.path)
			patterns = append(patterns, rt.path)
		}
		byPath[rt.path] = append(byPath[rt.path], rt)
	}
	for _, p := range order {
		s.mux.Handle(p, s.kesDispatch(byPath[p]))
	}
	notServed := &kesRoute{path: kesNotServed, timeout: 10 * time.Second, handle: func(*kesCall) error { return errKESNotServed }}
	notServed.series = s.opts.Metrics.Route(kesNotServed, "GET")
	s.mux.Handle(kesNotServed, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { s.serveKES(notServed, w, r) }))
	return append(patterns, kesNotServed)
}

// kesDispatch picks the route for the method; another method on a KES
// path is 405 (after the identity check, like every KES answer).
func (s *Server) kesDispatch(routes []*kesRoute) http.Handler {
	allow := make([]string, 0, len(routes))
	for _, rt := range routes {
		allow = append(allow, rt.method)
	}
	wrong := &kesRoute{path: routes[0].path, timeout: 10 * time.Second, handle: func(c *kesCall) error {
		c.w.Header().Set("Allow", strings.Join(allow, ", "))
		return errMethodNotAllowed
	}}
	wrong.series = routes[0].series
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, rt := range routes {
			if rt.method == r.Method {
				s.serveKES(rt, w, r)
				return
			}
		}
		s.serveKES(wrong, w, r)
	})
}

// kesIdentity is the identity of the request's client certificate, "" when
// it sent none (or the connection is not TLS). The certificate is not
// verified against any CA: the TLS handshake proved that the client holds
// its private key, and the identity (the public key's hash) is what the
// IAM file pins.
func kesIdentity(r *http.Request) string {
	if r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return ""
	}
	return kesid.Of(r.TLS.PeerCertificates[0])
}

// serveKES runs the pipeline every KES route shares: request id, identity,
// authorization of key-less routes, bounded body, timeout, service
// acquisition; then one audit line and the request metrics.
func (s *Server) serveKES(rt *kesRoute, w http.ResponseWriter, r *http.Request) {
	c := &kesCall{exchange: exchange{r: r, reqID: s.newRequestID(), start: time.Now()}, route: rt, srv: s}
	c.rec = recorder{ResponseWriter: w, status: http.StatusOK}
	c.w = &c.rec
	w.Header().Set("X-Request-Id", c.reqID)
	s.kesStats.begin()
	defer s.finishKES(c)
	// No certificate, or one the IAM file does not pin: 403 before
	// anything else, whatever the route (KES answers the same).
	id := kesIdentity(r)
	if id == "" || !s.kes.Identities.IdentityKnown(id) {
		c.fail(errKESUnknownIdentity)
		return
	}
	c.identity = id
	if rt.action != "" && !rt.keyScoped && !s.kes.Identities.IdentityAllowedOnKey(id, rt.action, "") {
		c.fail(errAccessDenied)
		return
	}
	// A route without a body ignores one, as KES does. Key-scoped routes
	// are authorized by their handler, on the key the path names, before
	// the body is parsed.
	if rt.maxBody > 0 {
		body, _, err := s.readBody(r, rt.maxBody, false)
		if err != nil {
			c.fail(err)
			return
		}
		c.body = body
		defer clear(body) // bodies carry plaintexts and data keys
	}
	s.runHandler(&c.exchange, rt.timeout, rt.service, rt.keyScoped, rt.path, c.fail, func() error { return rt.handle(c) })
}

// fail answers the call with the KES error and remembers the admin API's
// code of the same error for the audit line.
func (c *kesCall) fail(err error) {
	c.code = c.srv.writeKESError(c.w, c.r, c.reqID, err)
}

// finishKES writes the audit line and the request metrics (the route
// series shared with the admin API, and the KES counters of /v1/metrics).
func (s *Server) finishKES(c *kesCall) {
	d := time.Since(c.start)
	c.route.series.Observe(c.rec.status, d)
	s.kesStats.end(c.rec.status, d)
	identity := c.identity
	if identity == "" {
		// Unknown or absent: the audit line names the certificate's
		// identity all the same, so refused callers can be traced.
		identity = kesIdentity(c.r)
	}
	s.opts.Audit.Record(audit.Event{
		Time: c.start, RequestID: c.reqID, Identity: identity, SourceAddr: c.r.RemoteAddr,
		Method: c.r.Method, Route: c.route.path, Action: c.route.action, KeyID: c.keyID,
		Status: c.rec.status, Code: c.code, Latency: d,
	})
}

// kesKeyError turns the key service's answer about a key pending deletion
// into KES's "key does not exist": through the KES API a deleted key is
// gone at once, as in KES, although it stays recoverable through the admin
// API until its deletion window ends.
func (c *kesCall) kesKeyError(name string, err error) error {
	if !errors.Is(err, kms.ErrInvalidKeyState) {
		return err
	}
	if m, derr := c.svc.DescribeKey(c.ctx, name); derr == nil && m.State == kms.StatePendingDeletion {
		return fmt.Errorf("%w: key %q is pending deletion", kms.ErrNotFound, name)
	}
	return err
}
