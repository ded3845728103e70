// Package sigv4 verifies AWS Signature Version 4 (SigV4) signed HTTP requests
// on the server side, in both the Authorization header form and the presigned
// query-string form.
//
// The verifier rebuilds the canonical request the client signed and compares
// HMAC-SHA256 signatures in constant time. It is tested against the published
// AWS SigV4 test suite, the AWS S3 documentation examples, the AWS SDK for Go
// v2 signer and botocore (the AWS CLI / boto3 signer), over real HTTP.
//
// # What the caller must provide
//
//   - The complete request body, already read (with a size limit), as the
//     body argument: read the body, then call Verify, then act on the
//     request. The payload line of the canonical request is computed from it
//     or checked against the x-amz-content-sha256 header.
//   - The request as received by net/http. The canonical URI and query are
//     taken from r.RequestURI, the exact request-target the client sent, so
//     that middleware rewriting r.URL (http.StripPrefix) does not break
//     verification and escapes are seen as sent (r.URL.EscapedPath would
//     re-encode "%7E" as "~" or raw UTF-8 as "%E1..."). Only when RequestURI
//     is empty or not in origin form ("/..."), as for requests built with
//     http.NewRequest, is r.URL used.
//   - The host comes from r.Host (net/http moves the Host header there),
//     falling back to r.URL.Host. Behind a proxy that rewrites Host, restore
//     the client's Host (from a trusted header) before calling Verify.
//
// # Canonicalization (and why)
//
//   - Service "s3": the canonical URI is the path as sent, percent-decoded and
//     re-encoded once with SigV4 rules ("$" and "%24" both become "%24",
//     "%7E" becomes "~", an escaped slash stays "%2F"), never normalized. This
//     is what the S3 documentation examples sign and what S3 clients (Go SDK,
//     botocore, minio-go) produce.
//   - Other services ("kms", ...): the path as sent, with "." and ".."
//     segments and repeated slashes removed, URI-encoded once more ("%"
//     becomes "%25"): the generic SigV4 rule, used by botocore and the test
//     suite. Accepting the normalized form is only safe if the router also
//     cleans paths; net/http's ServeMux does (it redirects such paths).
//   - Query: each name and value is percent-decoded ("+" is a space, as
//     net/url decodes it for the handler, so the signature covers what the
//     handler sees) and re-encoded leaving only RFC 3986 unreserved
//     characters; pairs are sorted by name, then value. An invalid percent
//     escape is ErrMalformed.
//   - Header values are trimmed and runs of spaces collapsed; repeated
//     headers are joined with ",".
//   - Payload line: x-amz-content-sha256 when present (a hash must then match
//     sha256(body); UNSIGNED-PAYLOAD is accepted). Without it: the header form
//     signs hex(sha256(body)) (KMS-style clients send no header), an S3
//     presigned URL signs UNSIGNED-PAYLOAD, and a non-S3 presigned URL may
//     sign either (botocore hashes the body; the Go SDK's PresignHTTP signs
//     what its caller passes, usually UNSIGNED-PAYLOAD).
//
// Client differences that the rules above cannot reconcile are handled by
// trying a second candidate, only when they can matter: the verbatim S3 path
// when it is not in canonical form (signers that sign what they send), the
// un-normalized path for non-S3 services (the Go SDK does not normalize), and
// the two payload lines of a non-S3 presigned URL. All candidates are always
// computed before deciding, so timing does not reveal which one matched. A
// candidate binds the exact request bytes it was derived from, so this never
// lets one signed request stand for a different one.
//
// # Deliberate strictness
//
//   - SignedHeaders must be lowercase, sorted, without duplicates, and
//     include "host" and, in the header form, the header carrying the request
//     time (x-amz-date, or date when only the Date header is sent).
//   - Every x-amz-* header in the request must be signed (S3's rule), so an
//     unsigned x-amz-* header cannot be slipped into a signed request.
//     Presigned requests are exempt for x-amz-date (ignored: the query
//     carries the time) and x-amz-content-sha256 (bound via the payload line).
//   - The signature must be 64 lowercase hex characters: one spelling only.
//   - A credential scope naming a service other than the configured ones
//     ("s3" and "kms" by default; see WithServices) is ErrMalformed, decided
//     before any secret is looked up. Any region is accepted.
//   - Presigned: X-Amz-Expires is required, 1..604800 seconds; the URL is
//     valid from X-Amz-Date - maxSkew until X-Amz-Date + X-Amz-Expires.
//   - A request carrying both an Authorization header and X-Amz-Algorithm or
//     X-Amz-Signature query parameters is ErrMalformed.
//   - Streaming payloads (STREAMING-*) are not supported: ErrMalformed.
//   - X-Amz-Security-Token is ordinary signed data; this package has no
//     notion of temporary credentials.
package sigv4

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"time"
)

