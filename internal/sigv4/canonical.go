package sigv4

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
)

// scratch holds the buffers of one Verify call. They are pooled so that the
// hot path does not allocate once the pool is warm.
type scratch struct {
	canon []byte  // canonical request
	rest  []byte  // canonical request after the URI line (shared by candidates)
	uri   []byte  // canonical URI of the current candidate
	enc   []byte  // re-encoded query names and values
	pairs []qpair // offsets of the query pairs in enc
	sts   []byte  // 64-byte HMAC pad block followed by the string to sign
}

// qpair locates one encoded name=value pair inside scratch.enc.
type qpair struct{ k0, k1, v1 int }

var scratchPool = sync.Pool{New: func() any {
	return &scratch{
		canon: make([]byte, 0, 1024),
		rest:  make([]byte, 0, 1024),
		uri:   make([]byte, 0, 256),
		enc:   make([]byte, 0, 256),
		pairs: make([]qpair, 0, 16),
		sts:   make([]byte, 0, 256),
	}
}}

func getScratch() *scratch { return scratchPool.Get().(*scratch) }

// putScratch returns s to the pool unless a huge request inflated it, so one
// outlier does not pin memory forever.
func putScratch(s *scratch) {
	const maxKeep = 64 << 10
	if cap(s.canon) > maxKeep || cap(s.rest) > maxKeep || cap(s.enc) > maxKeep || cap(s.uri) > maxKeep {
		return
	}
	scratchPool.Put(s)
}

// payloadKind says where the last line of the canonical request comes from.
type payloadKind uint8

const (
	payloadComputed   payloadKind = iota // hex(sha256(body)); header form without the header (e.g. KMS clients)
	payloadHeaderHash                    // x-amz-content-sha256 holds a hash; signed as sent, must match the body
	payloadLiteral                       // UNSIGNED-PAYLOAD, from the header or implied by S3 presigning
	payloadPresigned                     // presigned non-S3 without the header: hash of body, or UNSIGNED-PAYLOAD
)

const unsignedPayload = "UNSIGNED-PAYLOAD"

type payloadSpec struct {
	kind  payloadKind
	value string // payloadHeaderHash / payloadLiteral: the exact line to sign
	// emptyBodyOnly: the signature does not cover the body (UNSIGNED-PAYLOAD
	// or presigned) and unsigned payloads are not allowed, so the request
	// is accepted only without a body.
	emptyBodyOnly bool
}

// bodyIndependent reports whether every candidate payload line is known
// without reading the body, so that the signature can be checked first.
func (p payloadSpec) bodyIndependent() bool {
	switch p.kind {
	case payloadHeaderHash, payloadLiteral:
		return true
	case payloadPresigned:
		return p.emptyBodyOnly // the body's hash is that of an empty body
	}
	return false
}

// candidates is the number of payload lines to try.
func (p payloadSpec) candidates() int {
	if p.kind == payloadPresigned {
		return 2
	}
	return 1
}

// appendLine appends the i-th candidate payload line.
func (p payloadSpec) appendLine(dst []byte, i int, bodySum *[sha256.Size]byte) []byte {
	switch {
	case p.kind == payloadComputed, p.kind == payloadPresigned && i == 0:
		return hex.AppendEncode(dst, bodySum[:])
	case p.kind == payloadPresigned:
		return append(dst, unsignedPayload...)
	}
	return append(dst, p.value...)
}

// matches reports whether the header hash (any hex case) equals sum.
func (p payloadSpec) matches(sum *[sha256.Size]byte) bool {
	var got [sha256.Size]byte
	if _, err := hex.Decode(got[:], []byte(p.value)); err != nil {
		return false
	}
	return got == *sum
}

