package bench

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

func staticPlan(url string) Plan {
	return Plan{Target: "test", Op: "get", NewRequester: func(context.Context, int) (Requester, error) {
		return prepared(&template{method: "POST", url: url, body: []byte(`{"x":1}`), base: http.Header{"Content-Type": {"application/json"}}})
	}}
}

// The server sees exactly the requests the row reports, and failures are
// counted by status, not in the latencies.
func TestEngineCountsRequestsAndErrors(t *testing.T) {
	var n atomic.Int64
	conns := map[string]bool{}
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		conns[r.RemoteAddr] = true
		mu.Unlock()
		if body, _ := io.ReadAll(r.Body); string(body) != `{"x":1}` {
			t.Errorf("body %q", body)
		}
		if n.Add(1)%10 == 0 {
			http.Error(w, `{"code":"ServiceUnavailable"}`, http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()

	cfg := Config{Requests: 1000}
	row, err := cfg.RunStep(context.Background(), staticPlan(srv.URL), 4)
	if err != nil {
		t.Fatal(err)
	}
	if n.Load() != 1000 || row.Requests != 1000 {
		t.Fatalf("server saw %d requests, row says %d; want 1000", n.Load(), row.Requests)
	}
	if row.Errors != 100 || row.ErrorsByStatus["503"] != 100 || len(row.ErrorsByStatus) != 1 {
		t.Fatalf("errors %d %v, want 100 503s", row.Errors, row.ErrorsByStatus)
	}
	if !strings.Contains(row.FirstError, "503") || !strings.Contains(row.FirstError, "ServiceUnavailable") {
		t.Errorf("first error %q", row.FirstError)
	}
	if row.Histogram().Count() != 900 || row.RPS <= 0 || row.P50Ms <= 0 || row.P50Ms > row.P99Ms || row.P99Ms > row.MaxMs {
		t.Errorf("implausible row %+v", row)
	}
	if len(conns) != 4 { // one keep-alive connection per worker
		t.Errorf("%d connections for 4 workers", len(conns))
	}
}

// A handler with a known latency floor: every latency is at least the
// sleep, warm-up requests reach the server but are not counted, the step
// lasts its duration, and the progress line is written.
func TestEngineDurationWarmupAndProgress(t *testing.T) {
	var n atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n.Add(1)
		time.Sleep(3 * time.Millisecond)
		w.Write([]byte(`{}`))
	}))
	defer srv.Close()
	var progress bytes.Buffer
	var pmu sync.Mutex
	cfg := Config{Duration: 400 * time.Millisecond, Warmup: 150 * time.Millisecond,
		Progress:         writerFunc(func(p []byte) (int, error) { pmu.Lock(); defer pmu.Unlock(); return progress.Write(p) }),
		ProgressInterval: 50 * time.Millisecond}
	row, err := cfg.RunStep(context.Background(), staticPlan(srv.URL), 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.Errors != 0 || row.Requests < 10 {
		t.Fatalf("row %+v", row)
	}
	if n.Load() <= row.Requests {
		t.Errorf("server saw %d requests, row %d: warm-up requests missing", n.Load(), row.Requests)
	}
	if min := row.Histogram().Min(); min < 3*time.Millisecond {
		t.Errorf("min latency %v below the handler's 3ms sleep", min)
	}
	// 2 workers × 400ms / ≥3ms each: at most ~267 requests.
	if row.Requests > 270 {
		t.Errorf("%d requests in 400ms at 2 workers with a 3ms handler", row.Requests)
	}
	if row.Seconds < 0.4 || row.Seconds > 2 {
		t.Errorf("step lasted %.3fs, want ~0.4s", row.Seconds)
	}
	pmu.Lock()
	out := progress.String()
	pmu.Unlock()
	if !strings.Contains(out, "test get c=2") || !strings.Contains(out, "warming up") || !strings.Contains(out, "req/s") {
		t.Errorf("progress output:\n%s", out)
	}
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// fakeClock is a clock that only the fake transport advances.
type fakeClock struct{ ns atomic.Int64 }

var epoch = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)

