package client

import (
	"bytes"
	"io"
	"sync"
)

// bodyTracker hands out readers over one request body and wipes the buffer
// once the call is done and the transport has closed every reader. An
// HTTP transport may still be writing a body after it returned the
// response (a server that answers early); wiping before it closes the
// reader would race with that write.
type bodyTracker struct {
	buf []byte

	mu     sync.Mutex
	open   int
	wiping bool
}

// reader returns a new reader over the body (one per attempt, and one per
// replay the transport asks for through GetBody).
func (t *bodyTracker) reader() io.ReadCloser {
	t.mu.Lock()
	t.open++
	t.mu.Unlock()
	return &trackedBody{Reader: bytes.NewReader(t.buf), t: t}
}

// wipe clears the buffer now if no reader is open, else when the last one
// is closed.
func (t *bodyTracker) wipe() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.wiping = true
	if t.open == 0 {
		clear(t.buf)
	}
}

func (t *bodyTracker) closed() {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.open--
	if t.open == 0 && t.wiping {
		clear(t.buf)
	}
}

type trackedBody struct {
	*bytes.Reader
	t    *bodyTracker
	once sync.Once
}

func (b *trackedBody) Close() error {
	b.once.Do(b.t.closed)
	return nil
}
