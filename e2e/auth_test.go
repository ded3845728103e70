package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
)

// unauthorizedCodes are the 401 codes of docs/api.md, "Errors".
var unauthorizedCodes = []string{"AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestTimeTooSkewed"}

// TestAuthentication checks SigV4 verification (docs/api.md, "Signing") with the
// AWS SDK signer, curl and botocore.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{Args: []string{"--dev"}})
	c := srv.client(t)
	genBody := map[string]any{"key_spec": "AES_256", "encryption_context": map[string]string{"k": "v"}}

	okStatus := func(what string, opts ...reqOption) {
		t.Helper()
		st, m, raw := c.do("GET", "/kms/status", nil, opts...)
		if wantStatus(t, what, st, raw, 200) && str(m, "status") != "Running" {
			t.Errorf("%s: unexpected body %s", what, short(raw))
		}
	}
	okGenerate := func(what string, opts ...reqOption) {
		t.Helper()
		st, m, raw := c.do("POST", "/kms/generate-data-key", genBody, opts...)
		if wantStatus(t, what, st, raw, 200) && str(m, "plaintext_key") == "" {
			t.Errorf("%s: no plaintext_key in %s", what, short(raw))
		}
	}

	// Baseline, and the accepted variations.
	okStatus("signed GET (s3, us-east-1)")
	okGenerate("signed POST (s3, us-east-1)")
	okStatus("service kms", withService("kms"))
	okGenerate("service kms POST", withService("kms"))
	okStatus("region eu-central-1", withRegion("eu-central-1"))
	okGenerate("service kms, region eu-central-1 POST", withService("kms"), withRegion("eu-central-1"))
	okStatus("signed 14 minutes ago", withTime(time.Now().Add(-14*time.Minute)))
	okStatus("signed 14 minutes ahead", withTime(time.Now().Add(14*time.Minute)))
	okStatus("UNSIGNED-PAYLOAD on a GET without a body", withUnsignedPayload())
	okGenerate("payload hash signed without an x-amz-content-sha256 header", withoutPayloadHeader())
	okGenerate("payload hash signed without a header, service kms", withoutPayloadHeader(), withService("kms"))
	st, _, raw := c.do("POST", "/kms/generate-data-key", genBody, withoutPayloadHeader(), withPayloadHash(hexSHA256([]byte("{}"))))
	wantError(t, "payload hash of another body signed, no header", st, raw, 401, "SignatureDoesNotMatch")

	// Rejections.
	// The body is always signed (UNSIGNED-PAYLOAD with a body needs
	// --allow-unsigned-payload: TestUnsignedPayload).
	st, _, raw = c.do("POST", "/kms/generate-data-key", genBody, withUnsignedPayload())
	if wantError(t, "UNSIGNED-PAYLOAD on a POST", st, raw, 401, "AccessDenied") && !strings.Contains(string(raw), "sign the body") {
		t.Errorf("UNSIGNED-PAYLOAD on a POST: the message does not say what to do: %s", short(raw))
	}
	st, _, raw = c.do("GET", "/kms/status", nil, withoutSignature())
	wantError(t, "unsigned request", st, raw, 401, "AccessDenied")
	st, _, raw = c.do("POST", "/kms/generate-data-key", genBody, withoutSignature())
	wantError(t, "unsigned POST", st, raw, 401, "AccessDenied")
	st, _, raw = c.do("GET", "/kms/status", nil, withCreds(srv.AccessKey, srv.SecretKey+"-wrong"))
	wantError(t, "wrong secret", st, raw, 401, "SignatureDoesNotMatch")
	st, _, raw = c.do("GET", "/kms/status", nil, withCreds("no-such-user", srv.SecretKey))
	wantError(t, "unknown access key", st, raw, 401, "InvalidAccessKeyId")
	st, _, raw = c.do("GET", "/kms/status", nil, withTime(time.Now().Add(-16*time.Minute)))
	wantError(t, "signed 16 minutes ago", st, raw, 401, "RequestTimeTooSkewed")
	st, _, raw = c.do("GET", "/kms/status", nil, withTime(time.Now().Add(16*time.Minute)))
	wantError(t, "signed 16 minutes ahead", st, raw, 401, "RequestTimeTooSkewed")
	st, _, raw = c.do("GET", "/kms/status", nil, withService("ec2"))
	wantError(t, "service ec2", st, raw, 401, unauthorizedCodes...)
	st, _, raw = c.do("POST", "/kms/generate-data-key", genBody, withPayloadHash(hexSHA256([]byte(`{"key_spec":"AES_128"}`))))
	wantError(t, "x-amz-content-sha256 not matching the body", st, raw, 401, "SignatureDoesNotMatch")
	st, _, raw = c.do("POST", "/kms/generate-data-key", genBody, withAfterSign(func(r *http.Request) {
		r.Header.Set("X-Amz-Date", time.Now().Add(time.Second).UTC().Format("20060102T150405Z"))
	}))
	wantError(t, "X-Amz-Date changed after signing", st, raw, 401, "SignatureDoesNotMatch", "AccessDenied")
	st, _, raw = c.do("GET", "/kms/status", nil, withAfterSign(func(r *http.Request) {
		r.URL.RawQuery = "extra=1"
	}))
	wantError(t, "query added after signing", st, raw, 401, "SignatureDoesNotMatch")
	st, _, raw = c.do("GET", "/kms/status", nil, withAfterSign(func(r *http.Request) {
		r.Header.Set("Authorization", "Bearer nonsense")
	}))
	wantError(t, "a non-SigV4 Authorization header", st, raw, 401, unauthorizedCodes...)

	// Presigned URLs.
	okStatus("presigned GET", withPresign())
	okStatus("presigned GET, service kms", withPresign(), withService("kms"))
	st, _, raw = c.do("GET", "/kms/status", nil, withPresign(), withAfterSign(func(r *http.Request) {
		r.URL.RawQuery += "&extra=1"
	}))
	wantError(t, "presigned GET with an added query parameter", st, raw, 401, "SignatureDoesNotMatch")
	st, _, raw = c.do("GET", "/kms/status", nil, withPresign(), withAfterSign(func(r *http.Request) {
		q := r.URL.Query()
		q.Set("X-Amz-Expires", "3600")
		r.URL.RawQuery = q.Encode()
	}))
	wantError(t, "presigned GET with a changed X-Amz-Expires", st, raw, 401, "SignatureDoesNotMatch")
	st, _, raw = c.do("GET", "/kms/status", nil, withPresign(), withTime(time.Now().Add(-time.Hour)))
	wantError(t, "presigned GET expired (300 s, signed an hour ago)", st, raw, 401, "RequestTimeTooSkewed")

	// Other clients.
	t.Run("curl", func(t *testing.T) { curlSigned(t, srv) })
	t.Run("botocore", func(t *testing.T) { botocoreSigned(t, srv) })
}

