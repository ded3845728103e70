package jsonbody

import (
	"encoding"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"
	"unsafe"
)

// Schema decodes request bodies into one flat struct type T exactly as
// Decode does, but without encoding/json's reflection and allocations on
// the common shape of a body.
//
// The fast path accepts only a strict subset of JSON: one object whose keys
// are exact field names (each at most once), whose string values hold no
// escape sequence and only valid UTF-8, whose numbers are plain integers of
// a few digits and whose base64 decodes cleanly. On anything else (null,
// escapes, a key that is not an exact field name, a duplicate key, a
// fraction or exponent, invalid or trailing data...) the struct is reset and
// the whole body goes through Decode, so results and error messages are
// those of encoding/json by construction.
//
// T may only have exported, non-embedded fields of type string, int,
// []byte or map[string]string with a plain `json:"name"` tag (",omitempty"
// allowed), and fields of type bool or []string that the fast path leaves
// to Decode (a body that holds one of them is decoded by encoding/json: they
// are the rarely sent members, such as AWS's GrantTokens and DryRun);
// NewSchema panics on anything else.
type Schema[T any] struct {
	fields []field
}

type kind uint8

const (
	kindString kind = iota + 1
	kindInt
	kindBytes
	kindStringMap
	kindSlowOnly // bool, []string: a body holding it takes the slow path
)

type field struct {
	name   string
	offset uintptr // in the struct; the Go type is the one kind stands for
	kind   kind
}

// at is the field f of the struct at base. P must be the Go type of f's
// kind, which NewSchema has checked against the struct.
func at[P any](base unsafe.Pointer, f field) *P {
	return (*P)(unsafe.Add(base, f.offset))
}

// maxFields bounds a schema so that a uint64 tracks the keys already seen.
const maxFields = 64

var (
	typeString    = reflect.TypeFor[string]()
	typeInt       = reflect.TypeFor[int]()
	typeBytes     = reflect.TypeFor[[]byte]()
	typeStringMap = reflect.TypeFor[map[string]string]()
	typeBool      = reflect.TypeFor[bool]()
	typeStrings   = reflect.TypeFor[[]string]()
	typeJSONUnm   = reflect.TypeFor[json.Unmarshaler]()
	typeTextUnm   = reflect.TypeFor[encoding.TextUnmarshaler]()
)

