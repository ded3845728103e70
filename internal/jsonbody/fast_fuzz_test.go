package jsonbody

import (
	"strings"
	"testing"
)

// Differential fuzzing: for any bytes, Schema.Decode must give the value
// and the error Decode (encoding/json) gives, and the fast path alone must
// never accept a body encoding/json refuses nor decode one differently.

// trickySeeds are bodies every target starts from, on top of the tables.
var trickySeeds = []string{
	`{"key_id":"k","key_spec":"AES_256","encryption_context":{"a":"b"}}`,
	`{"ciphertext_blob":"AQID","key_id":"k","encryption_context":{"bucket":"b","object":"o"}}`,
	`{"key_id":"dk","plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
	`{"KeyId":"dk","KeySpec":"AES_256","NumberOfBytes":32,"EncryptionContext":{}}`,
	`{"CiphertextBlob":"AQIDBA==","KeyId":"k"}`,
	`{"ciphertext_blob":"AQID","source_key_id":"a","destination_key_id":"b","destination_encryption_context":{"c":"d"}}`,
	`{"key_id":"\u00e9\ud83d\ude00","encryption_context":{"\u0000":"\t"}}`,
	"{\"key_id\":\"\xe2\x82\xac\xf0\x9f\x98\x80\",\"encryption_context\":{\"\xc3\xa9\":\"\xe6\x97\xa5\"}}",
	"{\"key_id\":\"\xed\xbf\xbf\xc0\x80\"}",
	"{\"\u212aeyId\":\"x\",\"key_\u017fpec\":\"y\"}",
	`{"KEYID":"x","Key_Spec":"y","KEY_ID":"z"}`,
	`{"number_of_bytes":-9223372036854775808}`,
	`{"number_of_bytes":1234567890123456789}`,
	`{"number_of_bytes":12345678901234567}`,
	`{"number_of_bytes":-0.0e-0}`,
	`{"NumberOfBytes":64,"number_of_bytes":32,"NumberOfBytes":16}`,
	`{"plaintext":"` + strings.Repeat("QUJD", 64) + `"}`,
	`{"ciphertext_blob":"QUJDRA=\u003d"}`,
	`{"ciphertext_blob":"QQ==\r\n"}`,
	`{"ciphertext_blob":"Q Q=="}`,
	`{"encryption_context":{"a":"1","a":"2","b":null}}`,
	`{"encryption_context":{"a":"1"},"encryption_context":null}`,
	`null`, `  null  `, `[]`, `{}`, `""`, `0`, `{"key_id":"a"}{"key_id":"b"}`, `{"key_id":"a"} null`,
	"{\"key_id\":\"a\"}\x00", "\x00{}", "{\"key_id\":\"a\"}\xa0", "\v{}", "{}\f",
}

func addSeeds(f *testing.F, rename func(string) string) {
	var all []string
	all = append(all, trickySeeds...)
	for _, c := range generateCases {
		all = append(all, c.body)
	}
	for _, c := range blobCases {
		all = append(all, c.body)
	}
	for _, s := range all {
		f.Add([]byte(s))
		if rename != nil {
			f.Add([]byte(rename(s)))
		}
	}
}

func FuzzGenerateRequest(f *testing.F) {
	addSeeds(f, nil)
	f.Fuzz(func(t *testing.T, body []byte) { same(t, generateSchema, body) })
}

func FuzzEncryptRequest(f *testing.F) {
	addSeeds(f, func(s string) string { return strings.ReplaceAll(s, "ciphertext_blob", "plaintext") })
	f.Fuzz(func(t *testing.T, body []byte) { same(t, encryptSchema, body) })
}

func FuzzDecryptRequest(f *testing.F) {
	addSeeds(f, func(s string) string { return strings.ReplaceAll(s, "plaintext", "CiphertextBlob") })
	f.Fuzz(func(t *testing.T, body []byte) { same(t, decryptSchema, body) })
}

func FuzzReEncryptRequest(f *testing.F) {
	addSeeds(f, func(s string) string {
		return strings.NewReplacer("key_id", "destination_key_id", "KeyId", "SourceKeyId",
			"encryption_context", "source_encryption_context", "EncryptionContext", "DestinationEncryptionContext").Replace(s)
	})
	f.Fuzz(func(t *testing.T, body []byte) { same(t, reEncryptSchema, body) })
}

// FuzzFieldValues puts arbitrary bytes inside well-formed bodies, where
// byte-level mutation of whole bodies rarely reaches: string contents, map
// keys, numbers and base64, on every field kind of the schemas.
func FuzzFieldValues(f *testing.F) {
	for _, s := range [][3]string{
		{"dk", "bucket", "32"}, {"AES_256", "", "-0"}, {`a\"b`, `\u00e9`, "1e2"}, {"\xff", "\xed\xa0\x80", "01"},
		{"QUJD", "QQ==", "9223372036854775807"}, {"QQ\\r\\n==", "QQ=\\u003d", "-12345678901234567"}, {"é€😀", "\x7f", "1.0"},
	} {
		f.Add(s[0], s[1], s[2])
	}
	f.Fuzz(func(t *testing.T, a, b, n string) {
		same(t, generateSchema, []byte(`{"key_id":"`+a+`","encryption_context":{"`+b+`":"`+a+`","k":"`+b+`"},"number_of_bytes":`+n+`,"KeySpec":"`+b+`"}`))
		same(t, generateSchema, []byte(`{"NumberOfBytes":`+a+`,"key_spec":`+b+`}`+n))
		same(t, encryptSchema, []byte(`{"plaintext":"`+a+`","KeyId":"`+b+`","EncryptionContext":{`+n+`}}`))
		same(t, decryptSchema, []byte(`{"ciphertext_blob":"`+a+`","CiphertextBlob":"`+b+`","encryption_context":{"`+n+`":""}}`))
		same(t, reEncryptSchema, []byte(`{"`+a+`":"`+b+`"}`))
	})
}
