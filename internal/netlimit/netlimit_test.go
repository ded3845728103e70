package netlimit

import (
	"errors"
	"net"
	"net/http"
	"testing"
)

// dialN opens n client connections to l's address.
func dialN(t *testing.T, l net.Listener, n int) {
	t.Helper()
	for range n {
		c, err := net.Dial("tcp", l.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
	}
}

// TestLimit: with room for two busy connections, a third waits (accepted
// from the kernel, not handed out) until one of them closes; closing one
// twice gives back one slot, not two.
func TestLimit(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(tcp, 2)
	defer l.Close()
	dialN(t, tcp, 4)
	first, _ := l.Accept()
	second, _ := l.Accept()
	defer second.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		if c, err := l.Accept(); err == nil {
			accepted <- c
		}
	}()
	select {
	case c := <-accepted:
		c.Close()
		t.Fatal("a third connection was handed out while two busy ones were open")
	default:
	}
	first.Close()
	first.Close()
	third := <-accepted
	defer third.Close()
	if n := len(l.slots); n != 2 {
		t.Fatalf("%d slots taken after one connection closed twice and another opened, want 2", n)
	}
}

// TestIdleMakesRoom: a new connection takes the slot of the oldest idle
// one (which is closed), never of a busy one; a connection that turns idle
// while a new one waits makes room at once.
func TestIdleMakesRoom(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(tcp, 2)
	defer l.Close()
	dialN(t, tcp, 4)
	a, _ := l.Accept()
	b, _ := l.Accept()
	l.SetState(a, http.StateIdle)
	l.SetState(b, http.StateActive)
	c, err := l.Accept() // a is idle: closed for c
	if err != nil {
		t.Fatal(err)
	}
	if !a.(*conn).closed || b.(*conn).closed {
		t.Fatalf("closed: a %v, b %v; want the idle a only", a.(*conn).closed, b.(*conn).closed)
	}
	l.SetState(c, http.StateActive)
	got := make(chan net.Conn, 1)
	go func() {
		d, err := l.Accept() // both busy: waits
		if err == nil {
			got <- d
		}
	}()
	select {
	case d := <-got:
		d.Close()
		t.Fatal("a connection was handed out while both open ones were busy")
	default:
	}
	l.SetState(b, http.StateIdle) // b finishes its request
	d := <-got
	defer d.Close()
	if !b.(*conn).closed || c.(*conn).closed {
		t.Fatal("the connection that turned idle was not the one closed")
	}
}

// TestSilentMakesRoom: a connection accepted that has not sent a byte
// (StateNew) is closable like an idle one; one reading a request is not.
func TestSilentMakesRoom(t *testing.T) {
	tcp, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(tcp, 2)
	defer l.Close()
	dialN(t, tcp, 3)
	a, _ := l.Accept()
	b, _ := l.Accept()
	l.SetState(a, http.StateActive)
	l.SetState(b, http.StateNew)
	c, err := l.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if a.(*conn).closed || !b.(*conn).closed {
		t.Fatalf("closed: a %v, b %v; want the silent b only", a.(*conn).closed, b.(*conn).closed)
	}
}

// TestCloseWakesAccept: Close ends an Accept that waits for a slot, and
// the connection it held is closed.
func TestCloseWakesAccept(t *testing.T) {
	inner, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	l := New(inner, 1)
	dialN(t, inner, 2)
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