// payloadMode decides the payload line from x-amz-content-sha256. A hash is
// signed as sent and later checked against the body; UNSIGNED-PAYLOAD is
// signed literally. Without the header, the header form signs
// hex(sha256(body)) (what KMS-style clients do), an S3 presigned URL signs
// UNSIGNED-PAYLOAD (S3's rule), and other presigned URLs may sign either
// (botocore and the SigV4 test suite hash the body, the Go SDK's PresignHTTP
// takes whatever the caller passes, typically UNSIGNED-PAYLOAD).
// Verifier.payloadMode then decides whether an unsigned body is allowed.
func payloadMode(r *http.Request, a *authParams) (payloadSpec, error) {
	v := r.Header["X-Amz-Content-Sha256"]
	switch {
	case len(v) > 1:
		return payloadSpec{}, malformed("multiple x-amz-content-sha256 headers")
	case len(v) == 0 && a.presigned && a.service == "s3":
		return payloadSpec{kind: payloadLiteral, value: unsignedPayload}, nil
	case len(v) == 0 && a.presigned:
		return payloadSpec{kind: payloadPresigned}, nil
	case len(v) == 0:
		return payloadSpec{kind: payloadComputed}, nil
	}
	h := v[0]
	switch {
	case h == unsignedPayload:
		return payloadSpec{kind: payloadLiteral, value: h}, nil
	case len(h) == 64 && isHex(h):
		return payloadSpec{kind: payloadHeaderHash, value: h}, nil
	case strings.HasPrefix(h, "STREAMING-"):
		return payloadSpec{}, malformed("streaming payloads are not supported")
	}
	return payloadSpec{}, malformed("invalid x-amz-content-sha256 value")
}

// payloadMode is payloadMode with the Verifier's rule on payloads the
// signature does not cover: UNSIGNED-PAYLOAD and presigned URLs are
// accepted only for GET and HEAD requests without a body, unless
// WithUnsignedPayload(true).
func (v *Verifier) payloadMode(r *http.Request, a *authParams) (payloadSpec, error) {
	p, err := payloadMode(r, a)
	if err != nil || v.allowUnsigned || !a.presigned && p.kind != payloadLiteral {
		return p, err
	}
	if !hasNoBody(r) {
		return p, malformed("%s", unsignedRefusal(a))
	}
	p.emptyBodyOnly = true
	return p, nil
}

// hasNoBody reports whether r is a GET or HEAD request announcing no body.
func hasNoBody(r *http.Request) bool {
	switch r.Method {
	case "", http.MethodGet, http.MethodHead:
		return r.ContentLength == 0 && len(r.TransferEncoding) == 0
	}
	return false
}

// unsignedRefusal says why a request whose body is not signed is refused,
// and what to do instead.
func unsignedRefusal(a *authParams) string {
	if a.presigned {
		return "presigned URLs are accepted only for GET and HEAD requests without a body: " +
			"sign the request in the Authorization header instead, with x-amz-content-sha256 set to the hex SHA-256 of the body " +
			"(or ask the operator to start the server with --allow-unsigned-payload)"
	}
	return "UNSIGNED-PAYLOAD is accepted only for GET and HEAD requests without a body: " +
		"sign the body: send x-amz-content-sha256 with the hex SHA-256 of the body, or leave the header out and sign that hash " +
		"(or ask the operator to start the server with --allow-unsigned-payload)"
}

// buildRest writes everything after the canonical URI except the payload
// line, which depends on the candidate:
//
//	\n query \n canonical headers \n signed headers \n
func (s *scratch) buildRest(r *http.Request, query string, a *authParams) error {
	b := append(s.rest[:0], '\n')
	var err error
	if b, err = s.appendCanonicalQuery(b, query, a.presigned); err != nil {
		return err
	}
	b = append(b, '\n')
	b = appendCanonicalHeaders(b, r, a.signedHeaders)
	b = append(b, '\n')
	b = append(b, a.signedHeaders...)
	b = append(b, '\n')
	s.rest = b
	return nil
}

// stringToSign writes the 64-byte inner HMAC pad placeholder followed by
//
//	AWS4-HMAC-SHA256 \n amzDate \n date/region/service/aws4_request \n hex(sha256(canonical))
//
// into s.sts and returns the string-to-sign part.
func (s *scratch) stringToSign(a *authParams, canonSum [sha256.Size]byte) []byte {
	b := append(s.sts[:0], make([]byte, hmacBlock)...)
	b = append(b, algorithm...)
	b = append(b, '\n')
	b = append(b, a.amzDate...)
	b = append(b, '\n')
	b = append(b, a.scopeDate...)
	b = append(b, '/')
	b = append(b, a.region...)
	b = append(b, '/')
	b = append(b, a.service...)
	b = append(b, "/"+scopeTerminator+"\n"...)
	b = hex.AppendEncode(b, canonSum[:])
	s.sts = b
	return b[hmacBlock:]
}

