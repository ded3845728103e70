// Package wipe reads bodies that may hold plaintext (request bodies with
// data to encrypt, responses with data keys) without leaving copies behind:
// when a buffer has to grow, the old one is overwritten before it is
// dropped, and on any error the partial buffer is overwritten too.
package wipe

import (
	"errors"
	"io"
)

// ErrTooLarge is returned when more than limit bytes arrive.
var ErrTooLarge = errors.New("body larger than the limit")

// ReadAll reads r to EOF into a fresh buffer sized by sizeHint (a
// Content-Length, or -1 when unknown), failing with ErrTooLarge past limit.
func ReadAll(r io.Reader, sizeHint, limit int64) ([]byte, error) {
	if sizeHint > limit {
		return nil, ErrTooLarge
	}
	if sizeHint < 0 {
		sizeHint = 512
	}
	return ReadAllInto(make([]byte, 0, sizeHint+1), r, limit) // +1: see EOF without growing
}

// ReadAllInto is ReadAll appending to buf (a pooled buffer, say). On error
// the returned buffer is nil and everything read was overwritten.
func ReadAllInto(buf []byte, r io.Reader, limit int64) ([]byte, error) {
	for {
		if len(buf) == cap(buf) {
			size := max(2*cap(buf), 512)
			if int64(size) > limit && int64(len(buf)) <= limit {
				// One byte past the limit is enough to see it exceeded: a
				// body of unknown length holds no more than that.
				size = int(limit) + 1
			}
			grown := make([]byte, len(buf), size)
			copy(grown, buf)
			clear(buf)
			buf = grown
		}
		n, err := r.Read(buf[len(buf):cap(buf)])
		buf = buf[:len(buf)+n]
		if int64(len(buf)) > limit {
			clear(buf)
			return nil, ErrTooLarge
		}
		if err == io.EOF {
			return buf, nil
		}
		if err != nil {
			clear(buf)
			return nil, err
		}
	}
}
