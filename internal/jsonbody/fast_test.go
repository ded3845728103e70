package jsonbody

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"unsafe"

	"github.com/keyward/keyward/internal/kms"
)

// Mirrors of the request bodies in internal/httpapi/datakeys.go. A schema
// is derived from the struct tags alone, so identical fields and tags give
// identical decoders: these stand in for the originals in the tests.

type generateReq struct {
	KeyID            string            `json:"key_id"`
	KeyIDAWS         string            `json:"KeyId"`
	KeySpec          string            `json:"key_spec"`
	KeySpecAWS       string            `json:"KeySpec"`
	NumberOfBytes    int               `json:"number_of_bytes"`
	NumberOfBytesAWS int               `json:"NumberOfBytes"`
	Context          map[string]string `json:"encryption_context"`
	ContextAWS       map[string]string `json:"EncryptionContext"`
}

type encryptReq struct {
	KeyID      string            `json:"key_id"`
	KeyIDAWS   string            `json:"KeyId"`
	Plaintext  []byte            `json:"plaintext"`
	Context    map[string]string `json:"encryption_context"`
	ContextAWS map[string]string `json:"EncryptionContext"`
}

type decryptReq struct {
	Blob       []byte            `json:"ciphertext_blob"`
	BlobAWS    []byte            `json:"CiphertextBlob"`
	KeyID      string            `json:"key_id"`
	KeyIDAWS   string            `json:"KeyId"`
	Context    map[string]string `json:"encryption_context"`
	ContextAWS map[string]string `json:"EncryptionContext"`
}

type reEncryptReq struct {
	Blob         []byte            `json:"ciphertext_blob"`
	BlobAWS      []byte            `json:"CiphertextBlob"`
	SourceCtx    map[string]string `json:"source_encryption_context"`
	SourceCtxAWS map[string]string `json:"SourceEncryptionContext"`
	SourceKeyID  string            `json:"source_key_id"`
	SourceKeyAWS string            `json:"SourceKeyId"`
	DestKeyID    string            `json:"destination_key_id"`
	DestKeyIDAWS string            `json:"DestinationKeyId"`
	DestCtx      map[string]string `json:"destination_encryption_context"`
	DestCtxAWS   map[string]string `json:"DestinationEncryptionContext"`
}

var (
	generateSchema  = NewSchema[generateReq]()
	encryptSchema   = NewSchema[encryptReq]()
	decryptSchema   = NewSchema[decryptReq]()
	reEncryptSchema = NewSchema[reEncryptReq]()
)

// same checks that s.Decode and Decode agree on body, value and error, and
// reports whether the fast path took the body.
func same[T any](t testing.TB, s *Schema[T], body []byte) (fast bool) {
	t.Helper()
	var want, got T
	wantErr := Decode(body, &want)
	gotErr := s.Decode(body, &got)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q: fast decoded %#v, encoding/json %#v", body, got, want)
	}
	switch {
	case (gotErr == nil) != (wantErr == nil):
		t.Fatalf("%q: fast error %v, encoding/json error %v", body, gotErr, wantErr)
	case gotErr != nil && (gotErr.Error() != wantErr.Error() || !errors.Is(gotErr, kms.ErrInvalidRequest)):
		t.Fatalf("%q: fast error %q, encoding/json error %q", body, gotErr, wantErr)
	}
	var probe T
	fast = decodeFast(s.fields, body, unsafe.Pointer(&probe))
	if fast && wantErr != nil {
		t.Fatalf("%q: fast path accepted a body encoding/json refuses (%v)", body, wantErr)
	}
	if fast && !reflect.DeepEqual(probe, want) {
		t.Fatalf("%q: fast path decoded %#v, encoding/json %#v", body, probe, want)
	}
	if !fast && !reflect.DeepEqual(probe, *new(T)) {
		t.Fatalf("%q: fast path gave up but left %#v", body, probe)
	}
	return fast
}

