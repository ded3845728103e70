package sigv4

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// staticCreds is a CredentialStore backed by a map.
type staticCreds map[string]string

func (c staticCreds) SecretKey(ak string) (string, bool) { s, ok := c[ak]; return s, ok }

const (
	suiteAK     = "AKIDEXAMPLE"
	suiteSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
)

var suiteTime = time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// traced records the canonical requests and strings to sign Verify computes.
type traced struct{ creqs, stss []string }

func newTracedVerifier(creds CredentialStore, now time.Time, services ...string) (*Verifier, *traced) {
	v := New(creds, fixedClock(now), 15*time.Minute, WithServices(services...))
	tr := &traced{}
	v.trace = func(c, s []byte) {
		tr.creqs = append(tr.creqs, string(c))
		tr.stss = append(tr.stss, string(s))
	}
	return v, tr
}

// parseRawRequest turns a test-suite style raw request (LF line endings) into
// a server-side *http.Request using net/http's own parser, so the verifier
// sees exactly what a real server would hand it. Targets that cannot appear
// on an HTTP/1.1 request line (get-space has a literal space) are parsed
// with a placeholder target and then set the way a lenient server would.
func parseRawRequest(t *testing.T, raw string) (*http.Request, []byte) {
	t.Helper()
	line, rest, _ := strings.Cut(raw, "\n")
	method, tail, _ := strings.Cut(line, " ")
	i := strings.LastIndexByte(tail, ' ')
	target, proto := tail[:i], tail[i+1:]
	placeholder := strings.ContainsAny(target, " ")
	sendTarget := target
	if placeholder {
		sendTarget = "/"
	}
	head, body, _ := strings.Cut(rest, "\n\n")
	wire := method + " " + sendTarget + " " + proto + "\r\n" +
		strings.ReplaceAll(head, "\n", "\r\n") + "\r\n\r\n" + body
	r, err := http.ReadRequest(bufio.NewReader(strings.NewReader(wire)))
	if err != nil {
		t.Fatalf("parse request: %v", err)
	}
	if placeholder {
		p, q, _ := strings.Cut(target, "?")
		r.RequestURI = target
		r.URL = &url.URL{Path: p, RawQuery: q}
	}
	b, err := io.ReadAll(r.Body)
	if err != nil {
		t.Fatal(err)
	}
	return r, b
}

type suiteVector struct {
	name                  string
	req, creq, sts, authz string
	creqKnownInconsistent bool
}

func loadSuite(t *testing.T) []suiteVector {
	t.Helper()
	var out []suiteVector
	root := filepath.Join("testdata", "aws-sig-v4-test-suite")
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, ".req") {
			return err
		}
		base := strings.TrimSuffix(p, ".req")
		read := func(ext string) string {
			b, err := os.ReadFile(base + ext)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		name := filepath.Base(base)
		out = append(out, suiteVector{
			name: name, req: read(".req"), creq: read(".creq"), sts: read(".sts"), authz: read(".authz"),
			creqKnownInconsistent: name == "post-x-www-form-urlencoded", // see testdata/README.md
		})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(out) < 20 {
		t.Fatalf("only %d vectors found", len(out))
	}
	return out
}

func signatureOf(authz string) string {
	_, sig, _ := strings.Cut(authz, "Signature=")
	return sig
}

// TestSuiteGeneration checks the canonical request, string to sign and
// signature this package computes against the published .creq/.sts/.authz.
func TestSuiteGeneration(t *testing.T) {
	for _, vec := range loadSuite(t) {
		t.Run(vec.name, func(t *testing.T) {
			v, tr := newTracedVerifier(staticCreds{suiteAK: suiteSecret}, suiteTime, "service")
			r, body := parseRawRequest(t, vec.req)
			r.Header.Set("Authorization", vec.authz)
			ak, err := v.Verify(r, body)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if ak != suiteAK {
				t.Fatalf("access key %q", ak)
			}
			if !vec.creqKnownInconsistent && tr.creqs[0] != vec.creq {
				t.Errorf("canonical request:\n got %q\nwant %q", tr.creqs[0], vec.creq)
			}
			if tr.stss[0] != vec.sts {
				t.Errorf("string to sign:\n got %q\nwant %q", tr.stss[0], vec.sts)
			}
			// Signature generation, independent of Verify's comparison.
			key := deriveSigningKey(suiteSecret, "20150830", "us-east-1", "service")
			buf := append(make([]byte, hmacBlock), vec.sts...)
			mac := hmacSHA256(&key, buf)
			if got := hex.EncodeToString(mac[:]); got != signatureOf(vec.authz) {
				t.Errorf("signature %s, want %s", got, signatureOf(vec.authz))
			}
		})
	}
}

