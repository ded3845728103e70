package e2e

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/certs"
)

// TestAuditLog runs a scripted session and checks the audit log: exactly
// one line per call, with the right fields, and none of the data keys.
func TestAuditLog(t *testing.T) {
	t.Parallel()
	auditPath := filepath.Join(t.TempDir(), "audit.log")
	srv := startServer(t, serverOpts{Args: []string{"--audit-log", auditPath}})
	c := srv.client(t)
	configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "", nil) // 1
	startKMS(t, c)                                                    // 2
	createKey(t, c, "audited")                                        // 3
	var secrets []string
	for i := 0; i < 5; i++ { // 4-8
		dk := generate(t, c, "audited", map[string]string{"n": strconv.Itoa(i)})
		secrets = append(secrets, b64(dk.Plaintext))
	}
	c.do("GET", "/kms/keys/missing", nil) // 9: 404
	other := srv.client(t)
	other.creds.SecretAccessKey = "wrong-secret"
	other.do("GET", "/kms/keys", nil) // 10: 401, claims the root access key
	// 11: 401, the signature covers the body's hash (no declared hash), so
	// it fails once the body is read.
	other.do("POST", "/kms/generate-data-key", map[string]any{"key_id": "audited"}, withoutPayloadHeader())
	c.do("GET", "/kms/keys", nil, withCreds("no-such-user", "x")) // 12: 401, an unknown access key
	c.do("GET", "/kms/keys", nil, withoutSignature())             // 13: 401, no access key claimed
	const calls = 13
	if code := srv.Stop(); code != 0 { // Close drains the queue
		t.Fatalf("exit %d", code)
	}
	f, err := os.Open(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if fi, _ := f.Stat(); fi.Mode().Perm() != 0o600 {
		t.Errorf("audit log mode %o", fi.Mode().Perm())
	}
	raw, _ := os.ReadFile(auditPath)
	for _, s := range append(secrets, srv.SecretKey) {
		if strings.Contains(string(raw), s) {
			t.Fatalf("audit log contains a secret or data key")
		}
	}
	var lines []map[string]any
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		lines = append(lines, m)
	}
	if len(lines) != calls {
		t.Fatalf("%d audit lines for %d calls:\n%s", len(lines), calls, raw)
	}
	for _, l := range lines {
		for _, k := range []string{"time", "request_id", "access_key", "source", "route", "action", "status", "latency_ms"} {
			if _, ok := l[k]; !ok {
				t.Errorf("audit line lacks %s: %v", k, l)
			}
		}
	}
	gen := lines[4]
	if gen["route"] != "/rustfs/admin/v3/kms/generate-data-key" || gen["action"] != "kms:GenerateDataKey" || gen["key_id"] != "audited" ||
		gen["status"] != 200.0 || gen["access_key"] != rootUser {
		t.Errorf("generate line: %v", gen)
	}
	if l := lines[8]; l["status"] != 404.0 || l["code"] != "NotFound" || l["route"] != "/rustfs/admin/v3/kms/keys/{key_id}" || l["key_id"] != "missing" {
		t.Errorf("404 line: %v", l)
	}
	// A failed authentication is audited with the access key it claimed.
	for i, want := range []struct{ accessKey, code string }{
		9:  {rootUser, "SignatureDoesNotMatch"},
		10: {rootUser, "SignatureDoesNotMatch"},
		11: {"no-such-user", "InvalidAccessKeyId"},
		12: {"", "AccessDenied"},
	} {
		if want.code == "" {
			continue
		}
		if l := lines[i]; l["status"] != 401.0 || l["code"] != want.code || l["access_key"] != want.accessKey {
			t.Errorf("401 line %d: want access_key %q, code %s; got %v", i+1, want.accessKey, want.code, l)
		}
	}
}