// The bool says whether the fast path must take the body (true) or hand it
// to encoding/json (false).
var generateCases = []struct {
	body string
	fast bool
}{
	{`{"key_id":"dk","key_spec":"AES_256","encryption_context":{"bucket":"b","object":"o"}}`, true},
	{`{"KeyId":"dk","KeySpec":"AES_128","NumberOfBytes":64,"EncryptionContext":{"a":"b"}}`, true},
	{"  \t\r\n{ \"key_id\" : \"dk\" , \"number_of_bytes\" :\n32 }\n\t ", true},
	{`{}`, true},
	{` { } `, true},
	{`{"encryption_context":{}}`, true},
	{`{"encryption_context":{"":""}}`, true},
	{`{"encryption_context":{"a":"1","a":"2"}}`, true},
	{`{"encryption_context":{"a":"1","b":"2","c":"3","d":"4","e":"5","f":"6","g":"7","h":"8","i":"9","j":"10"}}`, true},
	{`{"key_id":""}`, true},
	{`{"key_id":"héllo ✓ 𝄞","encryption_context":{"clé":"valeur"}}`, true},
	{"{\"key_id\":\"\xef\xbf\xbd\"}", true},
	{`{"number_of_bytes":0}`, true},
	{`{"number_of_bytes":-0}`, true},
	{`{"number_of_bytes":-17}`, true},
	{`{"number_of_bytes":999999999}`, true},
	{`{"number_of_bytes":123456789012345678}`, true},
	{`{"number_of_bytes":9223372036854775807}`, false},
	{`{"number_of_bytes":9223372036854775808}`, false},
	{`{"number_of_bytes":99999999999999999999}`, false},
	{`{"number_of_bytes":1e2}`, false},
	{`{"number_of_bytes":1E2}`, false},
	{`{"number_of_bytes":1.0}`, false},
	{`{"number_of_bytes":1.5}`, false},
	{`{"number_of_bytes":01}`, false},
	{`{"number_of_bytes":-}`, false},
	{`{"number_of_bytes":--1}`, false},
	{`{"number_of_bytes":+1}`, false},
	{`{"number_of_bytes":"32"}`, false},
	{`{"number_of_bytes":null}`, false},
	{`{"number_of_bytes":true}`, false},
	{`{"number_of_bytes":32x}`, false},
	{`null`, false},
	{` null `, false},
	{`nul`, false},
	{``, false},
	{`   `, false},
	{`{`, false},
	{`}`, false},
	{`[]`, false},
	{`"x"`, false},
	{`1`, false},
	{`{} {}`, false},
	{`{}x`, false},
	{`{},`, false},
	{"\xef\xbb\xbf{}", false},
	{`{"key_id":"dk",}`, false},
	{`{,"key_id":"dk"}`, false},
	{`{"key_id":"dk" "key_spec":"x"}`, false},
	{`{"key_id" "dk"}`, false},
	{`{"key_id":}`, false},
	{`{"key_id":"dk"`, false},
	{`{"key_id":"dk`, false},
	{`{"key_id`, false},
	{`{'key_id':'dk'}`, false},
	{`{key_id:"dk"}`, false},
	{`{"key_id":null}`, false},
	{`{"key_id":1}`, false},
	{`{"key_id":{"a":"b"}}`, false},
	{`{"key_id":["dk"]}`, false},
	{`{"key_id":"d\"k"}`, false},
	{`{"key_id":"d\\k"}`, false},
	{`{"key_id":"\u0064k"}`, false},
	{`{"key_id":"\ud834\udd1e"}`, false},
	{`{"key_id":"\ud800"}`, false},
	{`{"key_id":"\udc00\ud800"}`, false},
	{`{"key_id":"\u00"}`, false},
	{`{"key_id":"\x"}`, false},
	{"{\"key_id\":\"a\tb\"}", false},
	{"{\"key_id\":\"a\x00b\"}", false},
	{"{\"key_id\":\"a\x7fb\"}", true},
	{"{\"key_id\":\"\xff\"}", false},
	{"{\"key_id\":\"\xc3\"}", false},
	{"{\"key_id\":\"\xed\xa0\x80\"}", false},
	{"{\"key_id\":\"\xf4\x90\x80\x80\"}", false},
	{"{\"encryption_context\":{\"\xff\":\"v\"}}", false},
	{`{"key_id":"a","key_id":"b"}`, false},
	{`{"key_id":"a","KeyId":"b"}`, true},
	{`{"encryption_context":{"a":"1"},"encryption_context":{"b":"2"}}`, false},
	{`{"encryption_context":{"a":"1"},"EncryptionContext":{"b":"2"}}`, true},
	{`{"encryption_context":null}`, false},
	{`{"encryption_context":{"a":null}}`, false},
	{`{"encryption_context":{"a":1}}`, false},
	{`{"encryption_context":{"a":"1",}}`, false},
	{`{"encryption_context":{"a"}}`, false},
	{`{"encryption_context":{"a":"\n"}}`, false},
	{`{"encryption_context":["a"]}`, false},
	{`{"encryption_context":"a"}`, false},
	{`{"KEY_ID":"dk"}`, false},
	{`{"Key_Id":"dk"}`, false},
	{`{"keyid":"dk"}`, false},
	{`{"keyId":"dk"}`, false},
	{`{"kEY_ID":"x","key_id":"y"}`, false},
	{`{"key_id":"y","kEY_ID":"x"}`, false},
	{"{\"\u212aeyId\":\"dk\"}", false},
	{"{\"key_\u017fpec\":\"AES_256\"}", false},
	{`{"key_\u0069d":"dk"}`, false},
	{`{"key_\u0131d":"dk"}`, false},
	{`{"surprise":1}`, false},
	{`{"":1}`, false},
	{`{"key_id":"dk","surprise":{"deep":[1,2,{"x":null}]}}`, false},
	{`{"plaintext":"aGk="}`, false},
}

