package sigv4

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// countingCreds counts secret lookups, to show what is refused before one.
type countingCreds struct {
	staticCreds
	lookups atomic.Int32
}

func (c *countingCreds) SecretKey(ak string) (string, bool) {
	c.lookups.Add(1)
	return c.staticCreds.SecretKey(ak)
}

// signedGET is a GET signed by the SDK with x-amz-content-sha256 and extra
// signed x-amz-meta-* headers: 4 + extra signed headers (content-type,
// host, x-amz-content-sha256, x-amz-date) and 4 + extra header fields.
func signedGET(t *testing.T, extra int) *http.Request {
	t.Helper()
	r, err := http.NewRequest("GET", "https://kms.example.com/rustfs/admin/v3/kms/status", nil)
	if err != nil {
		t.Fatal(err)
	}
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Amz-Content-Sha256", emptySHA)
	for i := range extra {
		r.Header.Set(fmt.Sprintf("X-Amz-Meta-%03d", i), "v")
	}
	signer := v4.NewSigner()
	if err := signer.SignHTTP(context.Background(), sdkCreds(testSecret), r, emptySHA, "kms", "us-east-1", testTime); err != nil {
		t.Fatal(err)
	}
	return r
}

// TestBoundsBeforeSecretLookup: requests past MaxSignedHeaders or
// MaxHeaderFields, including the inputs that used to cost quadratic time,
// are ErrMalformed without the secret being looked up; requests at the
// bounds verify.
func TestBoundsBeforeSecretLookup(t *testing.T) {
	pad := func(r *http.Request, n int) *http.Request {
		for i := range n {
			r.Header.Set(fmt.Sprintf("X-Pad-%03d", i), "v")
		}
		return r
	}
	repeated := signedGET(t, 0)
	repeated.Header["X-Pad"] = slices.Repeat([]string{"v"}, MaxHeaderFields)
	for _, tc := range []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"64 signed headers", signedGET(t, MaxSignedHeaders-4), true},
		{"65 signed headers", signedGET(t, MaxSignedHeaders-3), false},
		{"100 header fields", pad(signedGET(t, 0), MaxHeaderFields-4), true},
		{"101 header fields", pad(signedGET(t, 0), MaxHeaderFields-3), false},
		{"one header sent 100 times besides 4", repeated, false},
		{"1,900 signed x-amz-* headers", hostileManySigned(t), false},
		{"3,000 missing signed headers", hostileMissingSigned(t), false},
	} {
		creds := &countingCreds{staticCreds: staticCreds{testAK: testSecret}}
		v := New(creds, fixedClock(testTime), 0)
		_, err := v.Verify(tc.r, nil)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, ErrMalformed):
			t.Errorf("%s: got %v, want ErrMalformed", tc.name, err)
		case !tc.ok && creds.lookups.Load() != 0:
			t.Errorf("%s: refused after %d secret lookups, want none", tc.name, creds.lookups.Load())
		}
	}
}

