package e2e

import (
	"bytes"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// malformedBodies are JSON bodies every route that reads a body must refuse
// with 400 InvalidRequest.
var malformedBodies = map[string]string{
	"truncated object": `{"key_id":`,
	"not JSON":         `key_id=abc`,
	"trailing data":    `{"key_id":"abc"} {"x":1}`,
	"array":            `["abc"]`,
	"bare string":      `"abc"`,
}

// TestErrorsAndLimits checks routing, method, size and body errors
// (docs/api.md, "Errors"): every one a JSON error, never a 500.
func TestErrorsAndLimits(t *testing.T) {
	t.Parallel()
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	plain := &http.Client{Timeout: 10 * time.Second}

	health := func(path string) int {
		t.Helper()
		resp, err := plain.Get(srv.URL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := health("/health/live"); got != 200 {
		t.Errorf("/health/live without auth: want 200; got %d", got)
	}
	if got := health("/health/ready"); got != 503 {
		t.Errorf("/health/ready before configure: want 503; got %d", got)
	}

	// Key and data-key routes before configure: 503.
	keyRoutes := []struct {
		method, path string
		body         any
	}{
		{"GET", "/kms/keys", nil},
		{"POST", "/kms/keys", map[string]any{"key_id": "early"}},
		{"GET", "/kms/keys/early", nil},
		{"DELETE", "/kms/keys/delete", map[string]any{"key_id": "early", "pending_window_in_days": 7}},
		{"POST", "/kms/keys/cancel-deletion", map[string]any{"key_id": "early"}},
		{"POST", "/kms/generate-data-key", map[string]any{"key_id": "early"}},
		{"POST", "/kms/encrypt", map[string]any{"key_id": "early", "plaintext": "aGVsbG8="}},
		{"POST", "/kms/decrypt", map[string]any{"ciphertext_blob": "AQVlYXJseQAAAAEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}},
	}
	for _, r := range keyRoutes {
		st, _, raw := c.do(r.method, r.path, r.body)
		wantError(t, r.method+" "+r.path+" before configure", st, raw, 503, "ServiceUnavailable")
	}

	// Malformed JSON on the lifecycle routes that read a body.
	for _, path := range []string{"/kms/configure", "/kms/reconfigure", "/kms/start"} {
		for name, body := range malformedBodies {
			st, _, raw := c.do("POST", path, body)
			wantError(t, "POST "+path+" with "+name, st, raw, 400, "InvalidRequest")
		}
	}

	configureLocal(t, c, filepath.Join(srv.DataDir, "keys"), "", map[string]any{"default_key_id": "err-default"})
	if got := health("/health/ready"); got != 503 {
		t.Errorf("/health/ready when configured but not started: want 503; got %d", got)
	}
	startKMS(t, c)
	if got := health("/health/ready"); got != 200 {
		t.Errorf("/health/ready after start: want 200; got %d", got)
	}
	createKey(t, c, "err-key")

	// Routing.
	st, _, raw := c.do("GET", "/kms/nope", nil)
	wantError(t, "GET /rustfs/admin/v3/kms/nope", st, raw, 404, "NotFound")
	st, _, raw = c.doAbs("GET", "/nope", nil)
	wantError(t, "GET /nope", st, raw, 404, "NotFound")
	st, _, raw = c.doAbs("POST", "/nope", map[string]any{"a": 1}, withoutSignature())
	wantError(t, "unsigned POST /nope", st, raw, 404, "NotFound")
	st, _, raw = c.do("GET", "/kms/configure", nil)
	wantError(t, "GET /kms/configure", st, raw, 405, "MethodNotAllowed")
	st, _, raw = c.do("PUT", "/kms/keys", map[string]any{"key_id": "x"})
	wantError(t, "PUT /kms/keys", st, raw, 405, "MethodNotAllowed")
	st, _, raw = c.do("DELETE", "/kms/status", nil)
	wantError(t, "DELETE /kms/status", st, raw, 405, "MethodNotAllowed")
	// Error bodies are JSON and say so.
	for _, r := range []struct {
		method, path string
		opts         []reqOption
	}{
		{"GET", adminPrefix + "/kms/nope", nil},
		{"GET", "/nope", nil},
		{"GET", adminPrefix + "/kms/configure", nil},
		{"GET", adminPrefix + "/kms/status", []reqOption{withoutSignature()}},
		{"GET", adminPrefix + "/kms/keys/no-such-key", nil},
	} {
		resp, err := c.send(r.method, r.path, nil, r.opts...)
		if err != nil {
			t.Fatalf("%s %s: %v", r.method, r.path, err)
		}
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
			t.Errorf("%s %s (%d): want Content-Type application/json; got %q", r.method, r.path, resp.Status, ct)
		}
	}

	// Bodies over 1 MiB: 413, with a known length and chunked, whether the
	// payload hash is declared (the signature is checked first) or not
	// (the body is read first).
	huge := `{"key_id":"err-key","plaintext":"` + strings.Repeat("A", 1<<20) + `"}`
	st, _, raw = c.do("POST", "/kms/encrypt", huge)
	wantError(t, "a body over 1 MiB", st, raw, 413, "RequestTooLarge")
	st, _, raw = c.do("POST", "/kms/keys", huge, withStreamedBody())
	wantError(t, "a chunked body over 1 MiB", st, raw, 413, "RequestTooLarge")
	st, _, raw = c.do("POST", "/kms/keys", huge, withStreamedBody(), withoutPayloadHeader())
	wantError(t, "a chunked body over 1 MiB, no payload hash declared", st, raw, 413, "RequestTooLarge")
	st, _, raw = c.do("POST", "/kms/configure", huge)
	wantError(t, "a configure body over 1 MiB", st, raw, 413, "RequestTooLarge")
	// An unsigned body is refused before it is read, whatever its size.
	st, _, raw = c.do("POST", "/kms/keys", huge, withUnsignedPayload(), withStreamedBody())
	wantError(t, "a chunked body over 1 MiB with UNSIGNED-PAYLOAD", st, raw, 401, "AccessDenied")

	// Malformed JSON on every key and data-key route with a body.
	for _, r := range []struct{ method, path string }{
		{"POST", "/kms/keys"}, {"DELETE", "/kms/keys/delete"}, {"POST", "/kms/keys/cancel-deletion"},
		{"POST", "/kms/generate-data-key"}, {"POST", "/kms/encrypt"}, {"POST", "/kms/decrypt"},
	} {
		for name, body := range malformedBodies {
			st, _, raw := c.do(r.method, r.path, body)
			wantError(t, r.method+" "+r.path+" with "+name, st, raw, 400, "InvalidRequest")
		}
		st, _, raw := c.do(r.method, r.path, `{"key_id": 42}`)
		wantError(t, r.method+" "+r.path+" with a number for key_id", st, raw, 400, "InvalidRequest")
	}

	// Missing and invalid fields.
	blob := generate(t, c, "err-key", nil).Blob
	for _, tc := range []struct {
		what, method, path string
		body               any
		status             int
		code               string
	}{
		{"decrypt without ciphertext_blob", "POST", "/kms/decrypt", map[string]any{}, 400, "InvalidRequest"},
		{"decrypt with an empty ciphertext_blob", "POST", "/kms/decrypt", map[string]any{"ciphertext_blob": ""}, 400, "InvalidRequest"},
		{"generate with an unknown key_spec", "POST", "/kms/generate-data-key", map[string]any{"key_id": "err-key", "key_spec": "AES_512"}, 400, "InvalidRequest"},
		{"generate with number_of_bytes 0x10000", "POST", "/kms/generate-data-key", map[string]any{"key_id": "err-key", "number_of_bytes": 65536}, 400, "InvalidRequest"},
		{"generate with a negative number_of_bytes", "POST", "/kms/generate-data-key", map[string]any{"key_id": "err-key", "number_of_bytes": -32}, 400, "InvalidRequest"},
		{"generate with a negative NumberOfBytes", "POST", "/kms/generate-data-key", map[string]any{"key_id": "err-key", "NumberOfBytes": -1}, 400, "InvalidRequest"},
		{"generate with number_of_bytes and NumberOfBytes disagreeing", "POST", "/kms/generate-data-key", map[string]any{"key_id": "err-key", "number_of_bytes": 16, "NumberOfBytes": 32}, 400, "InvalidRequest"},
		{"rotation with a negative period_days", "POST", "/kms/keys/rotation", map[string]any{"key_id": "err-key", "enabled": true, "period_days": -30}, 400, "InvalidRequest"},
		{"rotation off with a negative period_days", "POST", "/kms/keys/rotation", map[string]any{"key_id": "err-key", "enabled": false, "period_days": -30}, 400, "InvalidRequest"},
		{"rotation with period_days and RotationPeriodInDays disagreeing", "POST", "/kms/keys/rotation", map[string]any{"key_id": "err-key", "enabled": true, "period_days": 90, "RotationPeriodInDays": 180}, 400, "InvalidRequest"},
		{"re-encrypt without a destination", "POST", "/kms/re-encrypt", map[string]any{"ciphertext_blob": blob}, 400, "InvalidRequest"},
		{"generate on an unknown key", "POST", "/kms/generate-data-key", map[string]any{"key_id": "no-such-key"}, 404, "NotFound"},
		{"generate with an invalid key id", "POST", "/kms/generate-data-key", map[string]any{"key_id": "bad/id"}, 400, "InvalidRequest"},
		{"encrypt without plaintext", "POST", "/kms/encrypt", map[string]any{"key_id": "err-key"}, 400, "InvalidRequest"},
		{"encrypt with non-base64 plaintext", "POST", "/kms/encrypt", map[string]any{"key_id": "err-key", "plaintext": "%%%"}, 400, "InvalidRequest"},
		{"create with an invalid id", "POST", "/kms/keys", map[string]any{"key_id": "bad id!"}, 400, "InvalidRequest"},
		{"create with a 129-char id", "POST", "/kms/keys", map[string]any{"key_id": strings.Repeat("k", 129)}, 400, "InvalidRequest"},
		{"create with an unknown key usage", "POST", "/kms/keys", map[string]any{"key_id": "sv", "KeyUsage": "SIGN_VERIFY"}, 400, "InvalidRequest"},
		{"create an existing id", "POST", "/kms/keys", map[string]any{"key_id": "err-key"}, 409, "Conflict"},
		{"schedule deletion without key_id", "DELETE", "/kms/keys/delete", map[string]any{"pending_window_in_days": 7}, 400, "InvalidRequest"},
		{"schedule deletion of an unknown key", "DELETE", "/kms/keys/delete", map[string]any{"key_id": "no-such-key", "pending_window_in_days": 7}, 404, "NotFound"},
		{"cancel deletion without key_id", "POST", "/kms/keys/cancel-deletion", map[string]any{}, 400, "InvalidRequest"},
		{"list with an unknown state", "GET", "/kms/keys?state=Melted", nil, 400, "InvalidRequest"},
	} {
		st, _, raw := c.do(tc.method, tc.path, tc.body)
		wantError(t, tc.what, st, raw, tc.status, tc.code)
	}
	if st, md, raw := describe(t, c, "err-key"); st != 200 || str(md, "key_state") != "Enabled" {
		t.Errorf("err-key after the refused requests: got %d %s", st, short(raw))
	}
	if st, m, raw := c.do("GET", "/kms/status", nil); str(m, "status") != "Running" {
		t.Errorf("status after the refused requests: want Running; got %d %s", st, short(raw))
	}
	if strings.Contains(srv.Stderr(), `"level":"ERROR"`) {
		t.Errorf("client errors were logged at ERROR level (an internal error?):\n%s", tail(srv.Stderr(), 3000))
	}
}

// TestImmediateDeletionGate checks force_immediate deletion (docs/api.md,
// "DELETE /kms/keys/delete"): refused without --allow-immediate-deletion,
// and with it only when confirm_key_id names the key.
func TestImmediateDeletionGate(t *testing.T) {
	t.Parallel()
	force := func(id, confirm string) map[string]any {
		return map[string]any{"key_id": id, "force_immediate": true, "confirm_key_id": confirm}
	}
	t.Run("without the flag", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOpts{Args: []string{"--dev"}})
		c := srv.client(t)
		createKey(t, c, "k")
		dk := generate(t, c, "k", nil)
		st, _, raw := c.do("DELETE", "/kms/keys/delete", force("k", "k"))
		wantError(t, "force_immediate without --allow-immediate-deletion", st, raw, 400, "InvalidRequest")
		if st, md, raw := describe(t, c, "k"); st != 200 || str(md, "key_state") != "Enabled" || md["deletion_date"] != nil {
			t.Errorf("a refused immediate deletion changed the key: %d %s", st, short(raw))
		}
		if st, p, raw := decrypt(t, c, dk.Blob, nil); st != 200 || !bytes.Equal(p, dk.Plaintext) {
			t.Errorf("decrypt after a refused immediate deletion: %d %s", st, short(raw))
		}
	})
	t.Run("with the flag", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOpts{Args: []string{"--dev", "--allow-immediate-deletion"}})
		c := srv.client(t)
		createKey(t, c, "k")
		dk := generate(t, c, "k", nil)
		st, _, raw := c.do("DELETE", "/kms/keys/delete", force("k", "other"))
		wantError(t, "force_immediate with a mismatched confirm_key_id", st, raw, 400, "InvalidRequest")
		st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "k", "force_immediate": true})
		wantError(t, "force_immediate without confirm_key_id", st, raw, 400, "InvalidRequest")
		st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "k", "confirm_key_id": "k"})
		wantError(t, "confirm_key_id without force_immediate", st, raw, 400, "InvalidRequest")
		st, _, raw = c.do("DELETE", "/kms/keys/delete?keyId=k&force_immediate=true&confirm_key_id=k", nil)
		wantError(t, "force_immediate in the query", st, raw, 400, "InvalidRequest")
		if st, md, raw := describe(t, c, "k"); st != 200 || str(md, "key_state") != "Enabled" {
			t.Fatalf("refused immediate deletions changed the key: %d %s", st, short(raw))
		}
		st, _, raw = c.do("DELETE", "/kms/keys/delete", force("k", "k"))
		wantStatus(t, "force_immediate with a matching confirm_key_id", st, raw, 200)
		st, _, raw = c.do("GET", "/kms/keys/k", nil)
		wantError(t, "describe an immediately deleted key", st, raw, 404, "NotFound")
		st, _, raw = decrypt(t, c, dk.Blob, nil)
		wantError(t, "decrypt under an immediately deleted key", st, raw, 404, "NotFound")
		st, _, raw = c.do("DELETE", "/kms/keys/delete", force("k", "k"))
		wantError(t, "force_immediate on a deleted key", st, raw, 404, "NotFound")
		ids, _ := listAll(t, c, 100)
		if contains(ids, "k") {
			t.Errorf("an immediately deleted key is still listed: %v", ids)
		}
	})
}