func TestSchemaGenerate(t *testing.T) {
	for _, c := range generateCases {
		if fast := same(t, generateSchema, []byte(c.body)); fast != c.fast {
			t.Errorf("%q: fast path %v, want %v", c.body, fast, c.fast)
		}
	}
}

var blobCases = []struct {
	body string
	fast bool
}{
	{`{"ciphertext_blob":"AQID","encryption_context":{"bucket":"b"}}`, true},
	{`{"CiphertextBlob":"AQIDBA==","KeyId":"k","EncryptionContext":{"a":"b"}}`, true},
	{`{"ciphertext_blob":""}`, true},
	{`{"ciphertext_blob":"QQ=="}`, true},
	{`{"ciphertext_blob":"QUI="}`, true},
	{`{"ciphertext_blob":"+/+/"}`, true},
	{`{"ciphertext_blob":"QQ"}`, false},
	{`{"ciphertext_blob":"QQ="}`, false},
	{`{"ciphertext_blob":"QQ==="}`, false},
	{`{"ciphertext_blob":"QQ==QQ=="}`, false},
	{`{"ciphertext_blob":"QR=="}`, true}, // StdEncoding is not strict about padding bits
	{`{"ciphertext_blob":"-_-_"}`, false},
	{`{"ciphertext_blob":"!!"}`, false},
	{`{"ciphertext_blob":"AQID","CiphertextBlob":"!!"}`, false},
	{`{"ciphertext_blob":"QQ\r\n=="}`, false},
	{`{"ciphertext_blob":"QQ\n=="}`, false},
	{`{"ciphertext_blob":"QQ\u003d="}`, false},
	{`{"ciphertext_blob":"ab\/c"}`, false},
	{"{\"ciphertext_blob\":\"QQ\r\n==\"}", false},
	{"{\"ciphertext_blob\":\"\xc3\xa9\"}", false},
	{`{"ciphertext_blob":null}`, false},
	{`{"ciphertext_blob":[1,2]}`, false},
	{`{"ciphertext_blob":1}`, false},
	{`{"ciphertext_blob":"AQID","ciphertext_blob":"AQID"}`, false},
	{`{"ciphertext_blob":"AQID","key_id":"k","plaintext":"AQID"}`, false},
	{`{"CIPHERTEXT_BLOB":"AQID"}`, false},
	{`null`, false},
}

func TestSchemaDecrypt(t *testing.T) {
	for _, c := range blobCases {
		if fast := same(t, decryptSchema, []byte(c.body)); fast != c.fast {
			t.Errorf("%q: fast path %v, want %v", c.body, fast, c.fast)
		}
	}
	for _, c := range generateCases {
		same(t, decryptSchema, []byte(c.body))
	}
}

func TestSchemaEncrypt(t *testing.T) {
	for _, c := range []struct {
		body string
		fast bool
	}{
		{`{"key_id":"dk","plaintext":"aGVsbG8=","encryption_context":{"a":"b"}}`, true},
		{`{"plaintext":""}`, true},
		{`{"plaintext":"aGVsbG8"}`, false},
		{`{"plaintext":null}`, false},
		{`{"Plaintext":"aGVsbG8="}`, false},
	} {
		if fast := same(t, encryptSchema, []byte(c.body)); fast != c.fast {
			t.Errorf("%q: fast path %v, want %v", c.body, fast, c.fast)
		}
	}
	for _, c := range append(generateCases, blobCases...) {
		same(t, encryptSchema, []byte(strings.ReplaceAll(c.body, "ciphertext_blob", "plaintext")))
	}
}

func TestSchemaReEncrypt(t *testing.T) {
	if !same(t, reEncryptSchema, []byte(`{"ciphertext_blob":"AQID","source_encryption_context":{"a":"b"},`+
		`"destination_key_id":"k2","DestinationEncryptionContext":{"c":"d"}}`)) {
		t.Error("common re-encrypt body not on the fast path")
	}
	for _, c := range append(generateCases, blobCases...) {
		same(t, reEncryptSchema, []byte(c.body))
	}
}

// Strings are carved from one arena; each must still read as its own value.
func TestSchemaArena(t *testing.T) {
	var r generateReq
	body := []byte(`{"key_id":"dk","key_spec":"AES_256","encryption_context":{"bucket":"b","object":"o","":"e"}}`)
	if err := generateSchema.Decode(body, &r); err != nil {
		t.Fatal(err)
	}
	clear(body) // decoded strings must not alias the body
	want := generateReq{KeyID: "dk", KeySpec: "AES_256", Context: map[string]string{"bucket": "b", "object": "o", "": "e"}}
	if !reflect.DeepEqual(r, want) {
		t.Fatalf("got %#v", r)
	}
}

