package e2e

import (
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/keyward/keyward/internal/console"
	"github.com/keyward/keyward/internal/sigv4"
)

// The web console (docs/console.md) against the real binary: how it is
// served (TestConsoleServing, plain HTTP) and what an operator does with it
// in a real Chromium (TestConsoleBrowser).

// consoleIAM has one restricted user: it may list and describe every key,
// list aliases, and encrypt and decrypt with the app-* keys; nothing else.
const consoleIAM = `{
  "users": [{"access_key": "viewer", "secret_key": "%s", "policies": ["console-viewer"]}],
  "policies": {"console-viewer": {"Version": "2012-10-17", "Statement": [
    {"Effect": "Allow", "Action": ["kms:ListKeys", "kms:DescribeKey", "kms:ListAliases"], "Resource": "*"},
    {"Effect": "Allow", "Action": ["kms:Encrypt", "kms:Decrypt"], "Resource": "arn:aws:kms:::key/app-*"}]}}
}`

func TestConsoleServing(t *testing.T) {
	t.Parallel()
	on := startServer(t, serverOpts{Args: []string{"--dev"}})
	off := startServer(t, serverOpts{Args: []string{"--dev", "--console=false"}})
	offEnv := startServer(t, serverOpts{Args: []string{"--dev"}, Env: []string{"KEYWARD_CONSOLE=false"}})
	noRedirect := &http.Client{Timeout: 10 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(method, url string, hdr ...string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, url, nil)
		for i := 0; i+1 < len(hdr); i += 2 {
			req.Header.Set(hdr[i], hdr[i+1])
		}
		resp, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp, string(b)
	}

	t.Run("on", func(t *testing.T) {
		if !strings.Contains(on.Stdout(), "console:    "+on.URL+"/console/") {
			t.Errorf("the --dev banner does not name the console:\n%s", on.Stdout())
		}
		resp, body := get("GET", on.URL+"/console/")
		if resp.StatusCode != 200 || !strings.Contains(body, `<script type="module" src="js/app.js">`) {
			t.Fatalf("GET /console/: %d %q", resp.StatusCode, short([]byte(body)))
		}
		for k, want := range map[string]string{
			"Content-Security-Policy": console.ContentSecurityPolicy,
			"X-Frame-Options":         "DENY",
			"X-Content-Type-Options":  "nosniff",
			"Referrer-Policy":         "no-referrer",
			"Cache-Control":           "no-cache",
			"Content-Type":            "text/html; charset=utf-8",
		} {
			if got := resp.Header.Get(k); got != want {
				t.Errorf("GET /console/: %s = %q, want %q", k, got, want)
			}
		}
		if resp.Header.Get("Set-Cookie") != "" {
			t.Error("the console sets a cookie")
		}
		if resp, _ := get("GET", on.URL+"/console/js/sigv4.js"); resp.Header.Get("Content-Type") != "text/javascript; charset=utf-8" {
			t.Errorf("sigv4.js: Content-Type %q", resp.Header.Get("Content-Type"))
		}
		if resp, _ := get("GET", on.URL+"/console"); resp.StatusCode/100 != 3 || resp.Header.Get("Location") != "/console/" {
			t.Errorf("GET /console: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		if resp, _ := get("GET", on.URL+"/"); resp.StatusCode != http.StatusFound || resp.Header.Get("Location") != "/console/" {
			t.Errorf("GET /: %d to %q, want a redirect to the console", resp.StatusCode, resp.Header.Get("Location"))
		}
		// Only GET of the root goes to the console: POST / stays the API's
		// (the AWS KMS door, which refuses an unsigned request in its own
		// error shape).
		resp, body = get("POST", on.URL+"/")
		if resp.StatusCode/100 != 4 || !strings.Contains(body, `"__type":"AccessDeniedException"`) {
			t.Errorf("POST /: %d %s, want the AWS KMS door's refusal", resp.StatusCode, body)
		}
		if resp, _ := get("POST", on.URL+"/console/"); resp.StatusCode != 405 {
			t.Errorf("POST /console/: %d, want 405", resp.StatusCode)
		}
	})

	// A page of another origin can neither read the API nor the console:
	// no answer carries a CORS header, preflights included.
	t.Run("no CORS", func(t *testing.T) {
		for _, tc := range []struct{ method, path string }{
			{"OPTIONS", "/rustfs/admin/v3/kms/keys"},
			{"GET", "/rustfs/admin/v3/kms/status"},
			{"POST", "/rustfs/admin/v3/kms/keys"},
			{"GET", "/metrics"},
			{"GET", "/console/"},
			{"OPTIONS", "/console/"},
		} {
			resp, _ := get(tc.method, on.URL+tc.path, "Origin", "https://evil.example", "Access-Control-Request-Method", "POST",
				"Access-Control-Request-Headers", "authorization,x-amz-date")
			for k := range resp.Header {
				if strings.HasPrefix(strings.ToLower(k), "access-control-") {
					t.Errorf("%s %s from another origin: %s: %s", tc.method, tc.path, k, resp.Header.Get(k))
				}
			}
			if tc.path != "/console/" && resp.StatusCode < 400 {
				t.Errorf("%s %s unsigned: %d", tc.method, tc.path, resp.StatusCode)
			}
		}
	})

	for name, srv := range map[string]*server{"--console=false": off, "KEYWARD_CONSOLE=false": offEnv} {
		t.Run(name, func(t *testing.T) {
			for _, p := range []string{"/console/", "/console/js/app.js", "/"} {
				resp, body := get("GET", srv.URL+p)
				wantError(t, name+" GET "+p, resp.StatusCode, []byte(body), 404, "NotFound")
			}
			if strings.Contains(srv.Stdout(), "/console/") {
				t.Errorf("the --dev banner names a console that is off:\n%s", srv.Stdout())
			}
			// The API is untouched.
			if st, _, raw := srv.client(t).do("GET", "/kms/status", nil); st != 200 {
				t.Errorf("status with the console off: %d %s", st, short(raw))
			}
		})
	}
}

// TestConsoleBrowser drives the console in a real Chromium: the root user
// does every kind of change, a restricted user is refused in words, another
// origin gets nowhere, and the secret is nowhere but in memory.
func TestConsoleBrowser(t *testing.T) {
	t.Parallel()
	b := newBrowser(t)
	dir := t.TempDir()
	viewerSecret := "viewer-secret-" + randomHex(8)
	iamPath := filepath.Join(dir, "iam.json")
	if err := os.WriteFile(iamPath, []byte(fmt.Sprintf(consoleIAM, viewerSecret)), 0o600); err != nil {
		t.Fatal(err)
	}
	auditPath := filepath.Join(dir, "audit.log")
	srv := startServer(t, serverOpts{Args: []string{"--dev", "--iam-file", iamPath, "--audit-log", auditPath}})
	base := srv.URL
	shots := os.Getenv("KEYWARD_SCREENSHOTS")
	if shots == "" {
		shots = t.TempDir()
	} else if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	root := srv.client(t)
	createKey(t, root, "app-orders")
	t.Logf("screenshots in %s", shots)

	fx := &consoleFixture{b: b, srv: srv, base: base, shots: shots, auditPath: auditPath, viewerSecret: viewerSecret}
	signIn := fx.signIn

	t.Run("signer matches the server's", func(t *testing.T) {
		tb := b.tab(t)
		tb.do(chromedp.Navigate(base + "/console/"))
		tb.untilText("main h1", "Sign in")
		at := time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)
		for _, tc := range []struct {
			method, path, query string
			body                string
		}{
			{"GET", "/rustfs/admin/v3/kms/keys", "limit=10&marker=a&state=Enabled", ""},
			{"GET", "/rustfs/admin/v3/kms/keys/alias%2Fbilling", "", ""},
			{"POST", "/rustfs/admin/v3/kms/encrypt", "", `{"plaintext":"aGk=","encryption_context":{"é":"x y"}}`},
		} {
			js := evalIn[string](tb, fmt.Sprintf(`import('/console/js/sigv4.js').then(async (m) => {
				const s = await m.createSigner('AKEXAMPLE', 'secret/+key');
				const h = await s.sign({method: %s, host: 'kw.example:9000', path: %s, query: %s,
					body: new TextEncoder().encode(%s), now: new Date(%d)});
				return h.Authorization;
			})`, jsString(tc.method), jsString(tc.path), jsString(tc.query), jsString(tc.body), at.UnixMilli()))
			u := "http://kw.example:9000" + tc.path
			if tc.query != "" {
				u += "?" + tc.query
			}
			req, _ := http.NewRequest(tc.method, u, nil)
			(&sigv4.Signer{AccessKey: "AKEXAMPLE", SecretKey: "secret/+key", Service: "s3"}).Sign(req, []byte(tc.body), at)
			if want := req.Header.Get("Authorization"); js != want {
				t.Errorf("%s %s:\nbrowser: %s\nserver:  %s", tc.method, tc.path, js, want)
			}
		}
	})

	t.Run("metrics arithmetic", func(t *testing.T) {
		tb := b.tab(t)
		tb.do(chromedp.Navigate(base + "/console/"))
		tb.untilText("main h1", "Sign in")
		const a = `# HELP x
keyward_http_requests_total{method="GET",route="/a",status="200"} 10
keyward_http_requests_total{method="GET",route="/a",status="403"} 2
keyward_http_requests_total{method="GET",route="/metrics",status="200"} 100
keyward_http_request_duration_seconds_bucket{method="GET",route="/a",le="0.001"} 5
keyward_http_request_duration_seconds_bucket{method="GET",route="/a",le="0.01"} 10
keyward_http_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 12
keyward_http_request_duration_seconds_bucket{method="GET",route="/metrics",le="0.001"} 100
keyward_http_request_duration_seconds_bucket{method="GET",route="/metrics",le="+Inf"} 100`
		const bb = `keyward_http_requests_total{method="GET",route="/a",status="200"} 30
keyward_http_requests_total{method="GET",route="/a",status="403"} 4
keyward_http_requests_total{method="POST",route="/b\"c",status="503"} 2
keyward_http_requests_total{method="GET",route="/metrics",status="200"} 200
keyward_http_request_duration_seconds_bucket{method="GET",route="/a",le="0.001"} 15
keyward_http_request_duration_seconds_bucket{method="GET",route="/a",le="0.01"} 32
keyward_http_request_duration_seconds_bucket{method="GET",route="/a",le="+Inf"} 34
keyward_http_request_duration_seconds_bucket{method="POST",route="/b\"c",le="0.01"} 2
keyward_http_request_duration_seconds_bucket{method="POST",route="/b\"c",le="+Inf"} 2
keyward_http_request_duration_seconds_bucket{method="GET",route="/metrics",le="0.001"} 200
keyward_http_request_duration_seconds_bucket{method="GET",route="/metrics",le="+Inf"} 200`
		got := evalIn[map[string]float64](tb, fmt.Sprintf(`import('/console/js/metrics.js').then((m) => {
			const p = m.between(m.snapshot(m.parse(%s), 1000), m.snapshot(m.parse(%s), 3000));
			return {rps: p.rps, c: p.clientErrors, s: p.serverErrors, p50: p.p50, p99: p.p99};
		})`, jsString(a), jsString(bb)))
		// 24 requests in 2 s (the /metrics scrapes left out): 2 more 403s,
		// 2 new 503s; bucket deltas 10 (<=1 ms), 24 (<=10 ms), 24 in all.
		want := map[string]float64{"rps": 12, "c": 1, "s": 1,
			"p50": 0.001 + 0.009*(12.0-10)/(24-10), "p99": 0.001 + 0.009*(0.99*24-10)/(24-10)}
		for k, w := range want {
			if math.Abs(got[k]-w) > 1e-9 {
				t.Errorf("%s = %v, want %v", k, got[k], w)
			}
		}
	})

	t.Run("root", func(t *testing.T) { consoleRoot(t, fx) })
	t.Run("restricted user", func(t *testing.T) { consoleRestricted(t, fx) })

	t.Run("other origins", func(t *testing.T) {
		c := srv.client(t)
		tb := b.tab(t)
		// A page of another origin (localhost is not 127.0.0.1) can read
		// nothing, and its forged write is refused for want of a signature.
		other := strings.Replace(base, "127.0.0.1", "localhost", 1)
		tb.do(chromedp.Navigate(other + "/health/live"))
		got := evalIn[string](tb, fmt.Sprintf(`(async () => {
			const t = %s, r = [];
			for (const p of ['/rustfs/admin/v3/kms/status', '/console/', '/metrics']) {
				try { await fetch(t + p); r.push('read ' + p); } catch (e) { r.push('blocked'); }
			}
			const w = await fetch(t + '/rustfs/admin/v3/kms/keys', {method: 'POST', mode: 'no-cors', headers: {'Content-Type': 'text/plain'}, body: '{"key_id":"csrf-key"}'});
			r.push(w.type);
			return r.join(',');
		})()`, jsString(base)))
		if got != "blocked,blocked,blocked,opaque" {
			t.Errorf("from another origin: %s", got)
		}
		if st, _, _ := c.do("GET", "/kms/keys/csrf-key", nil); st != 404 {
			t.Errorf("a cross-site request created a key: %d", st)
		}
		// No page may frame the console, not even one of its own origin.
		tb.do(chromedp.Navigate(base + "/health/live"))
		framed := evalIn[string](tb, `new Promise((resolve) => {
			const f = document.createElement('iframe');
			f.src = '/console/';
			f.onload = () => { let d = null; try { d = f.contentDocument; } catch (e) {} resolve(d && d.title ? 'framed: ' + d.title : 'blocked'); };
			document.body.append(f);
		})`)
		if framed != "blocked" {
			t.Errorf("framing the console: %s", framed)
		}
	})

	t.Run("narrow screen", func(t *testing.T) {
		tb := b.tab(t)
		tb.do(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(1)))
		signIn(tb, base, srv.AccessKey, srv.SecretKey)
		for _, page := range []string{"#/", "#/keys", "#/keys/console-key", "#/service", "#/crypto", "#/aliases"} {
			tb.open(base, page, "")
			tb.until("the page", "document.querySelector('main h1') && !document.querySelector('main').textContent.includes('Loading…')")
			if w := evalIn[string](tb, "document.documentElement.scrollWidth + '/' + innerWidth"); w != "390/390" {
				t.Errorf("%s at 390 px wide: the page is %s px wide (scrolls sideways)", page, w)
			}
			if page == "#/keys/console-key" {
				tb.screenshot(shots, "console-narrow")
			}
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		tb := b.tab(t)
		tb.do(chromedp.Navigate(base + "/console/"))
		tb.untilText("main h1", "Sign in")
		tb.fill("input[name=access_key]", "viewer")
		tb.fill("input[name=secret_key]", "not-the-secret")
		tb.click("main form button[type=submit]")
		msg := tb.untilText("main [role=alert]", "does not match")
		if !strings.Contains(msg, "HTTP 401 SignatureDoesNotMatch") {
			t.Errorf("wrong secret: %q", msg)
		}
		if v := evalIn[string](tb, "document.querySelector('input[name=secret_key]').value"); v != "" {
			t.Error("the secret field keeps the secret after a failed sign-in")
		}
	})

	t.Run("service forms", func(t *testing.T) { consoleServiceForms(t, fx) })

	t.Run("idle expiry", func(t *testing.T) {
		tb := b.tab(t)
		signIn(tb, base, srv.AccessKey, srv.SecretKey)
		tb.open(base, "#/keys", "Keys")
		// Sixteen minutes pass without input (the monotonic clock the
		// session uses is moved on); the next look ends the session.
		tb.do(chromedp.Evaluate[chromedp.Void](`(() => { const real = performance.now.bind(performance);
			performance.now = () => real() + 16 * 60 * 1000; document.dispatchEvent(new Event('visibilitychange')); })()`))
		tb.untilText("main", "15 minutes without activity")
		if evalIn[bool](tb, "import('/console/js/session.js').then((m) => m.active() !== null)") {
			t.Error("the session survived its idle limit")
		}
		tb.do(chromedp.Navigate(base + "/console/#/keys"))
		tb.untilText("main h1", "Sign in")

		// However active, a session ends after 8 hours.
		signIn(tb, base, srv.AccessKey, srv.SecretKey)
		tb.do(chromedp.Evaluate[chromedp.Void](`(() => { const real = performance.now.bind(performance);
			performance.now = () => real() + 9 * 60 * 60 * 1000; })()`))
		tb.do(chromedp.KeyEvent(kb.Tab)) // activity now: the idle limit is not what ends it
		tb.do(chromedp.Navigate(base + "/console/#/aliases"))
		tb.untilText("main", "ended after 8 hours")
	})

	// Neither the server's log nor its audit log holds a secret the
	// console signed with (the server never receives it).
	for _, secret := range []string{srv.SecretKey, viewerSecret} {
		if strings.Contains(srv.Stderr(), secret) || strings.Contains(readFile(t, auditPath), secret) {
			t.Errorf("a secret key is in the server's log or audit log")
		}
	}
	if strings.Contains(srv.Stdout(), viewerSecret) {
		t.Error("the viewer's secret is on the server's stdout")
	}
	if n := strings.Count(readFile(t, auditPath), `"access_key":"viewer"`); n < 5 {
		t.Errorf("the audit log has %d lines of the viewer, want its calls", n)
	}
}

// consoleFixture is what the browser flows share: one browser, the
// server with the IAM file, and where screenshots go.
type consoleFixture struct {
	b                                    *browser
	srv                                  *server
	base, shots, auditPath, viewerSecret string
}

// requestIDRE is the form of a request id (docs/api.md, "Request ids").
var requestIDRE = regexp.MustCompile(`^[0-9a-f]{24}$`)

// waitFor polls f (every 20 ms, for at most 10 s) until it reports done.
func waitFor[T any](t *testing.T, what string, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited 10 s for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
