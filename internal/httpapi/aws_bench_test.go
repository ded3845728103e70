package httpapi

import (
	"bytes"
	"net/http/httptest"
	"testing"
)

// The AWS door's hot path beside the admin routes' (bench_test.go): the
// same work, AWS's field names and ARNs.

var (
	generateTarget = []string{"TrentService.GenerateDataKey"}
	decryptTarget  = []string{"TrentService.Decrypt"}
)

func BenchmarkAWSGenerateDataKey(b *testing.B) {
	s := newTestServer(b, true)
	body := []byte(`{"KeyId":"dk","KeySpec":"AES_256","EncryptionContext":{"bucket":"b","object":"o"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header["X-Amz-Target"] = generateTarget // shared: the benchmark measures the server
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

func BenchmarkAWSDecrypt(b *testing.B) {
	s := newTestServer(b, true)
	out := awsOp(b, s, "GenerateDataKey", `{"KeyId":"dk","KeySpec":"AES_256","EncryptionContext":{"bucket":"b"}}`)
	body := []byte(`{"CiphertextBlob":"` + out["CiphertextBlob"].(string) + `","EncryptionContext":{"bucket":"b"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
		req.Header["X-Amz-Target"] = decryptTarget
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
