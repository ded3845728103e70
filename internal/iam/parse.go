package iam

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"
)

// MinSecretLength is the shortest secret key accepted, in characters.
const MinSecretLength = 8

// maxAccessKeyLen matches the SigV4 layer's bound on access keys.
const maxAccessKeyLen = 128

// Snapshot is one validated IAM file: immutable once built, so readers
// need no lock. It does not know the root user (Store does).
type Snapshot struct {
	users map[string]*user
	// identities are the KES identities (lowercase hex SHA-256 of a
	// certificate's public key), kept apart from users: a user's access
	// key can never name an identity, nor the other way round.
	identities map[string]*identity
	policies   int
}

// identity is one identities[] entry: a pinned client certificate public
// key and its policies (docs/kes-api.md).
type identity struct {
	policies []string // names, as the file lists them
	perms    permissions
}

type user struct {
	secret string
	perms  permissions
}

// Users is the number of users the file defines.
func (s *Snapshot) Users() int { return len(s.users) }

// Identities is the number of KES identities the file defines.
func (s *Snapshot) Identities() int { return len(s.identities) }

// Policies is the number of policies the file defines (built-ins excluded).
func (s *Snapshot) Policies() int { return s.policies }

// SecretKey returns the secret of a file user.
func (s *Snapshot) SecretKey(accessKey string) (string, bool) {
	u, ok := s.users[accessKey]
	if !ok {
		return "", false
	}
	return u.secret, true
}

// Allowed evaluates a file user's policies; unknown users and unknown
// actions are denied.
func (s *Snapshot) Allowed(accessKey, action, resource string) bool {
	u, ok := s.users[accessKey]
	if !ok {
		return false
	}
	i, ok := lookupAction(action)
	if !ok || u.perms[i] == nil {
		return false
	}
	return u.perms[i].allowed(resource)
}

// IdentityAllowed evaluates a KES identity's policies; unknown identities
// and unknown actions are denied.
func (s *Snapshot) IdentityAllowed(id, action, resource string) bool {
	ident, ok := s.identities[id]
	if !ok {
		return false
	}
	i, ok := lookupAction(action)
	if !ok || ident.perms[i] == nil {
		return false
	}
	return ident.perms[i].allowed(resource)
}

// IdentityPolicies returns the policy names of a KES identity, and whether
// the identity is known.
func (s *Snapshot) IdentityPolicies(id string) ([]string, bool) {
	ident, ok := s.identities[id]
	if !ok {
		return nil, false
	}
	return slices.Clone(ident.policies), true
}

// ParseFile parses and validates an IAM file. rootAccessKey is refused as
// a user's access key; getenv and readFile resolve secret_key_env and
// secret_key_file. Any problem rejects the whole file: a half-loaded file
// could grant or deny what its author did not mean. Errors name the user,
// policy and statement but never contain a secret: values are only quoted
// from fields that are not secrets, and JSON syntax errors report a
// position only.
//
// Policy resources are read for the AWS account DefaultAWSAccountID; see
// ParseFileForAccount.
func ParseFile(b []byte, rootAccessKey string, getenv func(string) string, readFile func(string) ([]byte, error)) (*Snapshot, error) {
	return ParseFileForAccount(b, DefaultAWSAccountID, rootAccessKey, getenv, readFile)
}

