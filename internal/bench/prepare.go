package bench

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The key set (--keys N): N keys named keySetID(0..N-1), of which every
// tenth is disabled so that a listing filtered by state has a rare state
// to find. It is prepared before the steps (not timed as a step, but the
// creation rate is reported) and reused by later runs: keys that exist
// are left as they are, only the missing ones are created. With a key
// set, the operations spread over it:
//
//   - generate, decrypt, encrypt and describe: worker i uses its own key of
//     the set (the enabled keys, spread over the whole id range);
//   - list: pages of 100 keys at random positions in the set (each worker
//     replays 32 such pages, signed once);
//   - list-disabled: the same pages filtered by state=Disabled (one key in
//     ten matches, so a page of 100 spans 1,000 ids).
//
// So a step measures one operation on a server holding N keys: what it
// costs must not depend on N.

// keySetPrefix starts every id of the key set.
const keySetPrefix = "bench-set-"

func keySetID(i int) string { return fmt.Sprintf("%s%07d", keySetPrefix, i) }

// keySetDisabled reports whether key i of the set is the disabled kind.
func keySetDisabled(i int) bool { return i%10 == 9 }

// pagesPerWorker is how many list pages each worker replays.
const pagesPerWorker = 32

// keySet is a prepared key set.
type keySet struct {
	n       int
	enabled []string // ids of the enabled keys, in order
}

// Prepared reports what Prepare did.
type Prepared struct {
	Keys, Reused, Created, Disabled int
	Took                            time.Duration // creating the missing keys
}

// prepareKeys makes sure the key set of n keys exists with its states,
// creating (and disabling) only what is missing, width requests at once.
func (k *keywardTarget) prepareKeys(ctx context.Context, n, width int, transport http.RoundTripper) (Prepared, error) {
	rep := Prepared{Keys: n}
	client := &http.Client{Transport: transport, Timeout: 60 * time.Second}
	defer client.CloseIdleConnections()
	kc := &setCaller{k: k, client: client}

	have, err := kc.existingSet(ctx)
	if err != nil {
		return rep, fmt.Errorf("listing the key set: %w", err)
	}
	var missing, toDisable []int
	for i := 0; i < n; i++ {
		state, ok := have[keySetID(i)]
		switch {
		case !ok:
			missing = append(missing, i)
		case keySetDisabled(i) && state == "Enabled":
			toDisable = append(toDisable, i)
		}
	}
	rep.Reused = n - len(missing)
	fmt.Fprintf(k.log, "keyward: key set of %d keys: %d exist, creating %d\n", n, rep.Reused, len(missing))
	start := time.Now()
	var done atomic.Int64
	stop := progress(k.log, "creating keys", int64(len(missing)), &done)
	err = forEach(ctx, missing, width, func(ctx context.Context, i int) error {
		body := mustJSON(map[string]string{"key_id": keySetID(i), "description": "keyward bench key set"})
		err := kc.call(ctx, "POST", "/kms/keys", body, nil)
		if err != nil && !strings.Contains(err.Error(), " 409 ") { // made meanwhile: fine
			return fmt.Errorf("creating %s: %w", keySetID(i), err)
		}
		done.Add(1)
		if keySetDisabled(i) {
			return kc.disable(ctx, i)
		}
		return nil
	})
	stop()
	rep.Took, rep.Created = time.Since(start), int(done.Load())
	if err != nil {
		return rep, err
	}
	if rep.Created > 0 {
		fmt.Fprintf(k.log, "keyward: created %d keys in %s: %.0f keys/s (c=%d)\n", rep.Created, rep.Took.Round(time.Millisecond), float64(rep.Created)/rep.Took.Seconds(), width)
	}
	err = forEach(ctx, toDisable, width, func(ctx context.Context, i int) error { return kc.disable(ctx, i) })
	rep.Disabled = len(toDisable)
	if err != nil {
		return rep, err
	}
	k.set = &keySet{n: n}
	for i := 0; i < n; i++ {
		if !keySetDisabled(i) {
			k.set.enabled = append(k.set.enabled, keySetID(i))
		}
	}
	return rep, nil
}

// setCaller makes setup calls of a keyward target on a client of its own
// (with as many connections as the preparation has workers).
type setCaller struct {
	k      *keywardTarget
	client *http.Client
}

