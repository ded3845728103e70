package metrics

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/keyring/keyringtest"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/kms/kmstest"
)

const keyRoute = "/rustfs/admin/v3/kms/keys/{key_id}"

// secretID is a concrete key id used in requests; it must never show up in
// a scrape.
const secretID = "tenant-7-payroll-key"

type scrape struct {
	text string
	fams map[string]*dto.MetricFamily
}

func doScrape(t *testing.T, m *Metrics) scrape {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("scrape: %d %s", rec.Code, rec.Body)
	}
	text := rec.Body.String()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return scrape{text: text, fams: fams}
}

// find returns the metric of family name whose labels include want; ok is
// false when there is none.
func (s scrape) find(name string, want map[string]string) (*dto.Metric, bool) {
	f := s.fams[name]
	if f == nil {
		return nil, false
	}
next:
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, lp := range m.Label {
			have[lp.GetName()] = lp.GetValue()
		}
		for k, v := range want {
			if have[k] != v {
				continue next
			}
		}
		return m, true
	}
	return nil, false
}

// value is a counter's or gauge's value, or a histogram's sample count.
func (s scrape) value(t *testing.T, name string, labels map[string]string) float64 {
	t.Helper()
	m, ok := s.find(name, labels)
	if !ok {
		t.Fatalf("no %s%v in scrape", name, labels)
	}
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return m.Untyped.GetValue()
}

func (s scrape) expect(t *testing.T, name string, labels map[string]string, want float64) {
	t.Helper()
	if got := s.value(t, name, labels); got != want {
		t.Errorf("%s%v = %v, want %v", name, labels, got, want)
	}
}

func l(kv ...string) map[string]string {
	m := map[string]string{}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = kv[i+1]
	}
	return m
}

func TestRequestMetrics(t *testing.T) {
	m := New()
	m.ObserveRequest(keyRoute, "GET", 200, 2*time.Millisecond)
	m.ObserveRequest(keyRoute, "GET", 200, 3*time.Millisecond)
	m.ObserveRequest(keyRoute, "GET", 200, 100*time.Microsecond)
	m.ObserveRequest(keyRoute, "GET", 404, time.Millisecond)
	m.ObserveRequest("/rustfs/admin/v3/kms/keys", "POST", 201, 4*time.Second)
	m.ObserveRequest(Unmatched, "BREW", 404, 0)
	m.ObserveRequest(Unmatched, "get", 999, 0)

	s := doScrape(t, m)
	s.expect(t, "keyward_http_requests_total", l("route", keyRoute, "method", "GET", "status", "200"), 3)
	s.expect(t, "keyward_http_requests_total", l("route", keyRoute, "method", "GET", "status", "404"), 1)
	s.expect(t, "keyward_http_requests_total", l("route", "/rustfs/admin/v3/kms/keys", "method", "POST", "status", "201"), 1)
	s.expect(t, "keyward_http_requests_total", l("route", Unmatched, "method", "other", "status", "404"), 1)
	s.expect(t, "keyward_http_requests_total", l("route", Unmatched, "method", "other", "status", "other"), 1)
	if n := len(s.fams["keyward_http_requests_total"].Metric); n != 5 {
		t.Errorf("%d request series, want 5", n)
	}

	h, _ := s.find("keyward_http_request_duration_seconds", l("route", keyRoute, "method", "GET"))
	if h.Histogram.GetSampleCount() != 4 || math.Abs(h.Histogram.GetSampleSum()-0.0061) > 1e-9 {
		t.Errorf("histogram count %d sum %v, want 4 and 0.0061", h.Histogram.GetSampleCount(), h.Histogram.GetSampleSum())
	}
	b := h.Histogram.Bucket
	if last := b[len(b)-1].GetUpperBound(); math.IsInf(last, 1) {
		b = b[:len(b)-1]
	}
	if b[0].GetUpperBound() != 0.00005 || b[len(b)-1].GetUpperBound() != 5 {
		t.Errorf("buckets span %v..%v, want 50µs..5s", b[0].GetUpperBound(), b[len(b)-1].GetUpperBound())
	}
	for _, bk := range b {
		if bk.GetUpperBound() == 0.0025 && bk.GetCumulativeCount() != 3 { // 0.1 ms, 1 ms, 2 ms
			t.Errorf("le=0.0025 holds %d, want 3", bk.GetCumulativeCount())
		}
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if s.fams[name] == nil {
			t.Errorf("%s missing: Go and process collectors not registered", name)
		}
	}
}

