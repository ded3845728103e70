package httpapi

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/keyward/keyward/internal/backend"
	"github.com/keyward/keyward/internal/iam"
	"github.com/keyward/keyward/internal/lifecycle"
	"github.com/keyward/keyward/internal/metrics"
	"github.com/keyward/keyward/internal/sigv4"
)

// BenchmarkRequestEndToEnd is one in-process request over loopback HTTP
// with real SigV4 verification, IAM, metrics and the local backend: the
// whole server-side hot path (the client replays one signed request).
func BenchmarkRequestEndToEnd(b *testing.B) {
	for _, route := range []string{"/kms/generate-data-key", "/kms/decrypt"} {
		b.Run(route[5:], func(b *testing.B) {
			dir := b.TempDir()
			mgr := lifecycle.New(lifecycle.Options{DataDir: dir, Backends: backend.Env{DataDir: dir, Rand: rand.Reader, Now: time.Now},
				Now: time.Now, Rand: rand.Reader, Day: time.Hour, Metrics: metrics.New()})
			mgr.Configure(context.Background(), request(`{"backend_type":"local","default_key_id":"dk"}`))
			if err := mgr.Start(context.Background()); err != nil {
				b.Fatal(err)
			}
			defer mgr.Shutdown()
			ids := iam.New("bench", "bench-secret-key", nil)
			h := New(Options{Manager: mgr, Authenticator: sigv4.New(ids, time.Now, 15*time.Minute), Authorizer: ids, Metrics: metrics.New(), MetricsAuth: true})
			srv := httptest.NewServer(h)
			defer srv.Close()

			body := []byte(`{"key_id":"dk","key_spec":"AES_256","encryption_context":{"bucket":"b","object":"o"}}`)
			if route == "/kms/decrypt" {
				svc, release, _ := mgr.Acquire()
				_, _, blob, err := svc.GenerateDataKey(context.Background(), "dk", 32, map[string]string{"bucket": "b", "object": "o"})
				release()
				if err != nil {
					b.Fatal(err)
				}
				body = []byte(`{"ciphertext_blob":"` + base64.StdEncoding.EncodeToString(blob) + `","encryption_context":{"bucket":"b","object":"o"}}`)
			}
			req, _ := http.NewRequest("POST", srv.URL+Prefix+route, bytes.NewReader(body))
			sum := sha256.Sum256(body)
			hash := hex.EncodeToString(sum[:])
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Amz-Content-Sha256", hash)
			if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "bench", SecretAccessKey: "bench-secret-key"}, req, hash, "kms", "us-east-1", time.Now()); err != nil {
				b.Fatal(err)
			}
			client := srv.Client()
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				r := req.Clone(context.Background())
				r.Body = io.NopCloser(bytes.NewReader(body))
				resp, err := client.Do(r)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatal(resp.StatusCode)
				}
			}
		})
	}
}
