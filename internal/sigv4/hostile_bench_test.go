package sigv4

import (
	"bufio"
	"fmt"
	"net/http"
	"strings"
	"testing"
)

// Hostile requests: what an unauthenticated client can make the verifier do
// before it knows who is calling. They are parsed by net/http's own request
// reader, as a server would see them, and stay within net/http's default
// header limit (1 MiB) and Keyward's (64 KiB).

// hostileManySigned is ~57 KB of headers: 1,900 x-amz-* headers, every one
// named in SignedHeaders (so the "every x-amz-* header is signed" check has
// 1,900 headers to look up in a 1,900-name list). The signature is garbage.
func hostileManySigned(tb testing.TB) *http.Request {
	const n = 1900
	var hdrs, names strings.Builder
	names.WriteString("host")
	for i := range n {
		fmt.Fprintf(&hdrs, "X-Amz-A%04d: v\r\n", i)
		fmt.Fprintf(&names, ";x-amz-a%04d", i)
	}
	names.WriteString(";x-amz-content-sha256;x-amz-date")
	return rawRequest(tb, "GET", names.String(), hdrs.String())
}

// hostileMissingSigned names 3,000 headers in SignedHeaders that the request
// does not carry, and carries 2,000 other headers: every missing name used
// to be looked for in every header.
func hostileMissingSigned(tb testing.TB) *http.Request {
	var hdrs, names strings.Builder
	for i := range 3000 {
		fmt.Fprintf(&names, "a%04d;", i)
	}
	names.WriteString("host;x-amz-content-sha256;x-amz-date")
	for i := range 2000 {
		fmt.Fprintf(&hdrs, "B%04d: v\r\n", i)
	}
	return rawRequest(tb, "GET", names.String(), hdrs.String())
}

// rawRequest builds a GET /kms/status request for testAK at testTime with
// the given SignedHeaders list, extra header lines and a wrong signature.
func rawRequest(tb testing.TB, method, signed, extra string) *http.Request {
	tb.Helper()
	raw := method + " /rustfs/admin/v3/kms/status HTTP/1.1\r\nHost: kms.example.com\r\n" +
		"X-Amz-Date: " + testTime.Format(amzDateLayout) + "\r\n" +
		"X-Amz-Content-Sha256: " + emptySHA + "\r\n" +
		"Authorization: AWS4-HMAC-SHA256 Credential=" + testAK + "/" + testTime.Format("20060102") + "/us-east-1/kms/aws4_request, " +
		"SignedHeaders=" + signed + ", Signature=" + strings.Repeat("0", 64) + "\r\n" +
		extra + "\r\n"
	r, err := http.ReadRequest(bufio.NewReaderSize(strings.NewReader(raw), 4096))
	if err != nil {
		tb.Fatal(err)
	}
	return r
}

func benchHostile(b *testing.B, r *http.Request) {
	v := newTestVerifier(testTime)
	_, err := v.Verify(r, nil)
	b.Logf("refused with: %.120v", err)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(r, nil); err == nil {
			b.Fatal("a hostile request verified")
		}
	}
}

// BenchmarkHostileManySignedHeaders: 1,900 signed x-amz-* headers.
func BenchmarkHostileManySignedHeaders(b *testing.B) { benchHostile(b, hostileManySigned(b)) }

// BenchmarkHostileMissingSignedHeaders: 3,000 signed names the request
// lacks, 2,000 unsigned headers, a known access key.
func BenchmarkHostileMissingSignedHeaders(b *testing.B) { benchHostile(b, hostileMissingSigned(b)) }