// Sentinel errors. Verify wraps them with detail; test with errors.Is. The
// detail never contains the secret key or the expected signature.
var (
	// ErrMissingAuthentication: neither an Authorization header nor
	// X-Amz-Algorithm / X-Amz-Signature query parameters are present.
	ErrMissingAuthentication = errors.New("sigv4: missing authentication")
	// ErrMalformed: the Authorization header or presigned query cannot be
	// parsed or violates the rules above.
	ErrMalformed = errors.New("sigv4: malformed authorization")
	// ErrInvalidAccessKeyID: the access key is not known to the CredentialStore.
	ErrInvalidAccessKeyID = errors.New("sigv4: invalid access key id")
	// ErrSignatureDoesNotMatch: the signature is wrong, or the body does not
	// match the x-amz-content-sha256 header.
	ErrSignatureDoesNotMatch = errors.New("sigv4: signature does not match")
	// ErrRequestTimeTooSkewed: the request time is too far from now, or a
	// presigned URL has expired.
	ErrRequestTimeTooSkewed = errors.New("sigv4: request time too skewed")
)

// CredentialStore resolves an access key to its secret. ok=false when unknown.
// It is called once per Verify and must be safe for concurrent use.
type CredentialStore interface {
	SecretKey(accessKey string) (secret string, ok bool)
}

// DefaultMaxSkew is the clock skew allowed when New is given maxSkew <= 0.
const DefaultMaxSkew = 15 * time.Minute

// Verifier checks SigV4 signatures. It is safe for concurrent use.
type Verifier struct {
	creds    CredentialStore
	now      func() time.Time
	maxSkew  time.Duration
	services []string
	keys     keyCache

	// trace, when set (tests only), receives every canonical request and
	// string to sign that Verify computes.
	trace func(canonical, stringToSign []byte)
}

// Option configures a Verifier.
type Option func(*Verifier)

// WithServices replaces the accepted credential-scope service names (default
// "s3" and "kms"). Only "s3" gets S3 path rules; every other name gets the
// generic rules (normalize, then encode the path once more).
func WithServices(services ...string) Option {
	return func(v *Verifier) { v.services = append([]string(nil), services...) }
}

// New returns a Verifier. now is the clock (nil means time.Now); maxSkew is
// the allowed |request time - now| (<= 0 means DefaultMaxSkew). It panics if
// creds is nil, which is a programming error.
func New(creds CredentialStore, now func() time.Time, maxSkew time.Duration, opts ...Option) *Verifier {
	if creds == nil {
		panic("sigv4: nil CredentialStore")
	}
	if now == nil {
		now = time.Now
	}
	if maxSkew <= 0 {
		maxSkew = DefaultMaxSkew
	}
	v := &Verifier{creds: creds, now: now, maxSkew: maxSkew, services: []string{"s3", "kms"}}
	for _, o := range opts {
		o(v)
	}
	v.keys.init(keyCacheSize)
	return v
}

// Verify checks the request's SigV4 signature. body is the complete request
// body already read by the caller (may be nil/empty). It returns the
// authenticated access key.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKey string, err error) {
	path, query := wireTarget(r)
	a, err := v.parse(r, query)
	if err != nil {
		return "", err
	}
	payload, err := payloadMode(r, &a)
	if err != nil {
		return "", err
	}
	secret, ok := v.creds.SecretKey(a.accessKey)
	if !ok {
		return "", fmt.Errorf("%w: unknown access key %q", ErrInvalidAccessKeyID, a.accessKey)
	}
	key := v.keys.signingKey(a.accessKey, secret, a.scopeDate, a.region, a.service)

	s := getScratch()
	defer putScratch(s)

	var bodySum [sha256.Size]byte
	if payload.needsBodyHash() {
		bodySum = sha256.Sum256(body)
	}
	if err := s.buildRest(r, query, &a); err != nil {
		return "", err
	}

	// Every candidate canonical request is computed before deciding, so the
	// time taken does not depend on which candidate (if any) matched. There
	// is one candidate except for the compatibility cases described in the
	// package documentation (at most four HMACs in all).
	match := 0
	if a.service == "s3" {
		var ok bool
		if s.uri, ok = appendS3Path(s.uri[:0], path); !ok {
			return "", malformed("invalid percent-encoding in path")
		}
		match |= v.checkPayloads(s, r, &a, &key, payload, &bodySum)
		if string(s.uri) != path {
			s.uri = append(s.uri[:0], path...)
			match |= v.checkPayloads(s, r, &a, &key, payload, &bodySum)
		}
	} else {
		norm := normalizePath(path)
		s.uri = appendEscapedPath(s.uri[:0], norm)
		match |= v.checkPayloads(s, r, &a, &key, payload, &bodySum)
		if norm != path {
			s.uri = appendEscapedPath(s.uri[:0], path)
			match |= v.checkPayloads(s, r, &a, &key, payload, &bodySum)
		}
	}
	if match != 1 {
		return "", fmt.Errorf("%w: signature mismatch for access key %q", ErrSignatureDoesNotMatch, a.accessKey)
	}
	if payload.kind == payloadHeaderHash && !payload.matches(&bodySum) {
		return "", fmt.Errorf("%w: x-amz-content-sha256 does not match the request body", ErrSignatureDoesNotMatch)
	}
	return a.accessKey, nil
}

