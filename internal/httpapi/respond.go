package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/keyward/keyward/internal/jsonstr"
	"github.com/keyward/keyward/internal/kms"
)

// jsonContentType is the Content-Type of every JSON answer, shared: set by
// assignment it costs no allocation per response (net/http copies the
// header map before writing it and never changes the values).
var jsonContentType = []string{"application/json"}

// setContentLength declares the length of a body larger than net/http's
// chunking buffer. A smaller one, written whole before the handler
// returns, gets its Content-Length from net/http itself, without the
// header value and slice allocated here on every response.
func setContentLength(w http.ResponseWriter, n int) {
	if n > 2048 {
		w.Header()["Content-Length"] = []string{strconv.Itoa(n)}
	}
}

// writeJSON writes v as the JSON response body.
func writeJSON(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, v, jsonContentType)
}

// writeJSONAs is writeJSON with another JSON Content-Type (shared, as
// jsonContentType).
func writeJSONAs(w http.ResponseWriter, status int, v any, contentType []string) {
	b, err := json.Marshal(v)
	if err != nil { // only our own types are written; this is a bug
		status, b = http.StatusInternalServerError, []byte(`{"code":"InternalError","message":"response encoding failed"}`)
	}
	w.Header()["Content-Type"] = contentType
	setContentLength(w, len(b)+1)
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// secretJSON builds a flat JSON object whose values may include secret
// bytes (base64 encoded) in a buffer the caller wipes after writing: the
// encoding/json path would leave immutable string copies of the secret.
type secretJSON struct{ buf []byte }

// secretAnswers holds answer builders for reuse: every data-plane answer
// needs one, and reusing them saves the buffer's allocation per request.
// A builder goes back only from WriteAndWipe, after its buffer was
// overwritten (net/http has copied or sent the bytes by then), and only if
// its buffer is small: one large answer must not pin memory in the pool.
var secretAnswers = sync.Pool{New: func() any { return new(secretJSON) }}

const maxPooledAnswer = 4 << 10

// newSecretJSON returns a builder with room for about size bytes; the
// caller must not touch it after WriteAndWipe.
func newSecretJSON(size int) *secretJSON {
	j := secretAnswers.Get().(*secretJSON)
	if cap(j.buf) < size+64 {
		j.buf = make([]byte, 0, size+64)
	}
	j.buf = append(j.buf[:0], '{')
	return j
}

func (j *secretJSON) key(k string) {
	if len(j.buf) > 1 {
		j.buf = append(j.buf, ',')
	}
	j.buf = jsonstr.AppendString(j.buf, k)
	j.buf = append(j.buf, ':')
}

// String adds a string field (not secret).
func (j *secretJSON) String(k, v string) {
	j.key(k)
	j.buf = jsonstr.AppendString(j.buf, v)
}

// Bytes adds a base64 field.
func (j *secretJSON) Bytes(k string, v []byte) {
	j.key(k)
	j.buf = append(j.buf, '"')
	j.buf = base64.StdEncoding.AppendEncode(j.buf, v)
	j.buf = append(j.buf, '"')
}

// WriteAndWipe sends the object and overwrites the buffer.
func (j *secretJSON) WriteAndWipe(w http.ResponseWriter) {
	j.buf = append(j.buf, '}', '\n')
	w.Header()["Content-Type"] = jsonContentType
	setContentLength(w, len(j.buf))
	w.WriteHeader(http.StatusOK)
	w.Write(j.buf)
	j.recycle()
}

// recycle overwrites the answer and gives the builder back for reuse.
func (j *secretJSON) recycle() {
	clear(j.buf)
	if cap(j.buf) <= maxPooledAnswer {
		secretAnswers.Put(j)
	}
}

// timestamp formats RFC 3339 UTC with microseconds (docs/api.md, "Timestamps").
func timestamp(t time.Time) string {
	return t.UTC().Format("2006-01-02T15:04:05.000000Z")
}

func optionalTimestamp(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := timestamp(t)
	return &s
}

// keyMetadata is the key_metadata object (docs/api.md, "The key_metadata object").
type keyMetadata struct {
	KeyID           string    `json:"key_id"`
	Description     string    `json:"description"`
	Enabled         bool      `json:"enabled"`
	KeyState        kms.State `json:"key_state"`
	KeyUsage        string    `json:"key_usage"`
	CreationDate    string    `json:"creation_date"`
	DeletionDate    *string   `json:"deletion_date"`
	RotationEnabled bool      `json:"rotation_enabled"`
	// RotationPeriodDays is 0 while automatic rotation is off.
	RotationPeriodDays int               `json:"rotation_period_days"`
	NextRotationDate   *string           `json:"next_rotation_date"`
	KeyVersion         uint32            `json:"key_version"`
	RotationDate       *string           `json:"rotation_date"`
	Tags               map[string]string `json:"tags"`
	Aliases            []string          `json:"aliases"`
}

// keyMetadata renders m; the service knows when rotation is next due.
func (c *call) keyMetadata(m kms.Metadata) *keyMetadata {
	km := toKeyMetadata(m)
	km.NextRotationDate = optionalTimestamp(c.svc.NextRotation(m))
	return km
}

func toKeyMetadata(m kms.Metadata) *keyMetadata {
	tags, aliases := m.Tags, m.Aliases
	if tags == nil {
		tags = map[string]string{}
	}
	if aliases == nil {
		aliases = []string{}
	}
	return &keyMetadata{
		KeyID:              m.ID,
		Description:        m.Description,
		Enabled:            m.State == kms.StateEnabled,
		KeyState:           m.State,
		KeyUsage:           m.Usage,
		CreationDate:       timestamp(m.CreationDate),
		DeletionDate:       optionalTimestamp(m.DeletionDate),
		RotationEnabled:    m.RotationEnabled,
		RotationPeriodDays: m.RotationPeriodDays,
		KeyVersion:         m.Version,
		RotationDate:       optionalTimestamp(m.RotationDate),
		Aliases:            aliases,
		Tags:               tags,
	}
}