// TestSuiteTamper checks that each vector is rejected when one byte of the
// signature, of a signed header, of the path or of the query changes.
func TestSuiteTamper(t *testing.T) {
	for _, vec := range loadSuite(t) {
		t.Run(vec.name, func(t *testing.T) {
			v := New(staticCreds{suiteAK: suiteSecret}, fixedClock(suiteTime), 0, WithServices("service"))
			verify := func(mut func(r *http.Request)) error {
				r, body := parseRawRequest(t, vec.req)
				r.Header.Set("Authorization", vec.authz)
				mut(r)
				_, err := v.Verify(r, body)
				return err
			}
			if err := verify(func(*http.Request) {}); err != nil {
				t.Fatalf("untampered: %v", err)
			}
			cases := map[string]func(r *http.Request){
				"signature": func(r *http.Request) {
					a := r.Header.Get("Authorization")
					last := a[len(a)-1]
					flip := byte('0')
					if last == '0' {
						flip = '1'
					}
					r.Header.Set("Authorization", a[:len(a)-1]+string(flip))
				},
				"host": func(r *http.Request) { r.Host = "example.amazonaws.con" },
				"method": func(r *http.Request) {
					r.Method = map[string]string{"GET": "PUT", "POST": "PUT"}[r.Method]
				},
				"path": func(r *http.Request) {
					r.RequestURI = "/x" + r.RequestURI
				},
				"query": func(r *http.Request) {
					if strings.Contains(r.RequestURI, "?") {
						r.RequestURI += "&a=b"
					} else {
						r.RequestURI += "?a=b"
					}
				},
			}
			if r, _ := parseRawRequest(t, vec.req); r.Header.Get("My-Header1") != "" {
				cases["my-header1"] = func(r *http.Request) {
					vals := r.Header["My-Header1"]
					vals[0] = "x" + vals[0][1:]
				}
			}
			for name, mut := range cases {
				if err := verify(mut); !errors.Is(err, ErrSignatureDoesNotMatch) {
					t.Errorf("%s changed: got %v, want ErrSignatureDoesNotMatch", name, err)
				}
			}
		})
	}
}

