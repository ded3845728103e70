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
