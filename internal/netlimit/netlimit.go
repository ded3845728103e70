// Package netlimit bounds the number of connections a server holds open at
// once. Connections past the bound are not refused: they wait, unaccepted,
// in the kernel's listen backlog until an open one closes, so a burst is
// served late rather than dropped, while memory and goroutines stay bounded
// however many clients connect.
package netlimit

import (
	"net"
	"sync"
)

// Listener accepts at most a fixed number of open connections. It is the
// approach of golang.org/x/net/netutil.LimitListener, kept here so the
// server needs nothing outside the standard library for it.
type Listener struct {
	net.Listener
	slots     chan struct{}
	closeOnce sync.Once
	done      chan struct{}
}

// New returns a Listener that holds at most n connections from inner open at
// once (n < 1 is treated as 1).
func New(inner net.Listener, n int) *Listener {
	return &Listener{Listener: inner, slots: make(chan struct{}, max(n, 1)), done: make(chan struct{})}
}

// Accept waits for a free slot, then for a connection. The slot is given
// back when the connection is closed.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case l.slots <- struct{}{}:
	case <-l.done:
		return nil, net.ErrClosed
	}
	c, err := l.Listener.Accept()
	if err != nil {
		<-l.slots
		return nil, err
	}
	return &conn{Conn: c, release: func() { <-l.slots }}, nil
}

// Close closes the inner listener and wakes an Accept waiting for a slot.
func (l *Listener) Close() error {
	err := l.Listener.Close()
	l.closeOnce.Do(func() { close(l.done) })
	return err
}

// conn gives its slot back on its first Close.
type conn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
