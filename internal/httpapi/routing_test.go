package httpapi

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// ServeHTTP routes the data plane's paths itself (a map lookup, and POST /
// for the AWS door) before falling back to the mux: every request must get
// the answer the mux alone would give it. Each request runs twice, once
// through ServeHTTP and once through the mux, and the two statuses and
// error codes must agree; the request ids differ, nothing else may. The
// caller may do nothing, so that no request changes what the next one sees
// and the answers tell the routes apart: 403 from a route, 404 or 405
// from the routing.
func TestExactRoutesAgreeWithMux(t *testing.T) {
	s := newTestServerWith(t, true, denyAll{})
	if len(s.exact) < 10 {
		t.Fatalf("only %d exact routes: the fast path is not in use", len(s.exact))
	}
	paths := []string{"/", "/metrics", "/health/live", Prefix + "/kms/", Prefix + "/kms/keys/", Prefix + "/kms/generate%2Ddata-key", Prefix + "/kms//keys"}
	for p := range s.exact {
		if strings.Contains(p, "{") {
			t.Errorf("exact route %q has a wildcard", p)
		}
		paths = append(paths, p, p+"/", strings.ToUpper(p))
	}
	for _, p := range paths {
		for _, method := range []string{"GET", "POST", "PUT", "DELETE", "HEAD"} {
			fast := httptest.NewRecorder()
			s.ServeHTTP(fast, httptest.NewRequest(method, p, strings.NewReader("{}")))
			viaMux := httptest.NewRecorder()
			s.mux.ServeHTTP(viaMux, httptest.NewRequest(method, p, strings.NewReader("{}")))
			if fast.Code != viaMux.Code || errorCode(fast) != errorCode(viaMux) {
				t.Errorf("%s %s: ServeHTTP answered %d %q, the mux %d %q", method, p, fast.Code, errorCode(fast), viaMux.Code, errorCode(viaMux))
			}
		}
	}
}

// errorCode is the "code" (admin door) or "__type" (AWS door) of an error
// answer, "" for anything else.
func errorCode(rec *httptest.ResponseRecorder) string {
	body := rec.Body.String()
	for _, field := range []string{`"code":"`, `"__type":"`} {
		if _, rest, ok := strings.Cut(body, field); ok {
			code, _, _ := strings.Cut(rest, `"`)
			return code
		}
	}
	return ""
}

type denyAll struct{}

func (denyAll) AllowedOnKey(string, string, string) bool   { return false }
func (denyAll) AllowedOnAlias(string, string, string) bool { return false }

var _ http.Handler = (*Server)(nil)

// An answer builder goes back to the pool wiped: the next request's
// builder (or anyone reading freed memory) finds no trace of a data key.
func TestSecretAnswerIsWipedBeforeReuse(t *testing.T) {
	secret := []byte("a data key that must not survive")
	for _, write := range []func(*secretJSON, http.ResponseWriter){(*secretJSON).WriteAndWipe, (*secretJSON).WriteAWS} {
		j := newSecretJSON(128)
		j.Bytes("Plaintext", secret)
		rec := httptest.NewRecorder()
		write(j, rec)
		if !strings.Contains(rec.Body.String(), "YSBkYXRhIGtleS") {
			t.Fatalf("answer %q lacks the secret", rec.Body.String())
		}
		for i, b := range j.buf[:cap(j.buf)] {
			if b != 0 {
				t.Fatalf("byte %d of the recycled buffer is %q, not wiped", i, b)
			}
		}
		next := newSecretJSON(16)
		if string(next.buf) != "{" {
			t.Fatalf("a new builder starts with %q", next.buf)
		}
	}
}
