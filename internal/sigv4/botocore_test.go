package sigv4

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"os/exec"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/testenv"
)

// botocoreScript signs each case with botocore's SigV4 signers (the code the
// AWS CLI and boto3 run) at a fixed time, sends it with botocore's own HTTP
// session, and reports what the server answered.
const botocoreScript = `
import datetime, json, sys
import botocore.auth as auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.httpsession import URLLib3Session

cfg = json.load(sys.stdin)
fixed = datetime.datetime.strptime(cfg["time"], "%Y%m%dT%H%M%SZ")
auth.get_current_datetime = lambda *a, **k: fixed
creds = Credentials(cfg["ak"], cfg["secret"])
classes = {"v4": auth.SigV4Auth, "s3": auth.S3SigV4Auth,
           "v4query": auth.SigV4QueryAuth, "s3query": auth.S3SigV4QueryAuth}
session = URLLib3Session()
out = []
for c in cfg["cases"]:
    req = AWSRequest(method=c["method"], url=c["url"], data=c["body"].encode(), headers=c["headers"] or {})
    cls = classes[c["signer"]]
    if c["signer"].endswith("query"):
        signer = cls(creds, c["service"], c["region"], expires=3600)
    else:
        signer = cls(creds, c["service"], c["region"])
    signer.add_auth(req)
    resp = session.send(req.prepare())
    out.append(resp.content.decode())
json.dump(out, sys.stdout)
`

type botoCase struct {
	Signer  string            `json:"signer"`
	Method  string            `json:"method"`
	URL     string            `json:"url"`
	Body    string            `json:"body"`
	Headers map[string]string `json:"headers"`
	Service string            `json:"service"`
	Region  string            `json:"region"`
}

// TestBotocore cross-checks against an independent implementation. python3
// with botocore is part of the CI image; the test fails rather than skips
// when it is missing, so a broken image cannot silently drop the coverage.
func TestBotocore(t *testing.T) {
	testenv.PythonModule(t, "botocore", "pip install botocore, or apt-get install python3-botocore")
	v := newTestVerifier(testTime.Add(3 * time.Minute))
	srv := httptest.NewServer(verifyHandler(v))
	defer srv.Close()

	var cases []botoCase
	paths := []string{"/", "/rustfs/admin/v3/kms/keys/my-key_1.x", "/bucket/a%20b%2Bc%24d~e.txt", "/keys//x/./y/../z"}
	queries := []string{"", "?limit=50&marker=abc", "?prefix=a%2Fb&delimiter=%2F&empty=", "?q=%E2%82%AC%20x"}
	for _, signer := range []string{"v4", "s3", "v4query", "s3query"} {
		service := map[string]string{"v4": "kms", "s3": "s3", "v4query": "kms", "s3query": "s3"}[signer]
		for i, p := range paths {
			for j, q := range queries {
				c := botoCase{Signer: signer, Method: "GET", URL: srv.URL + p + q, Service: service,
					Region: sdkRegions[(i+j)%len(sdkRegions)]}
				if signer == "v4" || signer == "s3" {
					if (i+j)%2 == 0 {
						c.Method, c.Body = "POST", `{"KeyId":"my-key_1.x","Plaintext":"aGVsbG8="}`
						c.Headers = map[string]string{"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": "TrentService.Encrypt"}
					}
				}
				cases = append(cases, c)
			}
		}
	}
	in, _ := json.Marshal(map[string]any{"time": testTime.Format(amzDateLayout), "ak": testAK, "secret": testSecret, "cases": cases})
	cmd := exec.Command("python3", "-c", botocoreScript)
	cmd.Stdin = bytes.NewReader(in)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("botocore: %v\n%s", err, stderr.String())
	}
	var results []string
	if err := json.Unmarshal(out, &results); err != nil || len(results) != len(cases) {
		t.Fatalf("botocore output %q: %v", out, err)
	}
	for i, res := range results {
		if res != "OK "+testAK {
			t.Errorf("%s %s %s: %s", cases[i].Signer, cases[i].Method, cases[i].URL, res)
		}
	}
	t.Logf("%d botocore-signed requests verified over HTTP", len(results))
}
