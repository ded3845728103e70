// Package iam is Keyward's identity store: the root user plus the users and
// policies of the IAM file (--iam-file, docs/operations.md). A Store is both
// the sigv4.CredentialStore (SecretKey) and the httpapi.Authorizer
// (Allowed).
//
// # File format
//
//	{"users": [
//	   {"access_key": "app1", "secret_key": "...",                "policies": ["KMSKeyUser"]},
//	   {"access_key": "ops",  "secret_key_file": "/run/secrets/ops", "policies": ["ops-keys"]},
//	   {"access_key": "ci",   "secret_key_env": "CI_SECRET",       "policies": ["KMSAuditor"]}],
//	 "identities": [
//	   {"identity": "<64 hex characters>", "policies": ["KMSKeyUser"]}],
//	 "policies": {"ops-keys": {"Version": "2012-10-17", "Statement": [
//	   {"Effect": "Allow", "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
//	    "Resource": ["arn:aws:kms:::key/app-*"]}]}}}
//
// An identity is a KES client's identity (docs/kes-api.md): the lowercase
// hex SHA-256 of its certificate's DER SubjectPublicKeyInfo. It holds the
// same policies as a user, built-ins included, and is never root.
//
// Each user has exactly one secret source; a secret file's trailing
// newlines are dropped; secrets have at least MinSecretLength characters.
// Policies use the IAM grammar: Version ("2012-10-17", "2008-10-17" or
// absent), Id, and Statement (an object or a list) whose statements hold
// Sid, Effect ("Allow"/"Deny"), Action and Resource (each a string or a
// non-empty list). Any other member anywhere, a duplicated member, or an
// IAM element Keyward does not implement (NotAction, NotResource,
// Principal, Condition) rejects the file: a policy must never silently
// mean something other than what it says.
//
// The built-in policies KMSKeyUser, KMSAuditor, KMSKeyAdministrator and
// consoleAdmin need no definition and grant their actions on Resource "*";
// a file may not define a policy under their names (in any casing).
//
// # Evaluation
//
// Root may do everything. For anyone else, an explicit Deny wins over any
// Allow, and no matching statement means deny. Actions are matched
// case-insensitively ("kms:generatedatakey" is kms:GenerateDataKey), with
// '*' and '?' wildcards ("*" alone is every action); an Action that names no known action is an error,
// so a typo cannot silently grant or fail to deny. Resources are matched
// case-sensitively, with '*' and '?' wildcards.
//
// Resources are "*", or an ARN naming keys or aliases:
// KeyARNPrefix followed by a key id pattern ("arn:aws:kms:::key/app-*"),
// AliasARNPrefix followed by an alias name pattern, and the same as AWS
// writes them, with a region and an account
// ("arn:aws:kms:eu-west-1:111122223333:key/app-*", wildcards allowed).
// The region is ignored: Keyward answers every region alike, so a policy
// for one region grants in all of them (docs/aws-kms-api.md). The account
// must be the server's AWS account id (--aws-account-id, SetAWSAccountID),
// or empty, or "*": a policy naming another account is refused rather
// than read as granting nothing, since it was surely meant for this
// server. An ARN whose resource part is "*" (RustFS's "arn:aws:kms:::*")
// covers every key and every alias.
//
// # Key-less routes
//
// Routes that act on a key are authorized on KeyResource(id); routes that
// act on no key (ListKeys, CreateKey, Configure, ServiceControl,
// ClearCache, Backup, Restore) are authorized on NoKey ("*"). A statement
// applies to NoKey only when one of its resources covers every key: "*"
// or "arn:aws:kms:::key/*". This is the AWS rule (ListKeys and CreateKey
// are only grantable on "*") and the one that keeps scoped users scoped: a
// user allowed kms:* on key/app-* cannot list every key, create keys,
// reconfigure the service or take a backup. The built-ins grant on "*",
// so KMSAuditor can list and KMSKeyAdministrator can create keys. Denies
// follow the same rule: a Deny on key/secret-1 does not block listing,
// a Deny on "*" or key/* does. A key route that passes NoKey instead of
// the key therefore fails closed for scoped users.
//
// # Reloading
//
// The file is parsed into an immutable Snapshot and published with an
// atomic pointer, so Allowed and SecretKey take no lock and do not
// allocate. Watch reloads on SIGHUP and when the content of the file, or
// of a secret file it names, changes. A file that fails to load is
// logged and ignored: the previous snapshot stays in force.
package iam

