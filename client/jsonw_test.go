package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/keyward/keyward/internal/config"
)

// TestConfigureBody: the server's own parser reads every field of the
// body back, secrets with awkward characters included.
func TestConfigureBody(t *testing.T) {
	token := "hvs.\"tok\\en\"\n\u00e9"
	req := ConfigureRequest{
		BackendType: new("vault"), DefaultKeyID: new("dk"), EnableCache: new(false), CacheTTLSeconds: new(60),
		MaxCachedKeys: new(7), TimeoutSeconds: new(5), RetryAttempts: new(2), Address: new("https://vault:8200"),
		Auth: &VaultAuth{Token: token}, Namespace: new("ns"), MountPath: new("transit"), KVMount: new("kv"),
		KeyPathPrefix: new("keyward/keys"), CACert: new("-----BEGIN CERTIFICATE-----\n..."), SkipTLSVerify: new(true),
	}
	body := req.body()
	r, err := config.ParseRequest(body)
	if err != nil {
		t.Fatalf("%v\n%s", err, body)
	}
	if *r.BackendType != "vault" || *r.DefaultKeyID != "dk" || *r.EnableCache || *r.CacheTTLSeconds != 60 || *r.MaxCachedKeys != 7 ||
		*r.TimeoutSeconds != 5 || *r.RetryAttempts != 2 || *r.Address != "https://vault:8200" || r.Auth.Method != "token" ||
		r.Auth.Token != token || *r.Namespace != "ns" || *r.MountPath != "transit" || *r.KVMount != "kv" ||
		*r.KeyPathPrefix != "keyward/keys" || !strings.HasPrefix(*r.CACert, "-----BEGIN") || !*r.SkipTLSVerify {
		t.Fatalf("parsed: %+v", r)
	}
	marshalled, err := json.Marshal(req)
	if err != nil || !bytes.Equal(marshalled, body) {
		t.Fatalf("MarshalJSON: %v %s", err, marshalled)
	}

	approle := ConfigureRequest{Auth: &VaultAuth{AppRole: &AppRole{RoleID: "role", SecretID: "s\"ecret"}}}
	r, err = config.ParseRequest(approle.body())
	if err != nil || r.Auth.Method != "approle" || r.Auth.RoleID != "role" || r.Auth.SecretID != "s\"ecret" || r.BackendType != nil {
		t.Fatalf("approle: %v %+v", err, r)
	}

	local := ConfigureRequest{BackendType: new("local"), KeyDir: new("keys"), MasterKey: new("pass \"phrase\""), FilePermissions: new(uint32(0o640))}
	r, err = config.ParseRequest(local.body())
	if err != nil || *r.MasterKey != `pass "phrase"` || *r.FilePermissions != 0o640 || *r.KeyDir != "keys" {
		t.Fatalf("local: %v %+v", err, r)
	}
	if got := string((&ConfigureRequest{}).body()); got != "{}" {
		t.Fatalf("empty request: %s", got)
	}
}

// TestDataPlaneBodies: the bodies are valid JSON with the API's snake_case
// names (docs/api.md).
func TestDataPlaneBodies(t *testing.T) {
	g := GenerateDataKeyRequest{KeyID: "k", KeySpec: KeySpecAES128, NumberOfBytes: 16, EncryptionContext: map[string]string{"b": "2", "a": "1"}}
	if got := string(g.body()); got != `{"key_id":"k","key_spec":"AES_128","number_of_bytes":16,"encryption_context":{"a":"1","b":"2"}}` {
		t.Fatalf("generate body: %s", got)
	}
	if got := string((&GenerateDataKeyRequest{}).body()); got != "{}" {
		t.Fatalf("empty generate body: %s", got)
	}
	o := newJSONObject(0) // forces growth
	o.String("key_id", strings.Repeat("k", 300))
	o.Bytes("plaintext", bytes.Repeat([]byte{0xff}, 3000))
	o.StringMap("encryption_context", map[string]string{"x": strings.Repeat("y", 500)})
	var v struct {
		KeyID     string            `json:"key_id"`
		Plaintext []byte            `json:"plaintext"`
		Context   map[string]string `json:"encryption_context"`
	}
	if err := json.Unmarshal(o.Done(), &v); err != nil || len(v.KeyID) != 300 || len(v.Plaintext) != 3000 || len(v.Context["x"]) != 500 {
		t.Fatalf("grown object: %v", err)
	}
}

// TestReadBody: known and unknown lengths, the limit, read errors.
func TestReadBody(t *testing.T) {
	data := bytes.Repeat([]byte("0123456789"), 300)
	for _, cl := range []int64{int64(len(data)), -1} {
		got, err := readBody(iotest.OneByteReader(bytes.NewReader(data)), cl, 1<<20)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("length %d: %v", cl, err)
		}
	}
	if _, err := readBody(bytes.NewReader(data), -1, 100); err != errResponseTooLarge {
		t.Fatalf("limit: %v", err)
	}
	if _, err := readBody(bytes.NewReader(data), int64(len(data)), 100); err != errResponseTooLarge {
		t.Fatalf("declared length over the limit: %v", err)
	}
	if _, err := readBody(iotest.ErrReader(iotest.ErrTimeout), -1, 100); err == nil {
		t.Fatal("read error ignored")
	}
}

