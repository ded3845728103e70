// Package e2e holds Keyward's end-to-end tests. They build the real binary
// once (TestMain), run it as child processes on 127.0.0.1:0 with private data
// directories, and talk to it over HTTP with requests signed by the AWS SDK
// for Go v2 SigV4 signer, curl's --aws-sigv4 and botocore.
//
// Run them with:
//
//	go test ./e2e -count=1
//
// The tests assert the documented behaviour (docs/api.md, docs/operations.md,
// docs/vault.md), not the current implementation: a failing test is a
// deviation to fix in the server.
// curl and python3 with botocore must be installed; the tests fail (not
// skip) when they are missing.
package e2e
