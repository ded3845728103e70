package kms

import "errors"

// Domain errors. Every layer wraps one of these (fmt.Errorf("...: %w", ErrX))
// and the HTTP layer maps them to a status and code in exactly one table
// (internal/httpapi/errors.go). Messages built around them must never carry
// key material or secrets.
var (
	// ErrNotFound: no such key (or the key was destroyed).
	ErrNotFound = errors.New("key not found")
	// ErrExists: a key with this id already exists.
	ErrExists = errors.New("key already exists")
	// ErrInvalidKeyState: the key's state forbids the operation.
	ErrInvalidKeyState = errors.New("invalid key state")
	// ErrInvalidCiphertext: a blob is malformed, tampered with, or was
	// presented with the wrong encryption context.
	ErrInvalidCiphertext = errors.New("invalid ciphertext")
	// ErrInvalidRequest: a missing or invalid field, or an unknown enum value.
	ErrInvalidRequest = errors.New("invalid request")
	// ErrConflict: the operation conflicts with the current service state
	// or with a concurrent change.
	ErrConflict = errors.New("conflict")
	// ErrNotImplemented: the backend cannot do this.
	ErrNotImplemented = errors.New("not implemented")
	// ErrUnavailable: the service is not running or the backend cannot be
	// reached.
	ErrUnavailable = errors.New("service unavailable")
	// ErrCorrupt: a stored record exists but cannot be read (damaged,
	// foreign, or sealed under another master key). Reported, never used.
	ErrCorrupt = errors.New("key record unreadable")
)

// privateCauseError is an error whose message is public (answered to the
// caller) while its cause is not: the cause of, say, a record that cannot
// be opened names server paths or a backend's answer, which a caller of
// the API has no business seeing. errors.Is sees both kind and cause; the
// cause's text reaches only the server log (PrivateDetail).
type privateCauseError struct {
	kind, cause error
	public      string
}

// WithPrivateCause returns an error of the given kind whose message is
// public (with the kind's text in front, as %w would put it) and whose
// cause is matched by errors.Is but kept out of the message.
func WithPrivateCause(kind error, public string, cause error) error {
	return &privateCauseError{kind: kind, cause: cause, public: kind.Error() + ": " + public}
}

func (e *privateCauseError) Error() string   { return e.public }
func (e *privateCauseError) Unwrap() []error { return []error{e.kind, e.cause} }

// PrivateDetail returns the text of the private cause in err's chain, for
// the server log ("" if there is none).
func PrivateDetail(err error) string {
	var p *privateCauseError
	if errors.As(err, &p) && p.cause != nil {
		return p.cause.Error()
	}
	return ""
}

// Finer kinds of the errors above, for front doors whose protocol names
// them apart (the AWS KMS API answers DisabledException, not
// KMSInvalidStateException, for a disabled key). Each is its parent for
// errors.Is and prints as its parent, so a door that does not tell them
// apart answers exactly what it answered before they existed.
var (
	// ErrKeyDisabled: the key is Disabled (a kind of ErrInvalidKeyState).
	ErrKeyDisabled error = &refinedError{parent: ErrInvalidKeyState}
	// ErrIncorrectKey: a blob was presented with a key it was not made
	// under (a kind of ErrInvalidCiphertext).
	ErrIncorrectKey error = &refinedError{parent: ErrInvalidCiphertext}
	// ErrInvalidAliasName: an alias name breaks the grammar or is
	// reserved (a kind of ErrInvalidRequest).
	ErrInvalidAliasName error = &refinedError{parent: ErrInvalidRequest}
)

// refinedError is a kind of its parent error.
type refinedError struct{ parent error }

func (e *refinedError) Error() string        { return e.parent.Error() }
func (e *refinedError) Is(target error) bool { return target == e.parent }
