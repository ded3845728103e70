// Package client is the Go client of the Keyward KMS: one method per route
// of the admin HTTP API (the RustFS KMS admin API) and of the data plane,
// every request signed with AWS Signature Version 4.
//
// # Usage
//
//	c, err := client.New("https://kms.example.com:9000", accessKey, secretKey,
//		client.WithCACert(caPEM))
//	if err != nil {
//		return err
//	}
//	dk, err := c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{
//		KeyID:             "app-key",
//		EncryptionContext: map[string]string{"bucket": "photos"},
//	})
//	if err != nil {
//		return err
//	}
//	defer dk.Wipe()
//	// Encrypt locally with dk.Plaintext; store dk.CiphertextBlob next to
//	// the data. Later:
//	pt, err := c.Decrypt(ctx, client.DecryptRequest{
//		CiphertextBlob:    dk.CiphertextBlob,
//		EncryptionContext: map[string]string{"bucket": "photos"},
//	})
//	switch {
//	case errors.Is(err, client.ErrInvalidCiphertext):
//		// tampered blob or wrong context
//	case errors.Is(err, client.ErrInvalidKeyState):
//		// the key is disabled or pending deletion
//	}
//
// Every method takes a context.Context first; it bounds the whole call,
// retries included. Requests and responses are typed structs; binary
// values are []byte (base64 on the wire).
//
// # Errors
//
// A server answer other than 2xx is an *APIError carrying the HTTP status
// and the body's code, message and request id. errors.Is compares codes
// with the sentinels (ErrNotFound, ErrInvalidKeyState, ErrConflict,
// ErrInvalidRequest, ErrInvalidCiphertext, ErrAccessDenied,
// ErrServiceUnavailable, ...); errors.As gives the *APIError. Transport
// failures (connection refused, TLS, timeouts) are returned wrapped, so
// errors.Is(err, context.DeadlineExceeded) and errors.As(err,
// new(*net.OpError)) keep working. No error carries key material.
//
// # Retries
//
// Calls that are safe to repeat are retried on 503 ServiceUnavailable and
// on transport errors, with exponential backoff and jitter (WithRetries;
// default 3 retries from 100 ms, doubling, capped at 5 s; a Retry-After in
// seconds is honoured up to 30 s), and never past the context:
//
//   - every GET: Status, ServiceStatus, Config, ListKeys (and ListAllKeys),
//     DescribeKey, Metrics, Health, Live, DescribeKeyLegacy,
//     KeyStatusLegacy, ListKeysLegacy;
//   - ManagementStatus (POST /kms/status, read-only) and ClearCache
//     (idempotent);
//   - the data plane: GenerateDataKey, GenerateDataKeyWithoutPlaintext,
//     Encrypt, Decrypt, ReEncrypt. The server stores nothing for them, so
//     a repeat only returns another valid data key or blob.
//
// Every other call changes state and is sent once: Configure, Reconfigure,
// Start, Stop, CreateKey, CreateKeyLegacy, KeyCreateLegacy,
// ScheduleKeyDeletion, DestroyKeyNow, CancelKeyDeletion, EnableKey,
// DisableKey, RotateKey, SetKeyRotation, UpdateKeyDescription, TagKey,
// UntagKey. The only exception is a connection that could not be made at
// all (a dial error: nothing was sent), which is retried for every call.
// Errors that a retry would only repeat are never retried: 4xx answers,
// an untrusted server certificate, a server that does not speak TLS.
//
// # Several endpoints
//
// New accepts several endpoints separated by commas, the servers of one
// Keyward deployment (nodes that serve the same keys, for example over one
// Vault): "https://kms-a:9000,https://kms-b:9000", as KEYWARD_ENDPOINT does
// for the CLI. The client sends every request to one of them, the first
// to begin with. When a call that is safe to repeat (the list under
// Retries) fails there with a transport error or 503, the client moves to
// the next endpoint, for that call and every later one, and sends the call
// there at once; each endpoint is tried once before the backoff applies,
// then the round starts over. A call that changes state moves on only when
// the connection could not be made at all (nothing was sent). Endpoints
// returns them, the one in use first.
//
// So a state-changing call whose connection broke after it was sent (the
// server was killed mid-call) fails, even though another endpoint is up:
// it may have been executed. Repeat it yourself if you need to: the
// repeat either succeeds or tells you the change happened. For CreateKey
// with a key id, a repeat that gets ErrConflict (409, the id exists) means
// the key exists: DescribeKey it to check it is the one you meant (its
// description, tags, creation date). Schedule, cancel, enable, disable and
// the tag calls answer the same whether or not the lost call was executed,
// or with ErrInvalidKeyState (409) when the state is already the one asked
// for; RotateKey repeated makes a second rotation.
//
// # Secrets
//
// DataKey.Plaintext and Plaintext.Plaintext belong to the caller, who
// should call Wipe as soon as they are no longer needed. The client builds
// request bodies that carry secrets (Encrypt's plaintext, Configure's
// master key and Vault credentials) in its own buffer instead of
// encoding/json's pooled ones, wipes every request body once the call is
// done and the transport has let go of it, and every response body after
// decoding; it cannot reach the copies held by the Go runtime's network and
// TLS buffers.
//
// # Signing and TLS
//
// Requests are signed in the SigV4 header form, with x-amz-content-sha256
// set to the hex SHA-256 of the body, for service "kms" and region
// "us-east-1" unless WithService or WithRegion say otherwise: the signature
// is the one the AWS SDK for Go v2 computes. Health and Live are sent
// unsigned. For HTTPS with a private CA use WithCACert; WithTLSConfig takes
// a complete tls.Config; WithInsecureSkipVerify is for tests only.
// Redirects are never followed.
package client