func (c *fakeClock) Now() time.Time          { return epoch.Add(time.Duration(c.ns.Load())) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// latencyTransport answers 200 at once and advances the clock by the next
// latency of its list.
type latencyTransport struct {
	clock *fakeClock
	lat   []time.Duration
	i     int
}

func (l *latencyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	l.clock.Advance(l.lat[l.i%len(l.lat)])
	l.i++
	return &http.Response{StatusCode: 200, Body: io.NopCloser(strings.NewReader("{}")), Header: http.Header{}, Request: r}, nil
}

// With an injected clock the quantiles are exact to the histogram's
// resolution: latencies 1..1000 ms in random order.
func TestEngineQuantilesWithFakeClock(t *testing.T) {
	clock := &fakeClock{}
	lat := make([]time.Duration, 1000)
	for i, p := range rand.New(rand.NewPCG(5, 6)).Perm(1000) {
		lat[i] = time.Duration(p+1) * time.Millisecond
	}
	cfg := Config{Requests: 1000, Now: clock.Now,
		NewTransport: func(int) http.RoundTripper { return &latencyTransport{clock: clock, lat: lat} }}
	row, err := cfg.RunStep(context.Background(), staticPlan("http://fake.invalid/"), 1)
	if err != nil {
		t.Fatal(err)
	}
	if row.Requests != 1000 || row.Errors != 0 {
		t.Fatalf("row %+v", row)
	}
	h := row.Histogram()
	for _, c := range []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"p50", h.Quantile(0.5), 500 * time.Millisecond},
		{"p95", h.Quantile(0.95), 950 * time.Millisecond},
		{"p99", h.Quantile(0.99), 990 * time.Millisecond},
	} {
		if !within(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	if row.MaxMs != 1000 || row.MeanMs != 500.5 {
		t.Errorf("max %v mean %v, want 1000 and 500.5", row.MaxMs, row.MeanMs)
	}
	if row.Seconds != 500.5 || row.RPS != 1000/500.5 {
		t.Errorf("seconds %v rps %v, want 500.5 and %v", row.Seconds, row.RPS, 1000/500.5)
	}
	if row.P50Ms < 498 || row.P50Ms > 502 || row.P99Ms < 986 || row.P99Ms > 994 {
		t.Errorf("row quantiles p50 %v p99 %v", row.P50Ms, row.P99Ms)
	}
}

// A replayed template keeps its signature (same header map) until it is
// older than resignAfter, then gets a fresh X-Amz-Date and signature.
func TestTemplateReplaysThenResigns(t *testing.T) {
	clock := &fakeClock{}
	tm := &template{method: "POST", url: "http://127.0.0.1:9000/rustfs/admin/v3/kms/decrypt", body: []byte(`{"a":1}`),
		base: http.Header{"Content-Type": {"application/json"}}, now: clock.Now,
		signer: &sigv4.Signer{AccessKey: "ak", SecretKey: "secret123456"}}
	if _, err := prepared(tm); err != nil {
		t.Fatal(err)
	}
	r1, err := tm.Request(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	auth1 := r1.Header.Get("Authorization")
	if !strings.HasPrefix(auth1, "AWS4-HMAC-SHA256 Credential=ak/20260102/us-east-1/kms/aws4_request, SignedHeaders=content-length;content-type;host;x-amz-content-sha256;x-amz-date, Signature=") {
		t.Fatalf("authorization %q", auth1)
	}
	clock.Advance(resignAfter)
	r2, _ := tm.Request(context.Background())
	if r2.Header.Get("Authorization") != auth1 {
		t.Fatal("re-signed before the template was 5 minutes old")
	}
	if b, _ := io.ReadAll(r2.Body); string(b) != `{"a":1}` || r2.ContentLength != 7 {
		t.Fatalf("replayed body %q (%d)", b, r2.ContentLength)
	}
	clock.Advance(time.Second)
	r3, _ := tm.Request(context.Background())
	if r3.Header.Get("Authorization") == auth1 || r3.Header.Get("X-Amz-Date") != "20260102T030906Z" {
		t.Fatalf("not re-signed after 5 minutes: %v", r3.Header)
	}
	if r1.Header.Get("Authorization") != auth1 {
		t.Fatal("re-signing modified a header map already handed out")
	}
}

func TestRunStepCancelled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{}`)) }))
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	cfg := Config{Duration: time.Hour}
	start := time.Now()
	if _, err := cfg.RunStep(ctx, staticPlan(srv.URL), 2); err == nil {
		t.Fatal("no error from a cancelled step")
	}
	if time.Since(start) > 10*time.Second {
		t.Fatal("cancellation did not stop the step")
	}
}

// The ceiling is sent the request a Keyward worker replays for generate:
// same path, body shape and SigV4 headers.
func TestCeilingRequestIsKeywardsGenerate(t *testing.T) {
	now := func() time.Time { return time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC) }
	c := &ceilingTarget{url: "http://127.0.0.1:1/", now: now,
		signer: &sigv4.Signer{AccessKey: "ak", SecretKey: "sk", Region: "us-east-1", Service: "kms"}}
	k := &keywardTarget{api: "http://127.0.0.1:1/rustfs/admin/v3", keyID: "bench-00000000", now: now,
		signer: &sigv4.Signer{AccessKey: "ak", SecretKey: "sk", Region: "us-east-1", Service: "kms"}}
	build := func(p Plan) *http.Request {
		rq, err := p.NewRequester(context.Background(), 0)
		if err != nil {
			t.Fatal(err)
		}
		r, err := rq.Request(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	cr, kr := build(c.plan(CeilingOp)), build(k.plan("generate"))
	if cr.Method != kr.Method || cr.URL.String() != kr.URL.String() || cr.ContentLength != kr.ContentLength {
		t.Errorf("ceiling %s %s (%d bytes), keyward %s %s (%d bytes)", cr.Method, cr.URL, cr.ContentLength, kr.Method, kr.URL, kr.ContentLength)
	}
	for name := range kr.Header {
		if len(cr.Header.Values(name)) == 0 {
			t.Errorf("ceiling request lacks %s", name)
		}
	}
	if !strings.HasPrefix(cr.Header.Get("Authorization"), "AWS4-HMAC-SHA256 Credential=ak/") {
		t.Errorf("ceiling request not signed: %q", cr.Header.Get("Authorization"))
	}
}

// The engine's own HTTP/1.1 client over TLS, with a server that closes
// every other connection: every request succeeds, on new connections as
// needed, and a server that does not answer in time is a transport error.
func TestWireEngineTLSReconnectTimeout(t *testing.T) {
	var conns atomic.Int64
	var n atomic.Int64
	release := make(chan struct{})
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			select {
			case <-release:
			case <-time.After(20 * time.Second):
			}
		}
		if n.Add(1)%2 == 0 {
			w.Header().Set("Connection", "close")
		}
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"ok":true}`))
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.StartTLS()
	defer srv.Close()
	defer close(release) // before Close, which waits for the slow handlers
	pool := x509.NewCertPool()
	pool.AddCert(srv.Certificate())
	cfg := Config{Requests: 100, TLS: &tls.Config{RootCAs: pool}}
	row, err := cfg.RunStep(context.Background(), staticPlan(srv.URL+"/"), 2)
	if err != nil {
		t.Fatal(err)
	}
	if row.Requests != 100 || row.Errors != 0 {
		t.Fatalf("%d requests, %d errors: %s", row.Requests, row.Errors, row.FirstError)
	}
	if c := conns.Load(); c < 40 {
		t.Errorf("%d connections for 100 requests with every other one closed", c)
	}

	// Without the CA, the handshake fails: transport errors, no panic.
	cfg = Config{Requests: 4}
	if row, err = cfg.RunStep(context.Background(), staticPlan(srv.URL+"/"), 1); err != nil || row.ErrorsByStatus["transport"] != 4 {
		t.Fatalf("untrusted certificate: %+v %v", row, err)
	}

	cfg = Config{Requests: 2, Timeout: 100 * time.Millisecond, TLS: &tls.Config{RootCAs: pool}}
	start := time.Now()
	row, err = cfg.RunStep(context.Background(), staticPlan(srv.URL+"/slow"), 1)
	if err != nil || row.ErrorsByStatus["transport"] != 2 || !strings.Contains(row.FirstError, "timeout") {
		t.Fatalf("slow server: %+v %v", row, err)
	}
	if time.Since(start) > 10*time.Second { // 40 s if the timeout did not apply
		t.Errorf("the per-request timeout did not cut the requests short (%v)", time.Since(start))
	}
}