// TestNoKeyIDInLabels drives requests for a concrete key both the right way
// (pattern) and the wrong way (concrete path, caught by RestrictRoutes),
// then checks the id appears nowhere in the scrape.
func TestNoKeyIDInLabels(t *testing.T) {
	m := New()
	m.RestrictRoutes(keyRoute, "/rustfs/admin/v3/kms/keys")
	m.ObserveRequest(keyRoute, "GET", 200, time.Millisecond)
	m.ObserveRequest("/rustfs/admin/v3/kms/keys/"+secretID, "GET", 200, time.Millisecond)
	b := InstrumentEngine(newKeyring(), "local", m)
	ctx := context.Background()
	b.Create(ctx, kms.Metadata{ID: secretID, State: kms.StateEnabled})
	b.Describe(ctx, secretID)

	s := doScrape(t, m)
	if strings.Contains(s.text, secretID) {
		t.Fatalf("scrape contains the key id:\n%s", s.text)
	}
	s.expect(t, "keyward_http_requests_total", l("route", keyRoute, "method", "GET", "status", "200"), 1)
	s.expect(t, "keyward_http_requests_total", l("route", Unmatched, "method", "GET", "status", "200"), 1)
	allowed := map[string]bool{keyRoute: true, "/rustfs/admin/v3/kms/keys": true, Unmatched: true}
	for name, f := range s.fams {
		if !strings.HasPrefix(name, "keyward_") {
			continue
		}
		for _, mt := range f.Metric {
			for _, lp := range mt.Label {
				if lp.GetName() == "route" && !allowed[lp.GetValue()] {
					t.Errorf("%s has route %q", name, lp.GetValue())
				}
			}
		}
	}
}

func TestBackendAndSweeperMetrics(t *testing.T) {
	m := New()
	m.ObserveBackend("vault", OpWrap, time.Millisecond, nil)
	m.ObserveBackend("vault", OpWrap, time.Millisecond, nil)
	m.ObserveBackend("vault", OpWrap, time.Second, fmt.Errorf("%w: vault sealed", kms.ErrUnavailable))
	m.ObserveBackend("vault", OpWrap, time.Millisecond, fmt.Errorf("%w: k", kms.ErrNotFound))
	m.ObserveBackend("vault", OpDescribe, time.Millisecond, context.DeadlineExceeded)
	m.ObserveBackend("vault", OpDescribe, time.Millisecond, context.Canceled)
	m.SweeperRun(2, 1)
	m.SweeperRun(0, 0)
	m.SweeperError()

	s := doScrape(t, m)
	s.expect(t, "keyward_backend_calls_total", l("backend", "vault", "op", OpWrap), 4)
	s.expect(t, "keyward_backend_errors_total", l("backend", "vault", "op", OpWrap), 1)
	s.expect(t, "keyward_backend_call_duration_seconds", l("backend", "vault", "op", OpWrap), 4)
	s.expect(t, "keyward_backend_calls_total", l("backend", "vault", "op", OpDescribe), 2)
	s.expect(t, "keyward_backend_errors_total", l("backend", "vault", "op", OpDescribe), 1)
	s.expect(t, "keyward_sweeper_runs_total", nil, 2)
	s.expect(t, "keyward_sweeper_errors_total", nil, 1)
	s.expect(t, "keyward_keys_destroyed_total", nil, 2)
	s.expect(t, "keyward_keys_rotated_total", nil, 1)
}

func TestBoundsMetrics(t *testing.T) {
	m := New()
	m.UnauthenticatedBody(1 << 20)
	m.UnauthenticatedBody(1 << 20)
	m.UnauthenticatedBody(-(1 << 20))
	m.UnauthenticatedBodyRefused()
	m.UnauthenticatedBodyRefused()
	for range 3 {
		m.ConnOpened()
	}
	m.ConnClosed()
	s := doScrape(t, m)
	s.expect(t, "keyward_http_unauthenticated_body_bytes", nil, 1<<20)
	s.expect(t, "keyward_http_unauthenticated_body_refusals_total", nil, 2)
	s.expect(t, "keyward_http_connections_open", nil, 2)
	s.expect(t, "keyward_http_connections_accepted_total", nil, 3)
}

func newKeyring() *keyring.Keyring {
	return keyring.New(keyring.Options{
		Store: keyringtest.NewMemStore(), Sealer: keyringtest.NewGCMSealer(),
		Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now, CacheEntries: 10, CacheTTL: time.Minute,
	})
}

