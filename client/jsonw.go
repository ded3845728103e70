package client

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"

	"github.com/keyward/keyward/internal/jsonstr"
	"github.com/keyward/keyward/internal/wipe"
)

// jsonObject builds a flat JSON object in one buffer that the client wipes
// once the request is done. encoding/json would leave copies of secret
// values (plaintext, master keys, Vault tokens) in its pooled encode
// buffers; this writer leaves them only in this buffer.
type jsonObject struct {
	buf []byte
}

func newJSONObject(size int) *jsonObject {
	return &jsonObject{buf: append(make([]byte, 0, size+64), '{')}
}

func (j *jsonObject) key(k string) {
	if len(j.buf) > 1 {
		j.buf = append(j.buf, ',')
	}
	j.buf = jsonstr.AppendString(j.buf, k)
	j.buf = append(j.buf, ':')
}

// grow makes room for n more bytes, wiping the old buffer if it moves.
func (j *jsonObject) grow(n int) {
	if cap(j.buf)-len(j.buf) >= n {
		return
	}
	nb := make([]byte, len(j.buf), 2*cap(j.buf)+n)
	copy(nb, j.buf)
	clear(j.buf)
	j.buf = nb
}

// String adds a string field.
func (j *jsonObject) String(k, v string) {
	j.grow(len(k) + 2*len(v) + 8)
	j.key(k)
	j.buf = jsonstr.AppendString(j.buf, v)
}

// Bytes adds a standard base64 field.
func (j *jsonObject) Bytes(k string, v []byte) {
	j.grow(len(k) + base64.StdEncoding.EncodedLen(len(v)) + 8)
	j.key(k)
	j.buf = append(j.buf, '"')
	j.buf = base64.StdEncoding.AppendEncode(j.buf, v)
	j.buf = append(j.buf, '"')
}

// Bool adds a boolean field.
func (j *jsonObject) Bool(k string, v bool) {
	j.grow(len(k) + 16)
	j.key(k)
	j.buf = strconv.AppendBool(j.buf, v)
}

// Int adds an integer field.
func (j *jsonObject) Int(k string, v int64) {
	j.grow(len(k) + 32)
	j.key(k)
	j.buf = strconv.AppendInt(j.buf, v, 10)
}

// Raw adds a field whose value is already JSON (not secret).
func (j *jsonObject) Raw(k string, v []byte) {
	j.grow(len(k) + len(v) + 8)
	j.key(k)
	j.buf = append(j.buf, v...)
}

// Value adds a non-secret value encoded with encoding/json.
func (j *jsonObject) Value(k string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	j.Raw(k, b)
	return nil
}

// StringMap adds a string map with sorted keys (strings only, so that a
// secret in it never passes through encoding/json).
func (j *jsonObject) StringMap(k string, m map[string]string) {
	keys := make([]string, 0, len(m))
	n := 0
	for mk, mv := range m {
		keys = append(keys, mk)
		n += 2*(len(mk)+len(mv)) + 6
	}
	slices.Sort(keys)
	j.grow(len(k) + n + 8)
	j.key(k)
	j.buf = append(j.buf, '{')
	for i, mk := range keys {
		if i > 0 {
			j.buf = append(j.buf, ',')
		}
		j.buf = jsonstr.AppendString(j.buf, mk)
		j.buf = append(j.buf, ':')
		j.buf = jsonstr.AppendString(j.buf, m[mk])
	}
	j.buf = append(j.buf, '}')
}

// Object adds a nested object built by another writer, then wipes it.
func (j *jsonObject) Object(k string, o *jsonObject) {
	b := o.Done()
	j.Raw(k, b)
	clear(b)
}

// Done closes the object and returns the buffer (the caller wipes it).
func (j *jsonObject) Done() []byte {
	j.grow(1)
	j.buf = append(j.buf, '}')
	return j.buf
}

// errResponseTooLarge: the response body is above the client's limit.
var errResponseTooLarge = errors.New("keyward: response body larger than the client's limit")

// readBody reads at most limit bytes of r (a response may carry plaintext:
// wipe.ReadAll leaves no copy behind).
func readBody(r io.Reader, contentLength, limit int64) ([]byte, error) {
	buf, err := wipe.ReadAll(r, contentLength, limit)
	switch {
	case errors.Is(err, wipe.ErrTooLarge):
		return nil, errResponseTooLarge
	case err != nil:
		return nil, fmt.Errorf("keyward: reading the response: %w", err)
	}
	return buf, nil
}
