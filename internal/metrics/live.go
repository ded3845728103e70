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
// they change: the cache counters live in the running backend (which a
// reconfigure replaces), key counts are a property of the store, and the
// Vault token's TTL is a deadline best turned into seconds when asked.
// Each method may be called concurrently by overlapping scrapes.
type Source interface {
	// CacheStats returns the running backend's cache counters; ok is false
	// when there is none (service not running, backend without a cache).
	// The counters restart at zero when the backend is rebuilt, which
	// Prometheus treats as a counter reset.
	CacheStats() (stats cache.Stats, ok bool)
	// KeysByState counts keys by state. A nil map with a nil error means
	// "not available now" (service not running): the series are omitted.
	// It may be slow (it can list every key): Metrics calls it at most
	// once per KeysMaxAge and serves the cached counts in between.
	KeysByState(ctx context.Context) (map[kms.State]int, error)
	// VaultTokenTTL returns the remaining lifetime of the Vault token; ok
	// is false when there is no Vault backend or the token never expires.
	VaultTokenTTL() (ttl time.Duration, ok bool)
	// TransitBatches returns the vault-transit backend's batch counters:
	// batch requests sent to Vault and the calls they carried; ok is false
	// for other backends. They restart at zero with the backend.
	TransitBatches() (requests, calls uint64, ok bool)
}

// SourceFuncs is a Source made of functions; a nil function means the
// value is not available.
type SourceFuncs struct {
	Cache    func() (cache.Stats, bool)
	Keys     func(ctx context.Context) (map[kms.State]int, error)
	VaultTTL func() (time.Duration, bool)
	Batches  func() (requests, calls uint64, ok bool)
}

// CacheStats calls s.Cache.
func (s SourceFuncs) CacheStats() (cache.Stats, bool) {
	if s.Cache == nil {
		return cache.Stats{}, false
	}
	return s.Cache()
}

// KeysByState calls s.Keys.
func (s SourceFuncs) KeysByState(ctx context.Context) (map[kms.State]int, error) {
	if s.Keys == nil {
		return nil, nil
	}
	return s.Keys(ctx)
}

// VaultTokenTTL calls s.VaultTTL.
func (s SourceFuncs) VaultTokenTTL() (time.Duration, bool) {
	if s.VaultTTL == nil {
		return 0, false
	}
	return s.VaultTTL()
}

// TransitBatches calls s.Batches.
func (s SourceFuncs) TransitBatches() (uint64, uint64, bool) {
	if s.Batches == nil {
		return 0, 0, false
	}
	return s.Batches()
}

// transitBatcher is implemented by the vault-transit backend.
type transitBatcher interface {
	TransitBatches() (requests, calls uint64)
}

// cacheStatser is implemented by backends with a cache (the keyring, and
// InstrumentBackend's wrapper around one).
type cacheStatser interface{ CacheStats() cache.Stats }

// ServiceSource is the Source for a server: acquire is the lifecycle
// manager's Acquire (so it always reads the current generation), vaultTTL
// is optional (nil: no Vault gauge). A service that is not running yields
// no cache or key series. Keys are counted by listing the backend, which
// shows up as "list" calls in the backend metrics when it is instrumented.
func ServiceSource(acquire func() (*kms.Service, func(), error), vaultTTL func() (time.Duration, bool)) Source {
	return SourceFuncs{
		Cache: func() (cache.Stats, bool) {
			svc, release, err := acquire()
			if err != nil {
				return cache.Stats{}, false
			}
			defer release()
			if cs, ok := svc.Backend().(cacheStatser); ok {
				return cs.CacheStats(), true
			}
			return cache.Stats{}, false
		},
		Keys: func(ctx context.Context) (map[kms.State]int, error) {
			svc, release, err := acquire()
			if err != nil {
				return nil, nil
			}
			defer release()
			return CountKeysByState(ctx, svc.Backend())
		},
		VaultTTL: vaultTTL,
		Batches: func() (uint64, uint64, bool) {
			svc, release, err := acquire()
			if err != nil {
				return 0, 0, false
			}
			defer release()
			b := svc.Backend()
			if w, ok := b.(interface{ Inner() kms.Backend }); ok {
				b = w.Inner()
			}
			if tb, ok := b.(transitBatcher); ok {
				r, c := tb.TransitBatches()
				return r, c, true
			}
			return 0, 0, false
		},
	}
}

// CountKeysByState lists every key of b and counts them by state. It reads
// every record, so it is only meant to run behind the KeysMaxAge cache.
func CountKeysByState(ctx context.Context, b kms.Backend) (map[kms.State]int, error) {
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
	descVaultTTL = prometheus.NewDesc("keyward_vault_token_ttl_seconds",
		"Remaining time to live of the Vault token.", nil, nil)
	descTransitBatches = prometheus.NewDesc("keyward_vault_transit_batch_requests_total",
		"Batch requests (two or more coalesced encrypt or decrypt calls) sent to Vault Transit by the vault-transit backend.", nil, nil)
	descTransitBatched = prometheus.NewDesc("keyward_vault_transit_batched_calls_total",
		"Encrypt and decrypt calls sent inside those batch requests.", nil, nil)
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
	for _, d := range []*prometheus.Desc{descCacheHits, descCacheMisses, descCacheEvictions, descCacheEntries, descKeys, descKeysErrors, descVaultTTL, descTransitBatches, descTransitBatched} {
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
	if ttl, ok := box.s.VaultTokenTTL(); ok {
		ch <- prometheus.MustNewConstMetric(descVaultTTL, prometheus.GaugeValue, max(ttl, 0).Seconds())
	}
	if requests, calls, ok := box.s.TransitBatches(); ok {
		ch <- prometheus.MustNewConstMetric(descTransitBatches, prometheus.CounterValue, float64(requests))
		ch <- prometheus.MustNewConstMetric(descTransitBatched, prometheus.CounterValue, float64(calls))
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