func TestInstrumentBackendCountsAndForwards(t *testing.T) {
	ctx := context.Background()
	m := New()
	inner := newKeyring()
	b := InstrumentEngine(inner, "local", m)

	svc := kms.NewService(b, kms.Options{Now: time.Now, Rand: rand.Reader})
	if _, err := svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k1"}); !errors.Is(err, kms.ErrExists) {
		t.Fatal(err)
	}
	if _, err := svc.DescribeKey(ctx, "missing"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatal(err)
	}
	_, blob, err := svc.Encrypt(ctx, "k1", []byte("hello"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Decrypt(ctx, blob, nil, ""); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Decrypt(ctx, blob, map[string]string{"wrong": "ctx"}, ""); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Fatal(err)
	}
	rotated, err := svc.RotateKey(ctx, "k1") // goes through the forwarded Rotate
	if err != nil || rotated.Version != 2 {
		t.Fatalf("rotate: %+v %v", rotated, err)
	}
	// The caller's own precondition and change errors are not failures.
	mine := errors.New("not now")
	if err := b.Destroy(ctx, "k1", func(kms.Metadata) error { return mine }); !errors.Is(err, mine) {
		t.Fatal(err)
	}
	if _, err := b.Update(ctx, "k1", func(*kms.Metadata) error { return mine }); !errors.Is(err, mine) {
		t.Fatal(err)
	}
	if err := b.Health(ctx); err != nil {
		t.Fatal(err)
	}
	if got, want := b.CacheStats(), inner.CacheStats(); got != want || got.Hits == 0 {
		t.Errorf("CacheStats %+v, inner %+v", got, want)
	}

	s := doScrape(t, m)
	calls := func(op string) float64 {
		return s.value(t, "keyward_backend_calls_total", l("backend", "local", "op", op))
	}
	for _, op := range []string{OpCreate, OpDescribe, OpWrap, OpUnwrap, OpRotate, OpDestroy, OpUpdate, OpHealth} {
		if calls(op) == 0 {
			t.Errorf("no %s calls counted", op)
		}
		s.expect(t, "keyward_backend_errors_total", l("backend", "local", "op", op), 0)
	}
	s.expect(t, "keyward_backend_calls_total", l("backend", "local", "op", OpCreate), 2)
	s.expect(t, "keyward_backend_calls_total", l("backend", "local", "op", OpUnwrap), 2)
	s.expect(t, "keyward_backend_calls_total", l("backend", "local", "op", OpRotate), 1)
	s.expect(t, "keyward_backend_calls_total", l("backend", "local", "op", OpDestroy), 1)
}

// stub is an Engine whose health, describe and rotate fail.
type stub struct{ kms.Engine }

var errDown = fmt.Errorf("%w: backend down", kms.ErrUnavailable)

func (stub) Health(context.Context) error { return errDown }
func (stub) Describe(context.Context, string) (kms.Metadata, error) {
	return kms.Metadata{}, errors.New("unexpected")
}
func (stub) Rotate(context.Context, string, func(kms.Metadata) error) (kms.Metadata, error) {
	return kms.Metadata{}, errDown
}
func (stub) CacheStats() cache.Stats { return cache.Stats{Hits: 7} }

func TestInstrumentBackendErrorsAndShapes(t *testing.T) {
	ctx := context.Background()
	m := New()
	b := InstrumentEngine(stub{}, "vault", m)
	b.Health(ctx)
	b.Health(ctx)
	b.Describe(ctx, "x")
	if _, err := b.Rotate(ctx, "x", nil); !errors.Is(err, errDown) {
		t.Error(err)
	}
	if b.CacheStats().Hits != 7 {
		t.Error("CacheStats not forwarded")
	}

	s := doScrape(t, m)
	s.expect(t, "keyward_backend_calls_total", l("backend", "vault", "op", OpHealth), 2)
	s.expect(t, "keyward_backend_errors_total", l("backend", "vault", "op", OpHealth), 2)
	s.expect(t, "keyward_backend_errors_total", l("backend", "vault", "op", OpDescribe), 1)
	s.expect(t, "keyward_backend_errors_total", l("backend", "vault", "op", OpRotate), 1)
}

// TestInstrumentedBackendConformance runs the backend conformance suite
// through the wrapper: it must be invisible.
func TestInstrumentedBackendConformance(t *testing.T) {
	m := New()
	kmstest.Run(t, func(t *testing.T) (kms.Engine, func() kms.Engine) {
		store, aliases, sealer := keyringtest.NewMemStore(), keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
		open := func() kms.Engine {
			return InstrumentEngine(keyring.New(keyring.Options{Store: store, Aliases: aliases, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now, CacheEntries: 10, CacheTTL: time.Minute}), "local", m)
		}
		return open(), open
	})
}

type fakeSource struct {
	mu       sync.Mutex
	keyCalls int
	keys     map[kms.State]int
	keysErr  error
	stats    cache.Stats
	hasCache bool
	backend  prometheus.Collector
}

