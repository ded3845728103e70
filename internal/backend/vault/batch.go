package vault

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Coalescing Transit calls.
//
// Most of what a Transit encrypt or decrypt costs Vault is the request
// around it (HTTP, token lookup, policy check, routing, storage lock), not
// the AES-GCM of a 32-byte data key. Transit takes batch_input: many items
// on one key in one request, each with its own associated data and key
// version, each answered (or refused) on its own. So under load the
// vault-transit backend sends concurrent calls on one key as batches.
//
// The rule is that of group commit: a Transit path (one key, one
// operation) has a few lanes, requests in flight at once. While a lane is
// free a call goes out alone, at once, as it always did: at low
// concurrency nothing waits and nothing changes. When every lane is busy a
// call queues, and the next lane to come free takes the whole queue (up to
// maxBatch items) as one batch request. The batch size thus follows the
// load by itself, without a timer and without a tuning knob: the longer
// Vault takes, the more calls each request carries.
//
// A queued call that runs out of time leaves the queue, or, once its batch
// is on the wire, abandons its result (which is wiped when it arrives).
// Out of time means its caller's deadline, or timeout_seconds after it
// queued: a call that waits for a lane and then for its batch must not
// take twice as long as a single request to fail when Vault is down. The
// batch itself runs under its own per-attempt deadline, not any one
// caller's, so that one impatient caller does not fail the others.

const (
	transitLanes    = 2   // requests in flight per Transit path
	transitMaxBatch = 128 // items per batch request
)

// transitOp says which answer field a Transit path returns: "ciphertext"
// as is (encrypt) or "plaintext" base64-decoded (decrypt).
type transitOp struct {
	field  string
	decode bool
}

// callResult is one item's outcome.
type callResult struct {
	v   []byte
	err error
}

// coalescer queues calls per path. Its zero value is not usable: see
// newCoalescer.
type coalescer struct {
	lanes, maxBatch int
	maxWait         time.Duration // a queued call's longest wait; 0: none
	// send runs one batch of queued calls on path p (len(payloads) ≥ 1)
	// and returns their results in order. It is called without the lock,
	// on a goroutine of its own.
	send func(p string, op transitOp, payloads [][]byte) []callResult

	mu    sync.Mutex
	paths map[string]*lane

	// For metrics: batch requests of two or more calls, and those calls.
	batches, batched atomic.Uint64
}

// lane is one path's state. A path is in the map while it has a request
// in flight.
type lane struct {
	op       transitOp
	inFlight int
	queue    []*queuedCall
}

// queuedCall is a call waiting for a batch. Its fields are guarded by the
// coalescer's lock; done is closed when v and err are set.
type queuedCall struct {
	payload   []byte // a copy the coalescer owns and wipes
	taken     bool   // in a batch on the wire
	abandoned bool   // its caller left: wipe the result
	v         []byte
	err       error
	done      chan struct{}
}

func newCoalescer(lanes, maxBatch int, maxWait time.Duration, send func(string, transitOp, [][]byte) []callResult) *coalescer {
	return &coalescer{lanes: lanes, maxBatch: maxBatch, maxWait: maxWait, send: send, paths: map[string]*lane{}}
}