// ParseFileForAccount is ParseFile for a server whose AWS account id
// (--aws-account-id) is account: a policy resource that names another
// account is refused.
func ParseFileForAccount(b []byte, account, rootAccessKey string, getenv func(string) string, readFile func(string) ([]byte, error)) (*Snapshot, error) {
	if err := checkJSON(b); err != nil {
		return nil, err
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil || top == nil {
		return nil, errors.New("iam: the file must be a JSON object")
	}
	if err := onlyFields(top, "users", "identities", "policies"); err != nil {
		return nil, fmt.Errorf("iam: top level: %w", err)
	}
	var rawPolicies map[string]json.RawMessage
	if raw, ok := top["policies"]; ok {
		if err := json.Unmarshal(raw, &rawPolicies); err != nil {
			return nil, errors.New("iam: policies must be an object mapping names to policy documents")
		}
	}
	policies := make(map[string][]statement, len(rawPolicies))
	names := make([]string, 0, len(rawPolicies))
	for name := range rawPolicies {
		names = append(names, name)
	}
	slices.Sort(names) // deterministic: the same file always reports the same error
	for _, name := range names {
		if strings.TrimSpace(name) == "" {
			return nil, fmt.Errorf("iam: policy %q: empty policy name", name)
		}
		if b, ok := builtinFold(name); ok {
			return nil, fmt.Errorf("iam: policy %q: redefines the built-in policy %q", name, b)
		}
		stmts, err := compilePolicy(rawPolicies[name], account)
		if err != nil {
			return nil, fmt.Errorf("iam: policy %q: %w", name, err)
		}
		policies[name] = stmts
	}
	var rawUsers []json.RawMessage
	if raw, ok := top["users"]; ok {
		if err := json.Unmarshal(raw, &rawUsers); err != nil {
			return nil, errors.New("iam: users must be a list of objects")
		}
	}
	snap := &Snapshot{users: make(map[string]*user, len(rawUsers)), policies: len(policies)}
	index := make(map[string]int, len(rawUsers))
	for i, raw := range rawUsers {
		ak, u, err := parseUser(raw, rootAccessKey, policies, getenv, readFile)
		if err != nil {
			if ak == "" {
				return nil, fmt.Errorf("iam: user %d: %w", i, err)
			}
			return nil, fmt.Errorf("iam: user %d (%q): %w", i, ak, err)
		}
		if j, dup := index[ak]; dup {
			return nil, fmt.Errorf("iam: user %d (%q): duplicate access key (also user %d)", i, ak, j)
		}
		index[ak] = i
		snap.users[ak] = u
	}
	identities, err := parseIdentities(top["identities"], policies)
	if err != nil {
		return nil, err
	}
	snap.identities = identities
	return snap, nil
}

// IdentityLength is the length of a KES identity: the hex SHA-256 of a
// certificate's DER SubjectPublicKeyInfo.
const IdentityLength = 64

// parseIdentities validates the identities list (absent: none).
func parseIdentities(raw json.RawMessage, policies map[string][]statement) (map[string]*identity, error) {
	var list []json.RawMessage
	if raw != nil {
		if err := json.Unmarshal(raw, &list); err != nil {
			return nil, errors.New("iam: identities must be a list of objects")
		}
	}
	out := make(map[string]*identity, len(list))
	index := make(map[string]int, len(list))
	for i, r := range list {
		id, ident, err := parseIdentity(r, policies)
		if err != nil {
			if id == "" {
				return nil, fmt.Errorf("iam: identity %d: %w", i, err)
			}
			return nil, fmt.Errorf("iam: identity %d (%q): %w", i, id, err)
		}
		if j, dup := index[id]; dup {
			return nil, fmt.Errorf("iam: identity %d (%q): duplicate identity (also identity %d)", i, id, j)
		}
		index[id] = i
		out[id] = ident
	}
	return out, nil
}

// parseIdentity validates one identities[] entry. The identity is read in
// either case and kept in lower case, the form the server computes.
func parseIdentity(raw json.RawMessage, policies map[string][]statement) (string, *identity, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return "", nil, errors.New("must be a JSON object")
	}
	var id string
	if err := str(f, "identity", &id, true); err != nil {
		return "", nil, err
	}
	if !ValidIdentity(id) {
		// Quoting is safe: an identity is a public key's hash, not a secret.
		return "", nil, fmt.Errorf("identity %q: must be %d hexadecimal characters (the SHA-256 of a certificate's public key, as keyward identity prints it)", truncate(id, 80), IdentityLength)
	}
	id = strings.ToLower(id)
	if err := onlyFields(f, "identity", "policies"); err != nil {
		return id, nil, err
	}
	ident := &identity{}
	if raw, ok := f["policies"]; ok {
		if err := json.Unmarshal(raw, &ident.policies); err != nil {
			return id, nil, errors.New("policies must be a list of policy names")
		}
	}
	for _, name := range ident.policies {
		stmts, ok := builtins[name]
		if !ok {
			stmts, ok = policies[name]
		}
		if !ok {
			return id, nil, fmt.Errorf("policy %q is not defined%s", name, didYouMean(name, policies))
		}
		ident.perms.add(stmts)
	}
	return id, ident, nil
}

