//go:build unix

package httpapi

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"syscall"
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

// BenchmarkHostileRequest is the CPU one request costs the server, client
// and server in one process over loopback HTTP (net/http's parsing of the
// headers included): a normal signed GET /kms/status, and requests an
// unauthenticated client can send with a known access key (access keys
// are not secret) within the server's 64 KiB header limit. cpu-ns/op is
// the process's CPU time (user and system) per request; ns/op the wall
// time of one round trip. The figures are in docs/PERFORMANCE.md ("Cost
// of a hostile request").
func BenchmarkHostileRequest(b *testing.B) {
	dir := b.TempDir()
	mgr := lifecycle.New(lifecycle.Options{DataDir: dir, Backends: backend.Env{DataDir: dir, Rand: rand.Reader, Now: time.Now},
		Now: time.Now, Rand: rand.Reader, Day: time.Hour})
	if err := mgr.Configure(context.Background(), request(`{"backend_type":"local","default_key_id":"dk"}`)); err != nil {
		b.Fatal(err)
	}
	if err := mgr.Start(context.Background()); err != nil {
		b.Fatal(err)
	}
	defer mgr.Shutdown()
	ids := iam.New("bench", "bench-secret-key", nil)
	h := New(Options{Manager: mgr, Authenticator: sigv4.New(ids, time.Now, 15*time.Minute), Authorizer: ids, Metrics: metrics.New(), MetricsAuth: true})
	srv := httptest.NewUnstartedServer(h)
	srv.Config.MaxHeaderBytes = 64 << 10 // as cmd/keyward
	srv.Start()
	defer srv.Close()
	host := srv.Listener.Addr().String()

	// The normal request, signed once and replayed.
	req, _ := http.NewRequest("GET", srv.URL+Prefix+"/kms/status", nil)
	empty := "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
	req.Header.Set("X-Amz-Content-Sha256", empty)
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: "bench", SecretAccessKey: "bench-secret-key"}, req, empty, "kms", "us-east-1", time.Now()); err != nil {
		b.Fatal(err)
	}
	var normal strings.Builder
	fmt.Fprintf(&normal, "GET %s/kms/status HTTP/1.1\r\nHost: %s\r\n", Prefix, host)
	req.Header.Write(&normal)
	normal.WriteString("\r\n")

	forged := func(path, signed, extra string) string {
		now := time.Now().UTC()
		return "GET " + path + " HTTP/1.1\r\nHost: " + host + "\r\n" +
			"X-Amz-Date: " + now.Format("20060102T150405Z") + "\r\n" +
			"X-Amz-Content-Sha256: " + empty + "\r\n" +
			"Authorization: AWS4-HMAC-SHA256 Credential=bench/" + now.Format("20060102") + "/us-east-1/s3/aws4_request, " +
			"SignedHeaders=" + signed + ", Signature=" + strings.Repeat("0", 64) + "\r\n" + extra + "\r\n"
	}
	var hdrs, names strings.Builder
	// 1,900 signed x-amz-* headers, ~57 KB.
	names.WriteString("host")
	for i := range 1900 {
		fmt.Fprintf(&hdrs, "X-Amz-A%04d: v\r\n", i)
		fmt.Fprintf(&names, ";x-amz-a%04d", i)
	}
	names.WriteString(";x-amz-content-sha256;x-amz-date")
	manySigned := forged(Prefix+"/kms/status", names.String(), hdrs.String())
	// 3,000 signed names the request lacks, 2,000 other headers.
	hdrs.Reset()
	names.Reset()
	for i := range 3000 {
		fmt.Fprintf(&names, "a%04d;", i)
	}
	names.WriteString("host;x-amz-content-sha256;x-amz-date")
	for i := range 2000 {
		fmt.Fprintf(&hdrs, "B%04d: v\r\n", i)
	}
	missingSigned := forged(Prefix+"/kms/status", names.String(), hdrs.String())
	// The most a request within the bounds can make the verifier hash: 61
	// signed headers of 900 bytes (~55 KB of canonical request) and a path
	// in two spellings (two candidates for service s3).
	hdrs.Reset()
	names.Reset()
	names.WriteString("host")
	for i := range 61 {
		fmt.Fprintf(&hdrs, "X-Amz-A%02d: %s\r\n", i, strings.Repeat("v", 900))
		fmt.Fprintf(&names, ";x-amz-a%02d", i)
	}
	names.WriteString(";x-amz-content-sha256;x-amz-date")
	worst := forged(Prefix+"/kms/%73tatus", names.String(), hdrs.String())

	for _, tc := range []struct {
		name, req string
		status    int
	}{
		{"normal", normal.String(), 200},
		{"1900-signed-x-amz-headers", manySigned, 401},
		{"3000-missing-signed-headers", missingSigned, 401},
		{"worst-within-bounds", worst, 401},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.req)))
			conn, err := net.Dial("tcp", host)
			if err != nil {
				b.Fatal(err)
			}
			defer conn.Close()
			rd := bufio.NewReader(conn)
			cpu0 := cpuTime(b)
			for b.Loop() {
				if _, err := io.WriteString(conn, tc.req); err != nil {
					b.Fatal(err)
				}
				resp, err := http.ReadResponse(rd, nil)
				if err != nil {
					b.Fatal(err)
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tc.status {
					b.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
				}
			}
			b.ReportMetric(float64(cpuTime(b)-cpu0)/float64(b.N), "cpu-ns/op")
		})
	}
}

// cpuTime is the CPU time the process has used so far.
func cpuTime(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
