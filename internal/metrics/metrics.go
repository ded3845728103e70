// Package metrics exposes Keyward's Prometheus metrics at /metrics
// (docs/operations.md, "Metrics"): HTTP requests by route and status with
// latency histograms, backend calls with latency and errors, cache
// counters, keys by state, sweeper activity, the Vault token's time to
// live, and the bounds on unauthenticated work (connections, body memory).
//
// Labels never carry key ids or material. Request metrics are labelled by
// the route PATTERN ("/rustfs/admin/v3/kms/keys/{key_id}"), never by the
// concrete path; methods outside the standard set become "other"; and
// RestrictRoutes can turn any route label not in the route table into
// "unmatched", so a caller's mistake cannot put an id into a label or let a
// client grow the number of series.
//
// Metrics has its own registry (not the global default one) so tests and a
// second server in one process cannot collide, and so only what is listed
// here is exported. A nil *Metrics is valid: every method does nothing and
// InstrumentBackend returns the backend unchanged, so wiring is optional.
//
// Wiring, in short:
//
//	m := metrics.New()
//	mux.Handle("/metrics", m.Handler())                 // unauthenticated, like /health
//	m.RestrictRoutes(patterns...)                       // optional: the route table's patterns
//	// per request, after the response is written:
//	m.ObserveRequest(routePattern, r.Method, status, time.Since(start))
//	// where backends are opened:
//	b = metrics.InstrumentBackend(b, cfg.BackendType, m)
//	// in the sweeper loop:
//	m.SweeperRun(destroyed, rotated); if err != nil { m.SweeperError() }
//	// once, at startup: live values read at scrape time
//	m.SetSource(metrics.ServiceSource(manager.Acquire, vaultTTL))
package metrics

import (
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Unmatched is the route label of a request that matched no route.
const Unmatched = "unmatched"

// latencyBuckets (seconds) span 50 µs (a cached unwrap) to 5 s (a Vault
// call at its timeout), about 2.5x apart so quantiles stay within a
// reasonable error across the whole range.
var latencyBuckets = []float64{
	0.00005, 0.0001, 0.00025, 0.0005,
	0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
	0.1, 0.25, 0.5, 1, 2.5, 5,
}

// Metrics holds every Keyward metric and the registry they are served from.
type Metrics struct {
	reg *prometheus.Registry

	requests   *prometheus.CounterVec
	requestDur *prometheus.HistogramVec

	backendCalls  *prometheus.CounterVec
	backendErrors *prometheus.CounterVec
	backendDur    *prometheus.HistogramVec

	sweeperRuns   prometheus.Counter
	sweeperErrors prometheus.Counter
	keysDestroyed prometheus.Counter
	keysRotated   prometheus.Counter

	unauthBodyBytes    prometheus.Gauge
	unauthBodyRefusals prometheus.Counter
	connsOpen          prometheus.Gauge
	connsAccepted      prometheus.Counter

	live *liveCollector

	// routes, when set, is the only set of route labels allowed.
	routes atomic.Pointer[map[string]struct{}]
}

// New builds the metrics and their registry, including the Go runtime and
// process collectors.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_http_requests_total",
			Help: "HTTP requests served, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		requestDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_http_request_duration_seconds",
			Help:    "Time to serve HTTP requests, by route pattern and method.",
			Buckets: latencyBuckets,
		}, []string{"route", "method"}),
		backendCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_backend_calls_total",
			Help: "Calls to the key backend, by backend type and operation.",
		}, []string{"backend", "op"}),
		backendErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "keyward_backend_errors_total",
			Help: "Backend calls that failed (unreachable, timed out, corrupt record, unexpected error); answers such as not found or invalid ciphertext are not failures.",
		}, []string{"backend", "op"}),
		backendDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "keyward_backend_call_duration_seconds",
			Help:    "Duration of calls to the key backend, by backend type and operation.",
			Buckets: latencyBuckets,
		}, []string{"backend", "op"}),
		sweeperRuns: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_sweeper_runs_total",
			Help: "Background sweeper runs (deletion sweep and automatic rotation).",
		}),
		sweeperErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_sweeper_errors_total",
			Help: "Sweeper runs that ended with an error.",
		}),
		keysDestroyed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_keys_destroyed_total",
			Help: "Keys destroyed by the sweeper after their deletion window.",
		}),
		keysRotated: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_keys_rotated_total",
			Help: "Keys rotated automatically by the sweeper.",
		}),
		unauthBodyBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_http_unauthenticated_body_bytes",
			Help: "Bytes of request bodies being read before their sender is authenticated (requests that declare no payload hash), out of the --max-body-memory budget.",
		}),
		unauthBodyRefusals: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_http_unauthenticated_body_refusals_total",
			Help: "Requests answered 503 because the --max-body-memory budget for bodies of not yet authenticated requests was exhausted.",
		}),
		connsOpen: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "keyward_http_connections_open",
			Help: "Client connections accepted and not yet closed (at most --max-connections).",
		}),
		connsAccepted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "keyward_http_connections_accepted_total",
			Help: "Client connections accepted. Connections beyond --max-connections wait in the listen backlog and are counted when accepted.",
		}),
		live: newLiveCollector(),
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requests, m.requestDur,
		m.backendCalls, m.backendErrors, m.backendDur,
		m.sweeperRuns, m.sweeperErrors, m.keysDestroyed, m.keysRotated,
		m.unauthBodyBytes, m.unauthBodyRefusals, m.connsOpen, m.connsAccepted,
		m.live, backendCollector{m.live},
	)
	return m
}