// NewSchema builds the schema of T; it panics if T has a shape the fast
// path does not reproduce faithfully.
func NewSchema[T any]() *Schema[T] {
	t := reflect.TypeFor[T]()
	fail := func(format string, args ...any) {
		panic(fmt.Sprintf("jsonbody.NewSchema[%s]: "+format, append([]any{t}, args...)...))
	}
	if t.Kind() != reflect.Struct {
		fail("not a struct")
	}
	if reflect.PointerTo(t).Implements(typeJSONUnm) || reflect.PointerTo(t).Implements(typeTextUnm) {
		fail("has its own unmarshaler")
	}
	if t.NumField() > maxFields {
		fail("more than %d fields", maxFields)
	}
	s := &Schema[T]{}
	for i := range t.NumField() {
		sf := t.Field(i)
		if !sf.IsExported() || sf.Anonymous {
			fail("field %s is unexported or embedded", sf.Name)
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if !plainName(name) || (opts != "" && opts != "omitempty") {
			fail("field %s needs a plain json tag", sf.Name)
		}
		var k kind
		switch sf.Type {
		case typeString:
			k = kindString
		case typeInt:
			k = kindInt
		case typeBytes:
			k = kindBytes
		case typeStringMap:
			k = kindStringMap
		case typeBool, typeStrings:
			k = kindSlowOnly
		default:
			fail("field %s has unsupported type %s", sf.Name, sf.Type)
		}
		for _, f := range s.fields {
			// Names equal under folding would bring encoding/json's
			// precedence rules into play: refuse them.
			if strings.EqualFold(f.name, name) {
				fail("fields %q and %q collide", f.name, name)
			}
		}
		s.fields = append(s.fields, field{name: name, offset: sf.Offset, kind: k})
	}
	return s
}

func plainName(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// Decode decodes body into *v with exactly the result and error that
// Decode gives for a zero *v. Unlike Decode, it first resets *v: nothing of
// a previous value is kept or merged into. v is not retained.
func (s *Schema[T]) Decode(body []byte, v *T) error {
	*v = *new(T)
	if decodeFast(s.fields, body, unsafe.Pointer(v)) {
		return nil
	}
	// Decode into a fresh value so that v itself does not escape to the
	// heap, which would cost the fast path an allocation.
	tmp := new(T)
	err := Decode(body, tmp)
	*v = *tmp
	return err
}

// decodeFast decodes body into the zero struct at base in two passes: the
// first validates and measures, the second stores. On false the struct is
// zero again.
func decodeFast(fields []field, body []byte, base unsafe.Pointer) bool {
	var d scanner
	d.buf = body
	if !d.object(fields, nil) {
		return false
	}
	if d.need > 0 {
		d.arena.Grow(d.need)
	}
	d.pos, d.seen, d.store = 0, 0, true
	if d.object(fields, base) {
		return true
	}
	// Only a base64 error gets here: wipe what was decoded, zero the rest.
	for _, f := range fields {
		switch f.kind {
		case kindString:
			*at[string](base, f) = ""
		case kindInt:
			*at[int](base, f) = 0
		case kindBytes:
			clear(*at[[]byte](base, f))
			*at[[]byte](base, f) = nil
		case kindStringMap:
			*at[map[string]string](base, f) = nil
		}
	}
	return false
}

// scanner walks one body. In the first pass (store false) it validates the
// subset of JSON the fast path handles and adds up the string bytes and map
// sizes; in the second it stores into the struct, carving every string out
// of a single arena.
type scanner struct {
	buf   []byte
	pos   int
	store bool
	seen  uint64
	need  int
	sizes [maxFields]int
	arena strings.Builder
}

func (d *scanner) ws() {
	for d.pos < len(d.buf) {
		switch d.buf[d.pos] {
		case ' ', '\t', '\n', '\r':
			d.pos++
		default:
			return
		}
	}
}

// next skips white space and consumes c.
func (d *scanner) next(c byte) bool {
	d.ws()
	if d.pos < len(d.buf) && d.buf[d.pos] == c {
		d.pos++
		return true
	}
	return false
}

// object reads the top-level object and requires nothing but white space
// after it.
func (d *scanner) object(fields []field, base unsafe.Pointer) bool {
	if !d.next('{') {
		return false
	}
	if !d.next('}') {
		for {
			d.ws()
			lo, hi, ok := d.str()
			if !ok {
				return false
			}
			i := lookup(fields, d.buf[lo:hi])
			if i < 0 || d.seen&(1<<i) != 0 {
				return false
			}
			d.seen |= 1 << i
			if !d.next(':') {
				return false
			}
			d.ws()
			if !d.value(i, fields[i], base) {
				return false
			}
			if d.next(',') {
				continue
			}
			if d.next('}') {
				break
			}
			return false
		}
	}
	d.ws()
	return d.pos == len(d.buf)
}

func lookup(fields []field, key []byte) int {
	for i := range fields {
		if string(key) == fields[i].name {
			return i
		}
	}
	return -1
}

// value reads the value of field f (the i-th of the schema).
func (d *scanner) value(i int, f field, base unsafe.Pointer) bool {
	switch f.kind {
	case kindString:
		lo, hi, ok := d.str()
		if !ok {
			return false
		}
		if d.store {
			*at[string](base, f) = d.intern(lo, hi)
		} else {
			d.need += hi - lo
		}
	case kindInt:
		n, ok := d.integer()
		if !ok {
			return false
		}
		if d.store {
			*at[int](base, f) = n
		}
	case kindBytes:
		lo, hi, ok := d.str()
		if !ok {
			return false
		}
		if d.store {
			// As encoding/json does: StdEncoding into a buffer of
			// DecodedLen, so "" gives a non-nil empty slice.
			src := d.buf[lo:hi]
			b := make([]byte, base64.StdEncoding.DecodedLen(len(src)))
			n, err := base64.StdEncoding.Decode(b, src)
			if err != nil {
				clear(b)
				return false
			}
			*at[[]byte](base, f) = b[:n]
		}
	case kindStringMap:
		return d.stringMap(i, f, base)
	default:
		return false
	}
	return true
}

// stringMap reads an object of strings. Repeated keys inside it behave as
// in encoding/json: the last one wins.
func (d *scanner) stringMap(i int, f field, base unsafe.Pointer) bool {
	if !d.next('{') {
		return false
	}
	var m map[string]string
	if d.store {
		m = make(map[string]string, d.sizes[i])
		*at[map[string]string](base, f) = m
	}
	if d.next('}') {
		return true
	}
	for {
		d.ws()
		klo, khi, ok := d.str()
		if !ok || !d.next(':') {
			return false
		}
		d.ws()
		vlo, vhi, ok := d.str()
		if !ok {
			return false
		}
		if d.store {
			m[d.intern(klo, khi)] = d.intern(vlo, vhi)
		} else {
			d.need += khi - klo + vhi - vlo
			d.sizes[i]++
		}
		if d.next(',') {
			continue
		}
		return d.next('}')
	}
}

// plain marks the bytes a string may hold as they are: printable ASCII
// other than the quote and the backslash. Bytes from 0x80 are allowed when
// the whole string is valid UTF-8.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 0x80; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// str reads a string that needs no unescaping and returns the bounds of its
// contents.
func (d *scanner) str() (lo, hi int, ok bool) {
	if d.pos >= len(d.buf) || d.buf[d.pos] != '"' {
		return 0, 0, false
	}
	lo = d.pos + 1
	ascii := true
	i := lo
	for ; i < len(d.buf); i++ {
		c := d.buf[i]
		if plain[c] {
			continue
		}
		if c < utf8.RuneSelf {
			break
		}
		ascii = false
	}
	if i == len(d.buf) || d.buf[i] != '"' {
		return 0, 0, false // end of input, escape or control character
	}
	if !ascii && !utf8.Valid(d.buf[lo:i]) {
		return 0, 0, false // encoding/json would substitute U+FFFD
	}
	d.pos = i + 1
	return lo, i, true
}

// maxDigits keeps an integer well inside the range of int.
const maxDigits = 9 + 9*(strconv.IntSize/64)

// integer reads -?(0|[1-9][0-9]*) of at most maxDigits digits, not followed
// by a fraction or an exponent.
func (d *scanner) integer() (int, bool) {
	i, neg := d.pos, false
	if i < len(d.buf) && d.buf[i] == '-' {
		i, neg = i+1, true
	}
	start, n := i, 0
	for i < len(d.buf) && '0' <= d.buf[i] && d.buf[i] <= '9' {
		n = n*10 + int(d.buf[i]-'0')
		i++
		if i-start > maxDigits {
			return 0, false
		}
	}
	switch {
	case i == start, d.buf[start] == '0' && i-start > 1:
		return 0, false
	case i < len(d.buf) && (d.buf[i] == '.' || d.buf[i] == 'e' || d.buf[i] == 'E'):
		return 0, false
	}
	d.pos = i
	if neg {
		n = -n
	}
	return n, true
}

// intern copies buf[lo:hi] into the arena and returns it as a string.
func (d *scanner) intern(lo, hi int) string {
	if lo == hi {
		return ""
	}
	d.arena.Write(d.buf[lo:hi])
	s := d.arena.String()
	return s[len(s)-(hi-lo):]
}
