package vault

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// fakeTransit stands in for Vault under the coalescer: single calls block
// until released, batches echo their payloads upper-cased.
type fakeTransit struct {
	mu      sync.Mutex
	batches [][]string
	hold    chan struct{} // single calls wait on it while non-nil
	singles atomic.Int64
}

func (f *fakeTransit) send(p string, op transitOp, payloads [][]byte) []callResult {
	f.mu.Lock()
	var seen []string
	for _, pl := range payloads {
		seen = append(seen, string(pl))
	}
	f.batches = append(f.batches, seen)
	f.mu.Unlock()
	out := make([]callResult, len(payloads))
	for i, pl := range payloads {
		if string(pl) == "bad" {
			out[i].err = errors.New("refused")
			continue
		}
		out[i].v = bytes.ToUpper(pl)
	}
	return out
}

func (f *fakeTransit) single(payload []byte, hold chan struct{}) func(context.Context) ([]byte, error) {
	return func(context.Context) ([]byte, error) {
		f.singles.Add(1)
		if hold != nil {
			<-hold
		}
		return bytes.ToUpper(payload), nil
	}
}

var errAbandoned = errors.New("abandoned")

// occupyLane starts a single call on path p that holds its lane until the
// returned function is called, and waits until it is in flight.
func occupyLane(co *coalescer, p string) (release func()) {
	hold, started := make(chan struct{}), make(chan struct{})
	go co.do(context.Background(), p, opEncrypt, nil, func(context.Context) ([]byte, error) {
		close(started)
		<-hold
		return nil, nil
	}, abandonErr)
	<-started
	return func() { close(hold) }
}

func abandonErr(context.Context) error { return errAbandoned }

// queued waits until path p has n queued calls.
func queued(t *testing.T, co *coalescer, p string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		co.mu.Lock()
		got := 0
		if l := co.paths[p]; l != nil {
			got = len(l.queue)
		}
		co.mu.Unlock()
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d calls queued, want %d", got, n)
		}
		time.Sleep(time.Millisecond)
	}
}

var opEncrypt = transitOp{field: "ciphertext"}

// expectNothingSent checks that nothing is left queued on p, frees the lane
// occupyLane held, and waits until p is idle: a batch, had one been
// started, is sent before its lane is released, so f has seen every batch
// by then. None may have been sent.
func expectNothingSent(t *testing.T, co *coalescer, f *fakeTransit, p string, release func()) {
	t.Helper()
	queued(t, co, p, 0)
	release()
	deadline := time.Now().Add(10 * time.Second)
	for {
		co.mu.Lock()
		_, busy := co.paths[p]
		co.mu.Unlock()
		if !busy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("path %s still busy", p)
		}
		time.Sleep(time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.batches) != 0 {
		t.Errorf("a call that gave up was sent: %v", f.batches)
	}
}

// While a lane is free a call goes out alone, at once; nothing is batched.
func TestCoalescerFreeLaneGoesAlone(t *testing.T) {
	f := &fakeTransit{}
	co := newCoalescer(2, 8, 0, f.send)
	for i := range 5 {
		v, err := co.do(context.Background(), "p", opEncrypt, []byte("x"), f.single([]byte(fmt.Sprint("a", i)), nil), abandonErr)
		if err != nil || string(v) != fmt.Sprint("A", i) {
			t.Fatalf("call %d: %q %v", i, v, err)
		}
	}
	if f.singles.Load() != 5 || len(f.batches) != 0 {
		t.Fatalf("%d singles, %d batches", f.singles.Load(), len(f.batches))
	}
	if len(co.paths) != 0 {
		t.Fatalf("paths left behind: %v", co.paths)
	}
}