// ValidIdentity reports whether id is IdentityLength hexadecimal
// characters (either case).
func ValidIdentity(id string) bool {
	if len(id) != IdentityLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F') {
			return false
		}
	}
	return true
}

// truncate shortens s for an error message.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

var secretSources = []string{"secret_key", "secret_key_file", "secret_key_env"}

// parseUser validates one users[] entry. It returns the access key as soon
// as it is known so the caller can name the user in the error.
func parseUser(raw json.RawMessage, root string, policies map[string][]statement,
	getenv func(string) string, readFile func(string) ([]byte, error)) (string, *user, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return "", nil, errors.New("must be a JSON object")
	}
	var ak string
	if err := str(f, "access_key", &ak, true); err != nil {
		return "", nil, err
	}
	if err := onlyFields(f, "access_key", "secret_key", "secret_key_file", "secret_key_env", "policies"); err != nil {
		return ak, nil, err
	}
	if err := validAccessKey(ak); err != nil {
		return ak, nil, err
	}
	if ak == root {
		return ak, nil, errors.New("access key is the root user's")
	}
	var present []string
	for _, s := range secretSources {
		if _, ok := f[s]; ok {
			present = append(present, s)
		}
	}
	switch len(present) {
	case 0:
		return ak, nil, errors.New("no secret: set one of secret_key, secret_key_file, secret_key_env")
	case 1:
	default:
		return ak, nil, fmt.Errorf("several secret sources (%s): set exactly one", strings.Join(present, ", "))
	}
	secret, err := resolveSecret(f, present[0], getenv, readFile)
	if err != nil {
		return ak, nil, err
	}
	u := &user{secret: secret}
	var names []string
	if raw, ok := f["policies"]; ok {
		if err := json.Unmarshal(raw, &names); err != nil {
			return ak, nil, errors.New("policies must be a list of policy names")
		}
	}
	for _, name := range names {
		stmts, ok := builtins[name]
		if !ok {
			stmts, ok = policies[name]
		}
		if !ok {
			return ak, nil, fmt.Errorf("policy %q is not defined%s", name, didYouMean(name, policies))
		}
		u.perms.add(stmts)
	}
	return ak, u, nil
}

// resolveSecret reads the one secret source the user set.
func resolveSecret(f map[string]json.RawMessage, source string,
	getenv func(string) string, readFile func(string) ([]byte, error)) (string, error) {
	var v string
	if err := str(f, source, &v, true); err != nil {
		return "", err
	}
	secret, from := v, "secret_key"
	switch source {
	case "secret_key_file":
		if v == "" {
			return "", errors.New("secret_key_file: empty path")
		}
		b, err := readFile(v)
		if err != nil {
			return "", fmt.Errorf("secret_key_file %q: %w", v, err)
		}
		// Secret files usually end in a newline (echo, Kubernetes and
		// Docker secrets); it is never part of the secret.
		secret, from = strings.TrimRight(string(b), "\r\n"), fmt.Sprintf("secret_key_file %q", v)
	case "secret_key_env":
		if v == "" {
			return "", errors.New("secret_key_env: empty variable name")
		}
		if secret = getenv(v); secret == "" {
			return "", fmt.Errorf("secret_key_env %q: environment variable is unset or empty", v)
		}
		from = fmt.Sprintf("secret_key_env %q", v)
	}
	switch n := utf8.RuneCountInString(secret); {
	case n == 0:
		return "", fmt.Errorf("%s: empty secret", from)
	case n < MinSecretLength:
		return "", fmt.Errorf("%s: secret is shorter than %d characters", from, MinSecretLength)
	}
	return secret, nil
}

