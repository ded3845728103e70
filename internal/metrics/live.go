package metrics

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/keyward/keyward/internal/cache"
	"github.com/keyward/keyward/internal/kms"
)

// Source supplies the values read at scrape time rather than pushed as
// they change: the cache counters live in the running engine (which a
// reconfigure replaces), key counts are a property of the store, and each
// backend's own figures (the Vault token's TTL, Transit batching) come from
// the collector it exports. Each method may be called concurrently by
// overlapping scrapes.
type Source interface {
	// CacheStats returns the running engine's cache counters; ok is false
	// when the service is not running. The counters restart at zero when
	// the engine is rebuilt, which Prometheus treats as a counter reset.
	CacheStats() (stats cache.Stats, ok bool)
	// KeysByState counts keys by state. A nil map with a nil error means
	// "not available now" (service not running): the series are omitted.
	// It may be slow (it can list every key): Metrics calls it at most
	// once per KeysMaxAge and serves the cached counts in between.
	KeysByState(ctx context.Context) (map[kms.State]int, error)
	// Backend returns the running backend's own collector, nil when it has
	// none or the service is not running.
	Backend() prometheus.Collector
}

// ServiceSource is the Source for a server: acquire is the lifecycle
// manager's Acquire (so it always reads the current generation), and
// backend returns the current backend's collector (nil: none). A service
// that is not running yields no cache, key or backend series. Keys are
// counted by listing the engine, which shows up as "list" calls in the
// backend metrics.
func ServiceSource(acquire func() (*kms.Service, func(), error), backend func() prometheus.Collector) Source {
	return serviceSource{acquire, backend}
}

type serviceSource struct {
	acquire func() (*kms.Service, func(), error)
	backend func() prometheus.Collector
}

func (s serviceSource) CacheStats() (cache.Stats, bool) {
	svc, release, err := s.acquire()
	if err != nil {
		return cache.Stats{}, false
	}
	defer release()
	return svc.Engine().CacheStats(), true
}

func (s serviceSource) KeysByState(ctx context.Context) (map[kms.State]int, error) {
	svc, release, err := s.acquire()
	if err != nil {
		return nil, nil
	}
	defer release()
	return CountKeysByState(ctx, svc.Engine())
}

func (s serviceSource) Backend() prometheus.Collector {
	if s.backend == nil {
		return nil
	}
	return s.backend()
}

// CountKeysByState lists every key of b and counts them by state. It reads
// every record, so it is only meant to run behind the KeysMaxAge cache.
func CountKeysByState(ctx context.Context, b kms.Engine) (map[kms.State]int, error) {
	counts := map[kms.State]int{}
	after := ""
	for {
		page, err := b.List(ctx, after, kms.MaxListLimit)
		if err != nil {
			return nil, err
		}
		for _, k := range page.Keys {
			counts[k.State]++
		}
		if !page.More || page.Last == "" {
			return counts, nil
		}
		after = page.Last
	}
}

// KeysMaxAge is how long key counts are reused before Source.KeysByState
// is asked again (also after a failure, so a broken backend is not listed
// on every scrape). Counting may read every key record (Vault: one request
// per key), so doing it per scrape would load the backend in proportion to
// the number of keys times the scrape rate.
const KeysMaxAge = 30 * time.Second

// keysTimeout bounds one count, below Prometheus' default scrape timeout.
const keysTimeout = 5 * time.Second

// SetSource installs the live-value source (replacing any previous one and
// its cached key counts). Until it is called, those series are absent.
func (m *Metrics) SetSource(s Source) {
	if m == nil {
		return
	}
	m.live.setSource(s)
}

// keyStates are the only values of the state label.
var keyStates = []kms.State{kms.StateEnabled, kms.StateDisabled, kms.StatePendingDeletion}

