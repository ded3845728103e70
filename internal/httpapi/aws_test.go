package httpapi

import (
	"bytes"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/iam"
)

// awsCall sends one AWS KMS request (the door's unit tests: trustAll signs
// in as root, with no region, so ARNs read arn:aws:kms::<account>:...).
func awsCall(t testing.TB, s *Server, target string, body string) (*httptest.ResponseRecorder, map[string]any) {
	t.Helper()
	req := httptest.NewRequest("POST", "/", strings.NewReader(body))
	if target != "" {
		req.Header.Set("X-Amz-Target", target)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, req)
	var out map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &out); err != nil {
		t.Fatalf("%s: answer is not a JSON object: %q", target, rec.Body.String())
	}
	if ct := rec.Header().Get("Content-Type"); ct != "application/x-amz-json-1.1" {
		t.Errorf("%s: Content-Type %q", target, ct)
	}
	if rec.Header().Get("X-Amzn-Requestid") == "" {
		t.Errorf("%s: no x-amzn-RequestId", target)
	}
	return rec, out
}

func awsOp(t testing.TB, s *Server, op, body string) map[string]any {
	t.Helper()
	rec, out := awsCall(t, s, awsTargetPrefix+op, body)
	if rec.Code != 200 {
		t.Fatalf("%s %s: %d %s", op, body, rec.Code, rec.Body.String())
	}
	return out
}

func awsErr(t testing.TB, s *Server, op, body, want string) {
	t.Helper()
	rec, out := awsCall(t, s, awsTargetPrefix+op, body)
	if rec.Code != 400 || out["__type"] != want || out["message"] == "" {
		t.Errorf("%s %.60s: want 400 %s; got %d %v", op, body, want, rec.Code, out)
	}
}

