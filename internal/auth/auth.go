// Package auth resolves who signed a request and what they may do.
// Today there is one identity, the root user (every permission); users
// with IAM policies plug in behind the same two interfaces.
package auth

import "crypto/subtle"

// Root is the root credential pair from KEYWARD_ROOT_USER and
// KEYWARD_ROOT_PASSWORD.
type Root struct {
	AccessKey string
	Secret    string
}

// SecretKey implements sigv4.CredentialStore.
func (r *Root) SecretKey(accessKey string) (string, bool) {
	if subtle.ConstantTimeCompare([]byte(accessKey), []byte(r.AccessKey)) != 1 {
		return "", false
	}
	return r.Secret, true
}

// Allowed reports whether accessKey may perform action (a "kms:..." name)
// on resource (a key ARN, or "*" for routes that act on no key).
func (r *Root) Allowed(accessKey, action, resource string) bool {
	return accessKey == r.AccessKey
}
