package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"sync"

	"github.com/keyward/keyward/internal/jsonstr"
	"github.com/keyward/keyward/internal/wipe"
)

// The Transit hot path: encrypt and decrypt (one per Wrap and Unwrap) skip
// vault/api's request machinery and encoding/json. The request goes out on
// the conn's own *http.Client (same transport, TLS and connection pool),
// with the same headers the library sends; the answer is read into a pooled
// buffer that is wiped after use, and only the one field needed is
// extracted. Failures are classified exactly as in attempt and call: the
// same callError for Vault's answers, classify for transport errors, the
// AppRole re-login on a 403. A redirect (an HA standby naming the active
// node) is left to the library with one address, which follows it (a 3xx
// proves the request was not executed, so sending it again is safe); with
// several addresses it is a failure of the node, and the call goes to the
// next node (nodes.go), as after any failure of the node: encrypt and
// decrypt change nothing in Vault.

// errFallback: the fast path cannot serve this request; use call.
var errFallback = errors.New("vault: fast path not applicable")

var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// transitCall sends payload (a JSON object) with PUT to path and returns the
// base64-decoded (decode) or raw string value of data.<field> in Vault's
// answer; nil when the answer has no such field. Under load, calls on one
// path are coalesced into batch requests (batch.go). The caller wipes
// payload.
func (c *conn) transitCall(ctx context.Context, p string, payload []byte, field string, decode bool) ([]byte, error) {
	if c.bases[0] == nil || c.httpClient == nil || c.batches == nil {
		return c.transitSingle(ctx, p, payload, field, decode)
	}
	return c.batches.do(ctx, p, transitOp{field, decode}, payload,
		func(ctx context.Context) ([]byte, error) { return c.transitSingle(ctx, p, payload, field, decode) },
		func(ctx context.Context) error {
			if ctx.Err() != nil {
				return c.classify(ctx, http.MethodPut, p, ctx.Err())
			}
			return &callError{Method: http.MethodPut, Path: p, Cause: fmt.Sprintf("no answer within %s", c.timeout)}
		})
}

// transitSingle is one call, on the fast path when it applies. A Transit
// encrypt or decrypt changes nothing in Vault: after a failure of the node
// it is sent to the next one, each node once (nodes.go).
func (c *conn) transitSingle(ctx context.Context, p string, payload []byte, field string, decode bool) ([]byte, error) {
	if c.bases[0] == nil || c.httpClient == nil {
		return c.transitSlow(ctx, p, payload, field, decode)
	}
	for tried := 1; ; tried++ {
		node := c.nodeInUse()
		var v []byte
		err := c.withReauth(ctx, func(token string) (err error) {
			v, err = c.fastAttempt(ctx, node, p, token, payload, field, decode)
			return err
		})
		if err == errFallback {
			return c.transitSlow(ctx, p, payload, field, decode)
		}
		if err != nil && c.onNodeFailure(ctx, node, err, &tried) {
			continue
		}
		return v, err
	}
}

// onNodeFailure moves on from node after a failure of it and reports
// whether a request that may be repeated should go to the next node now
// (not every node tried yet: *tried counts them).
func (c *conn) onNodeFailure(ctx context.Context, node int, err error, tried *int) bool {
	if !c.multi() || !nodeFailure(err) {
		return false
	}
	c.failover(node)
	return *tried < len(c.addrs) && ctx.Err() == nil
}

// withReauth runs attempt with the current token and, with AppRole, once
// more after a re-login when Vault answers 403 (as call does): the token
// may have expired while Vault was unreachable, and the 403 proves the
// request was not executed.
func (c *conn) withReauth(ctx context.Context, attempt func(token string) error) error {
	reauthed := false
	for {
		token := c.client.Token()
		err := attempt(token)
		if err == nil || err == errFallback {
			return err
		}
		if !reauthed && c.auth.Method == "approle" && isStatus(err, http.StatusForbidden, "") {
			reauthed = true
			if c.reauth(ctx, token) == nil {
				continue
			}
		}
		return err
	}
}

// transitSlow is the same call through call (vault/api and encoding/json).
func (c *conn) transitSlow(ctx context.Context, p string, payload []byte, field string, decode bool) ([]byte, error) {
	var out transitResult
	if err := c.call(ctx, http.MethodPut, p, payload, &out); err != nil {
		out.wipe()
		return nil, err
	}
	return out.value(field), nil
}

// transitResult is Vault's answer to one Transit encrypt or decrypt.
// encoding/json decodes the base64 plaintext straight from the answer into
// the one slice kept.
type transitResult struct {
	Data struct {
		Plaintext  []byte  `json:"plaintext"`
		Ciphertext *string `json:"ciphertext"`
	} `json:"data"`
}

// value returns the member field ("plaintext", decoded, or "ciphertext");
// nil when the answer has none. The plaintext is wiped unless returned.
func (r *transitResult) value(field string) []byte {
	if field == "plaintext" {
		return r.Data.Plaintext
	}
	r.wipe()
	if r.Data.Ciphertext == nil {
		return nil
	}
	return []byte(*r.Data.Ciphertext)
}