// validAccessKey mirrors what the SigV4 layer can carry in a credential
// scope: printable ASCII without spaces, ',' or '/'.
func validAccessKey(ak string) error {
	if ak == "" || len(ak) > maxAccessKeyLen {
		return fmt.Errorf("access key must be 1 to %d characters", maxAccessKeyLen)
	}
	for i := 0; i < len(ak); i++ {
		if c := ak[i]; c <= ' ' || c > '~' || c == ',' || c == '/' {
			return errors.New("access key may only hold printable ASCII without spaces, ',' or '/'")
		}
	}
	return nil
}

func didYouMean(name string, policies map[string][]statement) string {
	if b, ok := builtinFold(name); ok {
		return fmt.Sprintf(" (did you mean the built-in %q?)", b)
	}
	best := ""
	for p := range policies {
		if strings.EqualFold(p, name) && (best == "" || p < best) { // smallest: deterministic
			best = p
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" (did you mean %q?)", best)
}

// compilePolicy validates and compiles one policy document.
func compilePolicy(raw json.RawMessage, account string) ([]statement, error) {
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return nil, errors.New("must be a JSON object")
	}
	if err := onlyFields(f, "Version", "Id", "Statement"); err != nil {
		return nil, err
	}
	var version, id string
	if err := str(f, "Version", &version, false); err != nil {
		return nil, err
	}
	if _, ok := f["Version"]; ok && version != "2012-10-17" && version != "2008-10-17" {
		return nil, fmt.Errorf("Version %q: must be \"2012-10-17\" or \"2008-10-17\"", version)
	}
	if err := str(f, "Id", &id, false); err != nil {
		return nil, err
	}
	rs, ok := f["Statement"]
	if !ok {
		return nil, errors.New("missing Statement")
	}
	var list []json.RawMessage
	switch t := bytes.TrimSpace(rs); {
	case len(t) > 0 && t[0] == '{':
		list = []json.RawMessage{t} // IAM also allows a single statement object
	case len(t) == 0 || t[0] != '[' || json.Unmarshal(t, &list) != nil:
		return nil, errors.New("Statement must be a statement object or a list of them")
	}
	out := make([]statement, 0, len(list))
	for i, r := range list {
		st, sid, err := compileStatement(r, account)
		if err != nil {
			if sid != "" {
				return nil, fmt.Errorf("statement %d (Sid %q): %w", i, sid, err)
			}
			return nil, fmt.Errorf("statement %d: %w", i, err)
		}
		out = append(out, st)
	}
	return out, nil
}

// unsupported are IAM statement elements Keyward does not implement.
// Ignoring them would turn "Allow everything except X" into "Allow X", so
// they are refused by name.
var unsupported = []string{"NotAction", "NotResource", "Principal", "NotPrincipal", "Condition"}

func compileStatement(raw json.RawMessage, account string) (statement, string, error) {
	var st statement
	var f map[string]json.RawMessage
	if err := json.Unmarshal(raw, &f); err != nil || f == nil {
		return st, "", errors.New("must be a JSON object")
	}
	var sid, effect string
	if err := str(f, "Sid", &sid, false); err != nil {
		return st, "", err
	}
	for _, k := range unsupported {
		if _, ok := f[k]; ok {
			return st, sid, fmt.Errorf("%s is not supported", k)
		}
	}
	if err := onlyFields(f, "Sid", "Effect", "Action", "Resource"); err != nil {
		return st, sid, err
	}
	if err := str(f, "Effect", &effect, true); err != nil {
		return st, sid, err
	}
	switch effect {
	case "Allow":
	case "Deny":
		st.deny = true
	default:
		return st, sid, fmt.Errorf("Effect %q: must be \"Allow\" or \"Deny\"", effect)
	}
	actions, err := stringOrList(f, "Action")
	if err != nil {
		return st, sid, err
	}
	for _, a := range actions {
		set, err := compileAction(a)
		if err != nil {
			return st, sid, err
		}
		st.actions |= set
	}
	resources, err := stringOrList(f, "Resource")
	if err != nil {
		return st, sid, err
	}
	for _, r := range resources {
		p, err := compileResource(r, account)
		if err != nil {
			return st, sid, err
		}
		st.resources = append(st.resources, p)
	}
	return st, sid, nil
}