// With every lane busy, calls queue; the first lane to come free sends the
// queue as batches of at most maxBatch, in arrival order, and each caller
// gets its own result (or its own error).
func TestCoalescerBatchesWhenLanesAreBusy(t *testing.T) {
	f := &fakeTransit{}
	co := newCoalescer(1, 4, 0, f.send)
	hold := make(chan struct{})
	first := make(chan []byte)
	go func() {
		v, _ := co.do(context.Background(), "p", opEncrypt, nil, f.single([]byte("lead"), hold), abandonErr)
		first <- v
	}()
	for f.singles.Load() == 0 {
		time.Sleep(time.Millisecond)
	}
	type answer struct {
		in, out string
		err     error
	}
	answers := make(chan answer, 10)
	for i := range 10 {
		in := fmt.Sprintf("item%d", i)
		if i == 6 {
			in = "bad"
		}
		go func() {
			v, err := co.do(context.Background(), "p", opEncrypt, []byte(in), nil, abandonErr)
			answers <- answer{in, string(v), err}
		}()
		queued(t, co, "p", i+1) // one at a time: a known order
	}
	close(hold)
	if v := <-first; string(v) != "LEAD" {
		t.Fatalf("lead: %q", v)
	}
	for range 10 {
		a := <-answers
		switch {
		case a.in == "bad":
			if a.err == nil || a.err.Error() != "refused" {
				t.Errorf("bad item: %q %v", a.out, a.err)
			}
		case a.err != nil || a.out != strings.ToUpper(a.in):
			t.Errorf("%s: %q %v", a.in, a.out, a.err)
		}
	}
	want := [][]string{{"item0", "item1", "item2", "item3"}, {"item4", "item5", "bad", "item7"}, {"item8", "item9"}}
	f.mu.Lock()
	defer f.mu.Unlock()
	if fmt.Sprint(f.batches) != fmt.Sprint(want) {
		t.Errorf("batches %v, want %v", f.batches, want)
	}
	co.mu.Lock()
	defer co.mu.Unlock()
	if len(co.paths) != 0 {
		t.Errorf("paths left behind: %v", co.paths)
	}
}

// Paths are independent: a busy path does not make another one queue.
func TestCoalescerPathsAreIndependent(t *testing.T) {
	f := &fakeTransit{}
	co := newCoalescer(1, 4, 0, f.send)
	defer occupyLane(co, "p1")()
	v, err := co.do(context.Background(), "p2", opEncrypt, nil, f.single([]byte("y"), nil), abandonErr)
	if err != nil || string(v) != "Y" {
		t.Fatalf("p2 waited on p1: %q %v", v, err)
	}
}

// A queued caller whose context ends leaves the queue (its copy of the
// payload wiped) and is never sent.
func TestCoalescerAbandonWhileQueued(t *testing.T) {
	f := &fakeTransit{}
	co := newCoalescer(1, 4, 0, f.send)
	release := occupyLane(co, "p")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := co.do(ctx, "p", opEncrypt, []byte("secret"), nil, abandonErr)
		errc <- err
	}()
	queued(t, co, "p", 1)
	co.mu.Lock()
	q := co.paths["p"].queue[0]
	co.mu.Unlock()
	cancel()
	if err := <-errc; err != errAbandoned {
		t.Fatalf("abandoned call: %v", err)
	}
	if !bytes.Equal(q.payload, make([]byte, len("secret"))) {
		t.Errorf("the abandoned payload was not wiped: %q", q.payload)
	}
	expectNothingSent(t, co, f, "p", release)
}

// A caller that leaves while its batch is on the wire gets its error at
// once; its result, when it comes, is wiped.
func TestCoalescerAbandonInFlight(t *testing.T) {
	sent := make(chan struct{})
	answer := make(chan struct{})
	result := []byte("plaintext")
	co := newCoalescer(1, 4, 0, func(string, transitOp, [][]byte) []callResult {
		close(sent)
		<-answer
		return []callResult{{v: result}, {v: []byte("other")}}
	})
	release := occupyLane(co, "p")
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error)
	go func() {
		_, err := co.do(ctx, "p", opEncrypt, []byte("a"), nil, abandonErr)
		errc <- err
	}()
	queued(t, co, "p", 1)
	other := make(chan string)
	go func() {
		v, _ := co.do(context.Background(), "p", opEncrypt, []byte("b"), nil, abandonErr)
		other <- string(v)
	}()
	queued(t, co, "p", 2)
	release()
	<-sent
	cancel()
	if err := <-errc; err != errAbandoned {
		t.Fatalf("abandoned call: %v", err)
	}
	close(answer)
	if v := <-other; v != "other" {
		t.Fatalf("the other caller got %q", v)
	}
	if !bytes.Equal(result, make([]byte, len(result))) {
		t.Errorf("the abandoned result was not wiped: %q", result)
	}
}

// A queued call gives up after maxWait even when its caller would wait
// longer, and is not sent.
func TestCoalescerMaxWait(t *testing.T) {
	f := &fakeTransit{}
	co := newCoalescer(1, 4, 50*time.Millisecond, f.send)
	release := occupyLane(co, "p")
	var ctxErr error = errors.New("unset")
	_, err := co.do(context.Background(), "p", opEncrypt, []byte("late"), nil, func(ctx context.Context) error {
		ctxErr = ctx.Err()
		return errAbandoned
	})
	if err != errAbandoned || ctxErr != nil {
		t.Fatalf("err %v, ctx.Err() %v: want the abandon error with a live context", err, ctxErr)
	}
	expectNothingSent(t, co, f, "p", release)
}

