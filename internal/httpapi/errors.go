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
// (docs/api.md, "Errors"), on the admin API (status, code) and on the AWS
// KMS door (awsStatus, awsCode: AWS's exception names, which the AWS SDKs
// turn into typed errors; docs/aws-kms-api.md, "Errors"). The first entry
// the error matches (errors.Is) wins, so a finer kind of an error (a
// disabled key is a kind of invalid key state) comes before it; anything
// unmatched is a 500 whose details go only to the log.
var errorTable = []struct {
	err       error
	status    int
	code      string
	awsStatus int
	awsCode   string
}{
	{errUnsupportedOperation, http.StatusNotImplemented, "NotImplemented", http.StatusBadRequest, "UnsupportedOperationException"},
	{errInvalidMarker, http.StatusBadRequest, "InvalidRequest", http.StatusBadRequest, "InvalidMarkerException"},
	{kms.ErrInvalidAliasName, http.StatusBadRequest, "InvalidRequest", http.StatusBadRequest, "InvalidAliasNameException"},
	{kms.ErrInvalidRequest, http.StatusBadRequest, "InvalidRequest", http.StatusBadRequest, "ValidationException"},
	{errBadBody, http.StatusBadRequest, "InvalidRequest", http.StatusBadRequest, "ValidationException"},
	{kms.ErrIncorrectKey, http.StatusBadRequest, "InvalidCiphertext", http.StatusBadRequest, "IncorrectKeyException"},
	{kms.ErrInvalidCiphertext, http.StatusBadRequest, "InvalidCiphertext", http.StatusBadRequest, "InvalidCiphertextException"},
	{sigv4.ErrMissingAuthentication, http.StatusUnauthorized, "AccessDenied", http.StatusBadRequest, "AccessDeniedException"},
	{sigv4.ErrMalformed, http.StatusUnauthorized, "AccessDenied", http.StatusBadRequest, "InvalidSignatureException"},
	{sigv4.ErrInvalidAccessKeyID, http.StatusUnauthorized, "InvalidAccessKeyId", http.StatusBadRequest, "UnrecognizedClientException"},
	{sigv4.ErrSignatureDoesNotMatch, http.StatusUnauthorized, "SignatureDoesNotMatch", http.StatusBadRequest, "InvalidSignatureException"},
	{sigv4.ErrRequestTimeTooSkewed, http.StatusUnauthorized, "RequestTimeTooSkewed", http.StatusBadRequest, "InvalidSignatureException"},
	{errAccessDenied, http.StatusForbidden, "AccessDenied", http.StatusBadRequest, "AccessDeniedException"},
	{kms.ErrNotFound, http.StatusNotFound, "NotFound", http.StatusBadRequest, "NotFoundException"},
	{errRouteNotFound, http.StatusNotFound, "NotFound", http.StatusBadRequest, "UnsupportedOperationException"},
	{errMethodNotAllowed, http.StatusMethodNotAllowed, "MethodNotAllowed", http.StatusBadRequest, "UnsupportedOperationException"},
	{kms.ErrExists, http.StatusConflict, "Conflict", http.StatusBadRequest, "AlreadyExistsException"},
	{kms.ErrConflict, http.StatusConflict, "Conflict", http.StatusBadRequest, "KMSInvalidStateException"},
	{kms.ErrKeyDisabled, http.StatusConflict, "InvalidKeyState", http.StatusBadRequest, "DisabledException"},
	{kms.ErrInvalidKeyState, http.StatusConflict, "InvalidKeyState", http.StatusBadRequest, "KMSInvalidStateException"},
	{errTooLarge, http.StatusRequestEntityTooLarge, "RequestTooLarge", http.StatusRequestEntityTooLarge, "ValidationException"},
	{kms.ErrNotImplemented, http.StatusNotImplemented, "NotImplemented", http.StatusBadRequest, "UnsupportedOperationException"},
	{kms.ErrUnavailable, http.StatusServiceUnavailable, "ServiceUnavailable", http.StatusServiceUnavailable, "DependencyTimeoutException"},
	{errBusy, http.StatusServiceUnavailable, "ServiceUnavailable", http.StatusBadRequest, "ThrottlingException"},
	{context.DeadlineExceeded, http.StatusServiceUnavailable, "ServiceUnavailable", http.StatusServiceUnavailable, "DependencyTimeoutException"},
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

// awsErrorBody is the shape of every error of the AWS KMS door.
type awsErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message"`
}

// writeAWSError is writeError for the AWS KMS door: the AWS columns of
// the table, AWS's body, and the request id in x-amzn-RequestId.
func (s *Server) writeAWSError(w http.ResponseWriter, r *http.Request, reqID string, err error) (status int, code string) {
	w.Header().Set("X-Amzn-Requestid", reqID)
	for _, e := range errorTable {
		if errors.Is(err, e.err) {
			msg := err.Error()
			if e.err == context.DeadlineExceeded {
				msg = "the backend did not answer in time"
			}
			if detail := kms.PrivateDetail(err); detail != "" {
				s.opts.Log.Warn("request failed", "request_id", reqID, "target", r.Header.Get("X-Amz-Target"), "status", e.awsStatus, "code", e.awsCode, "error", msg, "detail", detail)
			} else {
				s.opts.Log.Debug("request failed", "request_id", reqID, "status", e.awsStatus, "code", e.awsCode, "error", msg)
			}
			writeAWS(w, e.awsStatus, awsErrorBody{Type: e.awsCode, Message: msg})
			return e.awsStatus, e.awsCode
		}
	}
	s.opts.Log.Error("internal error", "request_id", reqID, "error", err.Error())
	writeAWS(w, http.StatusInternalServerError, awsErrorBody{Type: "KMSInternalException", Message: "internal error (request " + reqID + "; details in the server log)"})
	return http.StatusInternalServerError, "KMSInternalException"
}

// errMissing reports a required field that is absent.
func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", kms.ErrInvalidRequest, field)
}
