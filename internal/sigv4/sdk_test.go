package sigv4

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

const (
	testAK     = "KEYWARDTESTKEY0001"
	testSecret = "s3cr3t/Key+With=Chars0123456789abcdefghij"
)

var testTime = time.Date(2024, 9, 18, 10, 11, 12, 0, time.UTC)

func sdkCreds(secret string) aws.Credentials {
	return aws.Credentials{AccessKeyID: testAK, SecretAccessKey: secret}
}

func hexSHA(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }

// payload modes of the SDK signer, as real clients use them.
type payloadStyle int

const (
	kmsStyle        payloadStyle = iota // hash signed, no x-amz-content-sha256 header (KMS and most services)
	s3HashStyle                         // hash signed and sent in x-amz-content-sha256 (S3)
	s3UnsignedStyle                     // UNSIGNED-PAYLOAD sent in x-amz-content-sha256 (S3 over TLS)
)

func (p payloadStyle) String() string {
	return [...]string{"kms-style", "s3-hash", "s3-unsigned"}[p]
}

// signHeader signs a client-side request with the SDK's SignHTTP, the way the
// SDK's own clients configure it (S3 disables the extra path escaping).
func signHeader(t testing.TB, secret, method, rawURL string, body []byte, service, region string, style payloadStyle, at time.Time) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, rawURL, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	hash := hexSHA(body)
	switch style {
	case s3HashStyle:
		r.Header.Set("X-Amz-Content-Sha256", hash)
	case s3UnsignedStyle:
		hash = "UNSIGNED-PAYLOAD"
		r.Header.Set("X-Amz-Content-Sha256", hash)
	}
	r.Header.Set("Content-Type", "application/json")
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
	if err := signer.SignHTTP(context.Background(), sdkCreds(secret), r, hash, service, region, at); err != nil {
		t.Fatal(err)
	}
	return r
}

