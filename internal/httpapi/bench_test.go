package httpapi

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
)

// The hot path without the network and without SigV4 (benchmarked in
// internal/sigv4): routing, body handling, state check, wrap/unwrap on a
// warm cache, response encoding.

func BenchmarkGenerateDataKey(b *testing.B) {
	s := newTestServer(b, true)
	body := []byte(`{"key_id":"dk","key_spec":"AES_256","encryption_context":{"bucket":"b","object":"o"}}`)
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", Prefix+"/kms/generate-data-key", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

func BenchmarkDecrypt(b *testing.B) {
	s := newTestServer(b, true)
	rec, out := doCall(b, s, "POST", "/kms/generate-data-key", []byte(`{"key_id":"dk","encryption_context":{"bucket":"b"}}`))
	if rec.Code != 200 {
		b.Fatal(rec.Body.String())
	}
	body, _ := json.Marshal(map[string]any{"ciphertext_blob": out["ciphertext_blob"], "encryption_context": map[string]string{"bucket": "b"}})
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", Prefix+"/kms/decrypt", bytes.NewReader(body))
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}

// BenchmarkListKeys is a page of 100 keys (GET /kms/keys?limit=100), the
// list step of `keyward bench --keys N` without the network and SigV4.
func BenchmarkListKeys(b *testing.B) {
	s := newTestServer(b, true)
	for i := range 150 {
		if rec, _ := doCall(b, s, "POST", "/kms/keys", []byte(fmt.Sprintf(`{"key_id":"list-%04d","description":"a key to list"}`, i))); rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("GET", Prefix+"/kms/keys?limit=100&marker=list-0010", nil)
		rec := httptest.NewRecorder()
		s.ServeHTTP(rec, req)
		if rec.Code != 200 {
			b.Fatal(rec.Code, rec.Body.String())
		}
	}
}
