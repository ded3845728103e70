// Package netlimit bounds the number of connections a server holds open at
// once, and keeps idle keep-alive connections from starving new clients.
//
// When a new client arrives and every slot is taken, the oldest idle
// connection (a keep-alive one between requests, or one whose request
// headers are not complete yet, as http.Server reports through its ConnState hook, wired to
// Listener.SetState) is closed to make
// room, as a busy web server does: a client reopens a closed idle
// connection for its next request. Only when every open connection is busy
// does the new one wait, accepted but not yet served, for a slot; further
// clients wait unaccepted in the kernel's listen backlog. Memory and
// goroutines stay bounded however many clients connect, and one client
// holding many idle connections cannot lock the others out.
package netlimit

import (
	"crypto/tls"
	"net"
	"net/http"
	"sync"
)

// Listener holds at most a fixed number of open connections.
type Listener struct {
	net.Listener
	slots     chan struct{}
	closeOnce sync.Once
	done      chan struct{}

	mu   sync.Mutex
	idle idleList // oldest idle first
	// becameIdle wakes an Accept waiting for a slot when a connection
	// turns idle (and may be closed for it).
	becameIdle chan struct{}
}

// New returns a Listener that holds at most n connections from inner open at
// once (n < 1 is treated as 1).
func New(inner net.Listener, n int) *Listener {
	return &Listener{Listener: inner, slots: make(chan struct{}, max(n, 1)), done: make(chan struct{}),
		becameIdle: make(chan struct{}, 1)}
}

// Accept waits for a connection, then for a slot for it: a free one, or
// the one of the oldest idle connection, which it closes. The slot is
// given back when the connection is closed.
func (l *Listener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	for {
		select {
		case l.slots <- struct{}{}:
			return &conn{Conn: c, l: l}, nil
		default:
		}
		if l.closeOldestIdle() {
			continue // its Close gives a slot back
		}
		select {
		case l.slots <- struct{}{}:
			return &conn{Conn: c, l: l}, nil
		case <-l.becameIdle:
		case <-l.done:
			c.Close()
			return nil, net.ErrClosed
		}
	}
}

// closeOldestIdle closes the connection idle the longest; false when none
// is idle.
func (l *Listener) closeOldestIdle() bool {
	l.mu.Lock()
	c := l.idle.head
	if c == nil {
		l.mu.Unlock()
		return false
	}
	l.idle.remove(c)
	l.mu.Unlock()
	c.Close()
	return true
}

// SetState is http.Server's ConnState hook: it tells the Listener which of
// its connections are idle, closable for a new client: between requests
// (StateIdle), or accepted with no complete request headers yet
// (StateNew: http.Server turns a connection active only once it has read
// a request's headers, so a socket opened and left silent, or sending
// headers a byte at a time, would otherwise hold its slot until the header
// timeout, and a stream of them would keep every client out).
// Connections of other listeners are ignored; a TLS connection is looked
// through to the connection under it.
func (l *Listener) SetState(nc net.Conn, state http.ConnState) {
	if tc, ok := nc.(*tls.Conn); ok {
		nc = tc.NetConn()
	}
	c, ok := nc.(*conn)
	if !ok || c.l != l {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case (state == http.StateIdle || state == http.StateNew) && !c.idle && !c.closed:
		l.idle.pushBack(c)
		select {
		case l.becameIdle <- struct{}{}:
		default:
		}
	case state != http.StateIdle && state != http.StateNew && c.idle:
		l.idle.remove(c)
	}
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
	l *Listener
	// idle is set while the connection is in l.idle, between prev and
	// next; closed is set by the first Close. All guarded by l.mu.
	idle       bool
	prev, next *conn
	closed     bool
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.l.mu.Lock()
	first := !c.closed
	c.closed = true
	if c.idle {
		c.l.idle.remove(c)
	}
	c.l.mu.Unlock()
	if first {
		<-c.l.slots
	}
	return err
}

// idleList is the idle connections, oldest first, linked through the
// connections themselves: a connection turns idle and busy again on every
// request, and a container/list would allocate an element each time.
type idleList struct{ head, tail *conn }

func (q *idleList) pushBack(c *conn) {
	c.prev, c.next, c.idle = q.tail, nil, true
	if q.tail != nil {
		q.tail.next = c
	} else {
		q.head = c
	}
	q.tail = c
}

func (q *idleList) remove(c *conn) {
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		q.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		q.tail = c.prev
	}
	c.prev, c.next, c.idle = nil, nil, false
}
