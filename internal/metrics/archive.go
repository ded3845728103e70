package metrics

import "github.com/keyward/keyward/internal/kms"

// Wrapped returns the wrapped engine, so that kms.ArchiverOf finds the
// engine's backup and restore methods. Backups and restores are counted
// as requests (and audited) by the HTTP layer; their many record reads
// are not counted as backend calls one by one.
func (w *instrumented) Wrapped() kms.Engine { return w.e }