// TestBeginFinish checks what Begin decides without the body, and that
// Finish binds the body to what was signed.
func TestBeginFinish(t *testing.T) {
	body := []byte(`{"KeyId":"k1"}`)
	other := []byte(`{"KeyId":"k2"}`)
	const url = "https://kms.example.com/rustfs/admin/v3/kms/keys"
	strict := newTestVerifier(testTime)
	lax := New(staticCreds{testAK: testSecret}, fixedClock(testTime), 0, WithUnsignedPayload(true))

	type outcome struct {
		bodyNeeded bool
		beginErr   error // nil, or the sentinel Begin fails with
		finishErr  error // nil, or the sentinel Finish(sent) fails with
	}
	for _, tc := range []struct {
		name string
		v    *Verifier
		r    *http.Request
		sent []byte
		want outcome
	}{
		{"declared hash", strict, signHeader(t, testSecret, "POST", url, body, "s3", "us-east-1", s3HashStyle, testTime), body,
			outcome{false, nil, nil}},
		{"declared hash, another body", strict, signHeader(t, testSecret, "POST", url, body, "s3", "us-east-1", s3HashStyle, testTime), other,
			outcome{false, nil, ErrSignatureDoesNotMatch}},
		{"declared hash, wrong secret: refused without the body", strict, signHeader(t, "wrong", "POST", url, body, "s3", "us-east-1", s3HashStyle, testTime), body,
			outcome{false, ErrSignatureDoesNotMatch, nil}},
		{"hash signed without the header", strict, signHeader(t, testSecret, "POST", url, body, "kms", "us-east-1", kmsStyle, testTime), body,
			outcome{true, nil, nil}},
		{"hash signed without the header, wrong secret", strict, signHeader(t, "wrong", "POST", url, body, "kms", "us-east-1", kmsStyle, testTime), body,
			outcome{true, nil, ErrSignatureDoesNotMatch}},
		{"unsigned payload, GET", strict, signHeader(t, testSecret, "GET", url, nil, "s3", "us-east-1", s3UnsignedStyle, testTime), nil,
			outcome{false, nil, nil}},
		{"unsigned payload, GET given a body anyway", strict, signHeader(t, testSecret, "GET", url, nil, "s3", "us-east-1", s3UnsignedStyle, testTime), body,
			outcome{false, nil, ErrMalformed}},
		{"unsigned payload, POST", strict, signHeader(t, testSecret, "POST", url, body, "s3", "us-east-1", s3UnsignedStyle, testTime), body,
			outcome{false, ErrMalformed, nil}},
		{"unsigned payload, POST, allowed", lax, signHeader(t, testSecret, "POST", url, body, "s3", "us-east-1", s3UnsignedStyle, testTime), other,
			outcome{false, nil, nil}},
		{"presigned GET, kms", strict, httptest.NewRequest("GET", presign(t, testSecret, "GET", url, "kms", "us-east-1", time.Hour, testTime), nil), nil,
			outcome{false, nil, nil}},
		{"presigned POST, kms", strict, httptest.NewRequest("POST", presign(t, testSecret, "POST", url, "kms", "us-east-1", time.Hour, testTime), bytes.NewReader(body)), body,
			outcome{false, ErrMalformed, nil}},
		{"presigned POST, kms, allowed", lax, httptest.NewRequest("POST", presign(t, testSecret, "POST", url, "kms", "us-east-1", time.Hour, testTime), bytes.NewReader(body)), body,
			outcome{true, nil, nil}},
	} {
		var p Pending
		err := tc.v.Begin(tc.r, &p)
		if !matchesSentinel(err, tc.want.beginErr) {
			t.Errorf("%s: Begin: got %v, want %v", tc.name, err, tc.want.beginErr)
			continue
		}
		if p.ClaimedAccessKey() != testAK {
			t.Errorf("%s: claimed access key %q", tc.name, p.ClaimedAccessKey())
		}
		if err != nil {
			continue
		}
		if p.BodyNeeded() != tc.want.bodyNeeded {
			t.Errorf("%s: BodyNeeded = %v", tc.name, p.BodyNeeded())
		}
		ak, err := tc.v.Finish(&p, tc.sent)
		if !matchesSentinel(err, tc.want.finishErr) || err == nil && ak != testAK {
			t.Errorf("%s: Finish: got %q, %v; want %v", tc.name, ak, err, tc.want.finishErr)
		}
		if _, err := tc.v.Finish(&p, tc.sent); !errors.Is(err, errNotBegun) {
			t.Errorf("%s: a second Finish: got %v, want errNotBegun", tc.name, err)
		}
	}

	var zero Pending
	if !zero.BodyNeeded() || zero.ClaimedAccessKey() != "" {
		t.Error("the zero Pending claims to be verified")
	}
	if ak, err := strict.Finish(&zero, nil); ak != "" || !errors.Is(err, errNotBegun) || errorsIsAnySentinel(err) {
		t.Errorf("Finish without Begin: %q, %v", ak, err)
	}
}

