package sigv4

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

type signCase struct {
	method, url, body, service, region string
	header                             map[string]string
}

var signCases = []signCase{
	{"GET", "http://127.0.0.1:9000/rustfs/admin/v3/kms/status", "", "kms", "us-east-1", nil},
	{"GET", "http://127.0.0.1:9000/rustfs/admin/v3/kms/keys?limit=50&marker=abc&state=Enabled", "", "kms", "us-east-1", nil},
	{"GET", "https://kms.example.com/rustfs/admin/v3/kms/keys?marker=a%20b~c%2Fd%25e%2Bf%3D&limit=5", "", "kms", "eu-west-3", nil},
	{"GET", "https://kms.example.com:443/rustfs/admin/v3/kms/keys/my-key_1.x", "", "kms", "us-east-1", nil},
	{"GET", "http://kms.example.com:80/rustfs/admin/v3/kms/keys/a%2Fb%20c", "", "kms", "us-east-1", nil},
	{"GET", "http://kms.example.com:8080/rustfs/admin/v3/kms/keys/%C3%BC", "", "s3", "us-east-1", nil},
	{"POST", "http://127.0.0.1:9000/rustfs/admin/v3/kms/generate-data-key", `{"key_id":"app","encryption_context":{"a":"b"}}`, "kms", "us-east-1",
		map[string]string{"Content-Type": "application/json", "Accept": "application/json", "User-Agent": "keyward-go-client/1"}},
	{"POST", "http://127.0.0.1:9000/rustfs/admin/v3/kms/stop", "", "kms", "us-east-1", map[string]string{"Accept": "application/json"}},
	{"DELETE", "http://[::1]:9000/rustfs/admin/v3/kms/keys/delete", `{"key_id":"k","pending_window_in_days":7}`, "s3", "ap-southeast-2",
		map[string]string{"Content-Type": "application/json", "X-Amz-Meta-Note": "  spaced   value  "}},
	{"GET", "http://127.0.0.1:9000/metrics", "", "kms", "us-east-1", map[string]string{"Accept": "text/plain;version=0.0.4"}},
}

func newTestRequest(t *testing.T, c signCase) *http.Request {
	t.Helper()
	var body io.Reader
	if c.body != "" {
		body = strings.NewReader(c.body)
	}
	r, err := http.NewRequest(c.method, c.url, body)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range c.header {
		r.Header.Set(k, v)
	}
	return r
}

// TestSignerMatchesAWSSDK: for the same request, time and credentials, the
// client's signature is the AWS SDK for Go v2 signer's.
func TestSignerMatchesAWSSDK(t *testing.T) {
	for _, c := range signCases {
		s := &Signer{AccessKey: testAK, SecretKey: testSecret, Region: c.region, Service: c.service}
		mine := newTestRequest(t, c)
		s.Sign(mine, []byte(c.body), testTime)

		sdk := newTestRequest(t, c)
		sum := sha256.Sum256([]byte(c.body))
		hash := hex.EncodeToString(sum[:])
		sdk.Header.Set("X-Amz-Content-Sha256", hash)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = c.service == "s3" })
		err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAK, SecretAccessKey: testSecret}, sdk, hash, c.service, c.region, testTime)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := mine.Header.Get("Authorization"), sdk.Header.Get("Authorization"); got != want {
			t.Errorf("%s %s (%s):\n got  %s\n want %s", c.method, c.url, c.service, got, want)
		}
		if mine.Header.Get("X-Amz-Date") != sdk.Header.Get("X-Amz-Date") {
			t.Errorf("%s %s: X-Amz-Date %q, SDK %q", c.method, c.url, mine.Header.Get("X-Amz-Date"), sdk.Header.Get("X-Amz-Date"))
		}
		sdkHost := sdk.Host
		if sdkHost == "" {
			sdkHost = sdk.URL.Host
		}
		if mine.Host != sdkHost {
			t.Errorf("%s: signed host %q, SDK %q", c.url, mine.Host, sdkHost)
		}
	}
}

// TestSignerAcceptedByVerifier sends the signed requests over HTTP to the
// server's own verifier and checks that it accepts them
// and rejects altered ones.
func TestSignerAcceptedByVerifier(t *testing.T) {
	v := New(staticCreds{testAK: testSecret}, func() time.Time { return testTime.Add(time.Minute) }, 0)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if ak, err := v.Verify(r, body); err != nil {
			http.Error(w, err.Error(), http.StatusUnauthorized)
		} else {
			io.WriteString(w, "OK "+ak)
		}
	}))
	defer srv.Close()
	hc := srv.Client()
	send := func(r *http.Request) string {
		t.Helper()
		resp, err := hc.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return strings.TrimSpace(string(b))
	}
	for _, c := range signCases {
		u := c.url[strings.Index(c.url[8:], "/")+8:] // path and query
		c.url = srv.URL + u
		s := &Signer{AccessKey: testAK, SecretKey: testSecret, Region: c.region, Service: c.service}
		r := newTestRequest(t, c)
		s.Sign(r, []byte(c.body), testTime)
		if got := send(r); got != "OK "+testAK {
			t.Errorf("%s %s (%s): %s", c.method, u, c.service, got)
		}
		if c.body != "" { // a changed body no longer matches
			r := newTestRequest(t, c)
			s.Sign(r, []byte(c.body), testTime)
			tampered := strings.Replace(c.body, "k", "x", 1)
			r.Body, r.ContentLength = io.NopCloser(strings.NewReader(tampered)), int64(len(tampered))
			if got := send(r); !strings.Contains(got, "signature does not match") {
				t.Errorf("%s %s with a tampered body: %s", c.method, u, got)
			}
		}
	}
	// A wrong secret is refused.
	s := &Signer{AccessKey: testAK, SecretKey: "wrong", Region: "us-east-1", Service: "kms"}
	r, _ := http.NewRequest("GET", srv.URL+"/rustfs/admin/v3/kms/status", nil)
	s.Sign(r, nil, testTime)
	if got := send(r); !strings.Contains(got, "signature does not match") {
		t.Errorf("wrong secret: %s", got)
	}
}

// TestSigningKeyCache: the derived key follows the date.
func TestSigningKeyCache(t *testing.T) {
	s := &Signer{AccessKey: testAK, SecretKey: testSecret, Region: "us-east-1", Service: "kms"}
	k1 := s.signingKey("20240918")
	k2 := s.signingKey("20240919")
	if k1 == k2 || k1 != s.signingKey("20240918") {
		t.Fatal("signing key cache")
	}
}