// checkPayloads tries the canonical URI in s.uri with each candidate payload
// line and returns 1 if one of them carries the client's signature.
func (v *Verifier) checkPayloads(s *scratch, r *http.Request, a *authParams, key *[32]byte, p payloadSpec, bodySum *[sha256.Size]byte) int {
	match := 0
	restLen := len(s.rest)
	for i := 0; i < p.candidates(); i++ {
		s.rest = p.appendLine(s.rest[:restLen], i, bodySum)
		match |= v.checkCandidate(s, r, a, key)
	}
	s.rest = s.rest[:restLen]
	return match
}

// checkCandidate hashes the canonical request (method, s.uri, s.rest), signs
// the resulting string to sign and returns 1 if it equals the client's
// signature.
func (v *Verifier) checkCandidate(s *scratch, r *http.Request, a *authParams, key *[32]byte) int {
	method := r.Method
	if method == "" {
		method = http.MethodGet
	}
	c := append(s.canon[:0], method...)
	c = append(c, '\n')
	c = append(c, s.uri...)
	c = append(c, s.rest...)
	s.canon = c

	sts := s.stringToSign(a, sha256.Sum256(c))
	if v.trace != nil {
		v.trace(c, sts)
	}
	mac := hmacSHA256(key, s.sts)
	return subtle.ConstantTimeCompare(mac[:], a.signature[:])
}

// parse extracts and validates the authentication parameters: header or
// presigned form, credential scope, service, time window and signed headers.
func (v *Verifier) parse(r *http.Request, query string) (authParams, error) {
	authz := r.Header["Authorization"]
	presign := hasPresignParams(query)
	var a authParams
	var err error
	switch {
	case len(authz) > 0 && presign:
		return a, malformed("both an Authorization header and presigned query parameters are present")
	case len(authz) > 1:
		return a, malformed("multiple Authorization headers")
	case len(authz) == 1:
		a, err = parseAuthorization(authz[0])
		if err == nil {
			err = headerDate(r, &a)
		}
	case presign:
		a, err = parsePresigned(query)
	default:
		return a, fmt.Errorf("%w: no Authorization header or presigned query", ErrMissingAuthentication)
	}
	if err != nil {
		return a, err
	}
	if !v.serviceAllowed(a.service) {
		return a, malformed("service %q is not accepted", a.service)
	}
	if a.scopeDate != a.amzDate[:8] {
		return a, malformed("credential scope date does not match the request date")
	}
	if err := v.checkTime(&a); err != nil {
		return a, err
	}
	return a, checkAmzHeadersSigned(r, &a)
}

func (v *Verifier) serviceAllowed(service string) bool {
	for _, s := range v.services {
		if s == service {
			return true
		}
	}
	return false
}

// checkTime enforces the skew window; for presigned requests, the window is
// [date - maxSkew, date + X-Amz-Expires] instead.
func (v *Verifier) checkTime(a *authParams) error {
	t, ok := parseAmzDate(a.amzDate)
	if !ok {
		return malformed("invalid request date")
	}
	now := v.now()
	if a.presigned {
		if t.Sub(now) > v.maxSkew {
			return fmt.Errorf("%w: presigned URL is dated in the future", ErrRequestTimeTooSkewed)
		}
		if now.Sub(t) > a.expires {
			return fmt.Errorf("%w: presigned URL expired", ErrRequestTimeTooSkewed)
		}
		return nil
	}
	d := now.Sub(t)
	if d > v.maxSkew || d < -v.maxSkew {
		return fmt.Errorf("%w: request time differs from server time by more than %s", ErrRequestTimeTooSkewed, v.maxSkew)
	}
	return nil
}

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, args...)...)
}
