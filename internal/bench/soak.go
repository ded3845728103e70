package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

// Soak (keyward bench --soak DURATION): hours of mixed load on one Keyward
// server, reported at intervals. Every worker cycles through generate,
// decrypt (a blob it made), describe and a list page, over a small key set
// (--keys, 8 by default); each interval is one step of the engine, near
// the end of which the server's /metrics are read: its resident memory
// (process_resident_memory_bytes), goroutines (go_goroutines) and open
// file descriptors (process_open_fds). The load then stops, the workers'
// connections close, and the server is read again until its goroutines
// and descriptors are back near where they were before the load (or
// SettleTimeout passes): a leak shows as counts that stay up, whatever the
// timings.

// SoakOptions drive a soak.
type SoakOptions struct {
	Duration, Interval time.Duration
	Concurrency        int
	// SettleTimeout bounds the wait for the counts to come back after the
	// load (20 s when zero).
	SettleTimeout time.Duration
}

// ServerStats are what a soak reads from the server's /metrics.
type ServerStats struct {
	RSSBytes   float64 `json:"rss_bytes"`
	Goroutines float64 `json:"goroutines"`
	OpenFDs    float64 `json:"open_fds"`
}

// SoakInterval is one interval of load.
type SoakInterval struct {
	Elapsed  float64          `json:"elapsed_s"`
	RPS      float64          `json:"req_per_s"`
	Requests int64            `json:"requests"`
	Errors   int64            `json:"errors"`
	ByStatus map[string]int64 `json:"errors_by_status,omitempty"`
	P99Ms    float64          `json:"p99_ms"`
	Server   ServerStats      `json:"server"`
}

// SoakResult is a whole soak.
type SoakResult struct {
	Before    ServerStats    `json:"before"`
	Intervals []SoakInterval `json:"intervals"`
	After     ServerStats    `json:"after"` // once the load stopped and settled
	Errors    int64          `json:"errors"`
	// Settled reports whether goroutines and descriptors came back within
	// the slack of Before.
	Settled bool `json:"settled"`
}

// Slack over the counts before the load that the counts after it may keep
// (the runtime's own background goroutines, a metrics connection).
const (
	SoakGoroutineSlack = 10
	SoakFDSlack        = 10
)

