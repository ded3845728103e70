// Package sigv4 verifies AWS Signature Version 4 (SigV4) signed HTTP requests
// on the server side, in both the Authorization header form and the presigned
// query-string form.
//
// The verifier rebuilds the canonical request the client signed and compares
// HMAC-SHA256 signatures in constant time. It is tested against the published
// AWS SigV4 test suite, the AWS S3 documentation examples, the AWS SDK for Go
// v2 signer and botocore (the AWS CLI / boto3 signer), over real HTTP.
//
// # How a server uses it
//
// In two steps, so that the body of a request whose headers do not verify
// is never read:
//
//	var p sigv4.Pending
//	if err := v.Begin(r, &p); err != nil { ... refuse }  // headers, bounds, secret, signature where it can
//	body := read r.Body with a size limit                // before authentication only if p.BodyNeeded()
//	accessKey, err := v.Finish(&p, body)                 // body against what was signed
//
// When x-amz-content-sha256 declares the payload hash (or a request without
// a body may leave it unsigned), Begin checks the signature itself and
// Finish only checks the body against the declared hash. When no hash is
// declared (KMS-style clients sign hex(sha256(body)) without sending it),
// the signature depends on the body: BodyNeeded is true, and the server
// reads the body before it knows who sent it; bound that memory. Verify is
// both steps in one call, for a body already read. ClaimedAccessKey names
// the access key a failed request claimed, for audit logs.
//
// # What the caller must provide
//
//   - The complete request body (read with a size limit), given to Finish.
//     The payload line of the canonical request is computed from it or
//     checked against the x-amz-content-sha256 header.
//   - The request as received by net/http. The canonical URI and query are
//     taken from r.RequestURI, the exact request-target the client sent, so
//     that middleware rewriting r.URL (http.StripPrefix) does not break
//     verification and escapes are seen as sent (r.URL.EscapedPath would
//     re-encode "%7E" as "~" or raw UTF-8 as "%E1..."). Only when RequestURI
//     is empty or not in origin form ("/..."), as for requests built with
//     http.NewRequest, is r.URL used.
//   - The host comes from r.Host (net/http moves the Host header there),
//     falling back to r.URL.Host. Behind a proxy that rewrites Host, restore
//     the client's Host (from a trusted header) before calling Begin.
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
//     sha256(body); UNSIGNED-PAYLOAD is signed literally). Without it: the
//     header form signs hex(sha256(body)) (KMS-style clients send no
//     header), an S3 presigned URL signs UNSIGNED-PAYLOAD, and a non-S3
//     presigned URL may sign either (botocore hashes the body; the Go SDK's
//     PresignHTTP signs what its caller passes, usually UNSIGNED-PAYLOAD).
//   - The body is always signed: UNSIGNED-PAYLOAD and presigned URLs (whose
//     signature need not cover a body) are accepted only for GET and HEAD
//     requests without a body (a Content-Length of 0 or none, no
//     Transfer-Encoding, and an empty body given to Finish). Anything else is ErrMalformed, with a
//     message saying how to sign the body, unless the Verifier is built
//     WithUnsignedPayload(true): such a request can then be replayed with
//     any other body for as long as its signature is valid (the skew
//     window, or the presigned URL's lifetime).
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
//   - Bounded work before the caller is known: a SignedHeaders list of more
//     than MaxSignedHeaders (64) names, or a request with more than
//     MaxHeaderFields (100) header fields, is ErrMalformed before the
//     secret is looked up or anything is hashed. The checks that remain
//     are linear in the size of the request: x-amz-* headers are looked up
//     in SignedHeaders by binary search, and a header map with
//     non-canonical keys (hand-built requests) is indexed once per request.
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
// It is called at most once per Begin (never for a request refused by the
// bounds or the payload rules) and must be safe for concurrent use.
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
	// allowUnsigned accepts UNSIGNED-PAYLOAD and presigned URLs for
	// requests with a body (WithUnsignedPayload).
	allowUnsigned bool

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

// WithUnsignedPayload(true) accepts requests whose body the signature does
// not cover: x-amz-content-sha256: UNSIGNED-PAYLOAD and presigned URLs, for
// any method and body. By default they are accepted only for GET and HEAD
// requests without a body, because such a request can be replayed with
// another body for as long as its signature is valid (the skew window, or
// the presigned URL's lifetime).
func WithUnsignedPayload(allow bool) Option {
	return func(v *Verifier) { v.allowUnsigned = allow }
}

