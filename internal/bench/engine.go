// Package bench is the load generator behind `keyward bench`: it drives the
// hot paths of a Keyward server (generate-data-key, decrypt, encrypt,
// describe, list, create), Vault Transit directly, and a trivial net/http
// handler in a process of its own (the ceiling of an HTTP server on the
// machine, ceiling.go) with the same engine, in concurrency steps, and
// reports throughput and latency quantiles as a table or JSON.
//
// # Engine
//
// A step runs one target × operation at one concurrency: N workers, each
// with its own keep-alive HTTP/1.1 connection (wire.go), send
// requests back to back for a duration or until a request count is reached,
// after an unrecorded warm-up. Each worker records latencies in its own
// log-linear histogram (no locks, fixed memory, quantiles to within 0.4%);
// the histograms are merged when the step ends. Throughput and latencies
// count successful (2xx) requests; failures are counted by status.
//
// # Signing once, replaying
//
// Computing a SigV4 signature costs the client about as much CPU as
// verifying it costs the server, and the load generator usually shares the
// machine's cores with the server. To measure the server rather than the
// client, every worker signs its request template once and replays the same
// signed bytes: the server still verifies the signature (and the payload
// hash) on every request, exactly as for fresh signatures. A signature is
// accepted for 15 minutes around its X-Amz-Date, so a template is re-signed
// when it is older than 5 minutes. Requests whose body must differ each
// time (create, which needs a new key id) are signed per request; that op
// includes the client's signing cost.
//
// For decrypt, each worker gets its own ciphertext from one generate call
// made before the step (not timed).
package bench

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Requester produces the requests of one worker; it is called from that
// worker only.
type Requester interface {
	Request(ctx context.Context) (*http.Request, error)
}

// RequesterFunc adapts a function to Requester.
type RequesterFunc func(ctx context.Context) (*http.Request, error)

// Request calls f.
func (f RequesterFunc) Request(ctx context.Context) (*http.Request, error) { return f(ctx) }

// Plan is what a step runs: one operation of one target.
type Plan struct {
	Target, Op string
	// NewRequester prepares worker i (0-based) before the step starts;
	// its cost is not measured.
	NewRequester func(ctx context.Context, worker int) (Requester, error)
	// TLS, when set, replaces Config.TLS for this plan's connections (the
	// KES target's client certificate).
	TLS *tls.Config
}

// Config drives every step.
type Config struct {
	Duration time.Duration // per step, when Requests is 0
	Requests int64         // per step, when > 0
	Warmup   time.Duration // unrecorded load before each step
	Timeout  time.Duration // per request; 30 s when 0
	TLS      *tls.Config   // for https targets

	// Progress, when set, gets a progress line every ProgressInterval
	// (1 s when 0): rewritten in place with \r when ProgressTTY, else one
	// line each.
	Progress         io.Writer
	ProgressTTY      bool
	ProgressInterval time.Duration

	// NewTransport, when set, makes the workers send through an
	// http.Client with this transport instead of the engine's own HTTP/1.1
	// connection (wire.go): tests use it to inject latency or failures.
	NewTransport func(concurrency int) http.RoundTripper
	// Now is the clock (tests inject a fake one); nil for time.Now.
	Now func() time.Time
}

func (c *Config) now() time.Time {
	if c.Now != nil {
		return c.Now()
	}
	return time.Now()
}

// Transport is NewTransport's, or else a plain keep-alive transport (no
// proxy) for the setup calls made outside the measured steps.
func (c *Config) Transport(concurrency int) http.RoundTripper {
	if c.NewTransport != nil {
		return c.NewTransport(concurrency)
	}
	var tc *tls.Config
	if c.TLS != nil {
		tc = c.TLS.Clone()
	}
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: max(concurrency, 2),
		IdleConnTimeout:     90 * time.Second,
		TLSClientConfig:     tc,
		TLSHandshakeTimeout: 10 * time.Second,
		DisableCompression:  true,
	}
}

// Row is the result of one step.
type Row struct {
	Target         string           `json:"target"`
	Op             string           `json:"op"`
	Concurrency    int              `json:"concurrency"`
	Requests       int64            `json:"requests"` // completed, ok or not
	Errors         int64            `json:"errors"`
	ErrorsByStatus map[string]int64 `json:"errors_by_status,omitempty"` // "503", "transport", ...
	FirstError     string           `json:"first_error,omitempty"`
	Seconds        float64          `json:"seconds"`
	RPS            float64          `json:"req_per_s"` // successful requests per second
	P50Ms          float64          `json:"p50_ms"`
	P95Ms          float64          `json:"p95_ms"`
	P99Ms          float64          `json:"p99_ms"`
	MaxMs          float64          `json:"max_ms"`
	MeanMs         float64          `json:"mean_ms"`

	hist *Histogram
}