// TestAWSDoorUnit covers the door's decoding, validation and error
// mapping without the network (e2e/aws_*_test.go drive it with the AWS
// SDK, the aws CLI and the JavaScript SDK against the binary).
func TestAWSDoorUnit(t *testing.T) {
	s := newTestServer(t, true)
	out := awsOp(t, s, "CreateKey", `{"Description":"d","Tags":[{"TagKey":"name","TagValue":"not an id"}]}`)
	md := out["KeyMetadata"].(map[string]any)
	id := md["KeyId"].(string)
	if len(id) != 36 || md["Arn"] != "arn:aws:kms::000000000000:key/"+id || md["KeyState"] != "Enabled" || md["KeySpec"] != "SYMMETRIC_DEFAULT" {
		t.Fatalf("CreateKey: %v", md)
	}
	if _, ok := md["CreationDate"].(float64); !ok {
		t.Errorf("CreationDate is not epoch seconds: %v", md["CreationDate"])
	}
	dk := awsOp(t, s, "GenerateDataKey", `{"KeyId":"`+id+`","KeySpec":"AES_256","EncryptionContext":{"a":"b"}}`)
	blob := dk["CiphertextBlob"].(string)
	pt := awsOp(t, s, "Decrypt", `{"CiphertextBlob":"`+blob+`","EncryptionContext":{"a":"b"}}`)
	if pt["Plaintext"] != dk["Plaintext"] || pt["KeyId"] != md["Arn"] || pt["EncryptionAlgorithm"] != "SYMMETRIC_DEFAULT" {
		t.Errorf("Decrypt: %v vs %v", pt, dk)
	}
	// The admin API opens the same blob with the same context.
	rec, adm := doCall(t, s, "POST", "/kms/decrypt", []byte(`{"ciphertext_blob":"`+blob+`","encryption_context":{"a":"b"}}`))
	if rec.Code != 200 || adm["plaintext"] != dk["Plaintext"] {
		t.Errorf("admin decrypt of an AWS blob: %d %v", rec.Code, adm)
	}

	for _, c := range []struct{ op, body, want string }{
		{"GenerateDataKey", `{"KeyId":"` + id + `"}`, "ValidationException"},
		{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"AES_256","NumberOfBytes":32}`, "ValidationException"},
		{"GenerateDataKey", `{"KeyId":"` + id + `","NumberOfBytes":1025}`, "ValidationException"},
		{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"aes256"}`, "ValidationException"},
		{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"AES_256","DryRun":true}`, "UnsupportedOperationException"},
		{"GenerateDataKey", `{"KeyId":"missing","KeySpec":"AES_256"}`, "NotFoundException"},
		{"GenerateDataKey", `{"KeyId":"alias/missing","KeySpec":"AES_256"}`, "NotFoundException"},
		{"GenerateDataKey", `{"KeyId":"arn:aws:kms:us-east-1:111122223333:key/` + id + `","KeySpec":"AES_256"}`, "NotFoundException"},
		{"GenerateDataKey", `{"KeySpec":"AES_256"}`, "ValidationException"},
		{"GenerateDataKey", `{"KeyId":"` + id + `","KeySpec":"AES_256","Surprise":1}`, "ValidationException"},
		{"Decrypt", `{"CiphertextBlob":"` + blob + `"}`, "InvalidCiphertextException"},
		{"Decrypt", `{"CiphertextBlob":"` + blob + `","EncryptionContext":{"a":"b"},"KeyId":"dk"}`, "IncorrectKeyException"},
		{"Decrypt", `{"CiphertextBlob":"AQ=="}`, "InvalidCiphertextException"},
		{"Decrypt", `{}`, "ValidationException"},
		{"Encrypt", `{"KeyId":"dk","Plaintext":"` + strings.Repeat("A", 5464) + `"}`, "ValidationException"},
		{"Encrypt", `{"KeyId":"dk","Plaintext":"aGk=","EncryptionAlgorithm":"RSAES_OAEP_SHA_256"}`, "ValidationException"},
		{"ScheduleKeyDeletion", `{"KeyId":"dk","PendingWindowInDays":6}`, "ValidationException"},
		{"ScheduleKeyDeletion", `{"KeyId":"dk","PendingWindowInDays":31}`, "ValidationException"},
		{"CancelKeyDeletion", `{"KeyId":"dk"}`, "KMSInvalidStateException"},
		{"CreateAlias", `{"AliasName":"nope","TargetKeyId":"dk"}`, "InvalidAliasNameException"},
		{"CreateAlias", `{"AliasName":"alias/aws/s3","TargetKeyId":"dk"}`, "InvalidAliasNameException"},
		{"CreateAlias", `{"AliasName":"alias/x","TargetKeyId":"alias/y"}`, "ValidationException"},
		{"ListKeys", `{"Marker":"garbage!"}`, "InvalidMarkerException"},
		{"ListKeys", `{"Limit":0}`, "ValidationException"},
		{"ListAliases", `{"Limit":101}`, "ValidationException"},
		{"ListAliases", `{"Marker":"` + encodeMarker(markerKeys, "dk") + `"}`, "InvalidMarkerException"},
		{"CreateKey", `{"KeySpec":"RSA_2048"}`, "UnsupportedOperationException"},
		{"CreateKey", `{"Policy":"{}"}`, "UnsupportedOperationException"},
		{"CreateKey", `{"Origin":"EXTERNAL"}`, "UnsupportedOperationException"},
		{"CreateGrant", `{"KeyId":"dk"}`, "UnsupportedOperationException"},
		{"Sign", `{}`, "UnsupportedOperationException"},
		{"GenerateRandom", `{"NumberOfBytes":0}`, "ValidationException"},
		{"GenerateRandom", `{}`, "ValidationException"},
	} {
		awsErr(t, s, c.op, c.body, c.want)
	}
	for _, target := range []string{"", "TrentService", "Other.ListKeys", "TrentService.listkeys"} {
		rec, out := awsCall(t, s, target, `{}`)
		if rec.Code != 400 || out["__type"] != "UnsupportedOperationException" {
			t.Errorf("target %q: %d %v", target, rec.Code, out)
		}
	}

	// Disabled and pending keys, and CancelKeyDeletion to Disabled.
	awsOp(t, s, "DisableKey", `{"KeyId":"`+id+`"}`)
	awsErr(t, s, "Decrypt", `{"CiphertextBlob":"`+blob+`","EncryptionContext":{"a":"b"}}`, "DisabledException")
	awsOp(t, s, "ScheduleKeyDeletion", `{"KeyId":"`+id+`","PendingWindowInDays":7}`)
	awsErr(t, s, "GenerateDataKey", `{"KeyId":"`+id+`","NumberOfBytes":16}`, "KMSInvalidStateException")
	awsOp(t, s, "CancelKeyDeletion", `{"KeyId":"`+id+`"}`)
	md = awsOp(t, s, "DescribeKey", `{"KeyId":"`+id+`"}`)["KeyMetadata"].(map[string]any)
	if md["KeyState"] != "Disabled" || md["Enabled"] != false {
		t.Errorf("after CancelKeyDeletion: %v", md)
	}

	// Paging: every page of one listing, markers chained.
	for i := 0; i < 5; i++ {
		awsOp(t, s, "CreateKey", `{}`)
	}
	var seen []string
	marker := ""
	for pages := 0; ; pages++ {
		body := `{"Limit":2}`
		if marker != "" {
			body = `{"Limit":2,"Marker":"` + marker + `"}`
		}
		out := awsOp(t, s, "ListKeys", body)
		for _, k := range out["Keys"].([]any) {
			seen = append(seen, k.(map[string]any)["KeyId"].(string))
		}
		if out["Truncated"] != true {
			break
		}
		marker = out["NextMarker"].(string)
		if pages > 10 {
			t.Fatal("ListKeys never ends")
		}
	}
	if len(seen) != 7 { // dk, the first key and five more
		t.Errorf("ListKeys paged %d keys: %v", len(seen), seen)
	}
}

// TestAWSDoorAuthorization: each operation asks for its AWS action, and a
// denied caller gets AccessDeniedException whether or not the key exists.
func TestAWSDoorAuthorization(t *testing.T) {
	authz := &policyAuthorizer{actions: []string{"kms:DescribeKey"}}
	s := newTestServerWith(t, true, authz)
	awsOp(t, s, "DescribeKey", `{"KeyId":"dk"}`)
	awsErr(t, s, "GenerateDataKey", `{"KeyId":"dk","KeySpec":"AES_256"}`, "AccessDeniedException")
	awsErr(t, s, "GenerateDataKeyWithoutPlaintext", `{"KeyId":"missing","KeySpec":"AES_256"}`, "AccessDeniedException")
	awsErr(t, s, "ListKeys", `{}`, "AccessDeniedException")
	awsErr(t, s, "GenerateRandom", `{"NumberOfBytes":8}`, "AccessDeniedException")
	want := []string{
		"kms:DescribeKey arn:aws:kms:::key/dk",
		"kms:GenerateDataKey arn:aws:kms:::key/dk",
		"kms:GenerateDataKeyWithoutPlaintext arn:aws:kms:::key/missing",
		"kms:ListKeys *",
		"kms:GenerateRandom *",
	}
	if got := strings.Join(authz.asked, "\n"); got != strings.Join(want, "\n") {
		t.Errorf("asked:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
	}
}

// TestAWSOperationsAreIAMActions: every operation's action is one the
// policy grammar knows, and the operations are those of the contract.
func TestAWSOperationsAreIAMActions(t *testing.T) {
	s := newTestServer(t, false)
	ops := []string{"CreateKey", "DescribeKey", "ListKeys", "EnableKey", "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion",
		"UpdateKeyDescription", "TagResource", "UntagResource", "ListResourceTags", "CreateAlias", "UpdateAlias", "DeleteAlias",
		"ListAliases", "EnableKeyRotation", "DisableKeyRotation", "GetKeyRotationStatus", "RotateKeyOnDemand", "ListKeyRotations",
		"Encrypt", "Decrypt", "ReEncrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "GenerateRandom"}
	if len(s.awsOps) != len(ops) {
		t.Errorf("%d operations, want %d", len(s.awsOps), len(ops))
	}
	doc := `{"users":[{"access_key":"u","secret_key":"secret-u","policies":["p"]}],"policies":{"p":{"Statement":[`
	for i, op := range ops {
		rt := s.awsOps[op]
		if rt == nil {
			t.Errorf("no operation %s", op)
			continue
		}
		if i > 0 {
			doc += ","
		}
		doc += `{"Effect":"Allow","Action":"` + rt.action + `","Resource":"*"}`
		for _, a := range rt.alsoActions {
			doc += `,{"Effect":"Allow","Action":"` + a + `","Resource":"*"}`
		}
		if rt.pattern != awsTargetPrefix+op || rt.maxBody != MaxBody || rt.timeout <= 0 || !rt.service {
			t.Errorf("%s: %+v", op, rt)
		}
	}
	doc += `]}}}`
	if _, err := iam.ParseFile([]byte(doc), "root", nil, nil); err != nil {
		t.Errorf("actions unknown to the policy grammar: %v", err)
	}
}

// FuzzAWSRequests sends arbitrary bodies to every operation of the AWS
// door: the answer is never a 500 and always an AWS JSON object.
func FuzzAWSRequests(f *testing.F) {
	for _, s := range []string{
		`{"KeyId":"dk","KeySpec":"AES_256","EncryptionContext":{"a":"b"}}`, `{"CiphertextBlob":"AQ==","KeyId":"dk"}`,
		`{"KeyId":"alias/x","Plaintext":"aGVsbG8="}`, `{"Tags":[{"TagKey":"a","TagValue":"b"}],"Description":"d"}`,
		`{"KeyId":"arn:aws:kms:eu-west-1:000000000000:key/dk","PendingWindowInDays":7}`, `{"Limit":3,"Marker":"a2Rr"}`,
		`{"AliasName":"alias/a","TargetKeyId":"dk"}`, `{"NumberOfBytes":16}`, `{"GrantTokens":["t"],"DryRun":false}`,
		`null`, `[]`, `{"KeyId":1}`, ``,
	} {
		f.Add([]byte(s))
	}
	s := newTestServer(f, true)
	f.Fuzz(func(t *testing.T, body []byte) {
		for op := range s.awsOps {
			req := httptest.NewRequest("POST", "/", bytes.NewReader(body))
			req.Header.Set("X-Amz-Target", awsTargetPrefix+op)
			rec := httptest.NewRecorder()
			s.ServeHTTP(rec, req)
			var out map[string]any
			if rec.Code >= 500 || json.Unmarshal(rec.Body.Bytes(), &out) != nil {
				t.Fatalf("%s with %q: %d %s", op, body, rec.Code, rec.Body.String())
			}
			if rec.Code != 200 && (out["__type"] == nil || out["message"] == nil) {
				t.Fatalf("%s with %q: error without __type: %s", op, body, rec.Body.String())
			}
		}
	})
}