func (c *setCaller) call(ctx context.Context, method, path string, body []byte, out any) error {
	r, err := http.NewRequest(method, c.k.api+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	r.Header.Set("Content-Type", "application/json")
	c.k.signer.Sign(r, body, c.k.now())
	return doJSON(ctx, c.client, r, out)
}

func (k *setCaller) disable(ctx context.Context, i int) error {
	if err := k.call(ctx, "POST", "/kms/keys/disable", mustJSON(map[string]string{"key_id": keySetID(i)}), nil); err != nil {
		return fmt.Errorf("disabling %s: %w", keySetID(i), err)
	}
	return nil
}

// existingSet lists the keys of the set that exist, with their states.
func (k *setCaller) existingSet(ctx context.Context) (map[string]string, error) {
	have := map[string]string{}
	marker := keySetPrefix
	for {
		var page struct {
			Keys []struct {
				KeyID    string `json:"key_id"`
				KeyState string `json:"key_state"`
			} `json:"keys"`
			Truncated  bool   `json:"truncated"`
			NextMarker string `json:"next_marker"`
		}
		q := url.Values{"limit": {"1000"}, "marker": {marker}}
		if err := k.call(ctx, "GET", "/kms/keys?"+q.Encode(), nil, &page); err != nil {
			return nil, err
		}
		for _, key := range page.Keys {
			if !strings.HasPrefix(key.KeyID, keySetPrefix) {
				return have, nil
			}
			have[key.KeyID] = key.KeyState
		}
		if !page.Truncated || page.NextMarker == "" {
			return have, nil
		}
		marker = page.NextMarker
	}
}

// forEach runs f for every item, width at a time, and returns the first
// error (after which no new item starts).
func forEach(ctx context.Context, items []int, width int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		next  atomic.Int64
		once  sync.Once
		first error
	)
	for w := 0; w < max(width, 1); w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				j := int(next.Add(1) - 1)
				if j >= len(items) {
					return
				}
				if err := f(ctx, items[j]); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}

// progress prints done/total every 5 s until stopped.
func progress(log interface{ Write([]byte) (int, error) }, what string, total int64, done *atomic.Int64) func() {
	if total == 0 {
		return func() {}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				fmt.Fprintf(log, "keyward: %s: %d of %d\n", what, done.Load(), total)
			}
		}
	}()
	return func() { close(stop); wg.Wait() }
}

// setKey is the key worker i uses: the enabled keys spread over the set.
func (s *keySet) setKey(worker int) string {
	return s.enabled[(worker*7919)%len(s.enabled)]
}

// pageRequester replays a fixed list of signed page requests in turn.
type pageRequester struct {
	pages []*template
	i     int
}

func (p *pageRequester) next() *template {
	t := p.pages[p.i%len(p.pages)]
	p.i++
	return t
}

func (p *pageRequester) Request(ctx context.Context) (*http.Request, error) {
	return p.next().Request(ctx)
}

func (p *pageRequester) wire() (*wireRequest, error) { return p.next().wire() }

// setPlan is the plan of op over the key set (ok false: op does not use
// the set).
func (k *keywardTarget) setPlan(op string) (Plan, bool) {
	s := k.set
	if s == nil {
		return Plan{}, false
	}
	p := Plan{Target: k.name(), Op: op}
	switch op {
	case "list", "list-disabled":
		// Markers leave a full page after them: 100 keys, or for the
		// filtered listing 100 disabled ones (1,000 ids).
		state, span := "", 100
		if op == "list-disabled" {
			state, span = "&state=Disabled", 1000
		}
		p.NewRequester = func(_ context.Context, worker int) (Requester, error) {
			r := rand.New(rand.NewPCG(uint64(worker), 42))
			pr := &pageRequester{}
			for range pagesPerWorker {
				marker := keySetID(r.IntN(max(s.n-span, 1)))
				t := k.tmpl("GET", "/kms/keys?limit=100&marker="+url.QueryEscape(marker)+state, nil)
				if err := t.build(); err != nil {
					return nil, err
				}
				pr.pages = append(pr.pages, t)
			}
			return pr, nil
		}
		return p, true
	case "generate":
		p.NewRequester = func(_ context.Context, worker int) (Requester, error) {
			return prepared(k.tmpl("POST", "/kms/generate-data-key", k.generateBodyFor(s.setKey(worker))))
		}
		return p, true
	case "decrypt":
		p.NewRequester = func(ctx context.Context, worker int) (Requester, error) {
			var dk struct {
				CiphertextBlob string `json:"ciphertext_blob"`
			}
			if err := k.call(ctx, "POST", "/kms/generate-data-key", k.generateBodyFor(s.setKey(worker)), &dk); err != nil {
				return nil, err
			}
			body := mustJSON(map[string]any{"ciphertext_blob": dk.CiphertextBlob, "encryption_context": benchContext})
			return prepared(k.tmpl("POST", "/kms/decrypt", body))
		}
		return p, true
	case "encrypt":
		p.NewRequester = func(_ context.Context, worker int) (Requester, error) {
			body := mustJSON(map[string]any{"key_id": s.setKey(worker), "plaintext": randomB64(32), "encryption_context": benchContext})
			return prepared(k.tmpl("POST", "/kms/encrypt", body))
		}
		return p, true
	case "describe":
		p.NewRequester = func(_ context.Context, worker int) (Requester, error) {
			return prepared(k.tmpl("GET", "/kms/keys/"+url.PathEscape(s.setKey(worker)), nil))
		}
		return p, true
	}
	return Plan{}, false
}

func (k *keywardTarget) generateBodyFor(keyID string) []byte {
	return mustJSON(map[string]any{"key_id": keyID, "key_spec": "AES_256", "encryption_context": benchContext})
}
