// Package sigv4 verifies AWS Signature Version 4 (SigV4) signed HTTP requests
// on the server side, in both the Authorization header form and the presigned
// query-string form.
//
// The verifier reproduces the canonical request the client signed and compares
// HMAC-SHA256 signatures in constant time. Clients it is tested against: the
// AWS SDK for Go v2 signer, botocore (Python SDK / AWS CLI), and the published
// AWS SigV4 test suite.
//
// # What the caller must provide
//
//   - The complete request body, already read, as the body argument. The
//     payload hash in the canonical request is computed from it (or checked
//     against the x-amz-content-sha256 header). Read the body first (with a
//     size limit), then call Verify, then act on the request.
//   - The request as received by net/http. The canonical URI and query are
//     taken from r.RequestURI (the exact request-target the client sent) so
//     that middleware such as http.StripPrefix that rewrites r.URL does not
//     break verification, and so that escapes such as "%7E" are seen exactly
//     as sent (r.URL.EscapedPath re-encodes them). Only when RequestURI is
//     empty or not in origin form ("/..."), as for client-side requests
//     built with http.NewRequest, is r.URL used.
//   - The host is taken from r.Host (net/http moves the Host header there),
//     falling back to r.URL.Host. Behind a reverse proxy that rewrites Host,
//     restore the client's Host (from a trusted header) before calling Verify.
//
// # Canonicalization rules (and why)
//
//   - Service "s3": the canonical URI is the path as sent, percent-decoded and
//     re-encoded once with SigV4 rules (so "$" and "%24" both become "%24",
//     "%7E" becomes "~"; an escaped slash stays "%2F"), never normalized. This
//     is what the AWS S3 documentation examples sign and what S3 clients (Go
//     SDK, botocore, minio-go) produce. If the client sent a non-canonical
//     spelling, the path exactly as sent is also tried (one more HMAC, only
//     for such paths), for clients that sign their wire form verbatim.
//   - Other services (e.g. "kms"): the canonical URI is the path as sent with
//     dot segments and repeated slashes removed, then URI-encoded once more
//     ("%" becomes "%25"). This is the generic SigV4 rule used by botocore and
//     by the published test suite. The AWS SDK for Go v2 encodes the same way
//     but does not normalize, so when normalization changes the path the
//     un-normalized form is also tried (one more HMAC, only for such paths).
//   - Query: every name and value is percent-decoded ("+" decodes to a space,
//     as net/url and the Go SDK do) and re-encoded with the RFC 3986
//     unreserved set left alone, then pairs are sorted by name, then value.
//     An invalid percent escape is rejected as malformed.
//   - Header values are trimmed and runs of spaces collapsed; repeated headers
//     are joined with ",".
//
// # Deliberate strictness
//
//   - SignedHeaders must be lowercase, sorted, without duplicates, and must
//     include "host", and (header form) the header that carries the request
//     time ("x-amz-date", or "date" when the Date header is used).
//   - Every x-amz-* header in the request must be signed, as S3 requires, so
//     that an unsigned x-amz-* header cannot be slipped into a signed request.
//     Presigned requests are exempt for x-amz-date (ignored; the query carries
//     the time) and x-amz-content-sha256 (bound through the payload line).
//   - The signature must be 64 lowercase hex characters, so a signature has a
//     single spelling (relevant to anyone de-duplicating by signature).
//   - A credential scope naming a service other than the configured ones
//     ("s3" and "kms" by default) is rejected as ErrMalformed, before any
//     secret is looked up.
//   - Streaming payloads (STREAMING-*) are not supported: ErrMalformed.
//   - X-Amz-Security-Token is treated as ordinary signed data; this package has
//     no notion of temporary credentials.
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
	payload, err := payloadMode(r, a.presigned)
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
	if err := s.buildRest(r, query, &a, payload, &bodySum); err != nil {
		return "", err
	}

	// Compute every candidate before deciding, so the time taken does not
	// depend on which candidate (if any) matched.
	match := 0
	if a.service == "s3" {
		var ok bool
		if s.uri, ok = appendS3Path(s.uri[:0], path); !ok {
			return "", malformed("invalid percent-encoding in path")
		}
		match |= v.checkCandidate(s, r, &a, &key)
		if string(s.uri) != path {
			s.uri = append(s.uri[:0], path...)
			match |= v.checkCandidate(s, r, &a, &key)
		}
	} else {
		norm := normalizePath(path)
		s.uri = appendEscapedPath(s.uri[:0], norm)
		match |= v.checkCandidate(s, r, &a, &key)
		if norm != path {
			s.uri = appendEscapedPath(s.uri[:0], path)
			match |= v.checkCandidate(s, r, &a, &key)
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

// checkCandidate hashes the canonical request for the URI in s.uri, signs the
// resulting string to sign and returns 1 if it equals the client's signature.
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