func (f *fakeSource) CacheStats() (cache.Stats, bool) { return f.stats, f.hasCache }
func (f *fakeSource) Backend() prometheus.Collector   { return f.backend }

// fakeBackend is a backend's own collector: one gauge and one counter, as
// a Vault backend exports its token TTL and Transit batches.
func fakeBackend(ttl, batches float64) prometheus.Collector {
	reg := prometheus.NewPedanticRegistry()
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "keyward_vault_token_ttl_seconds", Help: "ttl"})
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "keyward_vault_transit_batch_requests_total", Help: "batches"})
	g.Set(ttl)
	c.Add(batches)
	reg.MustRegister(g, c)
	return collectorFunc(func(ch chan<- prometheus.Metric) { g.Collect(ch); c.Collect(ch) })
}

type collectorFunc func(chan<- prometheus.Metric)

func (collectorFunc) Describe(chan<- *prometheus.Desc)      {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }
func (f *fakeSource) KeysByState(context.Context) (map[kms.State]int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.keyCalls++
	return f.keys, f.keysErr
}

func TestSourceReadAtScrape(t *testing.T) {
	m := New()
	s := doScrape(t, m)
	for _, name := range []string{"keyward_cache_hits_total", "keyward_keys", "keyward_vault_token_ttl_seconds", "keyward_vault_transit_batch_requests_total"} {
		if s.fams[name] != nil {
			t.Errorf("%s present without a source", name)
		}
	}

	now := time.Unix(1000, 0)
	m.live.now = func() time.Time { return now }
	src := &fakeSource{
		keys:     map[kms.State]int{kms.StateEnabled: 5, kms.StatePendingDeletion: 2, "Weird": 9},
		stats:    cache.Stats{Hits: 10, Misses: 4, Evictions: 3, Entries: 6},
		hasCache: true, backend: fakeBackend(90, 7),
	}
	m.SetSource(src)
	s = doScrape(t, m)
	s.expect(t, "keyward_vault_transit_batch_requests_total", nil, 7)
	s.expect(t, "keyward_cache_hits_total", nil, 10)
	s.expect(t, "keyward_cache_misses_total", nil, 4)
	s.expect(t, "keyward_cache_evictions_total", nil, 3)
	s.expect(t, "keyward_cache_entries", nil, 6)
	s.expect(t, "keyward_vault_token_ttl_seconds", nil, 90)
	s.expect(t, "keyward_keys", l("state", "Enabled"), 5)
	s.expect(t, "keyward_keys", l("state", "Disabled"), 0)
	s.expect(t, "keyward_keys", l("state", "PendingDeletion"), 2)
	if n := len(s.fams["keyward_keys"].Metric); n != 3 {
		t.Errorf("%d keyward_keys series, want 3 (unknown states dropped)", n)
	}

	// Counts are reused within KeysMaxAge, refreshed after.
	src.keys = map[kms.State]int{kms.StateEnabled: 6}
	now = now.Add(KeysMaxAge - time.Second)
	doScrape(t, m).expect(t, "keyward_keys", l("state", "Enabled"), 5)
	now = now.Add(2 * time.Second)
	doScrape(t, m).expect(t, "keyward_keys", l("state", "Enabled"), 6)
	if src.keyCalls != 2 {
		t.Errorf("KeysByState called %d times, want 2", src.keyCalls)
	}

	// A failed count drops the series, counts the error, and is not retried
	// on the next scrape.
	src.keysErr = errDown
	now = now.Add(KeysMaxAge)
	s = doScrape(t, m)
	if s.fams["keyward_keys"] != nil {
		t.Error("keyward_keys present after a failed count")
	}
	s.expect(t, "keyward_keys_count_errors_total", nil, 1)
	doScrape(t, m)
	if src.keyCalls != 3 {
		t.Errorf("KeysByState called %d times, want 3", src.keyCalls)
	}

	// Not available: series omitted.
	m.SetSource(&fakeSource{})
	s = doScrape(t, m)
	for _, name := range []string{"keyward_cache_hits_total", "keyward_keys", "keyward_vault_token_ttl_seconds"} {
		if s.fams[name] != nil {
			t.Errorf("%s present with an empty source", name)
		}
	}
}