// Handler serves the registry in the Prometheus text format. Mount it at
// /metrics outside the signed admin routes (scrapers do not sign). On a
// nil *Metrics it answers 404.
func (m *Metrics) Handler() http.Handler {
	if m == nil {
		return http.NotFoundHandler()
	}
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// Registry is the registry behind Handler, for tests and for adding
// collectors elsewhere. Nil on a nil *Metrics.
func (m *Metrics) Registry() *prometheus.Registry {
	if m == nil {
		return nil
	}
	return m.reg
}

// RestrictRoutes limits the route label to patterns (plus "unmatched"):
// any other value is recorded as "unmatched". Pass every route pattern of
// the route table once at startup. Without it the route is trusted as
// given.
func (m *Metrics) RestrictRoutes(patterns ...string) {
	if m == nil {
		return
	}
	set := make(map[string]struct{}, len(patterns)+1)
	for _, p := range patterns {
		set[p] = struct{}{}
	}
	set[Unmatched] = struct{}{}
	m.routes.Store(&set)
}

// ObserveRequest records one finished HTTP request: route is the matched
// route PATTERN (never the concrete path, which may hold a key id) or
// "unmatched"; status the status written; d the time from arrival to the
// end of the response.
func (m *Metrics) ObserveRequest(route, method string, status int, d time.Duration) {
	if m == nil {
		return
	}
	if set := m.routes.Load(); set != nil {
		if _, ok := (*set)[route]; !ok {
			route = Unmatched
		}
	}
	method = normalizeMethod(method)
	m.requests.WithLabelValues(route, method, statusLabel(status)).Inc()
	m.requestDur.WithLabelValues(route, method).Observe(d.Seconds())
}

// ObserveBackend records one backend call. err is the call's result; only
// failures count as errors (see isFailure): a "not found" is an answer.
// InstrumentBackend calls it for every backend method; call it directly
// only for backend work that does not go through a kms.Backend.
func (m *Metrics) ObserveBackend(backend, op string, d time.Duration, err error) {
	if m == nil {
		return
	}
	m.backendCalls.WithLabelValues(backend, op).Inc()
	if isFailure(err) {
		m.backendErrors.WithLabelValues(backend, op).Inc()
	}
	m.backendDur.WithLabelValues(backend, op).Observe(d.Seconds())
}

// SweeperRun records one run of the background sweeper: how many keys it
// destroyed and how many it rotated (counted even when the run then
// failed part way).
func (m *Metrics) SweeperRun(destroyed, rotated int) {
	if m == nil {
		return
	}
	m.sweeperRuns.Inc()
	m.keysDestroyed.Add(float64(max(destroyed, 0)))
	m.keysRotated.Add(float64(max(rotated, 0)))
}

// SweeperError records a sweeper run that ended with an error (call it in
// addition to SweeperRun), so a sweeper that keeps failing can be alerted
// on.
func (m *Metrics) SweeperError() {
	if m == nil {
		return
	}
	m.sweeperErrors.Inc()
}

// UnauthenticatedBody records n bytes reserved (n > 0) or released (n < 0)
// for a body read before its sender is authenticated.
func (m *Metrics) UnauthenticatedBody(n int64) {
	if m == nil {
		return
	}
	m.unauthBodyBytes.Add(float64(n))
}

// UnauthenticatedBodyRefused records a request refused because the memory
// budget for unauthenticated bodies was exhausted.
func (m *Metrics) UnauthenticatedBodyRefused() {
	if m == nil {
		return
	}
	m.unauthBodyRefusals.Inc()
}

// ConnOpened records an accepted client connection, ConnClosed its end.
func (m *Metrics) ConnOpened() {
	if m == nil {
		return
	}
	m.connsAccepted.Inc()
	m.connsOpen.Inc()
}

// ConnClosed: see ConnOpened.
func (m *Metrics) ConnClosed() {
	if m == nil {
		return
	}
	m.connsOpen.Dec()
}

// normalizeMethod keeps the method label to a fixed set: the method comes
// from the client, and an unmatched route with an invented method would
// otherwise create a series per invention.
func normalizeMethod(method string) string {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut,
		http.MethodPatch, http.MethodDelete, http.MethodOptions:
		return method
	}
	return "other"
}

// statusLabels holds "100".."599" so the hot path does not allocate a
// string per request.
var statusLabels = func() (t [600]string) {
	for i := 100; i < len(t); i++ {
		t[i] = strconv.Itoa(i)
	}
	return t
}()

func statusLabel(status int) string {
	if status >= 100 && status < len(statusLabels) {
		return statusLabels[status]
	}
	return "other"
}