var (
	descCacheHits = prometheus.NewDesc("keyward_cache_hits_total",
		"Key cache hits of the running backend.", nil, nil)
	descCacheMisses = prometheus.NewDesc("keyward_cache_misses_total",
		"Key cache misses of the running backend.", nil, nil)
	descCacheEvictions = prometheus.NewDesc("keyward_cache_evictions_total",
		"Key cache evictions (size, expiry, invalidation) of the running backend.", nil, nil)
	descCacheEntries = prometheus.NewDesc("keyward_cache_entries",
		"Keys currently cached by the running backend.", nil, nil)
	descKeys = prometheus.NewDesc("keyward_keys",
		"Keys by state, counted at most every 30 s.", []string{"state"}, nil)
	descKeysErrors = prometheus.NewDesc("keyward_keys_count_errors_total",
		"Failed attempts to count keys by state.", nil, nil)
)

// liveCollector reads the Source when scraped.
type liveCollector struct {
	src    atomic.Pointer[sourceBox]
	now    func() time.Time
	maxAge time.Duration
	errs   atomic.Uint64

	mu      sync.Mutex // serializes key counting; guards the fields below
	counted time.Time  // when the last attempt finished (zero: never)
	counts  map[kms.State]int
	gen     uint64 // bumped by setSource, so a stale count is not stored
}

type sourceBox struct {
	s   Source
	gen uint64
}

func newLiveCollector() *liveCollector {
	return &liveCollector{now: time.Now, maxAge: KeysMaxAge}
}

func (c *liveCollector) setSource(s Source) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.gen++
	c.counted, c.counts = time.Time{}, nil
	if s == nil {
		c.src.Store(nil)
		return
	}
	c.src.Store(&sourceBox{s: s, gen: c.gen})
}

func (c *liveCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descCacheHits, descCacheMisses, descCacheEvictions, descCacheEntries, descKeys, descKeysErrors} {
		ch <- d
	}
}

func (c *liveCollector) Collect(ch chan<- prometheus.Metric) {
	box := c.src.Load()
	if box == nil {
		ch <- prometheus.MustNewConstMetric(descKeysErrors, prometheus.CounterValue, float64(c.errs.Load()))
		return
	}
	if st, ok := box.s.CacheStats(); ok {
		ch <- prometheus.MustNewConstMetric(descCacheHits, prometheus.CounterValue, float64(st.Hits))
		ch <- prometheus.MustNewConstMetric(descCacheMisses, prometheus.CounterValue, float64(st.Misses))
		ch <- prometheus.MustNewConstMetric(descCacheEvictions, prometheus.CounterValue, float64(st.Evictions))
		ch <- prometheus.MustNewConstMetric(descCacheEntries, prometheus.GaugeValue, float64(st.Entries))
	}
	if counts := c.keyCounts(box); counts != nil {
		for _, s := range keyStates {
			ch <- prometheus.MustNewConstMetric(descKeys, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	}
	ch <- prometheus.MustNewConstMetric(descKeysErrors, prometheus.CounterValue, float64(c.errs.Load()))
}

// backendCollector forwards a scrape to the running backend's own
// collector. It describes nothing, which makes it an unchecked collector:
// the backend, and so its series, change with the configuration.
type backendCollector struct{ live *liveCollector }

func (backendCollector) Describe(chan<- *prometheus.Desc) {}

func (b backendCollector) Collect(ch chan<- prometheus.Metric) {
	if box := b.live.src.Load(); box != nil {
		if c := box.s.Backend(); c != nil {
			c.Collect(ch)
		}
	}
}

// keyCounts returns counts no older than maxAge, counting again when they
// are. Overlapping scrapes wait for the one count in progress instead of
// starting their own. A failed count is remembered for maxAge too: the
// series disappear (rather than show stale numbers) and the error counter
// rises.
func (c *liveCollector) keyCounts(box *sourceBox) map[kms.State]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if box.gen != c.gen {
		return nil
	}
	if !c.counted.IsZero() && c.now().Sub(c.counted) < c.maxAge {
		return c.counts
	}
	ctx, cancel := context.WithTimeout(context.Background(), keysTimeout)
	defer cancel()
	counts, err := box.s.KeysByState(ctx)
	if err != nil {
		if !errors.Is(err, context.Canceled) {
			c.errs.Add(1)
		}
		counts = nil
	}
	c.counted, c.counts = c.now(), counts
	return counts
}
