package httpapi

import (
	"errors"
	"net/http"

	"github.com/keyward/keyward/internal/kms"
)

// KES errors (docs/kes-api.md, "Errors"). The KES client compares errors
// as values (status and message), so the four it names are answered byte
// for byte as KES does: {"message": "..."} with Content-Type
// application/json.
var (
	// errKESUnknownIdentity: no client certificate, or one whose identity
	// the IAM file does not pin.
	errKESUnknownIdentity = errors.New("the client certificate's identity is not in the IAM file")
	// errKESNotServed: a KES API Keyward does not have.
	errKESNotServed = errors.New("not implemented: Keyward does not serve this KES API (see docs/kes-api.md)")
)

// kesErrorTable maps errors to KES's status and fixed message; the first
// entry the error matches (errors.Is) wins. Any other error is answered
// with the status of the admin API's table (errors.go) and Keyward's own
// message for it, which the client reports as it is.
var kesErrorTable = []struct {
	err     error
	status  int
	message string
}{
	{errKESUnknownIdentity, http.StatusForbidden, "not authorized: insufficient permissions"},
	{errAccessDenied, http.StatusForbidden, "not authorized: insufficient permissions"},
	{kms.ErrNotFound, http.StatusNotFound, "key does not exist"},
	{kms.ErrExists, http.StatusBadRequest, "key already exists"},
	{kms.ErrInvalidCiphertext, http.StatusBadRequest, "decryption failed: ciphertext is not authentic"},
	{errKESNotServed, http.StatusNotImplemented, ""},
}

// kesErrorBody is KES's error shape.
type kesErrorBody struct {
	Message string `json:"message"`
}

// writeKESError answers err in KES's format and returns the admin API's
// code for the same error (for the audit line).
func (s *Server) writeKESError(w http.ResponseWriter, r *http.Request, reqID string, err error) (code string) {
	status, code, msg := s.classifyForKES(r, reqID, err)
	for _, e := range kesErrorTable {
		if errors.Is(err, e.err) {
			status = e.status
			if e.message != "" {
				msg = e.message
			}
			if e.err == errKESUnknownIdentity {
				code = "AccessDenied"
			}
			break
		}
	}
	if errors.Is(err, errKESNotServed) {
		code = "NotImplemented"
	}
	writeJSON(w, status, kesErrorBody{Message: msg})
	return code
}

// classifyForKES is the admin API's mapping (classify) of an error: its
// status, code and message.
func (s *Server) classifyForKES(r *http.Request, reqID string, err error) (status int, code, msg string) {
	if errors.Is(err, errKESUnknownIdentity) || errors.Is(err, errKESNotServed) {
		return http.StatusForbidden, "AccessDenied", err.Error() // replaced by kesErrorTable
	}
	m, msg := s.classify(r, reqID, err)
	if m == nil {
		return http.StatusInternalServerError, "InternalError", msg
	}
	return m.status, m.code, msg
}
