package vault

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
)

// Vault's answers are outside bytes. The single-answer reader must give
// what a generic decoding of the answer holds (the base64 plaintext
// decoded, or the ciphertext string), and the batch reader must never
// panic nor half-fill results on an error.
func FuzzTransitAnswers(f *testing.F) {
	f.Add([]byte(`{"request_id":"r","data":{"plaintext":"QUJD","key_version":1},"warnings":null}`), 2)
	f.Add([]byte(`{"data":{"ciphertext":"vault:v1:abc"}}`), 1)
	f.Add([]byte(`{"data":null}`), 1)
	f.Add([]byte(`{"data":{"plaintext":"Q\u0055JD"}}`), 1)
	f.Add([]byte(`{"data":{"batch_results":[{"ciphertext":"vault:v1:x","key_version":1},{"error":"bad"}]}}`), 2)
	f.Add([]byte(`{"data":{"batch_results":[{"plaintext":"QUJD"},{"plaintext":"!!"}]}}`), 2)
	f.Add([]byte(`{"errors":["permission denied"]}`), 3)
	f.Fuzz(func(t *testing.T, answer []byte, n int) {
		for _, op := range []transitOp{{"plaintext", true}, {"ciphertext", false}} {
			got, err := singleAnswer("p", bytes.Clone(answer), op.field)
			var ref struct {
				Data map[string]any `json:"data"`
			}
			if err == nil && len(bytes.TrimSpace(answer)) > 0 && json.Unmarshal(answer, &ref) == nil {
				// encoding/json matches member names ignoring case; an
				// answer naming the field twice (in two cases) is skipped.
				var want []byte
				matches := 0
				for k, v := range ref.Data {
					if !strings.EqualFold(k, op.field) {
						continue
					}
					matches++
					if s, ok := v.(string); ok {
						want = []byte(s)
						if op.decode {
							want, _ = base64.StdEncoding.DecodeString(s)
						}
					}
				}
				if matches <= 1 && !bytes.Equal(got, want) {
					t.Fatalf("%s: read %q, the answer holds %q", op.field, got, want)
				}
			}

			n := int(uint(n)%8) + 1
			for _, status := range []int{200, 400, 403, 500} {
				results := make([]callResult, n)
				err := readBatch("p", op, status, bytes.Clone(answer), results)
				for i, r := range results {
					if err != nil && (r.v != nil || r.err != nil) {
						t.Fatalf("status %d: error %v, yet result %d is set", status, err, i)
					}
				}
				if err != nil && status != 200 && !isStatus(err, status, "") {
					t.Fatalf("status %d: error %v is not Vault's refusal with that status", status, err)
				}
			}
		}
	})
}