import (
	"context"
	"crypto/sha256"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// KeyARNPrefix starts every key resource; AliasARNPrefix every alias
// resource (followed by the alias name without "alias/").
const (
	KeyARNPrefix   = "arn:aws:kms:::key/"
	AliasARNPrefix = "arn:aws:kms:::alias/"
)

// DefaultAWSAccountID is the AWS account id of a server that names none.
const DefaultAWSAccountID = "000000000000"

// ValidAWSAccountID reports whether id is an AWS account id: 12 digits.
func ValidAWSAccountID(id string) bool {
	if len(id) != 12 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] < '0' || id[i] > '9' {
			return false
		}
	}
	return true
}

// NoKey is the resource of routes that act on no key.
const NoKey = "*"

// KeyResource is the resource a route acting on keyID is authorized on.
func KeyResource(keyID string) string { return KeyARNPrefix + keyID }

// AliasResource is the resource of the alias name ("alias/<name>").
func AliasResource(name string) string { return "arn:aws:kms:::" + name }

// Size caps: an IAM file or secret file bigger than this is a mistake
// (and reading /dev/zero must not exhaust memory).
const (
	maxFileSize   = 4 << 20
	maxSecretSize = 64 << 10
)

// Store is the live identity store: root plus the current IAM file's
// users. Safe for concurrent use; the request path is lock-free.
type Store struct {
	rootKey, rootSecret string
	// account is the AWS account id policy resources are read for.
	account string
	log     *slog.Logger
	snap    atomic.Pointer[Snapshot]

	mu sync.Mutex // serializes loads; guards the fields below
	// fp fingerprints the inputs of the last load attempt (successful or
	// not), so a broken file is reported once, not at every poll.
	fp [sha256.Size]byte
	// secretFiles are the secret files that attempt read, in order.
	secretFiles []string
}

// New returns a Store holding only the root user. An empty root access
// key disables root rather than making "" an all-powerful identity.
func New(rootAccessKey, rootSecret string, log *slog.Logger) *Store {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Store{rootKey: rootAccessKey, rootSecret: rootSecret, log: log, account: DefaultAWSAccountID}
	s.snap.Store(&Snapshot{users: map[string]*user{}, identities: map[string]*identity{}})
	return s
}

