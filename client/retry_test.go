package client

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/sigv4"
)

const (
	testAK     = "KEYWARDTESTKEY0001"
	testSecret = "s3cr3t/Key+With=Chars0123456789abcdefghij"
)

type staticCreds map[string]string

func (c staticCreds) SecretKey(ak string) (string, bool) { s, ok := c[ak]; return s, ok }

// fakeServer answers with the handler after verifying every request's
// signature with the server's verifier, and counts the requests.
type fakeServer struct {
	*httptest.Server
	hits atomic.Int32
}

func newFakeServer(t *testing.T, h func(n int32, w http.ResponseWriter, r *http.Request)) *fakeServer {
	t.Helper()
	v := sigv4.New(staticCreds{testAK: testSecret}, nil, 0)
	f := &fakeServer{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := f.hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if _, err := v.Verify(r, body); err != nil {
			t.Errorf("attempt %d: %v", n, err)
		}
		h(n, w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

func unavailable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusServiceUnavailable)
	io.WriteString(w, `{"code":"ServiceUnavailable","message":"the KMS service is not running","request_id":"r-1"}`)
}

func newTestClient(t *testing.T, url string, opts ...Option) *Client {
	t.Helper()
	c, err := New(url, testAK, testSecret, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestRetryIdempotent: 503, 503, 200: an idempotent call succeeds at the
// third attempt, each attempt freshly signed.
func TestRetryIdempotent(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		if n <= 2 {
			unavailable(w)
			return
		}
		io.WriteString(w, `{"status":"Running","backend_type":"local","healthy":true,"config_summary":null}`)
	})
	c := newTestClient(t, f.URL, WithRetries(3, time.Millisecond))
	st, err := c.Status(context.Background())
	if err != nil || st.Status != StateRunning {
		t.Fatalf("status: %v %+v", err, st)
	}
	if got := f.hits.Load(); got != 3 {
		t.Fatalf("attempts: %d, want 3", got)
	}

	// Data-plane calls retry too.
	f.hits.Store(0)
	f2 := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		if n == 1 {
			unavailable(w)
			return
		}
		io.WriteString(w, `{"key_id":"k","plaintext":"aGVsbG8="}`)
	})
	c = newTestClient(t, f2.URL, WithRetries(3, time.Millisecond))
	pt, err := c.Decrypt(context.Background(), DecryptRequest{CiphertextBlob: []byte{1, 2, 3}})
	if err != nil || string(pt.Plaintext) != "hello" || f2.hits.Load() != 2 {
		t.Fatalf("decrypt: %v, %d attempts", err, f2.hits.Load())
	}
}

// TestRetryExhausted: an idempotent call gives up after 1+n attempts with
// the last error.
func TestRetryExhausted(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) { unavailable(w) })
	c := newTestClient(t, f.URL, WithRetries(2, time.Millisecond))
	_, err := c.ListKeys(context.Background(), ListKeysRequest{})
	if !errors.Is(err, ErrServiceUnavailable) || f.hits.Load() != 3 {
		t.Fatalf("list: %v after %d attempts", err, f.hits.Load())
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != 503 || apiErr.RequestID != "r-1" {
		t.Fatalf("APIError: %+v", apiErr)
	}
	f.hits.Store(0)
	c = newTestClient(t, f.URL, WithRetries(0, time.Millisecond))
	if _, err := c.ListKeys(context.Background(), ListKeysRequest{}); !errors.Is(err, ErrServiceUnavailable) || f.hits.Load() != 1 {
		t.Fatalf("WithRetries(0): %v after %d attempts", err, f.hits.Load())
	}
}

// TestNoRetryForStateChanges: a call that changes state is sent once.
func TestNoRetryForStateChanges(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) { unavailable(w) })
	c := newTestClient(t, f.URL, WithRetries(5, time.Millisecond))
	ctx := context.Background()
	calls := map[string]func() error{
		"CreateKey":   func() error { _, err := c.CreateKey(ctx, CreateKeyRequest{KeyID: "k"}); return err },
		"RotateKey":   func() error { _, err := c.RotateKey(ctx, "k"); return err },
		"ScheduleDel": func() error { _, err := c.ScheduleKeyDeletion(ctx, "k", 7); return err },
		"Configure":   func() error { _, err := c.Configure(ctx, ConfigureRequest{BackendType: new("local")}); return err },
		"Start":       func() error { _, err := c.Start(ctx, StartRequest{}); return err },
		"DisableKey":  func() error { _, err := c.DisableKey(ctx, "k"); return err },
	}
	for name, call := range calls {
		f.hits.Store(0)
		if err := call(); !errors.Is(err, ErrServiceUnavailable) {
			t.Errorf("%s: %v", name, err)
		}
		if got := f.hits.Load(); got != 1 {
			t.Errorf("%s: %d attempts, want 1", name, got)
		}
	}
}

// TestRetryStopsWithContext: cancellation ends the backoff at once, and
// the error says both why it stopped and what failed last.
func TestRetryStopsWithContext(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) { unavailable(w) })
	c := newTestClient(t, f.URL, WithRetries(10, 200*time.Millisecond))
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := c.Status(ctx)
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, ErrServiceUnavailable) {
		t.Fatalf("status: %v", err)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("took %s", d)
	}
	if n := f.hits.Load(); n < 1 || n > 4 {
		t.Fatalf("%d attempts", n)
	}
	// An already cancelled context sends nothing.
	f.hits.Store(0)
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := c.Status(done); !errors.Is(err, context.Canceled) || f.hits.Load() != 0 {
		t.Fatalf("cancelled context: %v, %d attempts", err, f.hits.Load())
	}
}

