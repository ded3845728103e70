package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// rawConn is a client connection driven by hand, for requests the HTTP
// client cannot make: a body that never arrives or trickles in, headers
// past its limits, many connections at once.
type rawConn struct {
	t  *testing.T
	c  net.Conn
	rd *bufio.Reader
}

func dialRaw(t *testing.T, srv *server) *rawConn {
	t.Helper()
	c, err := net.Dial("tcp", srv.Addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return &rawConn{t: t, c: c, rd: bufio.NewReader(c)}
}

func (rc *rawConn) write(s string) {
	rc.t.Helper()
	if _, err := io.WriteString(rc.c, s); err != nil {
		rc.t.Fatalf("write: %v", err)
	}
}

// answer reads one response. The deadline only keeps a broken server from
// hanging the test; nothing is asserted about time.
func (rc *rawConn) answer() (status int, code string, header http.Header) {
	rc.t.Helper()
	rc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := http.ReadResponse(rc.rd, nil)
	if err != nil {
		rc.t.Fatalf("reading a response: %v", err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var body struct{ Code string }
	json.Unmarshal(raw, &body)
	return resp.StatusCode, body.Code, resp.Header
}

// signedHead signs a request with the AWS SDK and returns its request line
// and headers as sent on the wire, with the given Content-Length, so the
// caller decides how much of the body (if any) follows. declareHash sends
// x-amz-content-sha256; without it the body's hash is signed all the same
// (the way KMS clients sign).
func signedHead(t *testing.T, srv *server, method, path string, body []byte, ak, sk string, declareHash bool) string {
	t.Helper()
	req, err := http.NewRequest(method, srv.URL+adminPrefix+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hash := hexSHA256(body)
	if declareHash {
		req.Header.Set("X-Amz-Content-Sha256", hash)
	}
	req.Header.Set("Content-Type", "application/json")
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: ak, SecretAccessKey: sk}, req, hash, "kms", "us-east-1", time.Now()); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", method, adminPrefix+path, req.Host, len(body))
	req.Header.Write(&b)
	b.WriteString("\r\n")
	return b.String()
}

// forgedHead is a request line and headers with a SigV4 Authorization
// header for accessKey with the given SignedHeaders, a zero signature, and
// extra header lines.
func forgedHead(srv *server, accessKey, signed, extra string) string {
	now := time.Now().UTC()
	return "GET " + adminPrefix + "/kms/status HTTP/1.1\r\nHost: " + srv.Addr + "\r\n" +
		"X-Amz-Date: " + now.Format("20060102T150405Z") + "\r\n" +
		"X-Amz-Content-Sha256: " + hexSHA256(nil) + "\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=" + accessKey + "/" + now.Format("20060102") + "/us-east-1/kms/aws4_request, " +
		"SignedHeaders=" + signed + ", Signature=" + strings.Repeat("0", 64) + "\r\n" +
		extra + "\r\n"
}

// TestPreAuthBounds checks the bounds on the work done before the caller
// is known (docs/operations.md, "Limits on unauthenticated requests")
// against the server binary: too many signed
// headers or header fields are refused outright, including the inputs that
// used to cost quadratic time; a request whose headers do not verify is
// answered without its body being read; bodies read before authentication
// stay within --max-body-memory, and the requests past it get 503 while
// authenticated requests go on being served.
func TestPreAuthBounds(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev", "--max-body-memory", "2"}})
	c := srv.client(t)
	ak := srv.AccessKey

	t.Run("header bounds", func(t *testing.T) {
		// 60 extra signed headers (64 with host, content-type and the two
		// x-amz-*) is the most accepted; 61 is refused, as are unsigned
		// padding headers past 100 fields.
		withSignedExtras := func(n int) reqOption {
			return withBeforeSign(func(r *http.Request) {
				for i := range n {
					r.Header.Set(fmt.Sprintf("X-Amz-Meta-%03d", i), "v")
				}
			})
		}
		st, _, raw := c.do("GET", "/kms/status", nil, withSignedExtras(60))
		wantStatus(t, "64 signed headers", st, raw, 200)
		st, _, raw = c.do("GET", "/kms/status", nil, withSignedExtras(61))
		if wantError(t, "65 signed headers", st, raw, 401, "AccessDenied") && !strings.Contains(string(raw), "more than 64") {
			t.Errorf("65 signed headers: the message does not give the bound: %s", short(raw))
		}
		st, _, raw = c.do("GET", "/kms/status", nil, withAfterSign(func(r *http.Request) {
			for i := range 150 {
				r.Header.Set(fmt.Sprintf("X-Pad-%03d", i), "v")
			}
		}))
		if wantError(t, "150 unsigned header fields", st, raw, 401, "AccessDenied") && !strings.Contains(string(raw), "more than 100 header fields") {
			t.Errorf("150 header fields: the message does not give the bound: %s", short(raw))
		}

		// The inputs that cost 22 ms and 61-70 ms of CPU each before the
		// bounds: refused as malformed, before the secret is looked up
		// (which would have made them SignatureDoesNotMatch).
		var hdrs, names strings.Builder
		names.WriteString("host")
		for i := range 1900 {
			fmt.Fprintf(&hdrs, "X-Amz-A%04d: v\r\n", i)
			fmt.Fprintf(&names, ";x-amz-a%04d", i)
		}
		names.WriteString(";x-amz-content-sha256;x-amz-date")
		rc := dialRaw(t, srv)
		rc.write(forgedHead(srv, ak, names.String(), hdrs.String()))
		if st, code, _ := rc.answer(); st != 401 || code != "AccessDenied" {
			t.Errorf("1,900 signed x-amz-* headers: want 401 AccessDenied; got %d %s", st, code)
		}
		hdrs.Reset()
		names.Reset()
		for i := range 3000 {
			fmt.Fprintf(&names, "a%04d;", i)
		}
		names.WriteString("host;x-amz-content-sha256;x-amz-date")
		for i := range 2000 {
			fmt.Fprintf(&hdrs, "B%04d: v\r\n", i)
		}
		rc = dialRaw(t, srv)
		rc.write(forgedHead(srv, ak, names.String(), hdrs.String()))
		if st, code, _ := rc.answer(); st != 401 || code != "AccessDenied" {
			t.Errorf("3,000 missing signed headers: want 401 AccessDenied; got %d %s", st, code)
		}
	})

	t.Run("no body read for headers that do not verify", func(t *testing.T) {
		body := bytes.Repeat([]byte("x"), 1<<20)
		// A declared payload hash and a wrong signature: the 1 MiB body
		// never comes, and the answer does not wait for it (if the server
		// read first, it would answer 400 once its read timed out).
		rc := dialRaw(t, srv)
		rc.write(signedHead(t, srv, "POST", "/kms/generate-data-key", body, ak, "wrong-secret", true))
		if st, code, _ := rc.answer(); st != 401 || code != "SignatureDoesNotMatch" {
			t.Errorf("wrong signature, payload hash declared, body never sent: want 401 SignatureDoesNotMatch; got %d %s", st, code)
		}
		// An unknown access key needs no body either, hash declared or not.
		rc = dialRaw(t, srv)
		rc.write(signedHead(t, srv, "POST", "/kms/generate-data-key", body, "no-such-user", "x", false))
		if st, code, _ := rc.answer(); st != 401 || code != "InvalidAccessKeyId" {
			t.Errorf("unknown access key, body never sent: want 401 InvalidAccessKeyId; got %d %s", st, code)
		}
	})

	t.Run("memory for unauthenticated bodies", func(t *testing.T) {
		const (
			budget   = 2 << 20
			bodySize = 1 << 20 // the route limit
			senders  = 5
		)
		body := bytes.Repeat([]byte("x"), bodySize)
		// KMS-style requests (no declared hash: the body must be read
		// before the signature can be checked) with a wrong secret, each
		// sending 100 bytes of its 1 MiB body and then waiting.
		head := signedHead(t, srv, "POST", "/kms/generate-data-key", body, ak, "wrong-secret", false)
		before := scrape(t, c)
		var held []*rawConn
		for range budget / bodySize {
			rc := dialRaw(t, srv)
			rc.write(head + string(body[:100]))
			held = append(held, rc)
		}
		waitForMetric(t, c, "keyward_http_unauthenticated_body_bytes", budget)
		for i := len(held); i < senders; i++ {
			rc := dialRaw(t, srv)
			rc.write(head + string(body[:100]))
			st, code, h := rc.answer()
			if st != 503 || code != "ServiceUnavailable" || h.Get("Retry-After") == "" {
				t.Errorf("sender %d past the budget: want 503 ServiceUnavailable with Retry-After; got %d %s %v", i+1, st, code, h)
			}
		}
		m := scrape(t, c)
		if got := m["keyward_http_unauthenticated_body_bytes"]; got != budget {
			t.Errorf("unauthenticated body bytes held: %v, want the budget %d", got, budget)
		}
		refusals := "keyward_http_unauthenticated_body_refusals_total"
		if d := m[refusals] - before[refusals]; d != senders-budget/bodySize {
			t.Errorf("%s moved by %v, want %d", refusals, d, senders-budget/bodySize)
		}

		// Authenticated work goes on: a request that declares its payload
		// hash is verified before its body is read and needs no budget.
		gen := map[string]any{"key_spec": "AES_256"}
		st, _, raw := c.do("POST", "/kms/generate-data-key", gen)
		wantStatus(t, "generate with a declared payload hash while the budget is spent", st, raw, 200)
		st, _, raw = c.do("POST", "/kms/generate-data-key", gen, withoutPayloadHeader())
		wantError(t, "generate without a declared payload hash while the budget is spent", st, raw, 503, "ServiceUnavailable")

		// The slow senders finish: their signatures fail, the budget is
		// free again.
		for i, rc := range held {
			rc.write(string(body[100:]))
			if st, code, _ := rc.answer(); st != 401 || code != "SignatureDoesNotMatch" {
				t.Errorf("slow sender %d: want 401 SignatureDoesNotMatch; got %d %s", i+1, st, code)
			}
		}
		if got := scrape(t, c)["keyward_http_unauthenticated_body_bytes"]; got != 0 {
			t.Errorf("unauthenticated body bytes after the senders finished: %v, want 0", got)
		}
		st, _, raw = c.do("POST", "/kms/generate-data-key", gen, withoutPayloadHeader())
		wantStatus(t, "generate without a declared payload hash afterwards", st, raw, 200)
	})
}

// waitForMetric polls /metrics until name has the value want (a state the
// server reaches on its own, such as bodies being read).
func waitForMetric(t *testing.T, c *client, name string, want float64) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		got := scrape(t, c)[name]
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %v, never reached %v", name, got, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestMaxConnections: with --max-connections 3, open connections stay at
// 3. A new client takes the slot of an idle keep-alive connection (closed
// for it), never of a busy one: clients in the middle of a request keep
// theirs.
func TestMaxConnections(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev", "--max-connections", "3", "--metrics-auth=false"}})
	const get = "GET /health/live HTTP/1.1\r\nHost: keyward\r\n\r\n"
	const metrics = "GET /metrics HTTP/1.1\r\nHost: keyward\r\n\r\n"
	// scrapeOn reads /metrics on an open keep-alive connection.
	scrapeOn := func(rc *rawConn, name string) float64 {
		t.Helper()
		rc.write(metrics)
		rc.c.SetReadDeadline(time.Now().Add(30 * time.Second))
		resp, err := http.ReadResponse(rc.rd, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(raw), "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				var f float64
				fmt.Sscan(v, &f)
				return f
			}
		}
		t.Fatalf("no %s in /metrics", name)
		return 0
	}
	// Two clients in the middle of a request: headers sent, the body
	// (read before the signature can be checked) half sent. Busy.
	body := []byte(`{"key_id":"no-such-key","key_spec":"AES_256"}`)
	head := signedHead(t, srv, "POST", "/kms/generate-data-key", body, srv.AccessKey, srv.SecretKey, false)
	a, b := dialRaw(t, srv), dialRaw(t, srv)
	a.write(head + string(body[:10]))
	b.write(head + string(body[:10]))
	// A connection is busy once the server has read its headers (before,
	// it is "new" and closable): wait until both bodies are being read.
	// The scrapes take a third connection, idle afterwards.
	waitForMetric(t, srv.client(t), "keyward_http_unauthenticated_body_bytes", float64(2*len(body)))
	// A third, served and idle (it takes the scraper's slot).
	idle := dialRaw(t, srv)
	idle.write(get)
	if st, _, _ := idle.answer(); st != 200 {
		t.Fatalf("third connection: %d", st)
	}
	// A fourth takes the idle one's slot.
	d := dialRaw(t, srv)
	d.write(get)
	if st, _, _ := d.answer(); st != 200 {
		t.Fatalf("fourth connection: %d", st)
	}
	idle.c.SetReadDeadline(time.Now().Add(30 * time.Second))
	if _, err := idle.rd.ReadByte(); err == nil {
		t.Fatal("the idle connection was not closed for the new client")
	}
	if n := scrapeOn(d, "keyward_http_connections_open"); n != 3 {
		t.Errorf("keyward_http_connections_open = %v, want 3", n)
	}
	if n := scrapeOn(d, "keyward_http_connections_accepted_total"); n != 5 {
		t.Errorf("keyward_http_connections_accepted_total = %v, want 5 (a, b, the scraper, idle, d)", n)
	}
	// The busy ones kept their slots: their requests complete.
	for _, rc := range []*rawConn{a, b} {
		rc.write(string(body[10:]))
		if st, code, _ := rc.answer(); st != 404 || code != "NotFound" {
			t.Errorf("a busy connection's request: want 404 NotFound (no such key); got %d %s", st, code)
		}
	}
}