// RunSoak runs a soak against the Keyward target of o (o.Keys keys, 8 when
// zero), writing a line per interval to w (nil: none).
func RunSoak(ctx context.Context, o Options, so SoakOptions, w io.Writer) (SoakResult, error) {
	var res SoakResult
	if o.Endpoint == "" {
		return res, errors.New("a soak needs the Keyward target (--endpoint)")
	}
	if err := o.Validate(); err != nil {
		return res, err
	}
	if so.Duration <= 0 || so.Interval <= 0 || so.Concurrency < 1 {
		return res, errors.New("a soak needs a positive duration, interval and concurrency")
	}
	if so.SettleTimeout <= 0 {
		so.SettleTimeout = 20 * time.Second
	}
	if o.Keys == 0 {
		o.Keys = 8
	}
	if w == nil {
		w = io.Discard
	}
	log := o.Log
	if log == nil {
		log = io.Discard
	}
	setupClient := &http.Client{Transport: o.Transport(1), Timeout: 30 * time.Second}
	defer setupClient.CloseIdleConnections()
	endpoint := strings.TrimRight(o.Endpoint, "/")
	k := &keywardTarget{
		api:    endpoint + "/rustfs/admin/v3",
		signer: &sigv4.Signer{AccessKey: o.AccessKey, SecretKey: o.SecretKey, Region: "us-east-1", Service: "kms"},
		keyID:  o.KeyID, client: setupClient, now: o.Config.now, log: log,
		keys: o.Keys, prepare: o.Transport,
	}
	if err := k.setup(ctx); err != nil {
		return res, fmt.Errorf("keyward: %w", err)
	}
	scrape := func() (ServerStats, error) { return k.scrape(ctx, endpoint, setupClient) }
	var err error
	if res.Before, err = scrape(); err != nil {
		return res, err
	}
	fmt.Fprintf(w, "soak: %d workers, %d keys, %s in intervals of %s; the server before: %s\n",
		so.Concurrency, o.Keys, so.Duration, so.Interval, res.Before)
	fmt.Fprintf(w, "%9s %9s %8s %9s %9s %11s %6s\n", "elapsed", "req/s", "errors", "p99 ms", "RSS MiB", "goroutines", "fds")
	plan := k.mixPlan()
	step := o.Config
	step.Warmup, step.Requests, step.Progress = 0, 0, nil
	start := o.Config.now()
	for elapsed := time.Duration(0); elapsed < so.Duration; {
		step.Duration = min(so.Interval, so.Duration-elapsed)
		// The server is read while the interval's load runs, near its end.
		var stats ServerStats
		var scrapeErr error
		scraped := make(chan struct{})
		go func() {
			defer close(scraped)
			select {
			case <-ctx.Done():
				scrapeErr = ctx.Err()
			case <-time.After(step.Duration * 9 / 10):
				stats, scrapeErr = scrape()
			}
		}()
		row, err := step.RunStep(ctx, plan, so.Concurrency)
		<-scraped
		if err != nil {
			return res, err
		}
		if scrapeErr != nil {
			return res, scrapeErr
		}
		elapsed = o.Config.now().Sub(start)
		iv := SoakInterval{Elapsed: elapsed.Seconds(), RPS: row.RPS, Requests: row.Requests, Errors: row.Errors, ByStatus: row.ErrorsByStatus, P99Ms: row.P99Ms, Server: stats}
		res.Intervals = append(res.Intervals, iv)
		res.Errors += row.Errors
		fmt.Fprintf(w, "%9s %9.0f %8d %9.2f %9.1f %11.0f %6.0f\n", elapsed.Round(time.Second), iv.RPS, iv.Errors, iv.P99Ms,
			iv.Server.RSSBytes/(1<<20), iv.Server.Goroutines, iv.Server.OpenFDs)
		if row.Errors > 0 {
			fmt.Fprintf(w, "          errors %v; first: %s\n", row.ErrorsByStatus, row.FirstError)
		}
	}
	// The load is over and its connections are closed: wait for the
	// server's counts to come back.
	// Down to the count before (or within the slack for 3 s: a runtime
	// goroutine may come and go).
	deadline := time.Now().Add(so.SettleTimeout)
	var within time.Time
	for {
		if res.After, err = scrape(); err != nil {
			return res, err
		}
		res.Settled = res.After.Goroutines <= res.Before.Goroutines+SoakGoroutineSlack && res.After.OpenFDs <= res.Before.OpenFDs+SoakFDSlack
		if res.Settled && within.IsZero() {
			within = time.Now()
		}
		exact := res.After.Goroutines <= res.Before.Goroutines && res.After.OpenFDs <= res.Before.OpenFDs
		if exact || res.Settled && time.Since(within) >= 3*time.Second || time.Now().After(deadline) {
			break
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
	verdict := "back within the slack of the start"
	if !res.Settled {
		verdict = fmt.Sprintf("NOT back within %d goroutines and %d descriptors of the start", SoakGoroutineSlack, SoakFDSlack)
	}
	fmt.Fprintf(w, "after the load: %s (%s); %d errors in all\n", res.After, verdict, res.Errors)
	return res, nil
}

func (s ServerStats) String() string {
	return fmt.Sprintf("RSS %.1f MiB, %.0f goroutines, %.0f open fds", s.RSSBytes/(1<<20), s.Goroutines, s.OpenFDs)
}

// WriteSoakJSON writes a soak's result as indented JSON.
func WriteSoakJSON(w io.Writer, r SoakResult) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(r)
}

// scrape reads the server's process figures from its /metrics (signed:
// the server may require kms:ServiceControl for it).
func (k *keywardTarget) scrape(ctx context.Context, endpoint string, client *http.Client) (ServerStats, error) {
	r, err := http.NewRequestWithContext(ctx, "GET", endpoint+"/metrics", nil)
	if err != nil {
		return ServerStats{}, err
	}
	k.signer.Sign(r, nil, k.now())
	resp, err := client.Do(r)
	if err != nil {
		return ServerStats{}, fmt.Errorf("reading the server's /metrics: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return ServerStats{}, fmt.Errorf("reading the server's /metrics: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return ServerStats{}, fmt.Errorf("the server's /metrics: %s: %s", resp.Status, bytes.TrimSpace(body[:min(len(body), 300)]))
	}
	return parseServerStats(body)
}

// parseServerStats reads the three process series from Prometheus text.
func parseServerStats(body []byte) (ServerStats, error) {
	var s ServerStats
	found := map[string]bool{}
	sc := bufio.NewScanner(bytes.NewReader(body))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		var dst *float64
		switch name {
		case "process_resident_memory_bytes":
			dst = &s.RSSBytes
		case "go_goroutines":
			dst = &s.Goroutines
		case "process_open_fds":
			dst = &s.OpenFDs
		default:
			continue
		}
		v, err := strconv.ParseFloat(strings.TrimSpace(value), 64)
		if err != nil {
			return s, fmt.Errorf("the server's /metrics: %s %q: %v", name, value, err)
		}
		*dst, found[name] = v, true
	}
	for _, name := range []string{"process_resident_memory_bytes", "go_goroutines", "process_open_fds"} {
		if !found[name] {
			return s, fmt.Errorf("the server's /metrics lack %s", name)
		}
	}
	return s, nil
}

// mixRequester cycles through a worker's requests: generate, decrypt,
// describe, a list page.
type mixRequester struct {
	reqs []*template
	i    int
}

func (m *mixRequester) next() *template {
	t := m.reqs[m.i%len(m.reqs)]
	m.i++
	return t
}

func (m *mixRequester) Request(ctx context.Context) (*http.Request, error) {
	return m.next().Request(ctx)
}

func (m *mixRequester) wire() (*wireRequest, error) { return m.next().wire() }

// mixPlan is the soak's plan over the key set: each worker's requests are
// made once and kept across the intervals.
func (k *keywardTarget) mixPlan() Plan {
	var mu sync.Mutex
	made := map[int]*mixRequester{}
	s := k.set
	return Plan{Target: k.name(), Op: "mix", NewRequester: func(ctx context.Context, worker int) (Requester, error) {
		mu.Lock()
		defer mu.Unlock()
		if m := made[worker]; m != nil {
			return m, nil
		}
		key := s.setKey(worker)
		var dk struct {
			CiphertextBlob string `json:"ciphertext_blob"`
		}
		if err := k.call(ctx, "POST", "/kms/generate-data-key", k.generateBodyFor(key), &dk); err != nil {
			return nil, err
		}
		marker := keySetID(worker % max(s.n, 1))
		m := &mixRequester{reqs: []*template{
			k.tmpl("POST", "/kms/generate-data-key", k.generateBodyFor(key)),
			k.tmpl("POST", "/kms/decrypt", mustJSON(map[string]any{"ciphertext_blob": dk.CiphertextBlob, "encryption_context": benchContext})),
			k.tmpl("GET", "/kms/keys/"+url.PathEscape(key), nil),
			k.tmpl("GET", "/kms/keys?limit=100&marker="+url.QueryEscape(marker), nil),
		}}
		for _, t := range m.reqs {
			if err := t.build(); err != nil {
				return nil, err
			}
		}
		made[worker] = m
		return m, nil
	}}
}