// flakyTransport fails the first n round trips with err.
type flakyTransport struct {
	n     atomic.Int32
	fails int32
	err   error
	next  http.RoundTripper
}

func (f *flakyTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if f.n.Add(1) <= f.fails {
		return nil, f.err
	}
	return f.next.RoundTrip(r)
}

// TestTransportErrors: a dial error (nothing sent) is retried for every
// call; another transport error only for idempotent calls.
func TestTransportErrors(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, `{"key_id":"k","key_metadata":{"key_id":"k","key_state":"Enabled","enabled":true,"key_version":2,"creation_date":"2024-09-18T07:10:42.012345Z"}}`)
	})
	ctx := context.Background()
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}
	tr := &flakyTransport{fails: 2, err: dial, next: http.DefaultTransport}
	c := newTestClient(t, f.URL, WithHTTPClient(&http.Client{Transport: tr}), WithRetries(3, time.Millisecond))
	km, err := c.RotateKey(ctx, "k")
	if err != nil || km.KeyVersion != 2 || f.hits.Load() != 1 || tr.n.Load() != 3 {
		t.Fatalf("rotate after dial errors: %v; %d round trips, %d reached the server", err, tr.n.Load(), f.hits.Load())
	}
	if km.CreationDate.Nanosecond() != 12345000 {
		t.Fatalf("creation date: %v", km.CreationDate)
	}

	reset := &net.OpError{Op: "read", Net: "tcp", Err: errors.New("connection reset by peer")}
	tr = &flakyTransport{fails: 1, err: reset, next: http.DefaultTransport}
	c = newTestClient(t, f.URL, WithHTTPClient(&http.Client{Transport: tr}), WithRetries(3, time.Millisecond))
	if _, err := c.RotateKey(ctx, "k"); !errors.As(err, new(*net.OpError)) || tr.n.Load() != 1 {
		t.Fatalf("rotate after a reset: %v, %d round trips", err, tr.n.Load())
	}
	if _, ok := errors.AsType[*APIError](err); ok {
		t.Fatal("a transport error became an APIError")
	}
	tr.n.Store(0)
	if _, err := c.DescribeKey(ctx, "k"); err != nil || tr.n.Load() != 2 {
		t.Fatalf("describe after a reset: %v, %d round trips", err, tr.n.Load())
	}
}

// TestErrorBodies: a response that is not a Keyward error body still
// gives a usable APIError; redirects are not followed.
func TestErrorBodies(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/rustfs/admin/v3/kms/status":
			w.WriteHeader(http.StatusBadGateway)
			io.WriteString(w, "<html>bad gateway</html>")
		case "/rustfs/admin/v3/kms/config":
			w.Header().Set("X-Request-Id", "from-header")
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.Redirect(w, r, "http://elsewhere.example/", http.StatusFound)
		}
	})
	c := newTestClient(t, f.URL, WithRetries(0, 0))
	ctx := context.Background()
	_, err := c.Status(ctx)
	if !errors.Is(err, ErrInternal) {
		t.Fatalf("502 page: %v", err)
	}
	_, err = c.Config(ctx)
	apiErr, ok := errors.AsType[*APIError](err)
	if !errors.Is(err, ErrServiceUnavailable) || !ok || apiErr.RequestID != "from-header" {
		t.Fatalf("empty 503: %v", err)
	}
	if _, err := c.ListKeys(ctx, ListKeysRequest{}); err == nil || f.hits.Load() != 3 {
		t.Fatalf("redirect: %v after %d requests", err, f.hits.Load())
	}
}

// TestNew validates endpoints and options.
func TestNew(t *testing.T) {
	for _, ep := range []string{"", "localhost:9000", "ftp://x", "http://", "http://h?x=1", "http://u:p@h"} {
		if _, err := New(ep, "a", "b"); err == nil {
			t.Errorf("New(%q) accepted", ep)
		}
	}
	if _, err := New("http://h", "", "b"); err == nil {
		t.Error("empty access key accepted")
	}
	if _, err := New("http://h", "a", "b", WithRetries(-1, 0)); err == nil {
		t.Error("negative retries accepted")
	}
	custom := &http.Client{Transport: roundTripFunc(func(*http.Request) (*http.Response, error) { return nil, errors.New("x") })}
	if _, err := New("https://h", "a", "b", WithHTTPClient(custom), WithInsecureSkipVerify()); err == nil {
		t.Error("TLS options on a custom RoundTripper accepted")
	}
	c, err := New("https://h:443/prefix/", "a", "b")
	if err != nil || !slices.Equal(c.Endpoints(), []string{"https://h:443/prefix"}) {
		t.Fatalf("endpoint: %v %q", err, c.Endpoints())
	}
	c, err = New(" https://a:9000/, http://b:9000 ,", "a", "b")
	if err != nil || !slices.Equal(c.Endpoints(), []string{"https://a:9000", "http://b:9000"}) {
		t.Fatalf("endpoints: %v %q", err, c.Endpoints())
	}
	for _, bad := range []string{"", " , ", "https://a:9000,ftp://b", "https://a,https://b?x=1"} {
		if _, err := New(bad, "a", "b"); err == nil {
			t.Errorf("endpoint %q accepted", bad)
		}
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestBackoff: doubling, jittered within [d/2, d], capped.
func TestBackoff(t *testing.T) {
	c := &Client{baseDelay: 100 * time.Millisecond}
	for n, want := range []time.Duration{100, 200, 400, 800, 1600, 3200, 5000, 5000} {
		want *= time.Millisecond
		for range 20 {
			if d := c.backoff(n + 1); d < want/2 || d > want {
				t.Fatalf("backoff(%d) = %s, want within [%s, %s]", n+1, d, want/2, want)
			}
		}
	}
}