// Histogram returns the merged latency histogram of the successful requests.
func (r *Row) Histogram() *Histogram { return r.hist }

type worker struct {
	conn     *wireConn    // the engine's own HTTP/1.1 client (wire.go)
	client   *http.Client // instead, when Config.NewTransport is set
	req      Requester
	hist     Histogram
	errs     map[string]int64
	firstErr string
	last     time.Time // completion of the last recorded request
}

// shared is the state of a step that workers and the progress line share.
type shared struct {
	ok, failed atomic.Int64
	remaining  atomic.Int64 // request-count mode
}

// RunStep runs plan at the given concurrency. A cancelled ctx stops it
// early and returns ctx's error.
func (c *Config) RunStep(ctx context.Context, plan Plan, concurrency int) (Row, error) {
	if concurrency < 1 {
		return Row{}, fmt.Errorf("concurrency must be at least 1, got %d", concurrency)
	}
	if c.Requests <= 0 && c.Duration <= 0 {
		return Row{}, errors.New("a step needs a duration or a request count")
	}
	if plan.NewRequester == nil {
		return Row{}, fmt.Errorf("%s has no %s operation", plan.Target, plan.Op)
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 30 * time.Second
	}
	tlsConfig := c.TLS
	if plan.TLS != nil {
		tlsConfig = plan.TLS
	}
	workers := make([]*worker, concurrency)
	for i := range workers {
		rq, err := plan.NewRequester(ctx, i)
		if err != nil {
			return Row{}, fmt.Errorf("%s %s: preparing worker %d: %w", plan.Target, plan.Op, i, err)
		}
		w := &worker{req: rq, errs: map[string]int64{}}
		if c.NewTransport == nil {
			w.conn = &wireConn{tls: tlsConfig, timeout: timeout}
		} else {
			w.client = &http.Client{Transport: c.Transport(concurrency), Timeout: timeout,
				CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
		}
		workers[i] = w
	}
	defer func() {
		for _, w := range workers {
			if w.conn != nil {
				w.conn.close()
			} else {
				w.client.CloseIdleConnections()
			}
		}
	}()
	// A cancelled step stops at once, even mid-request.
	stopInterrupt := context.AfterFunc(ctx, func() {
		for _, w := range workers {
			if w.conn != nil {
				w.conn.interrupt()
			}
		}
	})
	defer stopInterrupt()

	var st shared
	st.remaining.Store(c.Requests)
	begin := c.now()
	measureStart := begin.Add(c.Warmup)
	var end time.Time
	if c.Requests <= 0 {
		end = measureStart.Add(c.Duration)
	}
	label := fmt.Sprintf("%s %s c=%d", plan.Target, plan.Op, concurrency)
	stopProgress := c.startProgress(label, &st, measureStart, end)

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c.work(ctx, w, &st, measureStart, end)
		}()
	}
	wg.Wait()
	stopProgress()
	if err := ctx.Err(); err != nil {
		return Row{}, err
	}

	row := Row{Target: plan.Target, Op: plan.Op, Concurrency: concurrency, hist: &Histogram{}}
	last := measureStart
	for _, w := range workers {
		row.hist.Merge(&w.hist)
		for k, n := range w.errs {
			if row.ErrorsByStatus == nil {
				row.ErrorsByStatus = map[string]int64{}
			}
			row.ErrorsByStatus[k] += n
			row.Errors += n
		}
		if row.FirstError == "" {
			row.FirstError = w.firstErr
		}
		if w.last.After(last) {
			last = w.last
		}
	}
	// In duration mode the window is at least the configured duration: a
	// worker can finish its last request a moment before end and only then
	// read the clock past it, so the newest completion may precede end.
	if !end.IsZero() && last.Before(end) {
		last = end
	}
	ok := int64(row.hist.Count())
	row.Requests = ok + row.Errors
	row.Seconds = last.Sub(measureStart).Seconds()
	if row.Seconds > 0 {
		row.RPS = float64(ok) / row.Seconds
	}
	row.P50Ms = ms(row.hist.Quantile(0.50))
	row.P95Ms = ms(row.hist.Quantile(0.95))
	row.P99Ms = ms(row.hist.Quantile(0.99))
	row.MaxMs = ms(row.hist.Max())
	row.MeanMs = ms(row.hist.Mean())
	return row, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// work is one worker's loop: warm-up until measureStart, then measured