// Many callers at once, under the race detector: every one gets its own
// answer and nothing is left behind.
func TestCoalescerConcurrent(t *testing.T) {
	f := &fakeTransit{}
	co := newCoalescer(2, 16, 0, f.send)
	var wg sync.WaitGroup
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				in := fmt.Sprintf("g%di%d", g, i)
				v, err := co.do(context.Background(), fmt.Sprint("p", g%3), opEncrypt, []byte(in), f.single([]byte(in), nil), abandonErr)
				if err != nil || string(v) != strings.ToUpper(in) {
					t.Errorf("%s: %q %v", in, v, err)
					return
				}
			}
		})
	}
	wg.Wait()
	if len(co.paths) != 0 {
		t.Errorf("paths left behind: %v", co.paths)
	}
}

// gateTransit holds the first n Transit requests on path in the proxy
// until release is closed.
func gateTransit(p *proxy, path string, n int) (held *atomic.Int64, release chan struct{}) {
	held, release = &atomic.Int64{}, make(chan struct{})
	var seen atomic.Int64
	p.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method == http.MethodPut && r.URL.Path == "/v1/"+path && seen.Add(1) <= int64(n) {
			held.Add(1)
			<-release
		}
		return false
	})
	return held, release
}

// Against a real Vault: with both lanes held, 20 concurrent wraps queue and
// go out as one batch_input request; every blob then unwraps, again as one
// batch, in which a wrong encryption context fails that item alone.
func TestTransitBatchesAgainstVault(t *testing.T) {
	s := vaulttest.StartDev(t)
	px := newProxy(t, s.Addr)
	b := openT(t, testConfig(px.URL, s.Token, config.BackendVaultTransit, freshPrefix()), Options{})
	ctx := context.Background()
	if _, err := b.Create(ctx, testMeta("batched")); err != nil {
		t.Fatal(err)
	}
	if connOf(b).batches == nil {
		t.Fatal("no coalescer on an http address")
	}
	const n = 20
	aad := func(i int) []byte { return []byte(fmt.Sprintf(`{"object":"o%d"}`, i)) }
	plaintext := func(i int) []byte { return bytes.Repeat([]byte{byte(i + 1)}, 32) }

	// run starts the lane holders and then n calls; it returns once every
	// call answered, and the Transit requests the proxy saw on path.
	run := func(path string, call func(i int) error) int {
		t.Helper()
		held, release := gateTransit(px, path, transitLanes)
		px.take()
		var wg sync.WaitGroup
		for i := n; i < n+transitLanes; i++ {
			wg.Go(func() {
				if err := call(i); err != nil {
					t.Errorf("lane holder %d: %v", i, err)
				}
			})
		}
		for held.Load() < transitLanes {
			time.Sleep(time.Millisecond)
		}
		for i := range n {
			wg.Go(func() {
				if err := call(i); err != nil {
					t.Errorf("call %d: %v", i, err)
				}
			})
		}
		queued(t, connOf(b).batches, path, n)
		close(release)
		wg.Wait()
		px.setFail(nil)
		return px.take()["PUT /v1/"+path]
	}

	blobs := make([][]byte, n+transitLanes)
	requests := run("transit/encrypt/batched", func(i int) (err error) {
		blobs[i], err = b.Wrap(ctx, "batched", 1, plaintext(i), aad(i))
		return err
	})
	// The lane holders alone, then one batch of n.
	if requests != transitLanes+1 {
		t.Errorf("%d encrypt requests for %d wraps, want %d", requests, n+transitLanes, transitLanes+1)
	}
	seen := map[string]bool{}
	for i, blob := range blobs {
		if !bytes.HasPrefix(blob, []byte("vault:v1:")) || seen[string(blob)] {
			t.Fatalf("blob %d: %q", i, blob)
		}
		seen[string(blob)] = true
	}

	const wrong = 7
	requests = run("transit/decrypt/batched", func(i int) error {
		a := aad(i)
		if i == wrong {
			a = aad(i + 1)
		}
		pt, err := b.Unwrap(ctx, "batched", 1, blobs[i], a)
		if i == wrong {
			if !errors.Is(err, kms.ErrInvalidCiphertext) {
				return fmt.Errorf("wrong context: %v, want ErrInvalidCiphertext", err)
			}
			return nil
		}
		if err != nil || !bytes.Equal(pt, plaintext(i)) {
			return fmt.Errorf("unwrap: %x %v", pt, err)
		}
		return nil
	})
	if requests != transitLanes+1 {
		t.Errorf("%d decrypt requests for %d unwraps, want %d", requests, n+transitLanes, transitLanes+1)
	}
}
