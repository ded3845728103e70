package httpapi

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// deadlineCtx is a route's deadline that arms a timer only when something
// waits on it.
//
// Every request gets its route's timeout, but on a warm cache the data
// plane never blocks: nothing selects on Done, and the timer, channel and
// parent registration of context.WithTimeout (about a seventh of a
// generate-data-key's allocations, measured in docs/PERFORMANCE.md) would
// be thrown away unused. deadlineCtx answers Deadline and Err from the
// clock and its parent, and builds the real context.WithDeadline the first
// time Done is called, that is the first time a backend call could block:
// Vault's HTTP client, context.WithTimeout and context.AfterFunc all ask
// for Done.
type deadlineCtx struct {
	context.Context // the request's context: Value and cancellation
	deadline        time.Time
	now             func() time.Time

	once   sync.Once
	armed  atomic.Pointer[armedCtx]
	cancel context.CancelFunc
}

type armedCtx struct{ context.Context }

func newDeadlineCtx(parent context.Context, deadline time.Time, now func() time.Time) *deadlineCtx {
	return &deadlineCtx{Context: parent, deadline: deadline, now: now}
}

func (c *deadlineCtx) arm() context.Context {
	c.once.Do(func() {
		ctx, cancel := context.WithDeadline(c.Context, c.deadline)
		c.cancel = cancel
		c.armed.Store(&armedCtx{ctx})
	})
	return c.armed.Load().Context
}

// Deadline is the earlier of the route's and the parent's.
func (c *deadlineCtx) Deadline() (time.Time, bool) {
	if d, ok := c.Context.Deadline(); ok && d.Before(c.deadline) {
		return d, true
	}
	return c.deadline, true
}

func (c *deadlineCtx) Done() <-chan struct{} { return c.arm().Done() }

// Err keeps the Context contract (nil until Done is closed) without a
// timer: past the deadline it arms, and the armed context, born expired,
// has already closed Done.
func (c *deadlineCtx) Err() error {
	if a := c.armed.Load(); a != nil {
		return a.Err()
	}
	if err := c.Context.Err(); err != nil {
		return c.arm().Err()
	}
	if !c.now().Before(c.deadline) {
		return c.arm().Err()
	}
	return nil
}

// Value answers from the armed context once there is one, so that
// context.Cause and contexts derived from this one find the armed
// context's cancellation (and attach to it directly, without the goroutine
// the context package starts for a parent it does not know).
func (c *deadlineCtx) Value(key any) any {
	if a := c.armed.Load(); a != nil {
		return a.Value(key)
	}
	if !c.now().Before(c.deadline) {
		return c.arm().Value(key)
	}
	return c.Context.Value(key)
}

// release stops the timer, if one was armed. Call it when the request ends.
func (c *deadlineCtx) release() {
	if c.armed.Load() != nil {
		c.cancel()
	}
}