func (r *transitResult) wipe() { clear(r.Data.Plaintext) }

func answerError(p string, err error) error {
	return errors.New("vault: " + http.MethodPut + " " + p + ": the answer does not decode: " + err.Error())
}

// fastAttempt is one exchange for a single item with node.
func (c *conn) fastAttempt(ctx context.Context, node int, p, token string, payload []byte, field string, decode bool) ([]byte, error) {
	var v []byte
	err := c.exchange(ctx, node, p, token, payload, func(status int, buf []byte) (err error) {
		if status < 200 || status >= 300 {
			return vaultError(p, status, buf)
		}
		v, err = singleAnswer(p, buf, field)
		return err
	})
	return v, err
}

// exchange sends body with PUT to p on node under its own deadline (as
// attempt) and hands Vault's status and answer to read. The answer sits in
// a pooled buffer that is wiped when read returns: read copies what it
// keeps. A redirect (3xx) is errFallback before read with one address
// (the library follows it), a failure of the node with several.
func (c *conn) exchange(ctx context.Context, node int, p, token string, body []byte, read func(status int, answer []byte) error) error {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	base := c.bases[node]
	u := *base
	u.Path = path.Join(base.Path, "/v1/", p)
	u.RawPath = ""
	req, err := http.NewRequestWithContext(actx, http.MethodPut, "", bytes.NewReader(body))
	if err != nil {
		return errFallback
	}
	req.URL, req.Host = &u, u.Host
	req.Header["X-Vault-Request"] = []string{"true"}
	if token != "" {
		req.Header["X-Vault-Token"] = []string{token}
	}
	if ns := c.client.Namespace(); ns != "" {
		req.Header["X-Vault-Namespace"] = []string{ns}
	}
	resp, err := c.httpClient.Do(req)
	if err != nil {
		return c.classify(ctx, http.MethodPut, p, err)
	}
	defer resp.Body.Close()
	bp := answerBufs.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		clear(buf[:cap(buf)])
		if cap(buf) <= 64<<10 {
			*bp = buf[:0]
			answerBufs.Put(bp)
		}
	}()
	buf, err = wipe.ReadAllInto(buf, io.LimitReader(resp.Body, maxResponse), maxResponse)
	if err != nil {
		return c.classify(ctx, http.MethodPut, p, err)
	}
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		if c.multi() {
			return redirectError(http.MethodPut, p, resp.StatusCode)
		}
		return errFallback
	}
	return read(resp.StatusCode, buf)
}

// vaultError is Vault's refusal as a callError, with Vault's messages.
func vaultError(p string, status int, answer []byte) error {
	ce := &callError{Method: http.MethodPut, Path: p, Status: status}
	var er struct {
		Errors []string `json:"errors"`
	}
	dec := json.NewDecoder(bytes.NewReader(answer))
	dec.UseNumber()
	if dec.Decode(&er) != nil {
		ce.Messages = []string{string(answer)}
	} else {
		ce.Messages = er.Errors
	}
	return ce
}

// singleAnswer extracts data.<field> from a 2xx answer to a single call.
// The answer buffer is wiped by the caller.
func singleAnswer(p string, buf []byte, field string) ([]byte, error) {
	if len(bytes.TrimSpace(buf)) == 0 {
		return nil, nil
	}
	var out transitResult
	if err := json.Unmarshal(buf, &out); err != nil {
		out.wipe()
		return nil, answerError(p, err)
	}
	return out.value(field), nil
}

// transitPayload builds Transit's JSON request: "plaintext" and
// "associated_data" (base64), "ciphertext" and "key_version", each only
// when set. The result holds plaintext in base64: the caller wipes it.
func transitPayload(plaintext []byte, ciphertext string, aad []byte, ver uint32) []byte {
	n := 64 + base64.StdEncoding.EncodedLen(len(plaintext)) + 2*len(ciphertext) + base64.StdEncoding.EncodedLen(len(aad))
	b := make([]byte, 0, n)
	b = append(b, '{')
	sep := func() {
		if len(b) > 1 {
			b = append(b, ',')
		}
	}
	if len(plaintext) > 0 {
		b = append(b, `"plaintext":"`...)
		b = base64.StdEncoding.AppendEncode(b, plaintext)
		b = append(b, '"')
	}
	if ciphertext != "" {
		sep()
		b = append(b, `"ciphertext":`...)
		b = jsonstr.AppendString(b, ciphertext)
	}
	if len(aad) > 0 {
		sep()
		b = append(b, `"associated_data":"`...)
		b = base64.StdEncoding.AppendEncode(b, aad)
		b = append(b, '"')
	}
	if ver != 0 {
		sep()
		b = append(b, `"key_version":`...)
		b = strconv.AppendUint(b, uint64(ver), 10)
	}
	return append(b, '}')
}