func TestServiceSource(t *testing.T) {
	ctx := context.Background()
	m := New()
	b := InstrumentEngine(newKeyring(), "local", m)
	svc := kms.NewService(b, kms.Options{Now: time.Now, Rand: rand.Reader})
	for _, id := range []string{"a", "b", "c", "d"} {
		if _, err := svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: id}); err != nil {
			t.Fatal(err)
		}
	}
	svc.DisableKey(ctx, "b")
	svc.ScheduleDeletion(ctx, "c", 7)
	svc.DescribeKey(ctx, "a")
	svc.DescribeKey(ctx, "a")

	running := true
	acquire := func() (*kms.Service, func(), error) {
		if !running {
			return nil, nil, kms.ErrUnavailable
		}
		return svc, func() {}, nil
	}
	m.SetSource(ServiceSource(acquire, nil))
	s := doScrape(t, m)
	s.expect(t, "keyward_keys", l("state", "Enabled"), 2)
	s.expect(t, "keyward_keys", l("state", "Disabled"), 1)
	s.expect(t, "keyward_keys", l("state", "PendingDeletion"), 1)
	if s.value(t, "keyward_cache_hits_total", nil) == 0 {
		t.Error("no cache hits read through the instrumented backend")
	}
	if s.fams["keyward_vault_token_ttl_seconds"] != nil {
		t.Error("vault TTL without a vault source")
	}

	m.SetSource(ServiceSource(acquire, func() prometheus.Collector { return fakeBackend(3600, 1) }))
	doScrape(t, m).expect(t, "keyward_vault_token_ttl_seconds", nil, 3600)

	running = false
	m.SetSource(ServiceSource(acquire, func() prometheus.Collector { return nil }))
	s = doScrape(t, m)
	if s.fams["keyward_keys"] != nil || s.fams["keyward_cache_hits_total"] != nil || s.fams["keyward_vault_token_ttl_seconds"] != nil {
		t.Error("key, cache or backend series while the service is not running")
	}
	s.expect(t, "keyward_keys_count_errors_total", nil, 0)
}

func TestNilMetrics(t *testing.T) {
	var m *Metrics
	m.ObserveRequest(keyRoute, "GET", 200, time.Millisecond)
	m.ObserveBackend("local", OpWrap, time.Millisecond, errDown)
	m.SweeperRun(1, 1)
	m.SweeperError()
	m.UnauthenticatedBody(10)
	m.UnauthenticatedBodyRefused()
	m.ConnOpened()
	m.ConnClosed()
	m.RestrictRoutes(keyRoute)
	m.SetSource(&fakeSource{})
	if m.Registry() != nil {
		t.Error("nil Metrics has a registry")
	}
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusNotFound {
		t.Errorf("nil Handler answered %d", rec.Code)
	}
	inner := newKeyring()
	if InstrumentEngine(inner, "local", m) != kms.Engine(inner) {
		t.Error("InstrumentBackend with nil Metrics wrapped the backend")
	}
}

func BenchmarkObserveRequest(b *testing.B) {
	m := New()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest(keyRoute, "POST", 200, 1500*time.Microsecond)
	}
}

func BenchmarkObserveRequestRestricted(b *testing.B) {
	m := New()
	m.RestrictRoutes(keyRoute, "/rustfs/admin/v3/kms/keys", "/rustfs/admin/v3/kms/status")
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest(keyRoute, "POST", 200, 1500*time.Microsecond)
	}
}

func BenchmarkObserveRequestParallel(b *testing.B) {
	m := New()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			m.ObserveRequest(keyRoute, "POST", 200, 1500*time.Microsecond)
		}
	})
}

// BenchmarkInstrumentedHealth is the decorator's overhead around a call
// that does nothing.
func BenchmarkInstrumentedHealth(b *testing.B) {
	w := InstrumentEngine(okBackend{}, "local", New())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		w.Health(ctx)
	}
}

type okBackend struct{ kms.Engine }

func (okBackend) Health(context.Context) error { return nil }

// A route's pre-resolved series count exactly as ObserveRequest does,
// from many goroutines, with statuses added as they come.
func TestRouteSeries(t *testing.T) {
	m := New()
	const route = "/rustfs/admin/v3/kms/generate-data-key"
	r := m.Route(route, "POST")
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				status := 200
				if i%10 == g%10 {
					status = 400 + g
				}
				r.Observe(status, time.Millisecond)
			}
		})
	}
	wg.Wait()
	m.ObserveRequest(route, "POST", 200, time.Millisecond)
	s := doScrape(t, m)
	want200 := 1.0
	for g := range 8 {
		want200 += 90
		s.expect(t, "keyward_http_requests_total", l("route", route, "method", "POST", "status", strconv.Itoa(400+g)), 10)
	}
	s.expect(t, "keyward_http_requests_total", l("route", route, "method", "POST", "status", "200"), want200)

	var nilMetrics *Metrics
	nilMetrics.Route(route, "POST").Observe(200, time.Second) // no panic
}
