package sigv4

import (
	"net/http"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	scopeTerminator = "aws4_request"
	amzDateLayout   = "20060102T150405Z"

	// maxPresignExpires is S3's limit for X-Amz-Expires (7 days, in seconds).
	maxPresignExpires = 7 * 24 * 60 * 60

	// Bounds that keep hostile input from costing much; real values are far
	// below them (AWS access keys are 16-128 characters).
	maxAccessKeyLen = 128
	maxRegionLen    = 64
)

// authParams is what the client claims, parsed but not yet verified. Strings
// are usually substrings of the request's header or query.
type authParams struct {
	accessKey     string
	scopeDate     string // YYYYMMDD from the credential scope
	region        string
	service       string
	signedHeaders string // validated: "a;b;c", lowercase, sorted, contains host
	signature     [32]byte
	amzDate       string // 20060102T150405Z
	dateHeader    string // "x-amz-date" or "date": header that carried amzDate (header form)
	presigned     bool
	expires       time.Duration // presigned only
}

// parseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AK/20240918/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=<hex>
//
// The three components may appear in any order, each exactly once, separated
// by commas with optional spaces.
func parseAuthorization(h string) (authParams, error) {
	var a authParams
	alg, rest, _ := strings.Cut(h, " ")
	if alg != algorithm {
		return a, malformed("unsupported Authorization algorithm")
	}
	var cred, signed, sig string
	var seen uint8
	for rest != "" {
		var part string
		part, rest, _ = strings.Cut(rest, ",")
		part = strings.Trim(part, " \t")
		name, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, malformed("invalid Authorization component")
		}
		var bit uint8
		switch name {
		case "Credential":
			bit, cred = 1, value
		case "SignedHeaders":
			bit, signed = 2, value
		case "Signature":
			bit, sig = 4, value
		default:
			return a, malformed("unknown Authorization component")
		}
		if seen&bit != 0 {
			return a, malformed("duplicate Authorization component %s", name)
		}
		seen |= bit
	}
	if seen != 7 {
		return a, malformed("Authorization header needs Credential, SignedHeaders and Signature")
	}
	if err := parseCredential(cred, &a); err != nil {
		return a, err
	}
	if err := checkSignedHeaders(signed); err != nil {
		return a, err
	}
	a.signedHeaders = signed
	if !parseSignature(sig, &a.signature) {
		return a, malformed("signature must be 64 lowercase hex characters")
	}
	return a, nil
}

// parseCredential splits "AK/YYYYMMDD/region/service/aws4_request".
func parseCredential(c string, a *authParams) error {
	var parts [5]string
	for i := 0; i < 4; i++ {
		var ok bool
		parts[i], c, ok = strings.Cut(c, "/")
		if !ok {
			return malformed("credential must be access-key/date/region/service/aws4_request")
		}
	}
	parts[4] = c
	ak, date, region, service := parts[0], parts[1], parts[2], parts[3]
	switch {
	case parts[4] != scopeTerminator:
		return malformed("credential scope must end in aws4_request")
	case ak == "" || len(ak) > maxAccessKeyLen || !isPrintableASCII(ak):
		return malformed("invalid access key in credential")
	case len(date) != 8 || !isDigits(date):
		return malformed("invalid credential scope date")
	case region == "" || len(region) > maxRegionLen || !isRegion(region):
		return malformed("invalid credential scope region")
	case service == "":
		return malformed("empty credential scope service")
	}
	a.accessKey, a.scopeDate, a.region, a.service = ak, date, region, service
	return nil
}

// checkSignedHeaders validates a SignedHeaders list: at most
// MaxSignedHeaders lowercase header names, strictly ascending (so no
// duplicates), and including host. isSigned relies on the order.
func checkSignedHeaders(list string) error {
	if list == "" {
		return malformed("empty SignedHeaders")
	}
	prev, hasHost, n := "", false, 0
	for rest := list; rest != ""; {
		var name string
		name, rest, _ = strings.Cut(rest, ";")
		if n++; n > MaxSignedHeaders {
			return malformed("SignedHeaders names more than %d headers", MaxSignedHeaders)
		}
		if name == "" || !isLowerToken(name) {
			return malformed("invalid header name in SignedHeaders")
		}
		if prev != "" && name <= prev {
			return malformed("SignedHeaders must be sorted and unique")
		}
		prev = name
		hasHost = hasHost || name == "host"
	}
	if strings.HasSuffix(list, ";") {
		return malformed("invalid header name in SignedHeaders")
	}
	if !hasHost {
		return malformed("host must be a signed header")
	}
	return nil
}

