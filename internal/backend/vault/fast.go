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
	"net/url"
	"path"
	"strconv"
	"sync"

	"github.com/keyward/keyward/internal/jsonstr"
	"github.com/keyward/keyward/internal/wipe"

	"github.com/hashicorp/vault/api"
)

// The Transit hot path: encrypt and decrypt (one per Wrap and Unwrap) skip
// vault/api's request machinery and encoding/json. The request goes out on
// the conn's own *http.Client (same transport, TLS and connection pool),
// with the same headers the library sends; the answer is read into a pooled
// buffer that is wiped after use, and only the one field needed is
// extracted. Failures are classified exactly as in attempt and call: the
// same callError for Vault's answers, classify for transport errors, the
// AppRole re-login on a 403, no retry (these are writes). A redirect (an HA
// standby naming the active node) is left to the library, which follows it:
// a 3xx proves the request was not executed, so sending it again is safe.

// errFallback: the fast path cannot serve this request; use call.
var errFallback = errors.New("vault: fast path not applicable")

// fastBase is Vault's address for the fast path, or nil when the address is
// not plain http(s) (a unix socket, which the library dials itself).
func fastBase(client *api.Client) *url.URL {
	u, err := url.Parse(client.Address())
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil
	}
	return u
}

var answerBufs = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// transitCall sends payload (a JSON object) with PUT to path and returns the
// base64-decoded (decode) or raw string value of data.<field> in Vault's
// answer; nil when the answer has no such field. Under load, calls on one
// path are coalesced into batch requests (batch.go). The caller wipes
// payload.
func (c *conn) transitCall(ctx context.Context, p string, payload []byte, field string, decode bool) ([]byte, error) {
	if c.base == nil || c.httpClient == nil || c.batches == nil {
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

// transitSingle is one call, on the fast path when it applies.
func (c *conn) transitSingle(ctx context.Context, p string, payload []byte, field string, decode bool) ([]byte, error) {
	if c.base == nil || c.httpClient == nil {
		return c.transitSlow(ctx, p, payload, field, decode)
	}
	var v []byte
	err := c.withReauth(ctx, func(token string) (err error) {
		v, err = c.fastAttempt(ctx, p, token, payload, field, decode)
		return err
	})
	if err == errFallback {
		return c.transitSlow(ctx, p, payload, field, decode)
	}
	return v, err
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
	var out struct {
		Data map[string]json.RawMessage `json:"data"`
	}
	if err := c.call(ctx, http.MethodPut, p, payload, &out); err != nil {
		return nil, err
	}
	return dataValue(p, out.Data, field, decode)
}

// dataValue decodes the member field of a Transit answer's data object: a
// base64 string into bytes (decode), or a plain string. The raw JSON is
// wiped: a decrypt answer carries plaintext.
func dataValue(p string, data map[string]json.RawMessage, field string, decode bool) ([]byte, error) {
	raw, ok := data[field]
	defer clear(raw)
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	if decode {
		var b []byte
		if err := json.Unmarshal(raw, &b); err != nil {
			clear(b)
			return nil, answerError(p, err)
		}
		return b, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, answerError(p, err)
	}
	return []byte(s), nil
}

func answerError(p string, err error) error {
	return errors.New("vault: " + http.MethodPut + " " + p + ": the answer does not decode: " + err.Error())
}

// fastAttempt is one exchange for a single item.
func (c *conn) fastAttempt(ctx context.Context, p, token string, payload []byte, field string, decode bool) ([]byte, error) {
	var v []byte
	err := c.exchange(ctx, p, token, payload, func(status int, buf []byte) (err error) {
		if status < 200 || status >= 300 {
			return vaultError(p, status, buf)
		}
		v, err = singleAnswer(p, buf, field, decode)
		return err
	})
	return v, err
}

// exchange sends body with PUT to p under its own deadline (as attempt)
// and hands Vault's status and answer to read. The answer sits in a
// pooled buffer that is wiped when read returns: read copies what it
// keeps. A redirect (3xx) is errFallback, before read.
func (c *conn) exchange(ctx context.Context, p, token string, body []byte, read func(status int, answer []byte) error) error {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	u := *c.base
	u.Path = path.Join(c.base.Path, "/v1/", p)
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
func singleAnswer(p string, buf []byte, field string, decode bool) ([]byte, error) {
	v, ok := dataField(buf, field)
	if !ok {
		// Not the usual shape (escapes, unusual layout): the full decoder.
		var out struct {
			Data map[string]json.RawMessage `json:"data"`
		}
		if len(bytes.TrimSpace(buf)) == 0 {
			return nil, nil
		}
		if err := json.Unmarshal(buf, &out); err != nil {
			return nil, answerError(p, err)
		}
		return dataValue(p, out.Data, field, decode)
	}
	if v == nil {
		return nil, nil
	}
	if decode {
		out := make([]byte, base64.StdEncoding.DecodedLen(len(v)))
		n, err := base64.StdEncoding.Decode(out, v)
		if err != nil {
			clear(out)
			return nil, answerError(p, err)
		}
		return out[:n], nil
	}
	return bytes.Clone(v), nil
}

// dataField finds the top-level object's "data" member and, in it, the
// member named field, whose value must be a string without escapes (it is
// returned, a slice of b) or null (nil). ok is false when b is not shaped
// like that (the caller then decodes it fully); the field or data being
// absent is ok with a nil value. Whatever encoding/json would read
// differently is left to it: a member named "data" in another case (its
// field matching is case-insensitive) and repeated members (the last one
// wins there).
func dataField(b []byte, field string) (v []byte, ok bool) {
	s := scanner{b: b}
	found := false
	if !s.object(func(key []byte) bool {
		if !bytes.EqualFold(key, []byte("data")) {
			return s.skip()
		}
		if found || string(key) != "data" {
			return false
		}
		found = true
		s.ws()
		if s.lit("null") {
			return true
		}
		got := false
		return s.object(func(k []byte) bool {
			if string(k) != field {
				return s.skip()
			}
			if got {
				return false
			}
			got = true
			s.ws()
			if s.lit("null") {
				return true
			}
			str, ok := s.str()
			if !ok {
				return false
			}
			v = str
			return true
		})
	}) {
		return nil, false
	}
	s.ws()
	if s.i != len(s.b) {
		return nil, false
	}
	return v, true
}

type scanner struct {
	b []byte
	i int
}

func (s *scanner) ws() {
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ' ', '\t', '\n', '\r':
			s.i++
		default:
			return
		}
	}
}

func (s *scanner) lit(l string) bool {
	if len(s.b)-s.i >= len(l) && string(s.b[s.i:s.i+len(l)]) == l {
		s.i += len(l)
		return true
	}
	return false
}

// str reads a string of printable ASCII without escapes. Anything else
// (an escape, a control character, a byte of UTF-8 that encoding/json
// might replace) is not for the fast path.
func (s *scanner) str() ([]byte, bool) {
	if s.i >= len(s.b) || s.b[s.i] != '"' {
		return nil, false
	}
	start := s.i + 1
	for j := start; j < len(s.b); j++ {
		switch c := s.b[j]; {
		case c == '"':
			s.i = j + 1
			return s.b[start:j], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return nil, false
		}
	}
	return nil, false
}

// object reads an object, calling member after each key and colon; member
// reads the value.
func (s *scanner) object(member func(key []byte) bool) bool {
	s.ws()
	if s.i >= len(s.b) || s.b[s.i] != '{' {
		return false
	}
	s.i++
	s.ws()
	if s.i < len(s.b) && s.b[s.i] == '}' {
		s.i++
		return true
	}
	for {
		s.ws()
		key, ok := s.str()
		if !ok {
			return false
		}
		s.ws()
		if s.i >= len(s.b) || s.b[s.i] != ':' {
			return false
		}
		s.i++
		if !member(key) {
			return false
		}
		s.ws()
		if s.i >= len(s.b) {
			return false
		}
		switch s.b[s.i] {
		case ',':
			s.i++
		case '}':
			s.i++
			return true
		default:
			return false
		}
	}
}

// skip passes over any value (strings with escapes included).
func (s *scanner) skip() bool {
	s.ws()
	if s.i >= len(s.b) {
		return false
	}
	switch s.b[s.i] {
	case '"':
		for j := s.i + 1; j < len(s.b); j++ {
			switch s.b[j] {
			case '\\':
				j++
			case '"':
				s.i = j + 1
				return true
			}
		}
		return false
	case '{', '[':
		depth := 0
		for j := s.i; j < len(s.b); j++ {
			switch s.b[j] {
			case '"':
				k := j + 1
				for ; k < len(s.b) && s.b[k] != '"'; k++ {
					if s.b[k] == '\\' {
						k++
					}
				}
				j = k
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.i = j + 1
					return true
				}
			}
		}
		return false
	}
	start := s.i
	for s.i < len(s.b) {
		switch s.b[s.i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return s.i > start
		}
		s.i++
	}
	return s.i > start
}

// transitPayload builds Transit's JSON request: the fields of
// transitRequest, with its omitempty rules. The result holds plaintext in
// base64: the caller wipes it.
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
