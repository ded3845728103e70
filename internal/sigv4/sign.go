package sigv4

import (
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// scopeDateLayout is the date of a credential scope.
const scopeDateLayout = "20060102"

// unsignedHeaders are never signed: they are set or changed by proxies and
// transports (the same list as the AWS SDK for Go v2).
var unsignedHeaders = map[string]bool{
	"authorization":     true,
	"user-agent":        true,
	"x-amzn-trace-id":   true,
	"expect":            true,
	"transfer-encoding": true,
}

// Signer signs requests with AWS Signature Version 4, header form, with
// x-amz-content-sha256 set to the hex SHA-256 of the body. Its output is
// byte-for-byte what the AWS SDK for Go v2 produces for the same request,
// time and credentials (sign_test.go), and what Verifier accepts. It is
// the one signer of the project: the Go client and the load generator
// both use it. Safe for concurrent use.
type Signer struct {
	AccessKey, SecretKey string
	Region, Service      string // "us-east-1" and "kms" when empty

	mu      sync.Mutex
	keyDate string   // scope date of key
	key     [32]byte // derived signing key for keyDate
}

func (s *Signer) region() string {
	if s.Region == "" {
		return "us-east-1"
	}
	return s.Region
}

func (s *Signer) service() string {
	if s.Service == "" {
		return "kms"
	}
	return s.Service
}

// signingKey derives (and caches for the day) the SigV4 signing key.
func (s *Signer) signingKey(date string) [32]byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyDate != date {
		s.key = deriveSigningKey(s.SecretKey, date, s.region(), s.service())
		s.keyDate = date
	}
	return s.key
}

// Sign adds X-Amz-Date, X-Amz-Content-Sha256 and Authorization to r. body
// must be exactly the bytes r will send. r.Host is set to the host that was
// signed (a default port is dropped, as the AWS SDKs do), so that the Host
// header sent is the one signed.
func (s *Signer) Sign(r *http.Request, body []byte, at time.Time) {
	sum := sha256.Sum256(body)
	s.SignHashed(r, &sum, at)
}

// SignHashed is Sign for a body the caller streams instead of holding:
// sum is the SHA-256 of exactly the bytes r will send. The hash is sent in
// X-Amz-Content-Sha256, so the server authenticates the request before it
// reads the body.
func (s *Signer) SignHashed(r *http.Request, sum *[sha256.Size]byte, at time.Time) {
	region, service := s.region(), s.service()
	at = at.UTC()
	amzDate := at.Format(amzDateLayout)
	date := at.Format(scopeDateLayout)
	payloadHash := hex.EncodeToString(sum[:])
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	r.Header.Del("Authorization")

	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	host = stripDefaultPort(r.URL.Scheme, host)
	r.Host = host

	signedNames, canonHeaders := signCanonicalHeaders(r, host)
	var canon strings.Builder
	canon.WriteString(r.Method)
	canon.WriteByte('\n')
	canon.WriteString(signCanonicalURI(r.URL, service))
	canon.WriteByte('\n')
	canon.WriteString(signCanonicalQuery(r.URL.RawQuery))
	canon.WriteByte('\n')
	canon.WriteString(canonHeaders)
	canon.WriteByte('\n')
	canon.WriteString(signedNames)
	canon.WriteByte('\n')
	canon.WriteString(payloadHash)

	scope := date + "/" + region + "/" + service + "/" + scopeTerminator
	canonSum := sha256.Sum256([]byte(canon.String()))
	stringToSign := algorithm + "\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(canonSum[:])
	key := s.signingKey(date)
	sig := hex.EncodeToString(hmacSum(key[:], stringToSign))
	r.Header.Set("Authorization", algorithm+" Credential="+s.AccessKey+"/"+scope+
		", SignedHeaders="+signedNames+", Signature="+sig)
}

// signCanonicalHeaders returns the signed header list ("a;b;c") and the
// canonical header block ("a:v\nb:v\n..." without the final newline's
// separator line). host and content-length (when positive) are always
// signed; every other header except unsignedHeaders is signed too, which
// covers every x-amz-* header as the server requires.
func signCanonicalHeaders(r *http.Request, host string) (signed, block string) {
	values := map[string][]string{"host": {host}}
	if r.ContentLength > 0 {
		values["content-length"] = []string{strconv.FormatInt(r.ContentLength, 10)}
	}
	for k, v := range r.Header {
		lk := strings.ToLower(k)
		if unsignedHeaders[lk] || lk == "host" || lk == "content-length" {
			continue
		}
		values[lk] = append(values[lk], v...)
	}
	names := make([]string, 0, len(values))
	for k := range values {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, name := range names {
		b.WriteString(name)
		b.WriteByte(':')
		for i, v := range values[name] {
			if i > 0 {
				b.WriteByte(',')
			}
			b.WriteString(signTrimAll(v))
		}
		b.WriteByte('\n')
	}
	return strings.Join(names, ";"), b.String()
}

// signTrimAll trims surrounding white space and collapses inner runs of spaces
// (the SigV4 "Trimall" rule).
func signTrimAll(v string) string {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		return v
	}
	var b strings.Builder
	space := false
	for i := 0; i < len(v); i++ {
		if v[i] == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(v[i])
	}
	return b.String()
}

// signCanonicalURI is the escaped path as sent; for every service but s3 it is
// URI-encoded once more (the generic SigV4 rule: "%" becomes "%25").
func signCanonicalURI(u *url.URL, service string) string {
	p := u.Opaque
	if p == "" {
		p = u.EscapedPath()
	}
	if p == "" {
		return "/"
	}
	if service == "s3" {
		return p
	}
	var b strings.Builder
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			b.WriteByte('/')
		} else {
			signEscapeByte(&b, p[i])
		}
	}
	return b.String()
}

// signCanonicalQuery decodes the query and re-encodes every name and value with
// SigV4 rules, sorted by name and then value.
func signCanonicalQuery(raw string) string {
	if raw == "" {
		return ""
	}
	q, _ := url.ParseQuery(raw) // callers build their own queries: always valid
	pairs := make([]string, 0, len(q))
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, sigEscape(k)+"="+sigEscape(v))
		}
	}
	slices.SortFunc(pairs, func(a, b string) int {
		an, av, _ := strings.Cut(a, "=")
		bn, bv, _ := strings.Cut(b, "=")
		if c := strings.Compare(an, bn); c != 0 {
			return c
		}
		return strings.Compare(av, bv)
	})
	return strings.Join(pairs, "&")
}

// sigEscape percent-encodes every byte but the RFC 3986 unreserved ones.
func sigEscape(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		signEscapeByte(&b, s[i])
	}
	return b.String()
}

func signEscapeByte(b *strings.Builder, c byte) {
	const hexUpper = "0123456789ABCDEF"
	if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~' {
		b.WriteByte(c)
		return
	}
	b.WriteByte('%')
	b.WriteByte(hexUpper[c>>4])
	b.WriteByte(hexUpper[c&15])
}

// stripDefaultPort drops ":80" from an http host and ":443" from an https
// host.
func stripDefaultPort(scheme, host string) string {
	if h, ok := strings.CutSuffix(host, ":80"); ok && scheme == "http" {
		return h
	}
	if h, ok := strings.CutSuffix(host, ":443"); ok && scheme == "https" {
		return h
	}
	return host
}
