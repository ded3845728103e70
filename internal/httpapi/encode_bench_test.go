package httpapi

import (
	"net/http/httptest"
	"testing"
)

// BenchmarkEncodeDataKeyResponse is the hand-built, wiped response body of
// generate-data-key.
func BenchmarkEncodeDataKeyResponse(b *testing.B) {
	pt, blob := make([]byte, 32), make([]byte, 82)
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		out := newSecretJSON(16 + 2*len(blob) + 2*len(pt))
		out.String("key_id", "keyward-default")
		out.Bytes("plaintext_key", pt)
		out.Bytes("ciphertext_blob", blob)
		out.WriteAndWipe(rec)
	}
}