// presign returns a presigned URL made by the SDK's PresignHTTP.
func presign(t testing.TB, secret, method, rawURL, service, region string, expires time.Duration, at time.Time) string {
	t.Helper()
	r, err := http.NewRequest(method, rawURL, nil)
	if err != nil {
		t.Fatal(err)
	}
	q := r.URL.Query()
	q.Set("X-Amz-Expires", fmt.Sprint(int64(expires/time.Second)))
	r.URL.RawQuery = q.Encode()
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
	u, _, err := signer.PresignHTTP(context.Background(), sdkCreds(secret), r, "UNSIGNED-PAYLOAD", service, region, at)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func newTestVerifier(now time.Time) *Verifier {
	return New(staticCreds{testAK: testSecret}, fixedClock(now), 15*time.Minute)
}

var (
	sdkPaths = []string{
		"/",
		"/rustfs/admin/v3/kms/keys/my-key_1.x",
		"/bucket/dir/a%20b+c$d~e(1).txt",
		"/keys/%E2%82%AC%2Fslash",
		"/keys//double/./dot/../x", // Go SDK does not normalize; botocore would
	}
	sdkQueries = []string{"", "limit=50&marker=abc", "prefix=a%2Fb&delimiter=%2F&empty=&x=1&x=0", "q=a%20b&k=%E2%82%AC"}
	sdkRegions = []string{"us-east-1", "eu-west-3", "cn-north-1", "local"}
)

// TestSDKHeaderSigned verifies SignHTTP-signed requests, both as built by the
// client (r.URL path) and after a real round trip through net/http (the
// RequestURI path, Host and Content-Length handling of a real server).
//
// UNSIGNED-PAYLOAD with a body is refused by default and accepted by a
// verifier built WithUnsignedPayload(true).
func TestSDKHeaderSigned(t *testing.T) {
	strict := newTestVerifier(testTime)
	lax := New(staticCreds{testAK: testSecret}, fixedClock(testTime), 15*time.Minute, WithUnsignedPayload(true))
	strictSrv := httptest.NewServer(verifyHandler(strict))
	defer strictSrv.Close()
	laxSrv := httptest.NewServer(verifyHandler(lax))
	defer laxSrv.Close()

	n := 0
	for _, service := range []string{"s3", "kms"} {
		for i, path := range sdkPaths {
			for j, query := range sdkQueries {
				for _, style := range []payloadStyle{kmsStyle, s3HashStyle, s3UnsignedStyle} {
					region := sdkRegions[(i+j)%len(sdkRegions)]
					method := [...]string{"GET", "POST", "PUT"}[(i+j+int(style))%3]
					body := []byte(`{"KeyId":"my-key_1.x","Plaintext":"aGVsbG8="}`)
					if method == "GET" {
						body = nil
					}
					target := path
					if query != "" {
						target += "?" + query
					}
					name := fmt.Sprintf("%s %s %s %s %s", service, region, method, target, style)

					v, srv := strict, strictSrv
					if style == s3UnsignedStyle && method != "GET" {
						r := signHeader(t, testSecret, method, "https://kms.example.com:8443"+target, body, service, region, style, testTime)
						if _, err := strict.Verify(r, body); !errors.Is(err, ErrMalformed) || !strings.Contains(err.Error(), "x-amz-content-sha256 with the hex SHA-256 of the body") {
							t.Errorf("%s: by default: got %v, want ErrMalformed saying what to do", name, err)
						}
						r = signHeader(t, testSecret, method, strictSrv.URL+target, body, service, region, style, testTime)
						if got := roundTrip(t, r); !strings.HasPrefix(got, "ERR "+ErrMalformed.Error()) {
							t.Errorf("%s: by default, over the wire: %s", name, got)
						}
						v, srv = lax, laxSrv
					}
					r := signHeader(t, testSecret, method, "https://kms.example.com:8443"+target, body, service, region, style, testTime)
					if ak, err := v.Verify(r, body); err != nil || ak != testAK {
						t.Errorf("%s: direct Verify = %q, %v", name, ak, err)
					}
					r = signHeader(t, testSecret, method, srv.URL+target, body, service, region, style, testTime)
					if got := roundTrip(t, r); got != "OK "+testAK {
						t.Errorf("%s: over the wire: %s", name, got)
					}
					n++
				}
			}
		}
	}
	t.Logf("%d signed requests verified", n)
}

// TestSDKPresigned verifies PresignHTTP URLs, directly and over the wire.
func TestSDKPresigned(t *testing.T) {
	v := newTestVerifier(testTime.Add(10 * time.Minute))
	srv := httptest.NewServer(verifyHandler(v))
	defer srv.Close()
	for _, service := range []string{"s3", "kms"} {
		for i, path := range sdkPaths {
			for j, query := range sdkQueries {
				region := sdkRegions[(i+j)%len(sdkRegions)]
				target := path
				if query != "" {
					target += "?" + query
				}
				name := fmt.Sprintf("%s %s %s", service, region, target)
				u := presign(t, testSecret, "GET", "https://s3.example.com"+target, service, region, time.Hour, testTime)
				r := httptest.NewRequest("GET", u, nil)
				if ak, err := v.Verify(r, nil); err != nil || ak != testAK {
					t.Errorf("%s: Verify = %q, %v\n%s", name, ak, err, u)
				}
				u = presign(t, testSecret, "GET", srv.URL+target, service, region, time.Hour, testTime)
				r, err := http.NewRequest("GET", u, nil)
				if err != nil {
					t.Fatal(err)
				}
				if got := roundTrip(t, r); got != "OK "+testAK {
					t.Errorf("%s: over the wire: %s", name, got)
				}
			}
		}
	}
}

// verifyHandler reads the body and reports the Verify outcome in the
// response, so tests can see exactly what a server would decide.
func verifyHandler(v *Verifier) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		ak, err := v.Verify(r, body)
		if err != nil {
			fmt.Fprint(w, "ERR ", err)
			return
		}
		fmt.Fprint(w, "OK ", ak)
	})
}