// scrape reads /metrics and returns the value of each sample line.
func scrape(t *testing.T, c *client) map[string]float64 {
	t.Helper()
	st, _, raw := c.doAbs("GET", "/metrics", nil)
	if st != 200 {
		t.Fatalf("scrape: %d %s", st, short(raw))
	}
	out := map[string]float64{}
	for _, line := range strings.Split(string(raw), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err == nil {
			out[line[:i]] = v
		}
	}
	return out
}

// TestMetrics checks that the counters move by the expected amounts and
// that /metrics needs a signed request with kms:ServiceControl.
func TestMetrics(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, c)
	createKey(t, c, "metered")
	if st, _, raw := c.doAbs("GET", "/metrics", nil, withoutSignature()); st != 401 {
		t.Errorf("unsigned scrape: %d %s", st, short(raw))
	}
	before := scrape(t, c)
	const n = 7
	for i := 0; i < n; i++ {
		generate(t, c, "metered", nil)
	}
	c.do("GET", "/kms/keys/nope", nil)
	after := scrape(t, c)
	gen := `keyward_http_requests_total{method="POST",route="/rustfs/admin/v3/kms/generate-data-key",status="200"}`
	if d := after[gen] - before[gen]; d != n {
		t.Errorf("%s moved by %v, want %d", gen, d, n)
	}
	nf := `keyward_http_requests_total{method="GET",route="/rustfs/admin/v3/kms/keys/{key_id}",status="404"}`
	if d := after[nf] - before[nf]; d != 1 {
		t.Errorf("%s moved by %v, want 1", nf, d)
	}
	wrap := `keyward_backend_calls_total{backend="local",op="wrap"}`
	if d := after[wrap] - before[wrap]; d != n {
		t.Errorf("%s moved by %v, want %d", wrap, d, n)
	}
	if after["keyward_cache_hits_total"] <= before["keyward_cache_hits_total"] {
		t.Errorf("cache hits did not move")
	}
	for k := range after {
		if strings.Contains(k, "metered") || strings.Contains(k, "nope") {
			t.Errorf("a key id appears in a metric: %s", k)
		}
	}
	if _, ok := after[`keyward_keys{state="Enabled"}`]; !ok {
		t.Errorf("no keyward_keys{state=Enabled}")
	}
}

// TestHTTPS serves over TLS with a throwaway CA; a SIGHUP reloads a new
// certificate without a restart.
func TestHTTPS(t *testing.T) {
	t.Parallel()
	pki, err := certs.NewTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, serverOpts{Args: []string{"--tls-cert", pki.CertFile, "--tls-key", pki.KeyFile}})
	if !strings.HasPrefix(srv.URL, "https://") {
		t.Fatalf("URL %s", srv.URL)
	}
	pool := x509.NewCertPool()
	pool.AddCert(pki.CA)
	c := srv.client(t)
	c.hc = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "", nil)
	startKMS(t, c)
	createKey(t, c, "tls")
	dk := generate(t, c, "tls", nil)
	if st, pt, _ := decrypt(t, c, dk.Blob, nil); st != 200 || string(pt) != string(dk.Plaintext) {
		t.Fatalf("decrypt over TLS: %d", st)
	}
	serial := func() int64 {
		conn, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: pool})
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		return conn.ConnectionState().PeerCertificates[0].SerialNumber.Int64()
	}
	if serial() != 2 {
		t.Fatal("unexpected certificate")
	}
	if err := pki.Issue("rotated", 3); err != nil {
		t.Fatal(err)
	}
	srv.cmd.Process.Signal(syscallSIGHUP)
	deadline := time.Now().Add(5 * time.Second)
	for serial() != 3 {
		if time.Now().After(deadline) {
			t.Fatal("certificate not reloaded on SIGHUP")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := tls.Dial("tcp", srv.Addr, &tls.Config{RootCAs: pool, MaxVersion: tls.VersionTLS11}); err == nil {
		t.Error("TLS 1.1 accepted")
	}
	if resp, err := http.Get("http://" + srv.Addr + "/health/live"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Error("plain HTTP served on the TLS port")
		}
	}
}
