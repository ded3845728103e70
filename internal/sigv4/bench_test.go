package sigv4

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// serverSide turns a client-side signed request into what a net/http server
// hands to a handler (RequestURI set, Host in r.Host, Content-Length kept).
func serverSide(signed *http.Request) *http.Request {
	r := httptest.NewRequest(signed.Method, signed.URL.String(), nil)
	r.Header = signed.Header.Clone()
	r.Host = signed.Host
	if r.Host == "" {
		r.Host = signed.URL.Host
	}
	if signed.ContentLength > 0 {
		r.Header.Set("Content-Length", strconv.FormatInt(signed.ContentLength, 10))
	}
	return r
}

func benchVerify(b *testing.B, r *http.Request, body []byte) {
	v := newTestVerifier(testTime)
	if _, err := v.Verify(r, body); err != nil { // also warms the key cache
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerify is the hot path: header form, warm signing-key cache, a
// KMS-style POST (body hashed by the verifier, no x-amz-content-sha256).
func BenchmarkVerify(b *testing.B) {
	body := []byte(`{"KeyId":"my-key_1.x","Plaintext":"aGVsbG8gd29ybGQ=","EncryptionContext":{"app":"keyward"}}`)
	signed := signHeader(b, testSecret, "POST", "https://kms.example.com/rustfs/admin/v3/kms/keys/my-key_1.x?limit=50&marker=abc", body, "kms", "us-east-1", kmsStyle, testTime)
	benchVerify(b, serverSide(signed), body)
}

func BenchmarkVerifyS3PayloadHeader(b *testing.B) {
	body := []byte(`{"KeyId":"my-key_1.x"}`)
	signed := signHeader(b, testSecret, "PUT", "https://s3.example.com/bucket/dir/object-1.txt?partNumber=1&uploadId=abc", body, "s3", "eu-west-3", s3HashStyle, testTime)
	benchVerify(b, serverSide(signed), body)
}

func BenchmarkVerifyPresigned(b *testing.B) {
	u := presign(b, testSecret, "GET", "https://s3.example.com/bucket/object.txt?versionId=3", "s3", "us-east-1", 3600e9, testTime)
	benchVerify(b, httptest.NewRequest("GET", u, nil), nil)
}

func BenchmarkVerifyParallel(b *testing.B) {
	body := []byte(`{"KeyId":"my-key_1.x","Plaintext":"aGVsbG8gd29ybGQ="}`)
	r := serverSide(signHeader(b, testSecret, "POST", "https://kms.example.com/rustfs/admin/v3/kms/keys/my-key_1.x", body, "kms", "us-east-1", kmsStyle, testTime))
	v := newTestVerifier(testTime)
	if _, err := v.Verify(r, body); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := v.Verify(r, body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkVerifyColdKey measures a cache miss (four extra HMACs).
func BenchmarkVerifyColdKey(b *testing.B) {
	body := []byte(`{}`)
	r := serverSide(signHeader(b, testSecret, "POST", "https://kms.example.com/", body, "kms", "us-east-1", kmsStyle, testTime))
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		v := newTestVerifier(testTime)
		if _, err := v.Verify(r, body); err != nil {
			b.Fatal(err)
		}
	}
}