// Bounds on what a request may carry, checked before the secret is looked
// up or anything is hashed, so that the work done for a caller not yet
// known stays small. Real clients sign fewer than 20 headers and send
// fewer than 30.
const (
	// MaxSignedHeaders is the most names a SignedHeaders list may hold.
	MaxSignedHeaders = 64
	// MaxHeaderFields is the most header fields (lines, so a header sent
	// twice counts twice) a request may carry, Host aside.
	MaxHeaderFields = 100
)

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
// authenticated access key. It is Begin and Finish in one call, for callers
// that have the body anyway; a server should use Begin and Finish so that
// no body is read for a request whose headers do not verify.
func (v *Verifier) Verify(r *http.Request, body []byte) (accessKey string, err error) {
	var p Pending
	if err := v.Begin(r, &p); err != nil {
		return "", err
	}
	return v.Finish(&p, body)
}

// Pending is one request being verified: Begin fills it from the request
// line and headers, Finish completes it with the body. It lives in the
// caller's memory (a field of a per-request struct, or a local variable),
// so verification allocates nothing. The zero value has not begun: its
// BodyNeeded is true and Finish fails.
type Pending struct {
	r           *http.Request
	path, query string
	a           authParams
	payload     payloadSpec
	key         [32]byte
	claimed     string
	stage       pendingStage
}

// pendingStage is how far a Pending got.
type pendingStage uint8

const (
	stageNone      pendingStage = iota // not begun, or Begin failed
	stageNeedsBody                     // the signed payload line is the body's hash: Finish checks the signature
	stageSigned                        // the signature is verified: Finish checks the body against what was signed
)

// BodyNeeded reports whether the signature can only be checked once the
// body is read: the request declares no payload hash (x-amz-content-sha256
// is absent, as with KMS-style clients), so the hash of the body is part of
// what was signed. The body of such a request is read before its sender is
// known; every other body is read only after its signature has verified.
func (p *Pending) BodyNeeded() bool { return p.stage != stageSigned }

// ClaimedAccessKey is the access key the request names in its credential,
// once the credential has parsed (also when Begin or Finish then failed;
// "" before). It is what the client claims, not an identity: use it only
// to attribute a failed attempt (an audit line), never to authorize.
func (p *Pending) ClaimedAccessKey() string { return p.claimed }

// Region and Service are the credential scope's region and service once
// the credential has parsed ("" before). Like ClaimedAccessKey they are
// what the client signed for, authenticated only once Finish succeeds: a
// server uses them to shape its answer (the AWS KMS API names keys by ARN
// in the request's region), never to authorize.
func (p *Pending) Region() string  { return p.a.region }
func (p *Pending) Service() string { return p.a.service }

// Begin checks everything about r that does not need the body: the
// authentication parameters, the time window, the bounds on headers
// (MaxSignedHeaders, MaxHeaderFields, checked before the secret is looked
// up), the payload rules, the access key, and, unless BodyNeeded, the
// signature itself. It fills p, which Finish then completes. Errors wrap
// the sentinel errors of this package.
func (v *Verifier) Begin(r *http.Request, p *Pending) error {
	*p = Pending{r: r}
	p.path, p.query = wireTarget(r)
	err := v.parse(r, p.query, &p.a)
	p.claimed = p.a.accessKey
	if err != nil {
		return err
	}
	if p.payload, err = v.payloadMode(r, &p.a); err != nil {
		return err
	}
	secret, ok := v.creds.SecretKey(p.a.accessKey)
	if !ok {
		return fmt.Errorf("%w: unknown access key %q", ErrInvalidAccessKeyID, p.a.accessKey)
	}
	p.key = v.keys.signingKey(p.a.accessKey, secret, p.a.scopeDate, p.a.region, p.a.service)
	if !p.payload.bodyIndependent() {
		p.stage = stageNeedsBody
		return nil
	}
	if err := v.checkSignature(p, &emptySum); err != nil {
		return err
	}
	p.stage = stageSigned
	return nil
}