// do runs one call on path p: single (with the caller's ctx) while p has
// a free lane, else in the next batch. abandon is the error of a queued
// call that gave up: ctx ended, or (ctx.Err() == nil) maxWait passed.
func (co *coalescer) do(ctx context.Context, p string, op transitOp, payload []byte,
	single func(ctx context.Context) ([]byte, error), abandon func(ctx context.Context) error) ([]byte, error) {
	co.mu.Lock()
	l := co.paths[p]
	if l == nil {
		l = &lane{op: op}
		co.paths[p] = l
	}
	if l.inFlight < co.lanes && len(l.queue) == 0 {
		l.inFlight++
		co.mu.Unlock()
		defer co.release(p) // even if single panics: a lost lane would stall the path
		return single(ctx)
	}
	q := &queuedCall{payload: slices.Clone(payload), done: make(chan struct{})}
	l.queue = append(l.queue, q)
	co.mu.Unlock()

	var expired <-chan time.Time
	if co.maxWait > 0 {
		t := time.NewTimer(co.maxWait)
		defer t.Stop()
		expired = t.C
	}
	select {
	case <-q.done:
		return q.v, q.err
	case <-ctx.Done():
	case <-expired:
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	select {
	case <-q.done: // answered meanwhile
		return q.v, q.err
	default:
	}
	if q.taken {
		q.abandoned = true
	} else {
		l := co.paths[p] // q is queued, so p still has a request in flight
		if i := slices.Index(l.queue, q); i >= 0 {
			l.queue = slices.Delete(l.queue, i, i+1)
		}
		clear(q.payload)
	}
	return nil, abandon(ctx)
}

// release frees a lane of p, or hands it to the queue as the next batch.
func (co *coalescer) release(p string) {
	co.mu.Lock()
	l := co.paths[p]
	if len(l.queue) == 0 {
		l.inFlight--
		if l.inFlight == 0 {
			delete(co.paths, p)
		}
		co.mu.Unlock()
		return
	}
	n := min(len(l.queue), co.maxBatch)
	batch := slices.Clone(l.queue[:n])
	rest := copy(l.queue, l.queue[n:])
	clear(l.queue[rest:])
	l.queue = l.queue[:rest]
	for _, q := range batch {
		q.taken = true
	}
	op := l.op
	co.mu.Unlock()
	go co.runBatch(p, op, batch)
}

func (co *coalescer) runBatch(p string, op transitOp, batch []*queuedCall) {
	defer co.release(p)
	if len(batch) > 1 {
		co.batches.Add(1)
		co.batched.Add(uint64(len(batch)))
	}
	payloads := make([][]byte, len(batch))
	for i, q := range batch {
		payloads[i] = q.payload
	}
	results := co.send(p, op, payloads)
	co.mu.Lock()
	defer co.mu.Unlock()
	for i, q := range batch {
		clear(q.payload)
		r := results[i]
		if q.abandoned {
			clear(r.v)
			continue
		}
		q.v, q.err = r.v, r.err
		close(q.done)
	}
}

// TransitBatches reports how many batch requests of two or more calls the
// connection has sent, and how many calls they carried (zero when the
// fast path, and so batching, is not in use).
func (c *conn) TransitBatches() (requests, calls uint64) {
	if c.batches == nil {
		return 0, 0
	}
	return c.batches.batches.Load(), c.batches.batched.Load()
}

// sendBatch is the coalescer's send for a conn: one item goes out as a
// single call, more as one batch_input request. The request runs under
// its own per-attempt deadline (exchange), detached from the callers'.
func (c *conn) sendBatch(p string, op transitOp, payloads [][]byte) []callResult {
	ctx := context.Background()
	results := make([]callResult, len(payloads))
	if len(payloads) == 1 {
		results[0].v, results[0].err = c.transitSingle(ctx, p, payloads[0], op.field, op.decode)
		return results
	}
	body := batchBody(payloads)
	defer clear(body) // holds every item's plaintext, in base64
	var err error
	for tried := 1; ; tried++ {
		node := c.nodeInUse()
		err = c.withReauth(ctx, func(token string) error {
			return c.exchange(ctx, node, p, token, body, func(status int, answer []byte) error {
				return readBatch(p, op, status, answer, results)
			})
		})
		// Transit encrypt and decrypt change nothing: the next node may
		// take the batch again (nodes.go).
		if err == nil || err == errFallback || !c.onNodeFailure(ctx, node, err, &tried) {
			break
		}
	}
	switch {
	case err == errFallback:
		// A redirect: let the library follow it, item by item.
		for i, payload := range payloads {
			results[i].v, results[i].err = c.transitSlow(ctx, p, payload, op.field, op.decode)
		}
	case err != nil:
		for i := range results {
			clear(results[i].v)
			results[i] = callResult{err: err}
		}
	}
	return results
}

// batchBody is {"batch_input":[item,...]}; each payload is already the
// JSON object of one item (transitPayload).
func batchBody(payloads [][]byte) []byte {
	n := len(`{"batch_input":[]}`) + len(payloads)
	for _, p := range payloads {
		n += len(p)
	}
	b := make([]byte, 0, n)
	b = append(b, `{"batch_input":[`...)
	for i, p := range payloads {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, p...)
	}
	return append(b, "]}"...)
}

// readBatch fills results from Vault's answer to a batch request. Vault
// answers a batch in which some items failed with 400 (or 500 for internal
// errors) and still lists every item in data.batch_results: a failed item
// gets that status and its own message, the others their value. An answer
// without one result per item is an error for every item.
func readBatch(p string, op transitOp, status int, answer []byte, results []callResult) error {
	var out struct {
		Data struct {
			BatchResults []struct {
				Ciphertext string `json:"ciphertext"`
				Plaintext  []byte `json:"plaintext"` // base64 in JSON; wiped unless handed over
				Error      string `json:"error"`
			} `json:"batch_results"`
		} `json:"data"`
	}
	ok := status >= 200 && status < 300 || status == 400 || status == 500
	if ok {
		err := json.Unmarshal(answer, &out)
		ok = err == nil && len(out.Data.BatchResults) == len(results)
		if !ok && status < 300 {
			for _, r := range out.Data.BatchResults {
				clear(r.Plaintext)
			}
			if err == nil {
				err = fmt.Errorf("%d results for %d items", len(out.Data.BatchResults), len(results))
			}
			return answerError(p, err)
		}
	}
	if !ok {
		for _, r := range out.Data.BatchResults {
			clear(r.Plaintext)
		}
		return vaultError(p, status, answer)
	}
	itemStatus := status
	if itemStatus < 300 {
		itemStatus = http.StatusBadRequest
	}
	for i, r := range out.Data.BatchResults {
		switch {
		case r.Error != "":
			clear(r.Plaintext)
			results[i].err = &callError{Method: http.MethodPut, Path: p, Status: itemStatus, Messages: []string{r.Error}}
		case op.decode:
			results[i].v = r.Plaintext
		default:
			clear(r.Plaintext)
			results[i].v = []byte(r.Ciphertext)
		}
	}
	return nil
}
