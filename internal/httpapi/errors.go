package httpapi

import (
	"context"
	"errors"
	"fmt"
	"net/http"

	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/sigv4"
)

// errorTable is the one place that maps errors to HTTP status and code
// (docs/api.md, "Errors"). The first entry the error matches (errors.Is) wins;
// anything unmatched is a 500 whose details go only to the log.
var errorTable = []struct {
	err    error
	status int
	code   string
}{
	{kms.ErrInvalidRequest, http.StatusBadRequest, "InvalidRequest"},
	{errBadBody, http.StatusBadRequest, "InvalidRequest"},
	{kms.ErrInvalidCiphertext, http.StatusBadRequest, "InvalidCiphertext"},
	{sigv4.ErrMissingAuthentication, http.StatusUnauthorized, "AccessDenied"},
	{sigv4.ErrMalformed, http.StatusUnauthorized, "AccessDenied"},
	{sigv4.ErrInvalidAccessKeyID, http.StatusUnauthorized, "InvalidAccessKeyId"},
	{sigv4.ErrSignatureDoesNotMatch, http.StatusUnauthorized, "SignatureDoesNotMatch"},
	{sigv4.ErrRequestTimeTooSkewed, http.StatusUnauthorized, "RequestTimeTooSkewed"},
	{errAccessDenied, http.StatusForbidden, "AccessDenied"},
	{kms.ErrNotFound, http.StatusNotFound, "NotFound"},
	{errRouteNotFound, http.StatusNotFound, "NotFound"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "MethodNotAllowed"},
	{kms.ErrExists, http.StatusConflict, "Conflict"},
	{kms.ErrConflict, http.StatusConflict, "Conflict"},
	{kms.ErrInvalidKeyState, http.StatusConflict, "InvalidKeyState"},
	{errTooLarge, http.StatusRequestEntityTooLarge, "RequestTooLarge"},
	{kms.ErrNotImplemented, http.StatusNotImplemented, "NotImplemented"},
	{kms.ErrUnavailable, http.StatusServiceUnavailable, "ServiceUnavailable"},
	{errBusy, http.StatusServiceUnavailable, "ServiceUnavailable"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "ServiceUnavailable"},
}

// errorBody is the JSON shape of every error.
type errorBody struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	RequestID string `json:"request_id"`
}

// writeError answers with the mapped status and code. The message of a
// mapped error is the error text (built by Keyward, free of secrets); an
// unmapped error is logged with its details and answered generically.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, reqID string, err error) (status int, code string) {
	w.Header().Set("X-Request-Id", reqID)
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			msg := err.Error()
			if e.err == context.DeadlineExceeded {
				msg = "the backend did not answer in time"
			}
			if detail := kms.PrivateDetail(err); detail != "" {
				// Something an operator must look at (a record that does
				// not open); the caller got the public half only.
				s.opts.Log.Warn("request failed", "request_id", reqID, "method", r.Method, "path", r.URL.Path, "status", e.status, "code", e.code, "error", msg, "detail", detail)
			} else {
				s.opts.Log.Debug("request failed", "request_id", reqID, "method", r.Method, "path", r.URL.Path, "status", e.status, "code", e.code, "error", msg)
			}
			writeJSON(w, e.status, errorBody{Code: e.code, Message: msg, RequestID: reqID})
			return e.status, e.code
		}
	}
	s.opts.Log.Error("internal error", "request_id", reqID, "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeJSON(w, http.StatusInternalServerError, errorBody{Code: "InternalError", Message: "internal error (request " + reqID + "; details in the server log)", RequestID: reqID})
	return http.StatusInternalServerError, "InternalError"
}

// errMissing reports a required field that is absent.
func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", kms.ErrInvalidRequest, field)
}
