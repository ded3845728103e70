package httpapi

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"

	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/sigv4"
)

// Streamed bodies (the restore route's archive) are not read into memory
// before the handler runs. Their request must declare the payload hash
// (x-amz-content-sha256), so that its signature is verified from the
// headers alone: the caller is authenticated and authorized before a byte
// of the body is read, and nothing is taken from the budget for
// unauthenticated bodies. The handler reads the body through call.stream,
// which hashes it on the way, and must call Verify, which reads the rest
// and checks the hash, before it acts on anything it read.

// streamAuthenticator is the part of *sigv4.Verifier streamed routes need.
type streamAuthenticator interface {
	// Authenticated returns the caller Begin verified without the body.
	Authenticated(p *sigv4.Pending) (accessKey string, ok bool)
	FinishHashed(p *sigv4.Pending, sum *[sha256.Size]byte, n int64) (string, error)
}

// errUndeclaredHash refuses a streamed body whose hash is not declared.
var errUndeclaredHash = fmt.Errorf("%w: this route reads its body as a stream: sign the request with x-amz-content-sha256 set to the hex SHA-256 of the body (as keyward restore and the AWS SDKs' S3 signers do), so that it is authenticated before the body is read", kms.ErrInvalidRequest)

// openStream authenticates a streamBody route's caller from the headers
// and prepares call.stream.
func (s *Server) openStream(c *call) error {
	auth, ok := s.opts.Authenticator.(streamAuthenticator)
	if !ok {
		return fmt.Errorf("%w: the server's authenticator cannot verify streamed bodies", kms.ErrNotImplemented)
	}
	accessKey, ok := auth.Authenticated(&c.auth)
	if !ok {
		return errUndeclaredHash
	}
	if c.r.ContentLength > c.route.maxBody {
		return errTooLarge
	}
	body := c.r.Body
	if body == nil {
		body = http.NoBody
	}
	c.accessKey = accessKey
	c.stream = &streamedBody{
		r:     http.MaxBytesReader(c.w, body, c.route.maxBody),
		h:     sha256.New(),
		auth:  auth,
		p:     &c.auth,
		limit: c.route.maxBody,
	}
	return nil
}

// streamedBody is a request body read as a stream, hashed as it is read.
type streamedBody struct {
	r     io.Reader
	h     hash.Hash
	n     int64
	auth  streamAuthenticator
	p     *sigv4.Pending
	limit int64
	err   error
	done  bool
}

// Read reads the body. Errors are errTooLarge (over the route's limit) or
// errBadBody.
func (b *streamedBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.r.Read(p)
	b.h.Write(p[:n])
	b.n += int64(n)
	if err != nil && err != io.EOF {
		var maxBytes *http.MaxBytesError
		if errors.As(err, &maxBytes) {
			err = fmt.Errorf("%w (%d bytes for this route)", errTooLarge, b.limit)
		} else {
			err = errBadBody
		}
		b.err = err
	}
	return n, err
}

// Verify reads what is left of the body and checks it against the signed
// payload hash. Nothing the handler read may be acted on before Verify
// returned nil.
func (b *streamedBody) Verify() error {
	if b.done {
		return errors.New("httpapi: streamed body verified twice")
	}
	b.done = true
	if _, err := io.Copy(io.Discard, b); err != nil {
		return err
	}
	var sum [sha256.Size]byte
	b.h.Sum(sum[:0])
	_, err := b.auth.FinishHashed(b.p, &sum, b.n)
	return err
}

// Unwrap lets http.ResponseController reach the connection (deadlines,
// flushing) through the recorder.
func (r *recorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// extendDeadlines lifts the server-wide read and write timeouts for a
// long transfer to the route's own deadline.
func (c *call) extendDeadlines() {
	deadline := c.start.Add(c.route.timeout)
	rc := http.NewResponseController(c.w)
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline.Add(time.Second))
}
