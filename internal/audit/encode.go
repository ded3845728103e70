package audit

import (
	"strconv"
	"time"
	"unicode/utf8"
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
	return append(b, '}', '\n')
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

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. strconv.Quote is not JSON (it
// emits \x00 and \U escapes), so this escapes per RFC 8259: quote,
// backslash and control characters; invalid UTF-8 becomes U+FFFD so the
// line always parses; U+2028/2029 are escaped for JavaScript consumers.
// Strings longer than maxField bytes are cut (at a rune boundary) and
// marked with a trailing "...".
func appendString(b []byte, s string) []byte {
	cut := false
	if len(s) > maxField {
		n := maxField
		for n > 0 && !utf8.RuneStart(s[n]) {
			n--
		}
		s, cut = s[:n], true
	}
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	if cut {
		b = append(b, "..."...)
	}
	return append(b, '"')
}
