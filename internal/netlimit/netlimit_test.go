package netlimit

import (
	"errors"
	"net"
	"runtime"
	"sync/atomic"
	"testing"
)

// countingListener counts the calls to the real listener's Accept, and
// remembers whether the test had freed a slot by the time of each call.
type countingListener struct {
	net.Listener
	calls       atomic.Int32
	freed       atomic.Bool
	beforeFreed atomic.Int32 // calls made before freed was set
}

func (c *countingListener) Accept() (net.Conn, error) {
	c.calls.Add(1)
	if !c.freed.Load() {
		c.beforeFreed.Add(1)
	}
	return c.Listener.Accept()
}

// TestLimit: with room for two, an Accept made while two connections are
// open does not reach the real listener (a client waits there) until one
// of them closes; and closing the listener ends such a waiting Accept.
func TestLimit(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	inner := &countingListener{Listener: tcp}
	l := New(inner, 2)
	defer l.Close()
	for range 4 {
		c, err := net.Dial("tcp", tcp.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
	}
	first, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	second, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()

	type result struct {
		c   net.Conn
		err error
	}
	accepted := make(chan result, 1)
	accept := func() {
		c, err := l.Accept()
		accepted <- result{c, err}
	}
	go accept()
	for range 100 {
		runtime.Gosched() // give an Accept that ignores the limit every chance to run
	}
	// Closing an accepted connection twice gives back one slot, not two.
	inner.freed.Store(true)
	first.Close()
	first.Close()
	third := <-accepted
	if third.err != nil {
		t.Fatal(third.err)
	}
	defer third.c.Close()
	if n := inner.beforeFreed.Load(); n != 2 {
		t.Fatalf("the real listener was asked %d times before a slot was freed, want 2", n)
	}

	// Full again, a client waiting: an Accept waits for a slot, and
	// closing the listener ends it without taking the client.
	go accept()
	for range 100 {
		runtime.Gosched()
	}
	l.Close()
	if got := <-accepted; !errors.Is(got.err, net.ErrClosed) {
		if got.c != nil {
			got.c.Close()
		}
		t.Fatalf("Accept past the limit: got %v, want net.ErrClosed", got.err)
	}
	if got := inner.calls.Load(); got != 3 {
		t.Fatalf("an Accept past the limit reached the real listener (%d calls, want 3)", got)
	}
}

// TestCloseWakesAccept: Close ends an Accept that waits for a slot.
func TestCloseWakesAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(inner, 1)
	c, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, err := l.Accept(); err != nil {
		t.Fatal(err)
	}
	errc := make(chan error, 1)
	go func() { _, err := l.Accept(); errc <- err }()
	l.Close()
	if err := <-errc; !errors.Is(err, net.ErrClosed) {
		t.Fatalf("Accept after Close: %v", err)
	}
}
