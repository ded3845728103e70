package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// signedRequest is a request as its client signed it: what an attacker who
// saw it on the wire (or in a log, or a shared presigned URL) could send
// again with another body.
type signedRequest struct {
	method, url string
	header      http.Header
}

// sendCapturing sends a request like c.send and also returns what was
// signed.
func sendCapturing(t *testing.T, c *client, method, path string, body any, opts ...reqOption) (*response, signedRequest) {
	t.Helper()
	var sr signedRequest
	opts = append(opts, withAfterSign(func(r *http.Request) {
		sr = signedRequest{method: r.Method, url: r.URL.String(), header: r.Header.Clone()}
	}))
	resp, err := c.send(method, adminPrefix+path, body, opts...)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp, sr
}

// replay sends sr again, byte for byte, with another body.
func replay(t *testing.T, c *client, sr signedRequest, body string) *response {
	t.Helper()
	req, err := http.NewRequest(sr.method, sr.url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header = sr.header.Clone()
	resp, err := c.hc.Do(req)
	if err != nil {
		t.Fatalf("replay: %v", err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("replay: reading the answer: %v", err)
	}
	return &response{Status: resp.StatusCode, Header: resp.Header, Raw: raw}
}

// createBody is a create-key body for id, padded to n bytes so that a
// replay keeps the signed Content-Length.
func createBody(id string, n int) string {
	b := `{"key_id":"` + id + `"`
	return b + strings.Repeat(" ", max(n-len(b)-1, 0)) + "}"
}

// TestUnsignedPayload reproduces the replay attacks of an unsigned body
// (docs/api.md, "Signing"): a request signed with UNSIGNED-PAYLOAD for one body
// sent again with another, and one presigned POST URL used with two
// bodies. Both are refused by default, and work only on a server started
// with --allow-unsigned-payload, whose documented risk they are.
func TestUnsignedPayload(t *testing.T) {
	t.Parallel()
	const size = 40
	benign, evil := createBody("benign-1", size), createBody("evil-1", size)

	t.Run("refused by default", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOpts{Args: []string{"--dev"}})
		c := srv.client(t)

		resp, signed := sendCapturing(t, c, "POST", "/kms/keys", benign, withUnsignedPayload())
		if wantError(t, "create signed with UNSIGNED-PAYLOAD", resp.Status, resp.Raw, 401, "AccessDenied") &&
			!strings.Contains(string(resp.Raw), "x-amz-content-sha256 with the hex SHA-256 of the body") {
			t.Errorf("the refusal does not say what to do: %s", short(resp.Raw))
		}
		resp = replay(t, c, signed, evil)
		wantError(t, "the same UNSIGNED-PAYLOAD request replayed with another body", resp.Status, resp.Raw, 401, "AccessDenied")

		for _, service := range []string{"s3", "kms"} {
			first, second := createBody("pre-"+service+"-1", size), createBody("pre-"+service+"-2", size)
			resp, signed := sendCapturing(t, c, "POST", "/kms/keys", first, withPresign(), withService(service))
			if wantError(t, "presigned POST ("+service+")", resp.Status, resp.Raw, 401, "AccessDenied") &&
				!strings.Contains(string(resp.Raw), "presigned URLs are accepted only for GET") {
				t.Errorf("presigned POST (%s): the refusal does not say why: %s", service, short(resp.Raw))
			}
			resp = replay(t, c, signed, second)
			wantError(t, "the presigned POST URL ("+service+") with a second body", resp.Status, resp.Raw, 401, "AccessDenied")
		}
		for _, id := range []string{"benign-1", "evil-1", "pre-s3-1", "pre-s3-2", "pre-kms-1", "pre-kms-2"} {
			if st, _, raw := describe(t, c, id); st != 404 {
				t.Errorf("key %s exists after the refused requests: %d %s", id, st, short(raw))
			}
		}
		// Requests without a body keep both forms.
		if st, _, raw := c.do("GET", "/kms/status", nil, withUnsignedPayload()); st != 200 {
			t.Errorf("GET with UNSIGNED-PAYLOAD: %d %s", st, short(raw))
		}
		if st, _, raw := c.do("GET", "/kms/status", nil, withPresign(), withService("kms")); st != 200 {
			t.Errorf("presigned GET: %d %s", st, short(raw))
		}
	})

	t.Run("accepted with --allow-unsigned-payload, the documented risk", func(t *testing.T) {
		t.Parallel()
		srv := startServer(t, serverOpts{Args: []string{"--dev"}, Env: []string{"KEYWARD_ALLOW_UNSIGNED_PAYLOAD=true"}})
		c := srv.client(t)
		if !strings.Contains(srv.Stderr(), "--allow-unsigned-payload is set") {
			t.Errorf("no warning about --allow-unsigned-payload in the log")
		}

		resp, signed := sendCapturing(t, c, "POST", "/kms/keys", benign, withUnsignedPayload())
		wantStatus(t, "create signed with UNSIGNED-PAYLOAD", resp.Status, resp.Raw, 200)
		resp = replay(t, c, signed, evil)
		wantStatus(t, "the same request replayed with another body", resp.Status, resp.Raw, 200)
		for _, service := range []string{"s3", "kms"} {
			first, second := createBody("pre-"+service+"-1", size), createBody("pre-"+service+"-2", size)
			resp, signed := sendCapturing(t, c, "POST", "/kms/keys", first, withPresign(), withService(service))
			wantStatus(t, "presigned POST ("+service+")", resp.Status, resp.Raw, 200)
			resp = replay(t, c, signed, second)
			wantStatus(t, "the presigned POST URL ("+service+") with a second body", resp.Status, resp.Raw, 200)
		}
		for _, id := range []string{"benign-1", "evil-1", "pre-s3-1", "pre-s3-2", "pre-kms-1", "pre-kms-2"} {
			if st, _, raw := describe(t, c, id); st != 200 {
				t.Errorf("key %s: %d %s", id, st, short(raw))
			}
		}
	})
}
