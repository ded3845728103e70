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
var errorTable = []errorMapping{
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

// errorMapping is one row of errorTable.
type errorMapping struct {
	err       error
	status    int
	code      string
	awsStatus int
	awsCode   string
}

// internalErrorMessage is what a caller learns of an unmapped error.
func internalErrorMessage(reqID string) string {
	return "internal error (request " + reqID + "; details in the server log)"
}

// classify finds err's row of errorTable and the message to answer with,
// and logs the failure, for every front door: at Debug for a mapped error,
// at Warn with the private detail an operator must see (kms.PrivateDetail,
// never sent to the caller), at Error for an unmapped error, whose text
// goes only to the log (m is nil then).
func (s *Server) classify(r *http.Request, reqID string, err error) (m *errorMapping, msg string) {
	args := []any{"request_id", reqID, "method", r.Method, "path", r.URL.Path}
	if target := r.Header.Get("X-Amz-Target"); target != "" {
		args = append(args, "target", target)
	}
	for i := range errorTable {
		e := &errorTable[i]
		if !errors.Is(err, e.err) {
			continue
		}
		msg = err.Error()
		if e.err == context.DeadlineExceeded {
			msg = "the backend did not answer in time"
		}
		args = append(args, "code", e.code, "error", msg)
		if detail := kms.PrivateDetail(err); detail != "" {
			// Something an operator must look at (a record that does not
			// open); the caller gets the public half only.
			s.opts.Log.Warn("request failed", append(args, "detail", detail)...)
		} else {
			s.opts.Log.Debug("request failed", args...)
		}
		return e, msg
	}
	s.opts.Log.Error("internal error", append(args, "error", err.Error())...)
	return nil, internalErrorMessage(reqID)
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
	status, code = http.StatusInternalServerError, "InternalError"
	m, msg := s.classify(r, reqID, err)
	if m != nil {
		status, code = m.status, m.code
	}
	writeJSON(w, status, errorBody{Code: code, Message: msg, RequestID: reqID})
	return status, code
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
	status, code = http.StatusInternalServerError, "KMSInternalException"
	m, msg := s.classify(r, reqID, err)
	if m != nil {
		status, code = m.awsStatus, m.awsCode
	}
	writeAWS(w, status, awsErrorBody{Type: code, Message: msg})
	return status, code
}

// errMissing reports a required field that is absent.
func errMissing(field string) error {
	return fmt.Errorf("%w: %s is required", kms.ErrInvalidRequest, field)
}