func roundTrip(t testing.TB, r *http.Request) string {
	t.Helper()
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func TestSDKRejections(t *testing.T) {
	body := []byte(`{"KeyId":"k1"}`)
	const url = "https://kms.example.com/rustfs/admin/v3/kms/keys/my-key_1.x?limit=50&marker=abc"
	sign := func(service string, style payloadStyle, at time.Time) *http.Request {
		return signHeader(t, testSecret, "POST", url, body, service, "us-east-1", style, at)
	}
	v := newTestVerifier(testTime)
	lax := New(staticCreds{testAK: testSecret}, fixedClock(testTime), 15*time.Minute, WithUnsignedPayload(true))
	cases := []struct {
		name string
		run  func() error
		want error
	}{
		{"wrong secret", func() error {
			_, err := v.Verify(signHeader(t, "wrong-secret", "POST", url, body, "kms", "us-east-1", kmsStyle, testTime), body)
			return err
		}, ErrSignatureDoesNotMatch},
		{"unknown access key", func() error {
			r := sign("kms", kmsStyle, testTime)
			_, err := New(staticCreds{"OTHER": testSecret}, fixedClock(testTime), 0).Verify(r, body)
			return err
		}, ErrInvalidAccessKeyID},
		{"no auth", func() error {
			_, err := v.Verify(httptest.NewRequest("GET", url, nil), nil)
			return err
		}, ErrMissingAuthentication},
		{"skew +16m", func() error {
			_, err := v.Verify(sign("kms", kmsStyle, testTime.Add(16*time.Minute)), body)
			return err
		}, ErrRequestTimeTooSkewed},
		{"skew -16m", func() error {
			_, err := v.Verify(sign("kms", kmsStyle, testTime.Add(-16*time.Minute)), body)
			return err
		}, ErrRequestTimeTooSkewed},
		{"skew +14m", func() error {
			_, err := v.Verify(sign("kms", kmsStyle, testTime.Add(14*time.Minute)), body)
			return err
		}, nil},
		{"skew -14m", func() error {
			_, err := v.Verify(sign("kms", kmsStyle, testTime.Add(-14*time.Minute)), body)
			return err
		}, nil},
		{"body changed, hash header", func() error {
			_, err := v.Verify(sign("s3", s3HashStyle, testTime), []byte(`{"KeyId":"k2"}`))
			return err
		}, ErrSignatureDoesNotMatch},
		{"body changed, kms style", func() error {
			_, err := v.Verify(sign("kms", kmsStyle, testTime), []byte(`{"KeyId":"k2"}`))
			return err
		}, ErrSignatureDoesNotMatch},
		{"unsigned payload with a body", func() error {
			_, err := v.Verify(sign("s3", s3UnsignedStyle, testTime), body)
			return err
		}, ErrMalformed},
		{"body changed, unsigned payload", func() error {
			_, err := v.Verify(sign("s3", s3UnsignedStyle, testTime), []byte(`{"KeyId":"k2"}`))
			return err
		}, ErrMalformed},
		{"body changed, unsigned payload allowed (the documented risk)", func() error {
			_, err := lax.Verify(sign("s3", s3UnsignedStyle, testTime), []byte(`{"KeyId":"k2"}`))
			return err
		}, nil},
		{"unsigned payload on a GET with a body", func() error {
			r := signHeader(t, testSecret, "GET", url, body, "s3", "us-east-1", s3UnsignedStyle, testTime)
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"unsigned payload on a GET announcing no body but given one", func() error {
			r := signHeader(t, testSecret, "GET", url, nil, "s3", "us-east-1", s3UnsignedStyle, testTime)
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"unsigned payload on a GET without a body", func() error {
			_, err := v.Verify(signHeader(t, testSecret, "GET", url, nil, "s3", "us-east-1", s3UnsignedStyle, testTime), nil)
			return err
		}, nil},
		{"hash header changed", func() error {
			r := sign("s3", s3HashStyle, testTime)
			r.Header.Set("X-Amz-Content-Sha256", hexSHA([]byte("other")))
			_, err := v.Verify(r, []byte("other"))
			return err
		}, ErrSignatureDoesNotMatch},
		{"service ec2", func() error { _, err := v.Verify(sign("ec2", kmsStyle, testTime), body); return err }, ErrMalformed},
		{"service sts", func() error { _, err := v.Verify(sign("sts", kmsStyle, testTime), body); return err }, ErrMalformed},
		{"unsigned x-amz header added", func() error {
			r := sign("s3", s3HashStyle, testTime)
			r.Header.Set("X-Amz-Server-Side-Encryption", "aws:kms")
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"scope date differs from x-amz-date", func() error {
			r := sign("kms", kmsStyle, testTime)
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/20240918/", "/20240917/", 1))
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"streaming payload", func() error {
			r := sign("s3", s3HashStyle, testTime)
			r.Header.Set("X-Amz-Content-Sha256", "STREAMING-UNSIGNED-PAYLOAD-TRAILER")
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"uppercase signature", func() error {
			r := sign("kms", kmsStyle, testTime)
			a := r.Header.Get("Authorization")
			i := strings.Index(a, "Signature=") + len("Signature=")
			r.Header.Set("Authorization", a[:i]+strings.ToUpper(a[i:]))
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"header and presign", func() error {
			r := sign("kms", kmsStyle, testTime)
			r.URL.RawQuery += "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
			_, err := v.Verify(r, body)
			return err
		}, ErrMalformed},
		{"expired presign", func() error {
			u := presign(t, testSecret, "GET", url, "s3", "us-east-1", time.Hour, testTime.Add(-time.Hour-time.Second))
			_, err := v.Verify(httptest.NewRequest("GET", u, nil), nil)
			return err
		}, ErrRequestTimeTooSkewed},
		{"presign just valid", func() error {
			u := presign(t, testSecret, "GET", url, "s3", "us-east-1", time.Hour, testTime.Add(-time.Hour))
			_, err := v.Verify(httptest.NewRequest("GET", u, nil), nil)
			return err
		}, nil},
		{"presign expires > 7 days", func() error {
			u := presign(t, testSecret, "GET", url, "s3", "us-east-1", 7*24*time.Hour+time.Second, testTime)
			_, err := v.Verify(httptest.NewRequest("GET", u, nil), nil)
			return err
		}, ErrMalformed},
		{"presign wrong secret", func() error {
			u := presign(t, "wrong", "GET", url, "s3", "us-east-1", time.Hour, testTime)
			_, err := v.Verify(httptest.NewRequest("GET", u, nil), nil)
			return err
		}, ErrSignatureDoesNotMatch},
		{"presign method changed", func() error {
			u := presign(t, testSecret, "GET", url, "s3", "us-east-1", time.Hour, testTime)
			_, err := v.Verify(httptest.NewRequest("HEAD", u, nil), nil)
			return err
		}, ErrSignatureDoesNotMatch},
		{"presign method changed, unsigned payload allowed", func() error {
			u := presign(t, testSecret, "GET", url, "s3", "us-east-1", time.Hour, testTime)
			_, err := lax.Verify(httptest.NewRequest("DELETE", u, nil), nil)
			return err
		}, ErrSignatureDoesNotMatch},
		{"presigned POST", func() error {
			u := presign(t, testSecret, "POST", url, "s3", "us-east-1", time.Hour, testTime)
			_, err := v.Verify(httptest.NewRequest("POST", u, bytes.NewReader(body)), body)
			return err
		}, ErrMalformed},
		{"presigned POST, service kms", func() error {
			u := presign(t, testSecret, "POST", url, "kms", "us-east-1", time.Hour, testTime)
			_, err := v.Verify(httptest.NewRequest("POST", u, bytes.NewReader(body)), body)
			return err
		}, ErrMalformed},
		{"presigned POST without a body", func() error {
			u := presign(t, testSecret, "POST", url, "kms", "us-east-1", time.Hour, testTime)
			_, err := v.Verify(httptest.NewRequest("POST", u, nil), nil)
			return err
		}, ErrMalformed},
		{"presigned POST, unsigned payload allowed (the documented risk)", func() error {
			u := presign(t, testSecret, "POST", url, "kms", "us-east-1", time.Hour, testTime)
			other := []byte(`{"KeyId":"k2"}`)
			_, err := lax.Verify(httptest.NewRequest("POST", u, bytes.NewReader(other)), other)
			return err
		}, nil},
		{"presign second signature param", func() error {
			u := presign(t, testSecret, "GET", url, "s3", "us-east-1", time.Hour, testTime)
			_, err := v.Verify(httptest.NewRequest("GET", u+"&X-Amz-%53ignature=00", nil), nil)
			return err
		}, ErrSignatureDoesNotMatch},
	}
	for _, tc := range cases {
		err := tc.run()
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: got %v, want %v", tc.name, err, tc.want)
		}
		if err != nil && strings.Contains(err.Error(), testSecret) {
			t.Errorf("%s: error leaks the secret: %v", tc.name, err)
		}
	}
}

// TestErrorDoesNotLeakExpectedSignature signs the same request twice, once
// with the wrong secret, and checks the mismatch error does not reveal the
// correct signature.
func TestErrorDoesNotLeakExpectedSignature(t *testing.T) {
	good := signHeader(t, testSecret, "GET", "https://h/k", nil, "kms", "us-east-1", kmsStyle, testTime)
	bad := signHeader(t, "wrong", "GET", "https://h/k", nil, "kms", "us-east-1", kmsStyle, testTime)
	_, err := newTestVerifier(testTime).Verify(bad, nil)
	if !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Fatalf("got %v", err)
	}
	want := signatureOf(good.Header.Get("Authorization"))
	if len(want) != 64 || strings.Contains(err.Error(), want) || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error %q reveals the expected signature or secret", err)
	}
}

// rotatingCreds lets a test change a secret while the key cache is warm.
type rotatingCreds struct {
	mu     sync.Mutex
	secret string
}

func (c *rotatingCreds) SecretKey(ak string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.secret, ak == testAK
}

func TestSecretRotationIsNotServedFromCache(t *testing.T) {
	creds := &rotatingCreds{secret: "old-secret"}
	v := New(creds, fixedClock(testTime), 0)
	signed := func(secret string) *http.Request {
		return signHeader(t, secret, "GET", "https://h/k", nil, "kms", "us-east-1", kmsStyle, testTime)
	}
	if _, err := v.Verify(signed("old-secret"), nil); err != nil {
		t.Fatal(err)
	}
	creds.mu.Lock()
	creds.secret = "new-secret"
	creds.mu.Unlock()
	if _, err := v.Verify(signed("old-secret"), nil); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Errorf("old secret after rotation: got %v, want ErrSignatureDoesNotMatch", err)
	}
	if _, err := v.Verify(signed("new-secret"), nil); err != nil {
		t.Errorf("new secret: %v", err)
	}
}

func TestKeyCacheIsBounded(t *testing.T) {
	v := newTestVerifier(testTime)
	for i := 0; i < keyCacheSize+100; i++ {
		region := fmt.Sprintf("region-%d", i)
		if _, err := v.Verify(signHeader(t, testSecret, "GET", "https://h/k", nil, "kms", region, kmsStyle, testTime), nil); err != nil {
			t.Fatal(err)
		}
	}
	if n := v.keys.len(); n > keyCacheSize {
		t.Fatalf("cache holds %d entries, bound is %d", n, keyCacheSize)
	}
}

// TestStripPrefix shows that verification survives middleware that rewrites
// r.URL, because the canonical URI comes from RequestURI.
func TestStripPrefix(t *testing.T) {
	v := newTestVerifier(testTime)
	srv := httptest.NewServer(http.StripPrefix("/api", verifyHandler(v)))
	defer srv.Close()
	r := signHeader(t, testSecret, "POST", srv.URL+"/api/keys/k%7E1?x=1", []byte("{}"), "kms", "us-east-1", kmsStyle, testTime)
	if got := roundTrip(t, r); got != "OK "+testAK {
		t.Fatal(got)
	}
}

func TestConcurrentVerify(t *testing.T) {
	v := newTestVerifier(testTime)
	body := []byte(`{"KeyId":"k"}`)
	reqs := make([]*http.Request, 8)
	for i := range reqs {
		reqs[i] = signHeader(t, testSecret, "POST", fmt.Sprintf("https://h/keys/%d?limit=%d", i, i), body, "kms", sdkRegions[i%len(sdkRegions)], kmsStyle, testTime)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := 0; g < 16; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < 200; i++ {
				if _, err := v.Verify(reqs[(g+i)%len(reqs)], body); err != nil {
					errs <- err
					return
				}
			}
		}(g)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// TestPlusInQueryMeansSpace covers clients that send "+" for a space on the
// wire (url.Values.Encode) while signing "%20". The verifier decodes "+" as a
// space, as net/url does for the handler, so the signature covers the value
// the handler will see.
func TestPlusInQueryMeansSpace(t *testing.T) {
	v := newTestVerifier(testTime)
	signed := signHeader(t, testSecret, "GET", "https://h/keys?alias=my+key&tag=a%2Bb", nil, "kms", "us-east-1", kmsStyle, testTime)
	r := httptest.NewRequest("GET", "https://h/keys?alias=my+key&tag=a%2Bb", nil)
	r.Header = signed.Header.Clone()
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := r.URL.Query().Get("alias"); got != "my key" {
		t.Fatalf("handler sees %q", got)
	}
	// A literal plus ("%2B") is a different value and must not verify.
	r = httptest.NewRequest("GET", "https://h/keys?alias=my%2Bkey&tag=a%2Bb", nil)
	r.Header = signed.Header.Clone()
	if _, err := v.Verify(r, nil); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Fatalf("literal plus: got %v, want ErrSignatureDoesNotMatch", err)
	}
}

// TestS3PresignRequiresUnsignedPayload: S3 presigned URLs always sign
// UNSIGNED-PAYLOAD; a URL presigned over a body hash must not verify as S3.
func TestS3PresignRequiresUnsignedPayload(t *testing.T) {
	v := newTestVerifier(testTime)
	for _, tc := range []struct {
		service, payload string
		want             error
	}{
		{"s3", "UNSIGNED-PAYLOAD", nil},
		{"s3", emptySHA, ErrSignatureDoesNotMatch},
		{"kms", "UNSIGNED-PAYLOAD", nil},
		{"kms", emptySHA, nil},
		{"kms", hexSHA([]byte("x")), ErrSignatureDoesNotMatch},
	} {
		r, _ := http.NewRequest("GET", "https://h/k?X-Amz-Expires=60", nil)
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = tc.service == "s3" })
		u, _, err := signer.PresignHTTP(context.Background(), sdkCreds(testSecret), r, tc.payload, tc.service, "us-east-1", testTime)
		if err != nil {
			t.Fatal(err)
		}
		_, err = v.Verify(httptest.NewRequest("GET", u, nil), nil)
		if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s presigned over %.16s: got %v, want %v", tc.service, tc.payload, err, tc.want)
		}
	}
}
