package httpapi

import "sync/atomic"

// DefaultUnauthenticatedBodyBytes is the memory budget for request bodies
// read before their sender is authenticated when Options leaves it zero:
// 64 MiB, room for 64 bodies at the 1 MiB route limit at once (and
// thousands of ordinary ones, which are under a kilobyte), small next to
// the memory of any host that runs a KMS.
const DefaultUnauthenticatedBodyBytes = 64 << 20

// bodyBudget bounds the bytes of request bodies held before their sender is
// known. A request that declares its payload hash (x-amz-content-sha256) is
// authenticated before its body is read and takes nothing from it; one that
// does not (KMS-style clients, whose signature covers a hash the server has
// to compute) reserves its Content-Length, or the route's limit when the
// length is unknown, before reading, and gives it back once its signature
// has been checked. When the budget is spent the request is answered 503 at
// once instead of queueing: waiting would let slow senders hold everyone
// else's memory.
type bodyBudget struct {
	limit int64
	used  atomic.Int64
}

// reserve takes n bytes if they fit.
func (b *bodyBudget) reserve(n int64) bool {
	for {
		used := b.used.Load()
		if used+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(used, used+n) {
			return true
		}
	}
}

// release gives back what reserve took.
func (b *bodyBudget) release(n int64) { b.used.Add(-n) }
