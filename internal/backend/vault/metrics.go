package vault

import "github.com/prometheus/client_golang/prometheus"

// The Vault backends' own figures, exported by Backend.Collector.
var (
	descTokenTTL = prometheus.NewDesc("keyward_vault_token_ttl_seconds",
		"Remaining time to live of the Vault token (absent for a token that never expires).", nil, nil)
	descTransitBatches = prometheus.NewDesc("keyward_vault_transit_batch_requests_total",
		"Batch requests (two or more coalesced encrypt or decrypt calls) sent to Vault Transit by the vault-transit backend.", nil, nil)
	descTransitBatched = prometheus.NewDesc("keyward_vault_transit_batched_calls_total",
		"Encrypt and decrypt calls sent inside those batch requests.", nil, nil)
)

// Collector exports the backend's own figures: the token's remaining TTL
// and, for vault-transit, the Transit batching counters (which restart at
// zero with the backend, a counter reset to Prometheus).
func (b *Backend) Collector() prometheus.Collector { return collector{b} }

type collector struct{ b *Backend }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTokenTTL
	ch <- descTransitBatches
	ch <- descTransitBatched
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	if ttl, ok := c.b.conn.TokenTTL(); ok {
		ch <- prometheus.MustNewConstMetric(descTokenTTL, prometheus.GaugeValue, ttl.Seconds())
	}
	if c.b.transit {
		requests, calls := c.b.conn.TransitBatches()
		ch <- prometheus.MustNewConstMetric(descTransitBatches, prometheus.CounterValue, float64(requests))
		ch <- prometheus.MustNewConstMetric(descTransitBatched, prometheus.CounterValue, float64(calls))
	}
}
