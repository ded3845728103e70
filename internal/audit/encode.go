package audit

import (
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/keyward/keyward/internal/jsonstr"
)

// timeLayout is RFC 3339 with exactly six fractional digits: fixed width
// sorts lexically, and microseconds match the precision of the rest of
// Keyward's timestamps.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// maxField caps every string field. Most fields come from the request (a
// key id from the path, a claimed access key, the peer address); the cap
// keeps one hostile request from writing a megabyte line.
const maxField = 1024

// appendEvent appends e as one JSON line. It is hand-rolled rather than
// encoding/json so the writer goroutine can reuse one buffer and pay no
// reflection per event; the field set is fixed, so there is nothing to
// gain from a generic encoder.
func appendEvent(b []byte, e *Event) []byte {
	b = append(b, `{"time":"`...)
	b = e.Time.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","request_id":`...)
	b = appendString(b, e.RequestID)
	b = append(b, `,"access_key":`...)
	b = appendString(b, e.AccessKey)
	if e.Identity != "" {
		b = append(b, `,"identity":`...)
		b = appendString(b, e.Identity)
	}
	b = append(b, `,"source":`...)
	b = appendString(b, e.SourceAddr)
	b = append(b, `,"method":`...)
	b = appendString(b, e.Method)
	b = append(b, `,"route":`...)
	b = appendString(b, e.Route)
	b = append(b, `,"action":`...)
	b = appendString(b, e.Action)
	b = append(b, `,"key_id":`...)
	b = appendString(b, e.KeyID)
	b = append(b, `,"status":`...)
	b = strconv.AppendInt(b, int64(e.Status), 10)
	b = append(b, `,"code":`...)
	b = appendString(b, e.Code)
	b = append(b, `,"latency_ms":`...)
	b = strconv.AppendFloat(b, float64(e.Latency)/float64(time.Millisecond), 'f', 3, 64)
	if a := e.Archive; a != nil {
		b = appendArchive(b, a)
	}
	return append(b, '}', '\n')
}

// appendArchive appends the "archive" object of a backup or restore.
func appendArchive(b []byte, a *ArchiveCounts) []byte {
	b = append(b, `,"archive":{"keys":`...)
	b = strconv.AppendInt(b, int64(a.Keys), 10)
	b = append(b, `,"keys_absent":`...)
	b = strconv.AppendInt(b, int64(a.KeysAbsent), 10)
	b = append(b, `,"aliases":`...)
	b = strconv.AppendInt(b, int64(a.Aliases), 10)
	for _, f := range []struct {
		name string
		n    int
	}{
		{"restored", a.Restored}, {"existing", a.Existing}, {"skipped", a.Skipped}, {"failed", a.Failed},
		{"aliases_restored", a.AliasesRestored}, {"aliases_existing", a.AliasesExisting}, {"aliases_skipped", a.AliasesSkipped},
	} {
		if f.n != 0 {
			b = append(b, `,"`...)
			b = append(b, f.name...)
			b = append(b, `":`...)
			b = strconv.AppendInt(b, int64(f.n), 10)
		}
	}
	if a.DryRun {
		b = append(b, `,"dry_run":true`...)
	}
	return append(b, '}')
}

// appendDropped appends the line that reports events lost since the last
// report (dropped) and since the logger was made (dropped_total).
func appendDropped(b []byte, now time.Time, dropped, total uint64) []byte {
	b = append(b, `{"time":"`...)
	b = now.UTC().AppendFormat(b, timeLayout)
	b = append(b, `","type":"audit_dropped","dropped":`...)
	b = strconv.AppendUint(b, dropped, 10)
	b = append(b, `,"dropped_total":`...)
	b = strconv.AppendUint(b, total, 10)
	return append(b, '}', '\n')
}

// appendString appends s as a JSON string (jsonstr: invalid UTF-8 becomes
// U+FFFD, so the line always parses). Strings longer than maxField bytes
// are cut (at a rune boundary) and marked with a trailing "...".
func appendString(b []byte, s string) []byte {
	if len(s) <= maxField {
		return jsonstr.AppendString(b, s)
	}
	n := maxField
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	b = jsonstr.AppendString(b, s[:n])
	return append(b[:len(b)-1], `..."`...) // cut: the closing quote moves after the ellipsis
}