// isSigned reports whether name (ASCII letters compared case-insensitively)
// is in the validated SignedHeaders list. It is a binary search over the
// sorted list, done on the string itself: each probe finds the name around
// a middle byte, so no index of the names needs building.
func isSigned(list, name string) bool {
	lo, hi := 0, len(list) // list[lo:hi] starts and ends at name boundaries
	for lo < hi {
		mid := lo + (hi-lo)/2
		start := lo + strings.LastIndexByte(list[lo:mid], ';') + 1
		end := strings.IndexByte(list[mid:hi], ';')
		if end < 0 {
			end = hi
		} else {
			end += mid
		}
		switch c := compareLower(name, list[start:end]); {
		case c == 0:
			return true
		case c < 0:
			hi = max(start-1, lo)
		default:
			lo = end + 1
		}
	}
	return false
}

// compareLower compares name, with ASCII letters lowercased, to the
// lowercase name ref, in the byte order SignedHeaders is sorted by.
func compareLower(name, ref string) int {
	for i := 0; i < len(name) && i < len(ref); i++ {
		c := name[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		if c != ref[i] {
			if c < ref[i] {
				return -1
			}
			return 1
		}
	}
	return len(name) - len(ref)
}

// parseSignature decodes exactly 64 lowercase hex characters.
func parseSignature(s string, dst *[32]byte) bool {
	if len(s) != 64 {
		return false
	}
	for i := range dst {
		hi, ok1 := lowerHexVal(s[2*i])
		lo, ok2 := lowerHexVal(s[2*i+1])
		if !ok1 || !ok2 {
			return false
		}
		dst[i] = hi<<4 | lo
	}
	return true
}

func lowerHexVal(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	}
	return 0, false
}

// headerDate takes the request time for the header form from X-Amz-Date, or
// else from the Date header (RFC 1123), and requires that header be signed.
func headerDate(r *http.Request, a *authParams) error {
	if v := r.Header["X-Amz-Date"]; len(v) > 0 {
		if len(v) > 1 {
			return malformed("multiple X-Amz-Date headers")
		}
		if _, ok := parseAmzDate(v[0]); !ok {
			return malformed("X-Amz-Date must be in the form 20060102T150405Z")
		}
		a.amzDate, a.dateHeader = v[0], "x-amz-date"
	} else if v := r.Header["Date"]; len(v) == 1 {
		t, err := time.Parse(http.TimeFormat, v[0])
		if err != nil {
			return malformed("Date header is not an RFC 1123 GMT date")
		}
		a.amzDate, a.dateHeader = t.UTC().Format(amzDateLayout), "date"
	} else {
		return malformed("missing X-Amz-Date header")
	}
	if !isSigned(a.signedHeaders, a.dateHeader) {
		return malformed("%s must be a signed header", a.dateHeader)
	}
	return nil
}

// parseAmzDate parses 20060102T150405Z strictly (UTC, exact length, valid
// calendar date) without allocating.
func parseAmzDate(s string) (time.Time, bool) {
	if len(s) != 16 || s[8] != 'T' || s[15] != 'Z' || !isDigits(s[:8]) || !isDigits(s[9:15]) {
		return time.Time{}, false
	}
	num := func(s string) int {
		n := 0
		for i := 0; i < len(s); i++ {
			n = n*10 + int(s[i]-'0')
		}
		return n
	}
	y, mo, d := num(s[0:4]), num(s[4:6]), num(s[6:8])
	h, mi, sec := num(s[9:11]), num(s[11:13]), num(s[13:15])
	if mo < 1 || mo > 12 || d < 1 || h > 23 || mi > 59 || sec > 59 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC)
	if t.Day() != d { // e.g. February 30 normalized into March
		return time.Time{}, false
	}
	return t, true
}

// hasPresignParams reports whether the raw query carries X-Amz-Algorithm or
// X-Amz-Signature, i.e. the client attempted query-string authentication.
func hasPresignParams(query string) bool {
	if !strings.Contains(query, "X-Amz-") {
		return false // cheap exit for the header form
	}
	for rest := query; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		name, _, _ := strings.Cut(pair, "=")
		if name == "X-Amz-Algorithm" || name == "X-Amz-Signature" {
			return true
		}
	}
	return false
}