// TestAwsCAuthGetUTF8 verifies the aws-c-auth get-utf8 vector (raw UTF-8 in
// the path), which exercises taking the path from RequestURI: r.URL would
// have re-escaped it before the second encoding.
func TestAwsCAuthGetUTF8(t *testing.T) {
	raw, err := os.ReadFile("testdata/aws-c-auth/get-utf8/header-signed-request.txt")
	if err != nil {
		t.Fatal(err)
	}
	creq, err := os.ReadFile("testdata/aws-c-auth/get-utf8/query-canonical-request.txt")
	if err != nil {
		t.Fatal(err)
	}
	wantURI := strings.Split(string(creq), "\n")[1]
	v, tr := newTracedVerifier(staticCreds{suiteAK: suiteSecret}, suiteTime, "service")
	r, body := parseRawRequest(t, strings.TrimRight(string(raw), "\n"))
	if _, err := v.Verify(r, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if got := strings.Split(tr.creqs[0], "\n")[1]; got != wantURI {
		t.Errorf("canonical URI %q, want %q", got, wantURI)
	}
}

// TestDateHeaderFallback uses the get-vanilla vector of the original (2011)
// edition of the AWS test suite, which dates requests with the Date header:
// host host.foo.com, service "host", string-to-sign hash 366b91fb...,
// signature b27ccfbf... (widely reproduced, e.g. in the AWS SDK test suites).
func TestDateHeaderFallback(t *testing.T) {
	now := time.Date(2011, 9, 9, 23, 36, 0, 0, time.UTC)
	v, tr := newTracedVerifier(staticCreds{suiteAK: suiteSecret}, now, "host")
	r, body := parseRawRequest(t, "GET / HTTP/1.1\nDate:Mon, 09 Sep 2011 23:36:00 GMT\nHost:host.foo.com")
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=date;host, Signature=b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470")
	if _, err := v.Verify(r, body); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := "AWS4-HMAC-SHA256\n20110909T233600Z\n20110909/us-east-1/host/aws4_request\n366b91fb121d72a00f46bbe8d395f53a102b06dfb7e79636515208ed3fa606b1"
	if tr.stss[0] != want {
		t.Errorf("string to sign %q", tr.stss[0])
	}
	// The Date header must be signed when it carries the request time.
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20110909/us-east-1/host/aws4_request, SignedHeaders=host, Signature=b27ccfbfa7df52a200ff74193ca6e32d4b48b8856fab7ebf1c595d0670a7e470")
	if _, err := v.Verify(r, body); !errors.Is(err, ErrMalformed) {
		t.Errorf("unsigned Date: got %v, want ErrMalformed", err)
	}
}

// S3 examples from the Amazon S3 API reference, "Signature Calculations for
// the Authorization Header: Transferring Payload in a Single Chunk" and
// "Authenticating Requests: Using Query Parameters".
const (
	s3AK     = "AKIAIOSFODNN7EXAMPLE"
	s3Secret = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
	emptySHA = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
)

var s3Time = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func TestS3DocExamples(t *testing.T) {
	cred := "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
	tests := []struct {
		name, raw, authz string
	}{
		{"GET object", "GET /test.txt HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nRange: bytes=0-9\nx-amz-content-sha256:" + emptySHA + "\nx-amz-date: 20130524T000000Z",
			cred + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"},
		{"PUT object", "PUT /test$file.text HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nDate: Fri, 24 May 2013 00:00:00 GMT\nx-amz-date: 20130524T000000Z\nx-amz-storage-class: REDUCED_REDUNDANCY\nx-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\nContent-Length: 21\n\nWelcome to Amazon S3.",
			cred + "SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"},
		{"GET bucket lifecycle", "GET /?lifecycle HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nx-amz-date: 20130524T000000Z\nx-amz-content-sha256: " + emptySHA,
			cred + "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"},
		{"GET bucket list", "GET /?max-keys=2&prefix=J HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\nx-amz-date: 20130524T000000Z\nx-amz-content-sha256: " + emptySHA,
			cred + "SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := New(staticCreds{s3AK: s3Secret}, fixedClock(s3Time), 0)
			r, body := parseRawRequest(t, tc.raw)
			r.Header.Set("Authorization", tc.authz)
			if ak, err := v.Verify(r, body); err != nil || ak != s3AK {
				t.Fatalf("Verify = %q, %v", ak, err)
			}
			if len(body) > 0 {
				tampered := append([]byte(nil), body...)
				tampered[0] ^= 1
				if _, err := v.Verify(r, tampered); !errors.Is(err, ErrSignatureDoesNotMatch) {
					t.Errorf("tampered body: got %v, want ErrSignatureDoesNotMatch", err)
				}
			}
		})
	}
}

func TestS3DocPresignedExample(t *testing.T) {
	target := "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	check := func(now time.Time, target string) error {
		v := New(staticCreds{s3AK: s3Secret}, fixedClock(now), 0)
		r, body := parseRawRequest(t, "GET "+target+" HTTP/1.1\nHost: examplebucket.s3.amazonaws.com")
		_, err := v.Verify(r, body)
		return err
	}
	if err := check(s3Time.Add(time.Hour), target); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if err := check(s3Time.Add(86400*time.Second), target); err != nil {
		t.Errorf("at expiry: %v", err)
	}
	if err := check(s3Time.Add(86401*time.Second), target); !errors.Is(err, ErrRequestTimeTooSkewed) {
		t.Errorf("after expiry: got %v, want ErrRequestTimeTooSkewed", err)
	}
	if err := check(s3Time.Add(-16*time.Minute), target); !errors.Is(err, ErrRequestTimeTooSkewed) {
		t.Errorf("dated in the future: got %v, want ErrRequestTimeTooSkewed", err)
	}
	if err := check(s3Time, strings.Replace(target, "test.txt", "test.txu", 1)); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Errorf("other object: got %v, want ErrSignatureDoesNotMatch", err)
	}
	if err := check(s3Time, strings.Replace(target, "86400", "86401", 1)); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Errorf("longer expiry: got %v, want ErrSignatureDoesNotMatch", err)
	}
	if err := check(s3Time, target+"&extra=1"); !errors.Is(err, ErrSignatureDoesNotMatch) {
		t.Errorf("added parameter: got %v, want ErrSignatureDoesNotMatch", err)
	}
}

// TestHMAC checks the allocation-free HMAC against crypto/hmac.
func TestHMAC(t *testing.T) {
	key := sha256.Sum256([]byte("k"))
	for _, msg := range []string{"", "a", strings.Repeat("x", 63), strings.Repeat("y", 64), strings.Repeat("z", 1000)} {
		buf := append(make([]byte, hmacBlock), msg...)
		got := hmacSHA256(&key, buf)
		want := hmacSum(key[:], msg)
		if hex.EncodeToString(got[:]) != hex.EncodeToString(want) {
			t.Errorf("len %d: mismatch", len(msg))
		}
	}
}
