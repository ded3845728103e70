// Package jsonbody decodes request bodies strictly and reports problems
// without echoing the input: a body may carry a master key, a token or a
// plaintext, so no error text ever quotes it.
package jsonbody

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/keyward/keyward/internal/kms"
)

// Decode reads exactly one JSON value from body into v. Unknown object
// fields are refused, so a misspelt setting is an error rather than being
// silently ignored. Errors wrap kms.ErrInvalidRequest.
func Decode(body []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: invalid JSON: %s", kms.ErrInvalidRequest, describe(err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return fmt.Errorf("%w: invalid JSON: trailing data after the value", kms.ErrInvalidRequest)
	}
	return nil
}

// IsEmpty reports whether body holds nothing but white space.
func IsEmpty(body []byte) bool { return len(bytes.TrimSpace(body)) == 0 }

func describe(err error) string {
	var syn *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("syntax error at offset %d", syn.Offset)
	case errors.As(err, &typ):
		if typ.Field == "" {
			return fmt.Sprintf("expected %s", typ.Type)
		}
		return fmt.Sprintf("field %q has the wrong type (want %s)", typ.Field, typ.Type)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "unexpected end of input"
	}
	return "malformed body"
}
