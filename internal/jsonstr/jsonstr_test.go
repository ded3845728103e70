package jsonstr

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestAppendString(t *testing.T) {
	for in, want := range map[string]string{
		"":               `""`,
		"key_id":         `"key_id"`,
		`a"b\c`:          `"a\"b\\c"`,
		"\n\r\t\x00\x1f": `"\n\r\t\u0000\u001f"`,
		"é€😀":            `"é€😀"`,
		"\u2028\u2029":   `"\u2028\u2029"`,
		"a\xffb":         `"a\ufffdb"`,
		"<&>":            `"<&>"`,
	} {
		if got := string(AppendString([]byte("x"), in)); got != "x"+want {
			t.Errorf("AppendString(%q) = %s, want %s", in, got[1:], want)
		}
	}
}

// The output is byte for byte encoding/json's (with HTML escaping off).
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range []string{"", "plain", `q"uote\back`, "\x00\x01\x1f\x7f", "tab\tnl\nret\r", "<a&b>",
		"ünïcödé €", "\u2028\u2029", "bad \xff\xfe utf8", "emoji 🔑", string([]byte{0xe2, 0x82})} {
		var want bytes.Buffer
		enc := json.NewEncoder(&want)
		enc.SetEscapeHTML(false)
		enc.Encode(s)
		if got := AppendString(nil, s); !bytes.Equal(got, bytes.TrimSuffix(want.Bytes(), []byte("\n"))) {
			t.Errorf("%q: got %s, want %s", s, got, want.Bytes())
		}
	}
}

func TestAppendStringNoAllocation(t *testing.T) {
	buf := make([]byte, 0, 64)
	if n := testing.AllocsPerRun(100, func() { AppendString(buf[:0], "keyward-default") }); n != 0 {
		t.Errorf("%.0f allocations", n)
	}
}

// FuzzAppendString checks the escaper against encoding/json: the output
// is valid JSON and decodes to s (with invalid UTF-8 replaced).
func FuzzAppendString(f *testing.F) {
	for _, s := range []string{"", "plain", "\"\\/", "\x00\x1f\x7f", "é€😀", "\u2028\u2029", "\xff\xfe", "a\xc3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b := AppendString(nil, s)
		var got string
		if err := json.Unmarshal(b, &got); err != nil {
			t.Fatalf("%q encodes to invalid JSON %s: %v", s, b, err)
		}
		if want := strings.ToValidUTF8(s, "\ufffd"); got != want && utf8.ValidString(s) {
			t.Fatalf("%q round-trips to %q", s, got)
		}
	})
}
