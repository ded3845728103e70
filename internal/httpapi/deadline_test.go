package httpapi

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"
)

func TestDeadlineCtxUnarmedUntilDone(t *testing.T) {
	type key struct{}
	parent := context.WithValue(context.Background(), key{}, "v")
	c := newDeadlineCtx(parent, time.Now().Add(time.Hour), time.Now)
	if err := c.Err(); err != nil {
		t.Fatalf("Err before the deadline: %v", err)
	}
	if d, ok := c.Deadline(); !ok || time.Until(d) < 59*time.Minute {
		t.Fatalf("Deadline = %v, %v", d, ok)
	}
	if c.Value(key{}) != "v" {
		t.Fatal("Value does not reach the parent")
	}
	if c.armed.Load() != nil {
		t.Fatal("Err, Deadline or Value armed a timer")
	}
	select {
	case <-c.Done():
		t.Fatal("Done closed early")
	default:
	}
	if c.armed.Load() == nil {
		t.Fatal("Done did not arm")
	}
	if c.Value(key{}) != "v" {
		t.Fatal("Value does not reach the parent once armed")
	}
	c.release()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err after release: %v", c.Err())
	}
}

func TestDeadlineCtxExpires(t *testing.T) {
	c := newDeadlineCtx(context.Background(), time.Now().Add(30*time.Millisecond), time.Now)
	defer c.release()
	select {
	case <-c.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("Done never closed")
	}
	if !errors.Is(c.Err(), context.DeadlineExceeded) || !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Fatalf("Err %v, Cause %v", c.Err(), context.Cause(c))
	}
}

// Past the deadline, Err reports it without anyone having waited, and Done
// is then closed too (the Context contract: Err is non-nil only once Done
// is closed).
func TestDeadlineCtxErrPastDeadlineWithoutWaiting(t *testing.T) {
	now := time.Unix(1000, 0)
	c := newDeadlineCtx(context.Background(), now.Add(time.Second), func() time.Time { return now })
	defer c.release()
	if c.Err() != nil {
		t.Fatal("Err before the (fake) deadline")
	}
	now = now.Add(time.Second)
	if !errors.Is(c.Err(), context.DeadlineExceeded) {
		t.Fatalf("Err past the deadline: %v", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Err reported the deadline but Done is open")
	}
	if !errors.Is(context.Cause(c), context.DeadlineExceeded) {
		t.Fatalf("Cause: %v", context.Cause(c))
	}
}

func TestDeadlineCtxParentCancel(t *testing.T) {
	parent, cancel := context.WithCancel(context.Background())
	c := newDeadlineCtx(parent, time.Now().Add(time.Hour), time.Now)
	defer c.release()
	cancel()
	if !errors.Is(c.Err(), context.Canceled) {
		t.Fatalf("Err after the parent's cancel, unarmed: %v", c.Err())
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done open after the parent's cancel")
	}

	// Armed first, cancelled after.
	parent, cancel = context.WithCancel(context.Background())
	c2 := newDeadlineCtx(parent, time.Now().Add(time.Hour), time.Now)
	defer c2.release()
	done := c2.Done()
	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Done did not follow the parent's cancel")
	}
}

// The parent's earlier deadline wins.
func TestDeadlineCtxParentDeadline(t *testing.T) {
	parent, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := newDeadlineCtx(parent, time.Now().Add(time.Hour), time.Now)
	pd, _ := parent.Deadline()
	if d, _ := c.Deadline(); !d.Equal(pd) {
		t.Fatalf("Deadline %v, parent's %v", d, pd)
	}
}

// A context derived from it, as a backend call derives one, expires with
// it, and attaches without a goroutine of its own.
func TestDeadlineCtxDerived(t *testing.T) {
	c := newDeadlineCtx(context.Background(), time.Now().Add(50*time.Millisecond), time.Now)
	defer c.release()
	before := runtime.NumGoroutine()
	var ctxs []context.Context
	var cancels []context.CancelFunc
	for range 50 {
		d, cancel := context.WithTimeout(c, time.Hour)
		ctxs, cancels = append(ctxs, d), append(cancels, cancel)
	}
	if n := runtime.NumGoroutine(); n > before+20 { // 50 if each derived context had its own
		t.Errorf("%d goroutines for 50 derived contexts (was %d)", n, before)
	}
	for _, d := range ctxs {
		select {
		case <-d.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("a derived context outlived the deadline")
		}
		if !errors.Is(d.Err(), context.DeadlineExceeded) {
			t.Fatalf("derived Err: %v", d.Err())
		}
	}
	for _, cancel := range cancels {
		cancel()
	}
	stopped := make(chan struct{})
	context.AfterFunc(c, func() { close(stopped) })
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("AfterFunc on an expired context never ran")
	}
}

func TestDeadlineCtxConcurrent(t *testing.T) {
	c := newDeadlineCtx(context.Background(), time.Now().Add(20*time.Millisecond), time.Now)
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for c.Err() == nil {
				select {
				case <-c.Done():
				case <-time.After(time.Millisecond):
				}
			}
		})
	}
	wg.Wait()
	c.release()
}

// The warm path's point: no allocation unless Done is asked for.
func TestDeadlineCtxUnarmedAllocations(t *testing.T) {
	parent := context.Background()
	var sink error
	allocs := testing.AllocsPerRun(100, func() {
		c := newDeadlineCtx(parent, time.Now().Add(time.Second), time.Now)
		sink = c.Err()
		c.release()
	})
	_ = sink
	if allocs > 1 {
		t.Errorf("%.0f allocations per unarmed deadline, want at most 1 (the context itself)", allocs)
	}
}
