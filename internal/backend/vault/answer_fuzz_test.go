package vault

import (
	"bytes"
	"encoding/json"
	"testing"
)

// Vault's answers are outside bytes. The fast single-answer reader must
// agree with encoding/json wherever encoding/json accepts the answer (it
// may accept more: it does not validate members it skips), and the batch
// reader must never panic nor half-fill results on an error.
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
			fast, fastErr := singleAnswer("p", bytes.Clone(answer), op.field, op.decode)
			var ref struct {
				Data map[string]json.RawMessage `json:"data"`
			}
			if len(bytes.TrimSpace(answer)) > 0 && json.Unmarshal(answer, &ref) == nil {
				want, wantErr := dataValue("p", ref.Data, op.field, op.decode)
				if (fastErr == nil) != (wantErr == nil) || !bytes.Equal(fast, want) {
					t.Fatalf("%s: fast %q %v, encoding/json %q %v", op.field, fast, fastErr, want, wantErr)
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
