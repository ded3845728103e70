package sigv4

import (
	"crypto/sha256"
	"fmt"
)

// Streamed bodies. A route that takes a body too large to hold in memory
// (a backup archive) reads it as a stream, after Begin has verified the
// signature over the declared payload hash, and hashes it on the way. Such
// a request must declare its hash (x-amz-content-sha256): otherwise the
// signature itself depends on the body, and nobody would be authenticated
// until all of it had been read.

// Authenticated returns the access key whose signature Begin verified,
// when Begin could verify it without the body (the payload hash is
// declared, or the body is not signed). The body is not checked yet:
// the caller must read it whole and call FinishHashed before acting on
// anything it read.
func (p *Pending) Authenticated() (accessKey string, ok bool) {
	if p.stage != stageSigned {
		return "", false
	}
	return p.a.accessKey, true
}

// Authenticated is Pending.Authenticated, as a method of the verifier (so
// that a server can take its streamed-body verification as one interface).
func (v *Verifier) Authenticated(p *Pending) (accessKey string, ok bool) { return p.Authenticated() }

// FinishHashed is Finish for a body the caller streamed instead of
// holding: sum is the SHA-256 of the complete body and n its length.
func (v *Verifier) FinishHashed(p *Pending, sum *[sha256.Size]byte, n int64) (accessKey string, err error) {
	stage := p.stage
	p.stage = stageNone // one Finish per Begin, whatever its outcome
	switch stage {
	case stageNeedsBody:
		if err := v.checkSignature(p, sum); err != nil {
			return "", err
		}
	case stageSigned:
		if p.payload.emptyBodyOnly && n > 0 {
			return "", malformed("%s", unsignedRefusal(&p.a))
		}
		if p.payload.kind == payloadHeaderHash && !p.payload.matches(sum) {
			return "", fmt.Errorf("%w: x-amz-content-sha256 does not match the request body", ErrSignatureDoesNotMatch)
		}
	default:
		return "", errNotBegun
	}
	return p.a.accessKey, nil
}