// appendCanonicalQuery decodes each name and value, re-encodes it the SigV4
// way and appends the pairs sorted by name, then value. For presigned
// requests the X-Amz-Signature parameter (exact spelling) is left out.
func (s *scratch) appendCanonicalQuery(dst []byte, query string, presigned bool) ([]byte, error) {
	if query == "" {
		return dst, nil
	}
	enc, pairs := s.enc[:0], s.pairs[:0]
	var ok bool
	for rest := query; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		if pair == "" {
			continue // "a=1&&b=2": empty segments carry no parameter
		}
		name, value, _ := strings.Cut(pair, "=")
		if presigned && name == "X-Amz-Signature" {
			continue
		}
		k0 := len(enc)
		if enc, ok = appendReencoded(enc, name); !ok {
			return dst, malformed("invalid percent-encoding in query")
		}
		k1 := len(enc)
		if enc, ok = appendReencoded(enc, value); !ok {
			return dst, malformed("invalid percent-encoding in query")
		}
		pairs = append(pairs, qpair{k0, k1, len(enc)})
	}
	slices.SortFunc(pairs, func(x, y qpair) int {
		if c := bytes.Compare(enc[x.k0:x.k1], enc[y.k0:y.k1]); c != 0 {
			return c
		}
		return bytes.Compare(enc[x.k1:x.v1], enc[y.k1:y.v1])
	})
	for i, p := range pairs {
		if i > 0 {
			dst = append(dst, '&')
		}
		dst = append(dst, enc[p.k0:p.k1]...)
		dst = append(dst, '=')
		dst = append(dst, enc[p.k1:p.v1]...)
	}
	s.enc, s.pairs = enc, pairs
	return dst, nil
}

// appendCanonicalHeaders writes "name:value\n" for every signed header, in
// the (validated, sorted) SignedHeaders order.
func appendCanonicalHeaders(dst []byte, r *http.Request, signed string) []byte {
	var odd oddKeys
	for rest := signed; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		dst = append(dst, name...)
		dst = append(dst, ':')
		switch name {
		case "host":
			host := r.Host
			if host == "" && r.URL != nil {
				host = r.URL.Host
			}
			dst = appendTrimmedValue(dst, host)
		default:
			for i, v := range headerValues(r, name, &odd) {
				if i > 0 {
					dst = append(dst, ',')
				}
				dst = appendTrimmedValue(dst, v)
			}
		}
		dst = append(dst, '\n')
	}
	return dst
}

// headerValues returns the values of the lowercase header name. net/http
// stores headers under their canonical MIME key; building that key in a stack
// buffer keeps the lookup allocation-free. A few headers net/http removes
// from the map are reconstructed. A signed header the request lacks yields no
// values (an empty canonical value), as AWS does.
func headerValues(r *http.Request, name string, odd *oddKeys) []string {
	var buf [64]byte
	var vals []string
	if len(name) <= len(buf) {
		k := buf[:len(name)]
		upper := true
		for i := 0; i < len(name); i++ {
			c := name[i]
			if upper && 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			k[i] = c
			upper = c == '-'
		}
		vals = r.Header[string(k)]
	} else {
		vals = r.Header[http.CanonicalHeaderKey(name)]
	}
	if vals != nil {
		return vals
	}
	if vals = odd.lookup(r.Header, name); vals != nil {
		return vals
	}
	switch name {
	case "content-length": // client-side requests keep it in r.ContentLength only
		if r.ContentLength > 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding": // the server moves it to r.TransferEncoding
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	}
	return nil
}

// oddKeys finds headers stored under a key that is not in canonical MIME
// form (hand-built header maps; net/http's server always canonicalizes).
// It is built on the first signed header that the canonical lookup misses,
// at most once per request, so that a request naming many headers it does
// not carry costs one pass over its headers rather than one per name. The
// index is usually empty and then allocates nothing.
type oddKeys struct {
	built bool
	byLow map[string][]string // lowercased key -> values
}

func (o *oddKeys) lookup(h http.Header, name string) []string {
	if !o.built {
		o.built = true
		for k, v := range h {
			if !isCanonicalKey(k) {
				if o.byLow == nil {
					o.byLow = make(map[string][]string)
				}
				low := strings.ToLower(k)
				if _, dup := o.byLow[low]; !dup { // as the former scan: one spelling wins
					o.byLow[low] = v
				}
			}
		}
	}
	return o.byLow[name]
}

// isCanonicalKey reports whether k is the key headerValues builds for the
// lowercase form of k: uppercase after a start or a '-', lowercase elsewhere.
func isCanonicalKey(k string) bool {
	upper := true
	for i := 0; i < len(k); i++ {
		c := k[i]
		if upper && 'a' <= c && c <= 'z' || !upper && 'A' <= c && c <= 'Z' {
			return false
		}
		upper = c == '-'
	}
	return true
}