// parsePresigned extracts the X-Amz-* authentication parameters from a raw
// (still percent-encoded) query string. Each must appear exactly once.
func parsePresigned(query string) (authParams, error) {
	var a authParams
	var alg, cred, date, expires, signed, sig string
	var seen uint8
	for rest := query; rest != ""; {
		var pair string
		pair, rest, _ = strings.Cut(rest, "&")
		rawName, rawValue, _ := strings.Cut(pair, "=")
		if !strings.HasPrefix(rawName, "X-Amz-") {
			continue
		}
		var dst *string
		var bit uint8
		switch rawName {
		case "X-Amz-Algorithm":
			dst, bit = &alg, 1
		case "X-Amz-Credential":
			dst, bit = &cred, 2
		case "X-Amz-Date":
			dst, bit = &date, 4
		case "X-Amz-Expires":
			dst, bit = &expires, 8
		case "X-Amz-SignedHeaders":
			dst, bit = &signed, 16
		case "X-Amz-Signature":
			dst, bit = &sig, 32
		default:
			continue
		}
		if seen&bit != 0 {
			return a, malformed("duplicate query parameter %s", rawName)
		}
		seen |= bit
		v, ok := queryUnescape(rawValue)
		if !ok {
			return a, malformed("invalid percent-encoding in %s", rawName)
		}
		*dst = v
	}
	if seen != 63 {
		return a, malformed("presigned request needs X-Amz-Algorithm, X-Amz-Credential, X-Amz-Date, X-Amz-Expires, X-Amz-SignedHeaders and X-Amz-Signature")
	}
	if alg != algorithm {
		return a, malformed("unsupported X-Amz-Algorithm")
	}
	if err := parseCredential(cred, &a); err != nil {
		return a, err
	}
	if _, ok := parseAmzDate(date); !ok {
		return a, malformed("X-Amz-Date must be in the form 20060102T150405Z")
	}
	a.amzDate = date
	secs, ok := parseExpires(expires)
	if !ok {
		return a, malformed("X-Amz-Expires must be an integer between 1 and %d", maxPresignExpires)
	}
	a.expires = time.Duration(secs) * time.Second
	if err := checkSignedHeaders(signed); err != nil {
		return a, err
	}
	a.signedHeaders = signed
	if !parseSignature(sig, &a.signature) {
		return a, malformed("signature must be 64 lowercase hex characters")
	}
	a.presigned = true
	return a, nil
}

func parseExpires(s string) (int, bool) {
	if s == "" || len(s) > 6 || !isDigits(s) {
		return 0, false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		n = n*10 + int(s[i]-'0')
	}
	return n, n >= 1 && n <= maxPresignExpires
}

// checkHeaders bounds the number of header fields (MaxHeaderFields) and
// rejects a request carrying an x-amz-* header the signature does not cover
// (see the package documentation), in one pass over the header map with a
// binary search of SignedHeaders per x-amz-* header.
func checkHeaders(r *http.Request, a *authParams) error {
	fields := 0
	for name, values := range r.Header {
		if fields += len(values); fields > MaxHeaderFields {
			return malformed("the request has more than %d header fields", MaxHeaderFields)
		}
		if len(name) < 6 || !strings.EqualFold(name[:6], "x-amz-") {
			continue
		}
		if a.presigned && (strings.EqualFold(name, "x-amz-date") || strings.EqualFold(name, "x-amz-content-sha256")) {
			continue
		}
		if !isSigned(a.signedHeaders, name) {
			return malformed("header %q must be signed", name)
		}
	}
	return nil
}

// wireTarget returns the path and raw query exactly as the client sent them.
func wireTarget(r *http.Request) (path, query string) {
	if ru := r.RequestURI; ru != "" && ru[0] == '/' {
		path, query, _ = strings.Cut(ru, "?")
	} else if r.URL != nil {
		path, query = r.URL.EscapedPath(), r.URL.RawQuery
	}
	if path == "" {
		path = "/"
	}
	return path, query
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] <= ' ' || s[i] > '~' || s[i] == ',' {
			return false
		}
	}
	return true
}

func isRegion(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// isLowerToken reports whether s is an RFC 9110 token without uppercase
// letters, i.e. a valid canonical (lowercased) header name.
func isLowerToken(s string) bool {
	for i := 0; i < len(s); i++ {
		if !lowerTokenChar[s[i]] {
			return false
		}
	}
	return true
}

var lowerTokenChar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range []byte("!#$%&'*+-.^_`|~") {
		t[c] = true
	}
	return t
}()
