package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// APIError is an error answered by the server: the HTTP status and the
// JSON error body {"code", "message", "request_id"}. Branch on Code (or
// with errors.Is against the Err* sentinels), never on Message, which is
// for humans. The server guarantees that the message carries no key
// material; the client adds none.
type APIError struct {
	// StatusCode is the HTTP status (400, 404, 409, 503, ...).
	StatusCode int
	// Code is the machine-readable code: NotFound, InvalidKeyState, ...
	// When the body was not a Keyward error body (a proxy's error page),
	// it is derived from the status.
	Code string
	// Message is the server's explanation.
	Message string
	// RequestID identifies the request in the server's log and audit log.
	RequestID string
}

// Error describes the failure: code, message, status and request id.
func (e *APIError) Error() string {
	s := fmt.Sprintf("keyward: %s: %s (HTTP %d", e.Code, e.Message, e.StatusCode)
	if e.RequestID != "" {
		s += ", request " + e.RequestID
	}
	return s + ")"
}

// Is reports whether target is the sentinel for e's code, so that
// errors.Is(err, client.ErrNotFound) works on any error that wraps an
// APIError. Two APIErrors match when their codes are equal.
func (e *APIError) Is(target error) bool {
	switch t := target.(type) {
	case *codeError:
		return t.code == e.Code
	case *APIError:
		return t.Code == e.Code
	}
	return false
}

// codeError is the type of the Err* sentinels: a code and nothing else.
type codeError struct{ code string }

func (e *codeError) Error() string { return "keyward: " + e.code }

// Code returns the error code the sentinel stands for.
func (e *codeError) Code() string { return e.code }

// Sentinel errors, one per error code of the API (docs/api.md, "Errors"). Test
// with errors.Is(err, client.ErrNotFound); use errors.As with *APIError
// for the status, message and request id.
var (
	// ErrInvalidRequest: malformed JSON, a missing or invalid field (400).
	ErrInvalidRequest error = &codeError{"InvalidRequest"}
	// ErrInvalidCiphertext: the blob is malformed or tampered with, or the
	// encryption context does not match (400).
	ErrInvalidCiphertext error = &codeError{"InvalidCiphertext"}
	// ErrAccessDenied: no signature (401), or the caller lacks the
	// permission (403).
	ErrAccessDenied error = &codeError{"AccessDenied"}
	// ErrInvalidAccessKeyID: the access key is unknown (401).
	ErrInvalidAccessKeyID error = &codeError{"InvalidAccessKeyId"}
	// ErrSignatureDoesNotMatch: wrong secret key, or the request was
	// altered (401).
	ErrSignatureDoesNotMatch error = &codeError{"SignatureDoesNotMatch"}
	// ErrRequestTimeTooSkewed: the local clock is more than 15 minutes off
	// the server's (401).
	ErrRequestTimeTooSkewed error = &codeError{"RequestTimeTooSkewed"}
	// ErrNotFound: no such key (or route) (404).
	ErrNotFound error = &codeError{"NotFound"}
	// ErrMethodNotAllowed (405).
	ErrMethodNotAllowed error = &codeError{"MethodNotAllowed"}
	// ErrConflict: the service is already running or not configured, a
	// key id already exists, or an incompatible reconfigure (409).
	ErrConflict error = &codeError{"Conflict"}
	// ErrInvalidKeyState: the key's state forbids the operation, e.g.
	// generating a data key under a disabled key (409).
	ErrInvalidKeyState error = &codeError{"InvalidKeyState"}
	// ErrRequestTooLarge: the body is above the server's limit (413).
	ErrRequestTooLarge error = &codeError{"RequestTooLarge"}
	// ErrInternal: a server bug or an unexpected backend failure (500).
	ErrInternal error = &codeError{"InternalError"}
	// ErrNotImplemented: the backend cannot do this (501).
	ErrNotImplemented error = &codeError{"NotImplemented"}
	// ErrServiceUnavailable: the KMS service is not running, or its
	// backend is unreachable (503).
	ErrServiceUnavailable error = &codeError{"ServiceUnavailable"}
)

// UnreadableKeysError is returned last by ListAllKeys when the server
// listed key records it could not read (damaged records are reported,
// never silently dropped). Every readable key was yielded before it.
type UnreadableKeysError struct {
	KeyIDs []string
}

func (e *UnreadableKeysError) Error() string {
	return fmt.Sprintf("keyward: %d key record(s) could not be read by the server: %v", len(e.KeyIDs), e.KeyIDs)
}

// codeForStatus is the code of an error response without a JSON error
// body (a proxy's page, an empty body).
func codeForStatus(status int) string {
	switch status {
	case http.StatusBadRequest:
		return "InvalidRequest"
	case http.StatusUnauthorized, http.StatusForbidden:
		return "AccessDenied"
	case http.StatusNotFound:
		return "NotFound"
	case http.StatusMethodNotAllowed:
		return "MethodNotAllowed"
	case http.StatusConflict:
		return "Conflict"
	case http.StatusRequestEntityTooLarge:
		return "RequestTooLarge"
	case http.StatusNotImplemented:
		return "NotImplemented"
	case http.StatusServiceUnavailable:
		return "ServiceUnavailable"
	}
	return "InternalError"
}

// newAPIError builds the error of a non-2xx response. The body is read
// for its code, message and request id only; nothing else from it is kept.
func newAPIError(status int, header http.Header, body []byte) *APIError {
	var b struct {
		Code      string `json:"code"`
		Message   string `json:"message"`
		RequestID string `json:"request_id"`
	}
	e := &APIError{StatusCode: status}
	if json.Unmarshal(body, &b) == nil && b.Code != "" {
		e.Code, e.Message, e.RequestID = b.Code, b.Message, b.RequestID
	} else {
		e.Code = codeForStatus(status)
		e.Message = "unexpected response: " + http.StatusText(status)
	}
	if e.RequestID == "" {
		e.RequestID = header.Get("X-Request-Id")
	}
	return e
}

// asAPIError is errors.As for *APIError.
func asAPIError(err error) (*APIError, bool) {
	var e *APIError
	ok := errors.As(err, &e)
	return e, ok
}