// curlSigned signs with curl --aws-sigv4.
func curlSigned(t *testing.T, srv *server) {
	testenv.Command(t, "curl", "apt-get install curl")
	run := func(what string, args ...string) (int, map[string]any, string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		base := []string{"-sS", "--aws-sigv4", "aws:amz:us-east-1:s3", "--user", srv.AccessKey + ":" + srv.SecretKey, "-w", "\n%{http_code}"}
		out, err := exec.CommandContext(ctx, "curl", append(base, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: curl: %v\n%s", what, err, out)
		}
		s := strings.TrimRight(string(out), "\n")
		i := strings.LastIndex(s, "\n")
		code, _ := strconv.Atoi(s[i+1:])
		body := s[:max(i, 0)]
		var m map[string]any
		json.Unmarshal([]byte(body), &m)
		return code, m, body
	}
	code, m, body := run("curl GET /kms/status", srv.URL+adminPrefix+"/kms/status")
	if code != 200 || str(m, "status") != "Running" {
		t.Errorf("curl --aws-sigv4 GET /kms/status: want 200 Running; got %d %s", code, body)
	}
	code, m, body = run("curl POST /kms/generate-data-key", "-X", "POST", "-H", "Content-Type: application/json",
		"--data-binary", `{"key_spec":"AES_256","encryption_context":{"client":"curl"}}`, srv.URL+adminPrefix+"/kms/generate-data-key")
	if code != 200 || len(unb64(t, "plaintext_key", str(m, "plaintext_key"))) != 32 {
		t.Errorf("curl --aws-sigv4 POST /kms/generate-data-key: want 200 with a 32-byte key; got %d %s", code, body)
	}
	code, _, body = run("curl with a wrong secret", "--user", srv.AccessKey+":wrong-secret-123", srv.URL+adminPrefix+"/kms/status")
	if code != 401 {
		t.Errorf("curl --aws-sigv4 with a wrong secret: want 401; got %d %s", code, body)
	}
}

// botocorePOST is run by python3: for each case it signs a POST with
// botocore's SigV4Auth (service kms: the payload hash is signed, no
// x-amz-content-sha256 header) and sends it with urllib. One interpreter
// serves every case (importing botocore is slow).
const botocorePOST = `
import json, sys, urllib.request, urllib.error
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
results = []
for case in json.loads(sys.argv[1]):
    url, body = case["url"], case["body"].encode()
    req = AWSRequest(method="POST", url=url, data=body, headers={"Content-Type": "application/json"})
    SigV4Auth(Credentials(case["ak"], case["sk"]), case["service"], case["region"]).add_auth(req)
    r = urllib.request.Request(url, data=body, headers=dict(req.headers.items()), method="POST")
    try:
        resp = urllib.request.urlopen(r, timeout=20)
        code, out = resp.status, resp.read()
    except urllib.error.HTTPError as e:
        code, out = e.code, e.read()
    results.append({"status": code, "body": out.decode()})
print(json.dumps(results))
`

// botocoreSigned signs with python3 botocore.
func botocoreSigned(t *testing.T, srv *server) {
	testenv.PythonModule(t, "botocore", "pip install botocore, or apt-get install python3-botocore")
	type botoCase struct {
		URL     string `json:"url"`
		AK      string `json:"ak"`
		SK      string `json:"sk"`
		Service string `json:"service"`
		Region  string `json:"region"`
		Body    string `json:"body"`
	}
	url := srv.URL + adminPrefix + "/kms/generate-data-key"
	body := `{"key_spec":"AES_128","encryption_context":{"client":"botocore"}}`
	cases := []botoCase{
		{url, srv.AccessKey, srv.SecretKey, "kms", "us-east-1", body},
		{url, srv.AccessKey, srv.SecretKey, "s3", "ap-southeast-2", body},
		{url, srv.AccessKey, srv.SecretKey + "x", "kms", "us-east-1", body},
	}
	arg, _ := json.Marshal(cases)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "python3", "-c", botocorePOST, string(arg)).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("python3 botocore (is botocore installed?): %v\n%s%s", err, out, stderr)
	}
	var results []struct {
		Status int    `json:"status"`
		Body   string `json:"body"`
	}
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("python3 botocore: unexpected output %q: %v", out, err)
	}
	parse := func(i int) map[string]any {
		var m map[string]any
		json.Unmarshal([]byte(results[i].Body), &m)
		return m
	}
	if m := parse(0); results[0].Status != 200 || len(unb64(t, "plaintext_key", str(m, "plaintext_key"))) != 16 {
		t.Errorf("botocore SigV4Auth POST (kms): want 200 with a 16-byte key; got %d %s", results[0].Status, results[0].Body)
	}
	if m := parse(1); results[1].Status != 200 || str(m, "plaintext_key") == "" {
		t.Errorf("botocore SigV4Auth POST (s3, ap-southeast-2): want 200; got %d %s", results[1].Status, results[1].Body)
	}
	if m := parse(2); results[2].Status != 401 || str(m, "code") != "SignatureDoesNotMatch" {
		t.Errorf("botocore SigV4Auth POST with a wrong secret: want 401 SignatureDoesNotMatch; got %d %s", results[2].Status, results[2].Body)
	}
}
