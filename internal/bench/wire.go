package bench

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// The engine's HTTP/1.1 client.
//
// A load generator that shares the machine with what it measures should
// cost as little CPU as it can: every cycle it spends is taken from the
// server and shows up as the server's latency. net/http's client costs
// about as much per request as the Keyward server does (a profile at
// concurrency 16: ~25 µs of client CPU per request), most of it in the two
// goroutines it runs per connection (one writes, one reads) and the channel
// hand-offs between them and the caller, plus a fresh *http.Request per
// request. A worker here instead owns one connection and does one thing at
// a time: it writes the request's bytes, serialized once (a replayed
// template is the same bytes every time), and reads the answer with
// net/http's own response parser. That is what wrk and h2load do. It is
// the same engine for every target: Keyward, Vault Transit and the ceiling
// gain alike.

// wireRequest is a request as it goes on the wire, and where it goes.
type wireRequest struct {
	target       *url.URL // scheme and host to connect to
	method, path string   // for error messages
	bytes        []byte   // the whole request: request line, headers, body
}

// wireRequester is a Requester that hands out its request already
// serialized; the engine replays those bytes without building an
// *http.Request.
type wireRequester interface {
	wire() (*wireRequest, error)
}

// serialize writes r as HTTP/1.1 bytes (net/http's own writer, so the
// bytes are those its client would send: Host, User-Agent,
// Content-Length).
func serialize(r *http.Request) (*wireRequest, error) {
	var b bytes.Buffer
	if err := r.Write(&b); err != nil {
		return nil, err
	}
	return &wireRequest{target: r.URL, method: r.Method, path: r.URL.Path, bytes: b.Bytes()}, nil
}

// wireConn is one worker's connection, used by that worker only; interrupt
// may be called from any goroutine.
type wireConn struct {
	tls     *tls.Config // for https; nil: system roots
	timeout time.Duration

	// conn is replaced (dial, close) by the worker only, under mu; the
	// worker reads it without the lock, interrupt with it.
	mu   sync.Mutex
	conn net.Conn
	br   *bufio.Reader
	addr string // scheme://host the connection is to
}

// interrupt makes a request in progress fail at once (the step was
// cancelled): reads and writes past the deadline return an error.
func (w *wireConn) interrupt() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.SetDeadline(time.Unix(1, 0))
	}
}

// roundTrip sends req and reads the answer: its status, and up to 300
// bytes of the body of a non-2xx answer. Any failure closes the
// connection; the next request dials again.
func (w *wireConn) roundTrip(ctx context.Context, req *wireRequest) (_ int, snippet []byte, err error) {
	addr := req.target.Scheme + "://" + req.target.Host
	if w.conn == nil || w.addr != addr {
		w.close()
		if err := w.dial(ctx, req.target); err != nil {
			return 0, nil, err
		}
		w.addr = addr
	}
	defer func() {
		if err != nil {
			w.close()
		}
	}()
	if err := ctx.Err(); err != nil {
		return 0, nil, err
	}
	if err := w.conn.SetDeadline(time.Now().Add(w.timeout)); err != nil {
		return 0, nil, err
	}
	if _, err := w.conn.Write(req.bytes); err != nil {
		return 0, nil, err
	}
	status, closeConn, snippet, err := readResponse(w.br, req.method)
	if err != nil {
		return 0, nil, err
	}
	if closeConn {
		w.close()
	}
	return status, snippet, nil
}

func (w *wireConn) dial(ctx context.Context, u *url.URL) error {
	host := u.Host
	if u.Port() == "" {
		switch u.Scheme {
		case "http":
			host = net.JoinHostPort(u.Hostname(), "80")
		case "https":
			host = net.JoinHostPort(u.Hostname(), "443")
		}
	}
	d := &net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}
	var conn net.Conn
	var err error
	switch u.Scheme {
	case "http":
		conn, err = d.DialContext(ctx, "tcp", host)
	case "https":
		cfg := &tls.Config{MinVersion: tls.VersionTLS12}
		if w.tls != nil {
			cfg = w.tls.Clone()
		}
		if cfg.ServerName == "" {
			cfg.ServerName = u.Hostname()
		}
		cfg.NextProtos = []string{"http/1.1"}
		conn, err = (&tls.Dialer{NetDialer: d, Config: cfg}).DialContext(ctx, "tcp", host)
	default:
		return fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	if err != nil {
		return err
	}
	w.mu.Lock()
	w.conn, w.br = conn, bufio.NewReaderSize(conn, 16<<10)
	w.mu.Unlock()
	if ctx.Err() != nil { // cancelled while dialing: interrupt missed it
		conn.SetDeadline(time.Unix(1, 0))
	}
	return nil
}

func (w *wireConn) close() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.conn != nil {
		w.conn.Close()
		w.conn, w.br, w.addr = nil, nil, ""
	}
}
