// Package kesinterop checks Keyward's KES API (docs/kes-api.md) with the
// real KES client library, github.com/minio/kms-go/kes v0.3.1, against the
// real keyward binary over TLS, on the local backend and on a Vault backend.
//
// It is a Go module of its own: kms-go is AGPL-licensed, and the product
// module (github.com/keyward/keyward) must never depend on it. It holds
// tests only; scripts/test.sh runs them (cd interop/kes && go test -race ./...).
package kesinterop