// TestRequestBodyWiped: the request buffer is zeroed after the call, also
// when the server answers before reading it (the transport may still be
// writing it then: the wipe waits for the transport to close it).
func TestRequestBodyWiped(t *testing.T) {
	f := newFakeServer(t, func(n int32, w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > 1<<20 {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
			io.WriteString(w, `{"code":"RequestTooLarge","message":"too large","request_id":"x"}`)
			return
		}
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, `{"key_id":"k","ciphertext_blob":"AQID"}`)
	})
	c := newTestClient(t, f.URL)
	zero := func(b []byte) bool { return bytes.Count(b, []byte{0}) == len(b) }

	small := []byte(`{"plaintext":"c2VjcmV0"}`)
	if _, err := c.send(context.Background(), &request{method: "POST", path: "/x", body: small}); err != nil {
		t.Fatal(err)
	}
	if !zero(small) {
		t.Fatalf("body not wiped: %q", small)
	}
	big := bytes.Repeat([]byte("s"), 4<<20)
	c.timeout = 0
	rq := &request{method: "POST", path: "/x", body: big}
	_, err := c.send(context.Background(), rq)
	if !errors.Is(err, ErrRequestTooLarge) {
		t.Fatalf("big body: %v", err)
	}
	wiped := func() bool { // under the tracker's lock, which the wipe holds
		rq.tracker.mu.Lock()
		defer rq.tracker.mu.Unlock()
		return zero(big)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !wiped() {
		if time.Now().After(deadline) {
			t.Fatal("big body never wiped")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestReferenceAndStartBodies: secrets by reference and the start body are
// read back by the server's own parsers.
func TestReferenceAndStartBodies(t *testing.T) {
	for name, c := range map[string]struct {
		req   ConfigureRequest
		check func(r *config.Request) bool
	}{
		"master_key_file": {ConfigureRequest{MasterKeyFile: new("/run/secrets/mk")}, func(r *config.Request) bool {
			return *r.MasterKeyFile == "/run/secrets/mk" && r.MasterKey == nil && r.MasterKeyEnv == nil
		}},
		"master_key_env": {ConfigureRequest{MasterKeyEnv: new("KEYWARD_SECRET_MK")}, func(r *config.Request) bool { return *r.MasterKeyEnv == "KEYWARD_SECRET_MK" }},
		"token_file": {ConfigureRequest{Auth: &VaultAuth{TokenFile: "/run/secrets/t"}}, func(r *config.Request) bool {
			return *r.Auth == config.VaultAuth{Method: "token", TokenFile: "/run/secrets/t"}
		}},
		"token_env": {ConfigureRequest{Auth: &VaultAuth{TokenEnv: "KEYWARD_SECRET_T"}}, func(r *config.Request) bool {
			return *r.Auth == config.VaultAuth{Method: "token", TokenEnv: "KEYWARD_SECRET_T"}
		}},
		"secret_id_file": {ConfigureRequest{Auth: &VaultAuth{AppRole: &AppRole{RoleID: "r", SecretIDFile: "/run/secrets/id"}}}, func(r *config.Request) bool {
			return *r.Auth == config.VaultAuth{Method: "approle", RoleID: "r", SecretIDFile: "/run/secrets/id"}
		}},
		"secret_id_env": {ConfigureRequest{Auth: &VaultAuth{AppRole: &AppRole{RoleID: "r", SecretIDEnv: "KEYWARD_SECRET_ID"}}}, func(r *config.Request) bool {
			return *r.Auth == config.VaultAuth{Method: "approle", RoleID: "r", SecretIDEnv: "KEYWARD_SECRET_ID"}
		}},
	} {
		r, err := config.ParseRequest(c.req.body())
		if err != nil || !c.check(r) {
			t.Errorf("%s: %v %+v\n%s", name, err, r, c.req.body())
		}
	}
	// Two sources set: all are sent, and the server refuses the request.
	for _, req := range []ConfigureRequest{
		{Auth: &VaultAuth{Token: "t", TokenEnv: "KEYWARD_SECRET_T"}},
		{Auth: &VaultAuth{AppRole: &AppRole{RoleID: "r", SecretID: "s", SecretIDFile: "/f"}}},
		{MasterKey: new("m"), MasterKeyFile: new("/f")},
	} {
		if _, err := config.ParseRequest(req.body()); err == nil {
			t.Errorf("two sources accepted: %s", req.body())
		}
	}

	secret := "pass \"phrase\"\n"
	for _, sr := range []StartRequest{{}, {Force: true}, {MasterKey: &secret}, {Token: &secret}, {SecretID: &secret}} {
		body := sr.body()
		r, err := config.ParseStartRequest(body)
		if err != nil || r.Force != sr.Force || (sr.MasterKey != nil) != (r.Secrets.MasterKey != nil) ||
			(sr.Token != nil) != (r.Secrets.Token != nil) || (sr.SecretID != nil) != (r.Secrets.SecretID != nil) {
			t.Errorf("start body %s: %v %+v", body, err, r)
		}
		for _, p := range []*string{r.Secrets.MasterKey, r.Secrets.Token, r.Secrets.SecretID} {
			if p != nil && *p != secret {
				t.Errorf("start body %s: secret read back as %q", body, *p)
			}
		}
	}
	if got := string((&StartRequest{}).body()); got != "{}" {
		t.Errorf("empty start body: %s", got)
	}
}
