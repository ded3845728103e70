package bench

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The signer produces the same X-Amz-Date and Authorization as the AWS SDK
// for Go v2 (SignHTTP, default options) for the same request.
func TestSignerMatchesAWSSDK(t *testing.T) {
	at := time.Date(2024, 9, 18, 10, 11, 12, 0, time.UTC)
	cases := []struct {
		name, method, url string
		body              string
		headers           map[string]string
		region, service   string
	}{
		{name: "generate", method: "POST", url: "http://127.0.0.1:9000/rustfs/admin/v3/kms/generate-data-key",
			body:    `{"key_id":"bench-1","key_spec":"AES_256","encryption_context":{"app":"keyward-bench"}}`,
			headers: map[string]string{"Content-Type": "application/json"}},
		{name: "describe, no body", method: "GET", url: "http://127.0.0.1:9000/rustfs/admin/v3/kms/keys/my-key_1.x"},
		{name: "list with query", method: "GET", url: "https://kms.example.com/rustfs/admin/v3/kms/keys?limit=100&marker=a%20b&a-b=2&a=1&a=0"},
		{name: "default https port dropped", method: "GET", url: "https://kms.example.com:443/rustfs/admin/v3/kms/status"},
		{name: "default http port dropped", method: "DELETE", url: "http://kms.example.com:80/rustfs/admin/v3/kms/keys/delete", body: `{"key_id":"k"}`},
		{name: "escaped path, odd headers", method: "POST", url: "http://[::1]:9400/rustfs/admin/v3/kms/keys/a%20b~c/x",
			body:    `{}`,
			headers: map[string]string{"Content-Type": "application/json", "X-Extra": "  two   spaces  ", "User-Agent": "bench/1"},
			region:  "eu-west-3", service: "s3x"},
		{name: "empty path", method: "GET", url: "http://localhost:9000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			region, service := c.region, c.service
			if region == "" {
				region, service = "us-east-1", "kms"
			}
			body := []byte(c.body)
			sum := sha256.Sum256(body)
			hash := hex.EncodeToString(sum[:])

			mk := func() *http.Request {
				r, err := http.NewRequest(c.method, c.url, bytes.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				for k, v := range c.headers {
					r.Header.Set(k, v)
				}
				return r
			}
			want := mk()
			want.Header.Set("X-Amz-Content-Sha256", hash)
			creds := aws.Credentials{AccessKeyID: "KEYWARDBENCH", SecretAccessKey: "s3cr3t/Key+With=Chars0123"}
			if err := v4.NewSigner().SignHTTP(context.Background(), creds, want, hash, service, region, at); err != nil {
				t.Fatal(err)
			}

			got := mk()
			s := &Signer{AccessKey: creds.AccessKeyID, SecretKey: creds.SecretAccessKey, Region: region, Service: service}
			s.Sign(got, body, at)
			for _, h := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256"} {
				if g, w := got.Header.Get(h), want.Header.Get(h); g != w {
					t.Errorf("%s:\n got  %s\n want %s", h, g, w)
				}
			}
			// Signing again (cached signing key) gives the same result.
			again := mk()
			s.Sign(again, body, at)
			if again.Header.Get("Authorization") != got.Header.Get("Authorization") {
				t.Error("second signature differs")
			}
		})
	}
}