// requests until end (duration mode) or until the shared count runs out.
func (c *Config) work(ctx context.Context, w *worker, st *shared, measureStart, end time.Time) {
	for ctx.Err() == nil && c.now().Before(measureStart) {
		c.do(ctx, w, st, false)
	}
	for ctx.Err() == nil {
		if end.IsZero() {
			if st.remaining.Add(-1) < 0 {
				return
			}
		} else if !c.now().Before(end) {
			return
		}
		c.do(ctx, w, st, true)
	}
}

// do sends one request and, when record is set, records its outcome.
func (c *Config) do(ctx context.Context, w *worker, st *shared, record bool) {
	var (
		status       int
		snippet      []byte
		method, path string
		t0, t1       time.Time
	)
	wr, req, err := w.next(ctx)
	if err != nil {
		if record {
			w.fail(st, "client", "building the request: "+err.Error())
		}
		return
	}
	if wr != nil {
		method, path = wr.method, wr.path
		t0 = c.now()
		status, snippet, err = w.conn.roundTrip(ctx, wr)
		t1 = c.now()
	} else {
		method, path = req.Method, req.URL.Path
		t0 = c.now()
		var resp *http.Response
		resp, err = w.client.Do(req)
		if err == nil {
			status = resp.StatusCode
			if status < 200 || status > 299 {
				snippet, _ = io.ReadAll(io.LimitReader(resp.Body, 300))
			}
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		t1 = c.now()
	}
	if !record || ctx.Err() != nil {
		return
	}
	w.last = t1
	switch {
	case err != nil:
		w.fail(st, "transport", err.Error())
	case status < 200 || status > 299:
		w.fail(st, strconv.Itoa(status), fmt.Sprintf("%s %s: %d %s", method, path, status, snippet))
	default:
		w.hist.Record(t1.Sub(t0))
		st.ok.Add(1)
	}
}

// next is the worker's next request: serialized for its wire connection
// (replayed as is when the requester keeps its bytes), or as an
// *http.Request for its http.Client.
func (w *worker) next(ctx context.Context) (*wireRequest, *http.Request, error) {
	if w.conn != nil {
		if wq, ok := w.req.(wireRequester); ok {
			wr, err := wq.wire()
			return wr, nil, err
		}
	}
	req, err := w.req.Request(ctx)
	if err != nil || w.conn == nil {
		return nil, req, err
	}
	wr, err := serialize(req)
	return wr, nil, err
}

func (w *worker) fail(st *shared, key, msg string) {
	w.errs[key]++
	if w.firstErr == "" {
		w.firstErr = msg
	}
	st.failed.Add(1)
}

// startProgress prints a progress line every interval until the returned
// function is called.
func (c *Config) startProgress(label string, st *shared, measureStart, end time.Time) func() {
	if c.Progress == nil {
		return func() {}
	}
	every := c.ProgressInterval
	if every <= 0 {
		every = time.Second
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		var prevOK int64
		prevAt := c.now()
		for {
			select {
			case <-done:
				if c.ProgressTTY {
					fmt.Fprint(c.Progress, "\r\033[K")
				}
				return
			case <-t.C:
			}
			now := c.now()
			var line string
			if now.Before(measureStart) {
				line = fmt.Sprintf("%-28s warming up (%s left)", label, measureStart.Sub(now).Round(100*time.Millisecond))
				prevOK, prevAt = st.ok.Load(), now
			} else {
				ok, failed := st.ok.Load(), st.failed.Load()
				rate := float64(ok-prevOK) / now.Sub(prevAt).Seconds()
				prevOK, prevAt = ok, now
				elapsed := now.Sub(measureStart).Round(time.Second)
				of := fmt.Sprintf("%d left", max(st.remaining.Load(), 0))
				if !end.IsZero() {
					of = "of " + end.Sub(measureStart).String()
				}
				line = fmt.Sprintf("%-28s %5s %-10s %10d ok %9.0f req/s %6d errors", label, elapsed, of, ok, rate, failed)
			}
			if c.ProgressTTY {
				fmt.Fprint(c.Progress, "\r\033[K"+line)
			} else {
				fmt.Fprintln(c.Progress, line)
			}
		}
	}()
	return func() { close(done); wg.Wait() }
}