// Decode resets the target: a reused value carries nothing over.
func TestSchemaResetsOnFallback(t *testing.T) {
	r := decryptReq{Blob: []byte{1}}
	if err := decryptSchema.Decode([]byte(`{"key_id":"k","ciphertext_blob":"AQID","CiphertextBlob":"!!"}`), &r); err == nil {
		t.Fatal("bad base64 accepted")
	}
	var want decryptReq
	wantErr := Decode([]byte(`{"key_id":"k","ciphertext_blob":"AQID","CiphertextBlob":"!!"}`), &want)
	if !reflect.DeepEqual(r, want) || wantErr == nil {
		t.Fatalf("got %#v, want %#v", r, want)
	}
}

func TestNewSchemaRefuses(t *testing.T) {
	type unexported struct {
		A string `json:"a"`
		b string
	}
	type untagged struct{ A string }
	type dash struct {
		A string `json:"-"`
	}
	type asString struct {
		A int `json:"a,string"`
	}
	type float struct {
		A float64 `json:"a"`
	}
	type id string
	type named struct {
		A id `json:"a"`
	}
	type folded struct {
		A string `json:"key"`
		B string `json:"KEY"`
	}
	type embedded struct{ generateReq }
	for name, build := range map[string]func(){
		"unexported": func() { _ = unexported{b: ""}; NewSchema[unexported]() },
		"untagged":   func() { NewSchema[untagged]() },
		"dash":       func() { NewSchema[dash]() },
		"string":     func() { NewSchema[asString]() },
		"float":      func() { NewSchema[float]() },
		"named":      func() { NewSchema[named]() },
		"folded":     func() { NewSchema[folded]() },
		"embedded":   func() { NewSchema[embedded]() },
		"map":        func() { NewSchema[map[string]string]() },
	} {
		func() {
			defer func() {
				if recover() == nil {
					t.Errorf("%s: NewSchema did not panic", name)
				}
			}()
			build()
		}()
	}
}

const benchGenerate = `{"key_id":"dk","key_spec":"AES_256","encryption_context":{"bucket":"b","object":"o"}}`

func BenchmarkDecodeGenerate(b *testing.B) {
	body := []byte(benchGenerate)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r generateReq
			if err := generateSchema.Decode(body, &r); err != nil || r.KeySpec != "AES_256" {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r generateReq
			if err := Decode(body, &r); err != nil || r.KeySpec != "AES_256" {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeDecrypt(b *testing.B) {
	body := []byte(`{"ciphertext_blob":"` + strings.Repeat("AQIDBAUG", 16) + `","encryption_context":{"bucket":"b"}}`)
	b.Run("fast", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r decryptReq
			if err := decryptSchema.Decode(body, &r); err != nil || len(r.Blob) != 96 {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var r decryptReq
			if err := Decode(body, &r); err != nil || len(r.Blob) != 96 {
				b.Fatal(err)
			}
		}
	})
}

// awsReq has the members the fast path leaves to encoding/json.
type awsReq struct {
	KeyID       string   `json:"KeyId"`
	NumberOf    int      `json:"NumberOfBytes"`
	GrantTokens []string `json:"GrantTokens"`
	DryRun      bool     `json:"DryRun"`
}

// TestSchemaSlowOnlyMembers: bodies without the bool and []string members
// take the fast path; bodies with them (valid or not) decode as
// encoding/json decodes them.
func TestSchemaSlowOnlyMembers(t *testing.T) {
	s := NewSchema[awsReq]()
	for _, c := range []struct {
		body string
		fast bool
	}{
		{`{"KeyId":"k","NumberOfBytes":32}`, true},
		{`{"KeyId":"k","GrantTokens":["a","b"]}`, false},
		{`{"DryRun":true,"KeyId":"k"}`, false},
		{`{"DryRun":"yes"}`, false},
		{`{"GrantTokens":[1]}`, false},
		{`{"GrantTokens":null,"DryRun":false}`, false},
	} {
		if fast := same(t, s, []byte(c.body)); fast != c.fast {
			t.Errorf("%q: fast path %v, want %v", c.body, fast, c.fast)
		}
	}
	var v awsReq
	if err := s.Decode([]byte(`{"KeyId":"k","GrantTokens":["a"],"DryRun":true}`), &v); err != nil || !v.DryRun || len(v.GrantTokens) != 1 || v.KeyID != "k" {
		t.Fatalf("slow members: %+v %v", v, err)
	}
}
