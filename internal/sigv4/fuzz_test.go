package sigv4

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"
)

// fuzzVerifier accepts the suite credentials and service "service" at the
// suite time, so seeds taken from the test suite can verify successfully.
func fuzzVerifier() *Verifier {
	return New(staticCreds{suiteAK: suiteSecret, testAK: testSecret}, fixedClock(suiteTime), 0,
		WithServices("s3", "kms", "service"))
}

// checkVerifyErr fails unless err is nil or wraps exactly one of the
// sentinel errors (callers map them to HTTP statuses).
func checkVerifyErr(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	n := 0
	for _, s := range []error{ErrMissingAuthentication, ErrMalformed, ErrInvalidAccessKeyID, ErrSignatureDoesNotMatch, ErrRequestTimeTooSkewed} {
		if errors.Is(err, s) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("error %q wraps %d sentinels", err, n)
	}
	if strings.Contains(err.Error(), suiteSecret) || strings.Contains(err.Error(), testSecret) {
		t.Fatalf("error leaks a secret: %q", err)
	}
}

func FuzzParseAuthorization(f *testing.F) {
	valid := "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	for _, seed := range []string{
		valid,
		strings.ReplaceAll(valid, ", ", ","),
		"AWS4-HMAC-SHA256 Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31,SignedHeaders=host;x-amz-date,Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request",
		"AWS4-HMAC-SHA256 Credential=AK/20240918/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("0", 64),
		"AWS4-HMAC-SHA256 Credential=AK/20240918/us-east-1/s3/aws4_request, SignedHeaders=host;host, Signature=" + strings.Repeat("a", 64),
		"AWS4-HMAC-SHA256 Credential=AK/20240918/us-east-1/s3/aws4_request,, SignedHeaders=host;, Signature=",
		"AWS4-HMAC-SHA256 Credential=/////, SignedHeaders=;;;, Signature==",
		"AWS4-HMAC-SHA256 Credential=AK/2024091/us-east-1/s3/aws4_request/extra",
		"AWS4-ECDSA-P256-SHA256 Credential=AK/20240918/s3/aws4_request",
		"AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg=",
		"Bearer x",
		"",
		"AWS4-HMAC-SHA256",
		"AWS4-HMAC-SHA256 ",
		"AWS4-HMAC-SHA256 Credential=AK/20240918/us-east-1/s3/aws4_request, SignedHeaders=host, Signature=" + strings.Repeat("G", 64),
		"AWS4-HMAC-SHA256 Credential=AK\x00/20240918/r\xff/s3/aws4_request, SignedHeaders=Host, Signature=\u00e9",
	} {
		f.Add(seed)
	}
	v := fuzzVerifier()
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err == nil {
			if a.accessKey == "" || !isSigned(a.signedHeaders, "host") || len(a.scopeDate) != 8 {
				t.Fatalf("accepted inconsistent header %q: %+v", h, a)
			}
			if checkSignedHeaders(a.signedHeaders) != nil {
				t.Fatalf("accepted invalid SignedHeaders %q", a.signedHeaders)
			}
		} else if !errors.Is(err, ErrMalformed) {
			t.Fatalf("parse error %v is not ErrMalformed", err)
		}
		// The whole verifier must cope with the header too.
		r := httptest.NewRequest("GET", "https://example.amazonaws.com/", nil)
		r.Host = "example.amazonaws.com"
		r.Header.Set("X-Amz-Date", "20150830T123600Z")
		r.Header["Authorization"] = []string{h}
		_, err = v.Verify(r, nil)
		checkVerifyErr(t, err)
	})
}

func FuzzParsePresigned(f *testing.F) {
	good := "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	for _, seed := range []string{
		good,
		good + "&X-Amz-Signature=" + strings.Repeat("0", 64),
		strings.Replace(good, "86400", "604801", 1),
		strings.Replace(good, "86400", "-1", 1),
		strings.Replace(good, "%2F", "/", -1),
		strings.Replace(good, "%2F", "%2", 1),
		"X-Amz-Algorithm=AWS4-HMAC-SHA256",
		"X-Amz-Signature=&X-Amz-Algorithm=",
		"limit=50&marker=abc",
		"a=%zz&X-Amz-Algorithm=AWS4-HMAC-SHA256",
		"&&&=&=&X-Amz-Algorithm&X-Amz-Signature",
		"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIDEXAMPLE%2F20150830%2Fus-east-1%2Fservice%2Faws4_request&X-Amz-Date=20150830T123600Z&X-Amz-Expires=3600&X-Amz-SignedHeaders=host&X-Amz-Signature=" + strings.Repeat("f", 64),
		"q=a+b&%E2%82%AC=%F0%9F%98%80",
		"",
	} {
		f.Add(seed)
	}
	v := fuzzVerifier()
	f.Fuzz(func(t *testing.T, query string) {
		if hasPresignParams(query) {
			a, err := parsePresigned(query)
			if err == nil {
				if !a.presigned || a.expires <= 0 || a.expires > 7*24*time.Hour || !isSigned(a.signedHeaders, "host") {
					t.Fatalf("accepted inconsistent query %q: %+v", query, a)
				}
			} else if !errors.Is(err, ErrMalformed) {
				t.Fatalf("parse error %v is not ErrMalformed", err)
			}
		}
		s := getScratch()
		_, _ = s.appendCanonicalQuery(nil, query, true)
		putScratch(s)

		r := &http.Request{Method: "GET", Host: "examplebucket.s3.amazonaws.com", Header: http.Header{}}
		r.RequestURI = "/test.txt?" + query
		_, err := v.Verify(r, nil)
		checkVerifyErr(t, err)
	})
}

// FuzzRequestTarget feeds arbitrary request targets (path and query) to the
// canonicalization code, checking path normalization invariants on the way.
func FuzzRequestTarget(f *testing.F) {
	for _, seed := range []string{"/", "//example//", "/example1/example2/../..", "/./", "/a%2Fb/%7E?x=1", "/ሴ?ሴ=bar", "/%", "", "*", "/a/b/.?c=%"} {
		f.Add(seed)
	}
	v := fuzzVerifier()
	const authz = "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
	f.Fuzz(func(t *testing.T, target string) {
		path, _, _ := strings.Cut(target, "?")
		n := normalizePath(path)
		if !strings.HasPrefix(n, "/") || strings.Contains(n, "//") || normalizePath(n) != n {
			t.Fatalf("normalizePath(%q) = %q is not normal", path, n)
		}
		_, _ = appendS3Path(nil, path)
		for _, service := range []string{"service", "s3"} {
			r := &http.Request{Method: "GET", Host: "example.amazonaws.com", RequestURI: target, Header: http.Header{}}
			r.Header.Set("X-Amz-Date", "20150830T123600Z")
			r.Header.Set("Authorization", strings.Replace(authz, "/service/", "/"+service+"/", 1))
			if service == "s3" {
				r.Header.Set("X-Amz-Content-Sha256", emptySHA)
			}
			if target == "" || target[0] != '/' {
				// Not origin form: Verify falls back to r.URL.
				u, err := url.Parse(target)
				if err != nil {
					return
				}
				r.URL = u
			}
			_, err := v.Verify(r, nil)
			checkVerifyErr(t, err)
		}
	})
}
