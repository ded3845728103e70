// Package kms is Keyward's key service: the rules every front door shares.
//
// A Service (service.go) holds the rules of keys and data keys: key ids and
// aliases, key states and the transitions between them (keystate.go),
// deletion windows and rotation schedules, tags, the blob format that
// carries a wrapped data key together with the id and version of the key
// that wrapped it (blob.go), and the binding of an encryption context as
// associated data. It knows nothing about HTTP, SigV4 or where keys live.
//
// Below it, an Engine (engine.go) stores key records atomically and wraps
// and unwraps short secrets under a key version. There is one Engine, the
// keyring (internal/keyring); backends differ only in the Store that keeps
// its sealed records and the Material that wraps (sealed key material in
// the record for local and vault, a Transit key for vault-transit).
//
// The admin API (internal/httpapi) is a front door over a Service; so are
// the CLI and the Go client through it. Domain errors are the sentinel
// errors of errors.go, matched with errors.Is; the HTTP layer maps them to
// status codes in one table.
package kms