func matchesSentinel(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

func errorsIsAnySentinel(err error) bool {
	for _, s := range []error{ErrMissingAuthentication, ErrMalformed, ErrInvalidAccessKeyID, ErrSignatureDoesNotMatch, ErrRequestTimeTooSkewed} {
		if errors.Is(err, s) {
			return true
		}
	}
	return false
}

// TestClaimedAccessKey: a failed verification still tells which access key
// the request named, once its credential parsed, for the audit log.
func TestClaimedAccessKey(t *testing.T) {
	body := []byte(`{"KeyId":"k1"}`)
	const url = "https://kms.example.com/rustfs/admin/v3/kms/keys"
	v := newTestVerifier(testTime)
	withAuthz := func(f func(string) string) *http.Request {
		r := signHeader(t, testSecret, "POST", url, body, "kms", "us-east-1", kmsStyle, testTime)
		r.Header.Set("Authorization", f(r.Header.Get("Authorization")))
		return r
	}
	for _, tc := range []struct {
		name, want string
		r          *http.Request
	}{
		{"wrong secret", testAK, signHeader(t, "wrong", "POST", url, body, "kms", "us-east-1", kmsStyle, testTime)},
		{"unknown access key", "SOMEONE-ELSE", withAuthz(func(a string) string { return strings.Replace(a, testAK, "SOMEONE-ELSE", 1) })},
		{"too skewed", testAK, signHeader(t, testSecret, "POST", url, body, "kms", "us-east-1", kmsStyle, testTime.Add(time.Hour))},
		{"service not accepted", testAK, signHeader(t, testSecret, "POST", url, body, "ec2", "us-east-1", kmsStyle, testTime)},
		{"unsigned header", testAK, withAuthz(func(a string) string { return strings.Replace(a, "x-amz-date", "x-amz-date;zzz", 1) })},
		{"access key that does not parse", "", withAuthz(func(a string) string { return strings.Replace(a, testAK, "AK EY", 1) })},
		{"not SigV4", "", withAuthz(func(string) string { return "Bearer x" })},
		{"unauthenticated", "", httptest.NewRequest("POST", url, nil)},
	} {
		var p Pending
		err := v.Begin(tc.r, &p)
		if err == nil {
			_, err = v.Finish(&p, body)
		}
		if err == nil || p.ClaimedAccessKey() != tc.want {
			t.Errorf("%s: err %v, claimed %q, want %q", tc.name, err, p.ClaimedAccessKey(), tc.want)
		}
	}
}

// TestIsSignedMatchesLinearSearch compares the binary search with a plain
// scan on random sorted lists.
func TestIsSignedMatchesLinearSearch(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	alphabet := "abx-z"
	word := func() string {
		b := make([]byte, 1+rng.IntN(4))
		for i := range b {
			b[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(b)
	}
	for range 2000 {
		set := map[string]bool{"host": true}
		for range rng.IntN(MaxSignedHeaders) {
			set[word()] = true
		}
		names := make([]string, 0, len(set))
		for n := range set {
			names = append(names, n)
		}
		slices.Sort(names)
		list := strings.Join(names, ";")
		if err := checkSignedHeaders(list); err != nil {
			t.Fatalf("%q: %v", list, err)
		}
		for range 20 {
			probe := word()
			if rng.IntN(2) == 0 {
				probe = strings.ToUpper(probe)
			}
			if got, want := isSigned(list, probe), linearIsSigned(list, probe); got != want {
				t.Fatalf("isSigned(%q, %q) = %v, want %v", list, probe, got, want)
			}
		}
		for _, n := range names {
			if !isSigned(list, n) || !isSigned(list, strings.ToUpper(n)) {
				t.Fatalf("isSigned(%q, %q) = false", list, n)
			}
		}
	}
}

func linearIsSigned(list, name string) bool {
	for _, n := range strings.Split(list, ";") {
		if n == strings.ToLower(name) {
			return true
		}
	}
	return false
}

func FuzzIsSigned(f *testing.F) {
	for _, seed := range [][2]string{
		{"host;x-amz-date", "X-Amz-Date"},
		{"a;b;c;host", "b"},
		{"host", "hosts"},
		{"a-b;a;host", "A"},
	} {
		f.Add(seed[0], seed[1])
	}
	f.Fuzz(func(t *testing.T, list, name string) {
		if checkSignedHeaders(list) != nil {
			return
		}
		if got, want := isSigned(list, name), linearIsSigned(list, asciiLower(name)); got != want {
			t.Fatalf("isSigned(%q, %q) = %v, want %v", list, name, got, want)
		}
	})
}

func asciiLower(s string) string {
	b := []byte(s)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// TestNonCanonicalHeaderKeys: headers a hand-built map stores under a
// non-canonical key are still found, also when other signed headers are
// missing.
func TestNonCanonicalHeaderKeys(t *testing.T) {
	r := signedGET(t, 3)
	v := newTestVerifier(testTime)
	for _, k := range []string{"X-Amz-Meta-000", "X-Amz-Meta-002"} {
		vals := r.Header[k]
		delete(r.Header, k)
		r.Header[strings.ToLower(k)] = vals
	}
	if _, err := v.Verify(r, nil); err != nil {
		t.Fatalf("non-canonical keys: %v", err)
	}
	r.Header["x-amz-meta-000"] = []string{"changed"}
	if _, err := v.Verify(r, nil); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Fatalf("a changed value under a non-canonical key: got %v", err)
	}
}

// FuzzPayloadBinding signs requests with arbitrary methods, payload lines
// and bodies, in both forms, and sends another body: whatever is accepted
// carried the body that was signed, unless the request may have no body
// covered (GET or HEAD without a body) or unsigned payloads are allowed.
func FuzzPayloadBinding(f *testing.F) {
	f.Add(uint8(2), uint8(0), "", true, false, false, []byte(`{"key_id":"benign-1"}`), []byte(`{"key_id":"evil-1"}`))
	f.Add(uint8(0), uint8(0), "", true, false, false, []byte(nil), []byte(nil))
	f.Add(uint8(2), uint8(1), "", false, false, false, []byte("a"), []byte("a"))
	f.Add(uint8(2), uint8(0), "", false, true, false, []byte("a"), []byte("b"))
	f.Add(uint8(2), uint8(0), "", false, true, true, []byte("a"), []byte("b"))
	f.Add(uint8(1), uint8(2), emptySHA, true, false, false, []byte(nil), []byte(nil))
	f.Add(uint8(3), uint8(2), "STREAMING-AWS4-HMAC-SHA256-PAYLOAD", true, false, false, []byte("x"), []byte("x"))
	methods := []string{"GET", "HEAD", "POST", "PUT", "DELETE"}
	const url = "https://kms.example.com/rustfs/admin/v3/kms/keys?x=1"
	strict := newTestVerifier(testTime)
	lax := New(staticCreds{testAK: testSecret}, fixedClock(testTime), 0, WithUnsignedPayload(true))
	f.Fuzz(func(t *testing.T, m, kind uint8, raw string, header, presigned, allow bool, signedBody, sentBody []byte) {
		method := methods[int(m)%len(methods)]
		payload := [...]string{unsignedPayload, hexSHA(signedBody), raw}[int(kind)%3]
		service := [...]string{"s3", "kms"}[int(m/8)%2]
		v := strict
		if allow {
			v = lax
		}
		var r *http.Request
		signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = service == "s3" })
		if presigned {
			cr, err := http.NewRequest(method, url+"&X-Amz-Expires=300", nil)
			if err != nil {
				t.Fatal(err)
			}
			u, _, err := signer.PresignHTTP(context.Background(), sdkCreds(testSecret), cr, payload, service, "us-east-1", testTime)
			if err != nil {
				return
			}
			r = httptest.NewRequest(method, u, bytes.NewReader(sentBody))
		} else {
			cr, err := http.NewRequest(method, url, bytes.NewReader(signedBody))
			if err != nil {
				t.Fatal(err)
			}
			if header {
				cr.Header["X-Amz-Content-Sha256"] = []string{payload}
			}
			if err := signer.SignHTTP(context.Background(), sdkCreds(testSecret), cr, payload, service, "us-east-1", testTime); err != nil {
				return
			}
			r = httptest.NewRequest(method, url, bytes.NewReader(sentBody))
			r.Header = cr.Header.Clone()
		}
		_, err := v.Verify(r, sentBody)
		checkVerifyErr(t, err)
		if err != nil {
			return
		}
		bodyless := (method == "GET" || method == "HEAD") && len(sentBody) == 0
		if presigned && !allow && !bodyless {
			t.Fatalf("a presigned %s with a %d-byte body was accepted", method, len(sentBody))
		}
		if !strings.EqualFold(payload, hexSHA(sentBody)) && !allow && !bodyless {
			t.Fatalf("%s signed over %q accepted with another body (%d bytes)", method, payload, len(sentBody))
		}
	})
}