// appendTrimmedValue appends v without leading/trailing spaces or tabs and
// with runs of spaces collapsed into one, per the SigV4 "Trimall" rule.
func appendTrimmedValue(dst []byte, v string) []byte {
	v = strings.Trim(v, " \t")
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		dst = append(dst, c)
	}
	return dst
}

// unreserved marks RFC 3986 unreserved characters, which SigV4 never escapes.
var unreserved = func() (t [256]bool) {
	for c := 'A'; c <= 'Z'; c++ {
		t[c], t[c+'a'-'A'] = true, true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	t['-'], t['.'], t['_'], t['~'] = true, true, true, true
	return t
}()

const upperHex = "0123456789ABCDEF"

func appendEscapedByte(dst []byte, c byte) []byte {
	if unreserved[c] {
		return append(dst, c)
	}
	return append(dst, '%', upperHex[c>>4], upperHex[c&15])
}

// appendEscapedPath URI-encodes every byte of p except unreserved ones and
// "/". Applied to a path as sent, this is the double encoding generic SigV4
// services expect ("%2F" becomes "%252F").
func appendEscapedPath(dst []byte, p string) []byte {
	for i := 0; i < len(p); i++ {
		if p[i] == '/' {
			dst = append(dst, '/')
		} else {
			dst = appendEscapedByte(dst, p[i])
		}
	}
	return dst
}

// appendS3Path percent-decodes the path as sent and re-encodes it once with
// SigV4 rules, keeping "/" separators and an escaped slash as "%2F" so that
// the segment structure the client meant is preserved. It fails on an
// invalid escape.
func appendS3Path(dst []byte, p string) ([]byte, bool) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '%':
			if i+2 >= len(p) || !isHexByte(p[i+1]) || !isHexByte(p[i+2]) {
				return dst, false
			}
			c = unhex(p[i+1])<<4 | unhex(p[i+2])
			i += 2
			dst = appendEscapedByte(dst, c) // '/' from "%2F" stays escaped
		case c == '/':
			dst = append(dst, '/')
		default:
			dst = appendEscapedByte(dst, c)
		}
	}
	return dst, true
}

// appendReencoded percent-decodes s ("+" is a space) and appends it encoded
// the SigV4 way. It fails on an invalid escape.
func appendReencoded(dst []byte, s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+2 >= len(s) || !isHexByte(s[i+1]) || !isHexByte(s[i+2]) {
				return dst, false
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		case '+':
			c = ' '
		}
		dst = appendEscapedByte(dst, c)
	}
	return dst, true
}

// queryUnescape decodes a query component ("+" is a space); it returns s
// itself when there is nothing to decode.
func queryUnescape(s string) (string, bool) {
	if strings.IndexByte(s, '%') < 0 && strings.IndexByte(s, '+') < 0 {
		return s, true
	}
	b := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch c {
		case '%':
			if i+2 >= len(s) || !isHexByte(s[i+1]) || !isHexByte(s[i+2]) {
				return "", false
			}
			c = unhex(s[i+1])<<4 | unhex(s[i+2])
			i += 2
		case '+':
			c = ' '
		}
		b = append(b, c)
	}
	return string(b), true
}

// normalizePath removes "." and ".." segments and empty segments (repeated
// slashes), keeping a leading and a trailing slash, exactly as botocore does
// for non-S3 services and as the SigV4 test suite expects. It returns p
// itself when there is nothing to normalize.
func normalizePath(p string) string {
	if !needsNormalizing(p) {
		return p
	}
	var out []string
	for _, seg := range strings.Split(p, "/") {
		switch seg {
		case "", ".":
		case "..":
			if len(out) > 0 {
				out = out[:len(out)-1]
			}
		default:
			out = append(out, seg)
		}
	}
	n := "/" + strings.Join(out, "/")
	if len(out) > 0 && strings.HasSuffix(p, "/") {
		n += "/"
	}
	return n
}

func needsNormalizing(p string) bool {
	if p == "" || p[0] != '/' || strings.Contains(p, "//") {
		return true
	}
	for rest := p[1:]; ; {
		seg, tail, more := strings.Cut(rest, "/")
		if seg == "." || seg == ".." {
			return true
		}
		if !more {
			return false
		}
		rest = tail
	}
}

func isHexByte(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

func isHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !isHexByte(s[i]) {
			return false
		}
	}
	return true
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c <= 'F':
		return c - 'A' + 10
	}
	return c - 'a' + 10
}