// stringOrList reads a required Action/Resource element.
func stringOrList(f map[string]json.RawMessage, key string) ([]string, error) {
	raw, ok := f[key]
	if !ok {
		return nil, fmt.Errorf("missing %s", key)
	}
	var one string
	if json.Unmarshal(raw, &one) == nil && !bytes.Equal(bytes.TrimSpace(raw), []byte("null")) {
		return []string{one}, nil
	}
	var list []string
	if t := bytes.TrimSpace(raw); len(t) == 0 || t[0] != '[' || json.Unmarshal(raw, &list) != nil {
		return nil, fmt.Errorf("%s must be a string or a list of strings", key)
	}
	if len(list) == 0 {
		return nil, fmt.Errorf("empty %s list", key)
	}
	return list, nil
}

// str decodes a string field. The error never quotes the value: the field
// may be a secret.
func str(f map[string]json.RawMessage, key string, dst *string, required bool) error {
	raw, ok := f[key]
	if !ok {
		if required {
			return fmt.Errorf("missing %s", key)
		}
		return nil
	}
	if bytes.Equal(bytes.TrimSpace(raw), []byte("null")) || json.Unmarshal(raw, dst) != nil {
		return fmt.Errorf("%s must be a string", key)
	}
	return nil
}

// onlyFields refuses unknown object members. Names are matched exactly
// (encoding/json's struct decoding would accept "effect" for "Effect").
func onlyFields(f map[string]json.RawMessage, allowed ...string) error {
	var unknown []string
	for k := range f {
		if !slices.Contains(allowed, k) {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	slices.Sort(unknown)
	return fmt.Errorf("unknown field %q (allowed: %s)", unknown[0], strings.Join(allowed, ", "))
}

// checkJSON rejects invalid JSON (reporting a position, never the text:
// the broken spot may be inside a secret) and duplicate object members,
// which encoding/json would silently resolve to the last one.
func checkJSON(b []byte) error {
	if !json.Valid(b) {
		var v any
		err := json.Unmarshal(b, &v)
		var se *json.SyntaxError
		if errors.As(err, &se) && se.Offset < int64(len(b)) {
			line, col := position(b, se.Offset)
			return fmt.Errorf("iam: invalid JSON near line %d, column %d", line, col)
		}
		return errors.New("iam: invalid JSON: unexpected end of input")
	}
	type frame struct {
		obj       bool
		expectKey bool
		keys      map[string]bool
		path      string
		key       string
		idx       int
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return nil
		}
		if err != nil { // unreachable after json.Valid; kept for safety
			return errors.New("iam: invalid JSON")
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if d, ok := tok.(json.Delim); ok && (d == '}' || d == ']') {
			stack = stack[:len(stack)-1]
			continue
		}
		if top != nil && top.obj && top.expectKey {
			k := tok.(string)
			if top.keys[k] {
				return fmt.Errorf("iam: duplicate field %q in %s", k, describePath(top.path))
			}
			top.keys[k] = true
			top.key, top.expectKey = k, false
			continue
		}
		path := ""
		if top != nil {
			if top.obj {
				path = joinKey(top.path, top.key)
				top.expectKey = true
			} else {
				path = fmt.Sprintf("%s[%d]", top.path, top.idx)
				top.idx++
			}
		}
		if d, ok := tok.(json.Delim); ok {
			stack = append(stack, &frame{obj: d == '{', expectKey: d == '{', keys: map[string]bool{}, path: path})
		}
	}
}

func joinKey(path, key string) string {
	ident := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c == '_' || i > 0 && c >= '0' && c <= '9') {
			ident = false
		}
	}
	switch {
	case !ident:
		return fmt.Sprintf("%s[%q]", path, key)
	case path == "":
		return key
	default:
		return path + "." + key
	}
}

func describePath(p string) string {
	if p == "" {
		return "the top-level object"
	}
	return p
}

// position turns a byte offset into a 1-based line and column.
func position(b []byte, off int64) (line, col int) {
	line, col = 1, 1
	for _, c := range b[:off] {
		if c == '\n' {
			line, col = line+1, 1
		} else {
			col++
		}
	}
	return line, col
}