// SetAWSAccountID sets the AWS account id that policy resources are read
// for (DefaultAWSAccountID until then). Call it before the first LoadFile.
func (s *Store) SetAWSAccountID(id string) error {
	if !ValidAWSAccountID(id) {
		return fmt.Errorf("AWS account id %q: must be 12 digits", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.account = id
	return nil
}

// AWSAccountID is the account id set by SetAWSAccountID.
func (s *Store) AWSAccountID() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.account
}

// SecretKey implements sigv4.CredentialStore. A map lookup by access key
// is fine here: access keys are public, and the SigV4 layer compares
// signatures in constant time.
func (s *Store) SecretKey(accessKey string) (string, bool) {
	if s.isRoot(accessKey) {
		return s.rootSecret, true
	}
	return s.snap.Load().SecretKey(accessKey)
}

// Allowed reports whether accessKey may perform action on resource
// (KeyResource(id), or NoKey). Root may do everything; unknown users and
// unknown actions are denied.
func (s *Store) Allowed(accessKey, action, resource string) bool {
	if s.isRoot(accessKey) {
		return true
	}
	return s.snap.Load().Allowed(accessKey, action, resource)
}

// AllowedOnKey is Allowed on KeyResource(keyID), or on NoKey when keyID is
// empty. The root user is answered before the resource is built: the
// common admin case costs no allocation.
func (s *Store) AllowedOnKey(accessKey, action, keyID string) bool {
	if s.isRoot(accessKey) {
		return true
	}
	resource := NoKey
	if keyID != "" {
		resource = KeyResource(keyID)
	}
	return s.snap.Load().Allowed(accessKey, action, resource)
}

// AllowedOnAlias is Allowed on AliasResource(name).
func (s *Store) AllowedOnAlias(accessKey, action, name string) bool {
	if s.isRoot(accessKey) {
		return true
	}
	return s.snap.Load().Allowed(accessKey, action, AliasResource(name))
}

// IdentityAllowedOnKey is AllowedOnKey for a KES identity (the lowercase
// hex SHA-256 of a client certificate's public key). Identities are never
// root: they hold exactly what their policies grant.
func (s *Store) IdentityAllowedOnKey(id, action, keyID string) bool {
	resource := NoKey
	if keyID != "" {
		resource = KeyResource(keyID)
	}
	return s.snap.Load().IdentityAllowed(id, action, resource)
}

// IdentityKnown reports whether the IAM file in force pins the identity.
func (s *Store) IdentityKnown(id string) bool {
	_, ok := s.snap.Load().identities[id]
	return ok
}

// IdentityPolicies returns the policy names of a KES identity and whether
// the IAM file in force knows it.
func (s *Store) IdentityPolicies(id string) ([]string, bool) {
	return s.snap.Load().IdentityPolicies(id)
}

func (s *Store) isRoot(accessKey string) bool {
	return s.rootKey != "" && accessKey == s.rootKey
}

// Current returns the snapshot in force.
func (s *Store) Current() *Snapshot { return s.snap.Load() }

// LoadFile reads, validates and installs the IAM file at path. On error
// nothing changes: the previous snapshot stays in force. getenv resolves
// secret_key_env (nil means os.Getenv). At startup an error should be
// fatal; Watch uses the same path for reloads and logs instead.
func (s *Store) LoadFile(path string, getenv func(string) string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, err := s.loadLocked(path, getenv)
	return err
}

// loadLocked does one load attempt and records its fingerprint.
func (s *Store) loadLocked(path string, getenv func(string) string) (*Snapshot, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	fp := newFingerprint()
	b, err := fp.read(path, maxFileSize)
	var snap *Snapshot
	if err == nil {
		snap, err = ParseFileForAccount(b, s.account, s.rootKey, getenv, func(p string) ([]byte, error) {
			fp.files = append(fp.files, p)
			return fp.read(p, maxSecretSize)
		})
	} else {
		err = fmt.Errorf("iam: %w", err)
	}
	s.fp, s.secretFiles = fp.sum(), fp.files
	if err != nil {
		return nil, err
	}
	s.snap.Store(snap)
	return snap, nil
}

// Watch reloads the IAM file at path when hup delivers a signal (wire it
// to SIGHUP with signal.Notify) and, every interval (0 disables polling),
// when the content of the file or of a secret file it names has changed.
// Content, not mtime, decides: an edit within the file system's timestamp
// granularity is still seen, and a bare touch reloads nothing (send
// SIGHUP to force a reload). Each reload logs "IAM file reloaded" or an
// Error line with the reason; a rejected file leaves the previous one in
// force. Watch returns when ctx is done.
func (s *Store) Watch(ctx context.Context, path string, getenv func(string) string, interval time.Duration, hup <-chan os.Signal) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case _, ok := <-hup:
			if !ok {
				hup = nil // a closed channel would spin
				continue
			}
			s.reload(path, getenv, "SIGHUP", true)
		case <-tick:
			s.reload(path, getenv, "file changed", false)
		}
	}
}

func (s *Store) reload(path string, getenv func(string) string, trigger string, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !force && s.fingerprintLocked(path) == s.fp {
		return
	}
	snap, err := s.loadLocked(path, getenv)
	if err != nil {
		s.log.Error("IAM file rejected; the previous one stays in force",
			"path", path, "trigger", trigger, "err", err)
		return
	}
	s.log.Info("IAM file reloaded", "path", path, "trigger", trigger,
		"users", snap.Users(), "identities", snap.Identities(), "policies", snap.Policies())
}

// fingerprintLocked hashes the current inputs in the order the last load
// attempt read them.
func (s *Store) fingerprintLocked(path string) [sha256.Size]byte {
	fp := newFingerprint()
	fp.read(path, maxFileSize)
	for _, f := range s.secretFiles {
		fp.read(f, maxSecretSize)
	}
	return fp.sum()
}

// fingerprint reads files and hashes what each read returned (content or
// error), so any change to any input changes the sum.
type fingerprint struct {
	h     hash.Hash
	files []string
}

func newFingerprint() *fingerprint { return &fingerprint{h: sha256.New()} }

func (f *fingerprint) sum() (out [sha256.Size]byte) {
	f.h.Sum(out[:0])
	return out
}

func (f *fingerprint) read(path string, limit int64) ([]byte, error) {
	b, err := readLimited(path, limit)
	fmt.Fprintf(f.h, "%d:%s|", len(path), path)
	if err != nil {
		fmt.Fprintf(f.h, "error:%v|", err)
		return nil, err
	}
	fmt.Fprintf(f.h, "%d:", len(b))
	f.h.Write(b)
	return b, nil
}

// readLimited reads at most limit bytes of path; more is an error.
func readLimited(path string, limit int64) ([]byte, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer fh.Close()
	b, err := io.ReadAll(io.LimitReader(fh, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("file larger than %d bytes", limit)
	}
	return b, nil
}
