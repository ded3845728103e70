package httpapi

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

// KES server routes (docs/kes-api.md): version, readiness, status, the API
// list, metrics and the caller's own identity. Any known identity may call
// them, except /v1/metrics, which follows --metrics-auth like /metrics.

func (s *Server) kesVersion(c *kesCall) error {
	writeJSON(c.w, http.StatusOK, struct {
		Version string `json:"version"`
		Commit  string `json:"commit,omitempty"`
	}{Version: s.kes.Version})
	return nil
}

// kesReady answers 200 while the KMS service runs and its backend answers.
func (s *Server) kesReady(c *kesCall) error {
	ctx, cancel := context.WithTimeout(c.ctx, 3*time.Second)
	defer cancel()
	if err := s.opts.Manager.Ready(ctx); err != nil {
		return fmt.Errorf("key store is unavailable: %w", err)
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// kesStatusResponse is the status as kms-go/kes v0.3.1 reads it
// (keystore_latency is a Go time.Duration: nanoseconds).
type kesStatusResponse struct {
	Version             string  `json:"version"`
	OS                  string  `json:"os"`
	Arch                string  `json:"arch"`
	UpTime              float64 `json:"uptime"`
	CPUs                int     `json:"num_cpu"`
	UsableCPUs          int     `json:"num_cpu_used"`
	HeapAlloc           uint64  `json:"mem_heap_used"`
	StackAlloc          uint64  `json:"mem_stack_used"`
	KeyStoreLatency     int64   `json:"keystore_latency,omitempty"`
	KeyStoreUnreachable bool    `json:"keystore_unreachable,omitempty"`
	KeyStoreUnavailable bool    `json:"keystore_unavailable,omitempty"`
}

func (s *Server) kesStatus(c *kesCall) error {
	ctx, cancel := context.WithTimeout(c.ctx, 3*time.Second)
	defer cancel()
	start := time.Now()
	err := s.opts.Manager.Ready(ctx)
	latency := time.Since(start)
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	resp := kesStatusResponse{
		Version: s.kes.Version, OS: runtime.GOOS, Arch: runtime.GOARCH,
		UpTime: time.Since(s.kes.Started).Round(time.Second).Seconds(),
		CPUs:   runtime.NumCPU(), UsableCPUs: runtime.GOMAXPROCS(0),
		HeapAlloc: mem.HeapAlloc, StackAlloc: mem.StackSys,
	}
	if err != nil {
		// The KMS service is not running or its backend does not answer.
		resp.KeyStoreUnreachable, resp.KeyStoreUnavailable = true, true
	} else {
		resp.KeyStoreLatency = int64(max(latency, time.Microsecond))
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

// kesAPIResponse describes one route, as KES lists them.
type kesAPIResponse struct {
	Method  string `json:"method"`
	Path    string `json:"path"`
	MaxBody int64  `json:"max_body"`
	Timeout int64  `json:"timeout"` // seconds
}

func (s *Server) kesAPIs(c *kesCall) error {
	out := make([]kesAPIResponse, 0, len(s.kesRouteTable))
	for _, rt := range s.kesRouteTable {
		if rt.apiPath == "" {
			continue
		}
		out = append(out, kesAPIResponse{Method: rt.method, Path: rt.apiPath, MaxBody: rt.maxBody, Timeout: int64(rt.timeout / time.Second)})
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// kesMetricsAction is /v1/metrics's action: kms:ServiceControl with
// --metrics-auth (as /metrics), else none.
func (s *Server) kesMetricsAction() string {
	if s.opts.MetricsAuth {
		return "kms:ServiceControl"
	}
	return ""
}

// kesSelfDescribeResponse is the caller's identity as kms-go/kes reads it.
// Keyward's policies are IAM documents, not KES's path patterns: the
// answer names them and lists no allow or deny patterns.
type kesSelfDescribeResponse struct {
	Identity string `json:"identity"`
	IsAdmin  bool   `json:"admin"`
	Policy   string `json:"policy"`
}

func (s *Server) kesSelfDescribe(c *kesCall) error {
	policies, ok := s.kes.Identities.IdentityPolicies(c.identity)
	if !ok { // removed by a reload since the request began
		return errKESUnknownIdentity
	}
	writeJSON(c.w, http.StatusOK, kesSelfDescribeResponse{Identity: c.identity, Policy: strings.Join(policies, ",")})
	return nil
}

// kesLatencyBuckets are the upper bounds of /v1/metrics's response time
// histogram.
var kesLatencyBuckets = [...]time.Duration{
	10 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 1500 * time.Millisecond, 3 * time.Second, 5 * time.Second, 10 * time.Second,
}

// kesStats are the counters KES reports in /v1/metrics, for the KES API's
// requests: lock-free, a few atomic adds per request.
type kesStats struct {
	success, errors, failures atomic.Uint64 // 2xx/3xx, 4xx, 5xx
	active                    atomic.Int64
	buckets                   [len(kesLatencyBuckets)]atomic.Uint64
	sumNanos                  atomic.Uint64
}

func (k *kesStats) begin() { k.active.Add(1) }

func (k *kesStats) end(status int, d time.Duration) {
	k.active.Add(-1)
	switch {
	case status >= 500:
		k.failures.Add(1)
	case status >= 400:
		k.errors.Add(1)
	default:
		k.success.Add(1)
	}
	for i, b := range kesLatencyBuckets {
		if d <= b {
			k.buckets[i].Add(1)
			break
		}
	}
	k.sumNanos.Add(uint64(max(d, 0)))
}

// kesMetrics writes the KES metrics in the Prometheus text format, with
// KES's names, so that the client's Metrics call reads them.
func (s *Server) kesMetrics(c *kesCall) error {
	k := &s.kesStats
	var mem runtime.MemStats
	runtime.ReadMemStats(&mem)
	b := make([]byte, 0, 2048)
	metric := func(name, typ string, v float64) {
		b = append(b, "# TYPE "+name+" "+typ+"\n"+name+" "...)
		b = strconv.AppendFloat(b, v, 'g', -1, 64)
		b = append(b, '\n')
	}
	metric("kes_http_request_success", "counter", float64(k.success.Load()))
	metric("kes_http_request_error", "counter", float64(k.errors.Load()))
	metric("kes_http_request_failure", "counter", float64(k.failures.Load()))
	metric("kes_http_request_active", "gauge", float64(k.active.Load()))
	b = append(b, "# TYPE kes_http_response_time histogram\n"...)
	var cumulative uint64
	for i, le := range kesLatencyBuckets {
		cumulative += k.buckets[i].Load()
		b = append(b, `kes_http_response_time_bucket{le="`...)
		b = strconv.AppendFloat(b, le.Seconds(), 'g', -1, 64)
		b = append(b, `"} `...)
		b = strconv.AppendUint(b, cumulative, 10)
		b = append(b, '\n')
	}
	total := k.success.Load() + k.errors.Load() + k.failures.Load()
	b = append(b, `kes_http_response_time_bucket{le="+Inf"} `...)
	b = strconv.AppendUint(b, max(total, cumulative), 10)
	b = append(b, "\nkes_http_response_time_sum "...)
	b = strconv.AppendFloat(b, float64(k.sumNanos.Load())/1e9, 'g', -1, 64)
	b = append(b, "\nkes_http_response_time_count "...)
	b = strconv.AppendUint(b, max(total, cumulative), 10)
	b = append(b, '\n')
	metric("kes_system_up_time", "gauge", math.Round(time.Since(s.kes.Started).Seconds()))
	metric("kes_system_num_cpu", "gauge", float64(runtime.NumCPU()))
	metric("kes_system_num_cpu_used", "gauge", float64(runtime.GOMAXPROCS(0)))
	metric("kes_system_num_threads", "gauge", float64(runtime.NumGoroutine()))
	metric("kes_system_mem_heap_used", "gauge", float64(mem.HeapAlloc))
	metric("kes_system_mem_heap_objects", "gauge", float64(mem.HeapObjects))
	metric("kes_system_mem_stack_used", "gauge", float64(mem.StackSys))
	c.w.Header().Set("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
	c.w.WriteHeader(http.StatusOK)
	c.w.Write(b)
	return nil
}
