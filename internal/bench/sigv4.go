package bench

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Signer signs requests with AWS Signature Version 4 in the header form,
// the way the AWS SDK for Go v2 signs them (SignHTTP with the default
// options): host, content-length (when the body is not empty) and every
// header already on the request except the ones the SDK ignores are signed,
// and x-amz-content-sha256 carries hex(sha256(body)).
type Signer struct {
	AccessKey, SecretKey string
	Region, Service      string // "us-east-1", "kms" when empty

	mu      sync.Mutex
	keyDate string
	key     []byte
}

const amzDateFormat = "20060102T150405Z"

// headers the SDK never signs.
var ignoredHeaders = map[string]bool{
	"Authorization":     true,
	"User-Agent":        true,
	"X-Amzn-Trace-Id":   true,
	"Expect":            true,
	"Transfer-Encoding": true,
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

// signingKey derives (and caches for the day) the key of the credential scope.
func (s *Signer) signingKey(date string) []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.keyDate == date && s.key != nil {
		return s.key
	}
	k := hmacSHA256([]byte("AWS4"+s.SecretKey), date)
	k = hmacSHA256(k, s.region())
	k = hmacSHA256(k, s.service())
	s.key, s.keyDate = hmacSHA256(k, "aws4_request"), date
	return s.key
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// Sign sets X-Amz-Date, X-Amz-Content-Sha256 and Authorization on r, whose
// body is body (r.ContentLength must equal len(body) or be 0 for none).
func (s *Signer) Sign(r *http.Request, body []byte, at time.Time) {
	sum := sha256.Sum256(body)
	payloadHash := hex.EncodeToString(sum[:])
	amzDate := at.UTC().Format(amzDateFormat)
	r.Header.Set("X-Amz-Date", amzDate)
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	r.Header.Del("Authorization")

	host := r.Host
	if host == "" {
		host = r.URL.Host
	}
	host = sanitizeHost(r.URL.Scheme, host)

	type hdr struct{ name, value string }
	hdrs := []hdr{{"host", host}}
	if r.ContentLength > 0 {
		hdrs = append(hdrs, hdr{"content-length", strconv.FormatInt(r.ContentLength, 10)})
	}
	for k, vs := range r.Header {
		if ignoredHeaders[http.CanonicalHeaderKey(k)] || strings.EqualFold(k, "content-length") || strings.EqualFold(k, "host") {
			continue
		}
		clean := make([]string, len(vs))
		for i, v := range vs {
			clean[i] = strings.TrimSpace(collapseSpaces(v))
		}
		hdrs = append(hdrs, hdr{strings.ToLower(k), strings.Join(clean, ",")})
	}
	sort.Slice(hdrs, func(i, j int) bool { return hdrs[i].name < hdrs[j].name })
	var canonHdrs strings.Builder
	names := make([]string, len(hdrs))
	for i, h := range hdrs {
		names[i] = h.name
		canonHdrs.WriteString(h.name + ":" + h.value + "\n")
	}
	signedHeaders := strings.Join(names, ";")

	canonical := strings.Join([]string{
		r.Method,
		canonicalURI(r.URL),
		canonicalQuery(r.URL.Query()),
		canonHdrs.String(),
		signedHeaders,
		payloadHash,
	}, "\n")
	date := amzDate[:8]
	scope := date + "/" + s.region() + "/" + s.service() + "/aws4_request"
	csum := sha256.Sum256([]byte(canonical))
	sts := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(csum[:])
	sig := hex.EncodeToString(hmacSHA256(s.signingKey(date), sts))
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential="+s.AccessKey+"/"+scope+
		", SignedHeaders="+signedHeaders+", Signature="+sig)
}

// sanitizeHost drops a default port, as the SDK (and net/http) do.
func sanitizeHost(scheme, host string) string {
	h, port, err := net.SplitHostPort(host)
	if err != nil {
		return host
	}
	if (scheme == "http" && port == "80") || (scheme == "https" && port == "443") {
		if strings.Contains(h, ":") {
			return "[" + h + "]"
		}
		return h
	}
	return host
}

func collapseSpaces(s string) string {
	for strings.Contains(s, "  ") {
		s = strings.ReplaceAll(s, "  ", " ")
	}
	return s
}

// canonicalURI is the escaped path, escaped once more (every byte but the
// unreserved ones and '/'), as AWS does for every service but S3.
func canonicalURI(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	return uriEscape(p, false)
}

// canonicalQuery encodes each name and value, then sorts the pairs.
func canonicalQuery(q url.Values) string {
	type pair struct{ k, v string }
	pairs := make([]pair, 0, len(q))
	for k, vs := range q {
		for _, v := range vs {
			pairs = append(pairs, pair{uriEscape(k, true), uriEscape(v, true)})
		}
	}
	sort.Slice(pairs, func(i, j int) bool {
		if pairs[i].k != pairs[j].k {
			return pairs[i].k < pairs[j].k
		}
		return pairs[i].v < pairs[j].v
	})
	var b strings.Builder
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.k + "=" + p.v)
	}
	return b.String()
}

// uriEscape percent-encodes every byte outside A-Z a-z 0-9 - _ . ~ (and
// '/' unless escapeSlash) with upper-case hex.
func uriEscape(s string, escapeSlash bool) string {
	const hexDigits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'A' <= c && c <= 'Z', 'a' <= c && c <= 'z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == '~', c == '/' && !escapeSlash:
			b.WriteByte(c)
		default:
			b.WriteByte('%')
			b.WriteByte(hexDigits[c>>4])
			b.WriteByte(hexDigits[c&15])
		}
	}
	return b.String()
}
