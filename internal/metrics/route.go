package metrics

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// RouteSeries are the request series of one route and method, resolved
// once. ObserveRequest finds its series by hashing the label values under
// the vector's lock on every request; a route that keeps its RouteSeries
// pays that once per status it ever answers.
type RouteSeries struct {
	m             *Metrics
	route, method string
	dur           prometheus.Observer

	mu       sync.Mutex                     // serializes additions to byStatus
	byStatus atomic.Pointer[[]statusSeries] // copy on write; a handful of entries
}

type statusSeries struct {
	status int
	count  prometheus.Counter
}

// Route returns the series of route (a pattern of the route table, as for
// ObserveRequest) and method. A nil Metrics gives a nil RouteSeries, whose
// Observe does nothing.
func (m *Metrics) Route(route, method string) *RouteSeries {
	if m == nil {
		return nil
	}
	method = normalizeMethod(method)
	r := &RouteSeries{m: m, route: route, method: method, dur: m.requestDur.WithLabelValues(route, method)}
	r.byStatus.Store(&[]statusSeries{})
	return r
}

// Observe records one finished request, as ObserveRequest does.
func (r *RouteSeries) Observe(status int, d time.Duration) {
	if r == nil {
		return
	}
	r.counter(status).Inc()
	r.dur.Observe(d.Seconds())
}

func (r *RouteSeries) counter(status int) prometheus.Counter {
	for _, s := range *r.byStatus.Load() {
		if s.status == status {
			return s.count
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.byStatus.Load()
	for _, s := range old { // added meanwhile
		if s.status == status {
			return s.count
		}
	}
	c := r.m.requests.WithLabelValues(r.route, r.method, statusLabel(status))
	grown := append(old[:len(old):len(old)], statusSeries{status, c})
	r.byStatus.Store(&grown)
	return c
}