// Finish completes the verification Begin started, with the complete body
// (read by the caller, with a size limit), and returns the authenticated
// access key. After Begin verified the signature, Finish checks the body
// against the payload line that was signed (the x-amz-content-sha256 hash,
// or an empty body for UNSIGNED-PAYLOAD where only that is allowed);
// otherwise it hashes the body and checks the signature. Call it once.
func (v *Verifier) Finish(p *Pending, body []byte) (accessKey string, err error) {
	stage := p.stage
	p.stage = stageNone // one Finish per Begin, whatever its outcome
	switch stage {
	case stageNeedsBody:
		sum := sha256.Sum256(body)
		if err := v.checkSignature(p, &sum); err != nil {
			return "", err
		}
	case stageSigned:
		if p.payload.emptyBodyOnly && len(body) > 0 {
			return "", malformed("%s", unsignedRefusal(&p.a))
		}
		if p.payload.kind == payloadHeaderHash {
			if sum := sha256.Sum256(body); !p.payload.matches(&sum) {
				return "", fmt.Errorf("%w: x-amz-content-sha256 does not match the request body", ErrSignatureDoesNotMatch)
			}
		}
	default:
		return "", errNotBegun
	}
	return p.a.accessKey, nil
}

// errNotBegun is a programming error (Finish without a successful Begin);
// it wraps no sentinel, so a server answers it as an internal error.
var errNotBegun = errors.New("sigv4: Finish called without a successful Begin")

// emptySum is sha256 of an empty body: the payload hash of a request that
// may only be sent without one.
var emptySum = sha256.Sum256(nil)

// checkSignature rebuilds the canonical request of p (bodySum is the body's
// hash where the payload line needs it) and compares signatures.
func (v *Verifier) checkSignature(p *Pending, bodySum *[sha256.Size]byte) error {
	s := getScratch()
	defer putScratch(s)
	r, a, path := p.r, &p.a, p.path
	if err := s.buildRest(r, p.query, a); err != nil {
		return err
	}

	// Every candidate canonical request is computed before deciding, so the
	// time taken does not depend on which candidate (if any) matched. There
	// is one candidate except for the compatibility cases described in the
	// package documentation (at most four HMACs in all).
	match := 0
	if a.service == "s3" {
		var ok bool
		if s.uri, ok = appendS3Path(s.uri[:0], path); !ok {
			return malformed("invalid percent-encoding in path")
		}
		match |= v.checkPayloads(s, r, a, &p.key, p.payload, bodySum)
		if string(s.uri) != path {
			s.uri = append(s.uri[:0], path...)
			match |= v.checkPayloads(s, r, a, &p.key, p.payload, bodySum)
		}
	} else {
		norm := normalizePath(path)
		s.uri = appendEscapedPath(s.uri[:0], norm)
		match |= v.checkPayloads(s, r, a, &p.key, p.payload, bodySum)
		if norm != path {
			s.uri = appendEscapedPath(s.uri[:0], path)
			match |= v.checkPayloads(s, r, a, &p.key, p.payload, bodySum)
		}
	}
	if match != 1 {
		return fmt.Errorf("%w: signature mismatch for access key %q", ErrSignatureDoesNotMatch, a.accessKey)
	}
	return nil
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

// parse extracts and validates the authentication parameters into a:
// header or presigned form, credential scope, service, time window, signed
// headers, and the header bounds. a.accessKey is set as soon as the
// credential parses, even when a later check fails.
func (v *Verifier) parse(r *http.Request, query string, a *authParams) error {
	authz := r.Header["Authorization"]
	presign := hasPresignParams(query)
	var err error
	switch {
	case len(authz) > 0 && presign:
		return malformed("both an Authorization header and presigned query parameters are present")
	case len(authz) > 1:
		return malformed("multiple Authorization headers")
	case len(authz) == 1:
		*a, err = parseAuthorization(authz[0])
		if err == nil {
			err = headerDate(r, a)
		}
	case presign:
		*a, err = parsePresigned(query)
	default:
		return fmt.Errorf("%w: no Authorization header or presigned query", ErrMissingAuthentication)
	}
	if err != nil {
		return err
	}
	if !v.serviceAllowed(a.service) {
		return malformed("service %q is not accepted", a.service)
	}
	if a.scopeDate != a.amzDate[:8] {
		return malformed("credential scope date does not match the request date")
	}
	if err := v.checkTime(a); err != nil {
		return err
	}
	return checkHeaders(r, a)
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
