package iam

import (
	"fmt"
	"strings"
)

// knownActions are the per-route actions of docs/api.md. The order
// fixes each action's bit in an actionSet; policies are resolved against
// this list once, at load, so the hot path never matches action patterns.
var knownActions = [...]string{
	"kms:Configure",
	"kms:ServiceControl",
	"kms:ClearCache",
	"kms:ListKeys",
	"kms:DescribeKey",
	"kms:CreateKey",
	"kms:DeleteKey",
	"kms:EnableKey",
	"kms:DisableKey",
	"kms:RotateKey",
	"kms:UpdateKeyDescription",
	"kms:TagResource",
	"kms:UntagResource",
	"kms:GenerateDataKey",
	"kms:Encrypt",
	"kms:Decrypt",
	"kms:ReEncryptFrom",
	"kms:ReEncryptTo",
	"kms:Backup",
	"kms:Restore",
	"kms:CreateAlias",
	"kms:UpdateAlias",
	"kms:DeleteAlias",
	"kms:ListAliases",
	// The AWS KMS API's actions that the admin routes do not have
	// (docs/aws-kms-api.md, "Actions").
	"kms:ScheduleKeyDeletion",
	"kms:CancelKeyDeletion",
	"kms:ListResourceTags",
	"kms:EnableKeyRotation",
	"kms:DisableKeyRotation",
	"kms:GetKeyRotationStatus",
	"kms:RotateKeyOnDemand",
	"kms:ListKeyRotations",
	"kms:GenerateDataKeyWithoutPlaintext",
	"kms:GenerateRandom",
}

const numActions = len(knownActions)

// actionSet holds one bit per known action.
type actionSet uint64

var (
	actionIndex  = map[string]int{} // canonical spelling -> bit
	lowerActions [numActions]string // lower-cased, for case-insensitive pattern matching
)

func init() {
	for i, a := range knownActions {
		actionIndex[a] = i
		lowerActions[i] = strings.ToLower(a)
	}
}

// lookupAction maps a requested action to its bit. The route table uses the
// canonical spelling (one map lookup, no allocation); any other casing is
// still accepted because IAM action names are case-insensitive.
func lookupAction(a string) (int, bool) {
	if i, ok := actionIndex[a]; ok {
		return i, true
	}
	for i, k := range knownActions {
		if strings.EqualFold(k, a) {
			return i, true
		}
	}
	return 0, false
}

// legacyActions are action names that older policies use and that stand
// for several of today's actions. "kms:ReEncrypt" was one action on both
// keys of a re-encryption; it now means ReEncryptFrom (on the source key)
// and ReEncryptTo (on the destination), so a policy written for it keeps
// granting (or denying) exactly what it did.
//
// The admin routes' actions that stand for several AWS KMS operations
// grant (or deny) those operations too when a policy names them exactly:
// kms:DeleteKey (the admin delete and cancel-deletion routes) is also
// ScheduleKeyDeletion and CancelKeyDeletion, kms:RotateKey (rotate now,
// rotation schedule) is also RotateKeyOnDemand and Enable/DisableKeyRotation,
// kms:GenerateDataKey (which the admin route without plaintext checks) is
// also GenerateDataKeyWithoutPlaintext. So a policy written for the admin
// API means the same on the AWS door. The AWS names alone grant only the
// AWS operations, as in AWS.
var legacyActions = map[string][]string{
	"kms:reencrypt":       {"kms:ReEncryptFrom", "kms:ReEncryptTo"},
	"kms:deletekey":       {"kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion"},
	"kms:rotatekey":       {"kms:RotateKeyOnDemand", "kms:EnableKeyRotation", "kms:DisableKeyRotation"},
	"kms:generatedatakey": {"kms:GenerateDataKeyWithoutPlaintext"},
}

// compileAction resolves one Action entry to the known actions it names.
// A pattern that names none is an error: a typo ("kms:GenrateDataKey")
// would otherwise grant, or worse fail to deny, nothing at all.
func compileAction(pat string) (actionSet, error) {
	if pat == "" {
		return 0, fmt.Errorf("empty action")
	}
	lp := strings.ToLower(pat)
	if lp != "*" && !strings.HasPrefix(lp, "kms:") {
		return 0, fmt.Errorf("action %q: only \"kms:\" actions (or \"*\") are supported", pat)
	}
	var set actionSet
	for _, a := range legacyActions[lp] {
		set |= 1 << actionIndex[a]
	}
	for i, a := range lowerActions {
		if glob(lp, a) {
			set |= 1 << i
		}
	}
	if set == 0 {
		if strings.ContainsAny(pat, "*?") {
			return 0, fmt.Errorf("action pattern %q matches no known action", pat)
		}
		return 0, fmt.Errorf("unknown action %q", pat)
	}
	return set, nil
}

// Resource pattern kinds (see the package doc for the accepted forms).
const (
	patAny    = iota // "*": everything
	patExact         // no wildcard: string equality
	patPrefix        // literal followed by one trailing '*': prefix test
	patGlob          // anything else: glob
)

// resPattern is a precompiled Resource entry.
type resPattern struct {
	kind int
	lit  string // exact: the ARN; prefix: the part before '*'; glob: the pattern
	// every: the pattern covers every key id, so it also matches the
	// key-less resource NoKey (the rule in the package doc).
	every bool
}

// keyIDPatternChar reports whether c may appear in the key id part of a
// resource pattern: the key id alphabet (kms.ValidateKeyID) plus the two
// wildcards. A pattern with any other byte could never match a key.
func keyIDPatternChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '.' || c == '_' || c == '-' || c == '*' || c == '?'
}

// aliasPatternChar is the same for the name part of an alias pattern:
// the alias alphabet (kms.ValidateAliasName) plus the two wildcards.
func aliasPatternChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' ||
		c == '/' || c == '_' || c == '-' || c == '*' || c == '?'
}

// compileResource validates and precompiles one Resource entry. An ARN
// may name a region and an account as AWS writes it
// ("arn:aws:kms:us-east-1:111122223333:key/app-*", wildcards allowed): the
// region is ignored (Keyward serves every region alike) and the account
// must be this server's (account) or empty or all wildcards; the pattern
// is then kept in the account-less form the requests are matched in.
// RustFS's "arn:aws:kms:::*" (any ARN whose resource part is "*") covers
// every key and every alias.
func compileResource(r, account string) (resPattern, error) {
	if r == NoKey {
		return resPattern{kind: patAny, every: true}, nil
	}
	rest, err := resourcePart(r, account)
	if err != nil {
		return resPattern{}, err
	}
	if strings.Trim(rest, "*") == "" {
		// Every key and every alias (and so the key-less resource).
		return resPattern{kind: patPrefix, lit: arnPrefix, every: true}, nil
	}
	prefix, chars, what := KeyARNPrefix, keyIDPatternChar, "key ids only hold A-Z a-z 0-9 . _ - (wildcards * and ?)"
	if id, ok := strings.CutPrefix(rest, "key/"); ok {
		rest = id
	} else if name, ok := strings.CutPrefix(rest, "alias/"); ok {
		prefix, rest, chars, what = AliasARNPrefix, name, aliasPatternChar, "alias names only hold A-Z a-z 0-9 / _ - (wildcards * and ?)"
	} else {
		return resPattern{}, fmt.Errorf("resource %q: must be \"*\", %q followed by a key id pattern, or %q followed by an alias name pattern (for every key use \"*\" or %q)",
			r, KeyARNPrefix, AliasARNPrefix, KeyARNPrefix+"*")
	}
	if rest == "" {
		return resPattern{}, fmt.Errorf("resource %q: names nothing", r)
	}
	for i := 0; i < len(rest); i++ {
		if !chars(rest[i]) {
			return resPattern{}, fmt.Errorf("resource %q: %s", r, what)
		}
	}
	if strings.Trim(rest, "*") == "" {
		// Every key (which also covers the key-less resource), or every
		// alias (which does not).
		return resPattern{kind: patPrefix, lit: prefix, every: prefix == KeyARNPrefix}, nil
	}
	norm := prefix + rest
	star := strings.IndexByte(rest, '*')
	switch {
	case !strings.ContainsAny(rest, "*?"):
		return resPattern{kind: patExact, lit: norm}, nil
	case star == len(rest)-1 && !strings.ContainsRune(rest, '?'):
		return resPattern{kind: patPrefix, lit: norm[:len(norm)-1]}, nil
	default:
		return resPattern{kind: patGlob, lit: norm}, nil
	}
}

// arnPrefix starts every resource a request is authorized on.
const arnPrefix = "arn:aws:kms:::"

// resourcePart checks the ARN's partition, service, region and account
// and returns what follows the account ("key/...", "alias/..." or "*").
func resourcePart(r, account string) (string, error) {
	parts := strings.SplitN(r, ":", 6)
	if len(parts) != 6 || parts[0] != "arn" || parts[1] != "aws" || parts[2] != "kms" {
		return "", fmt.Errorf("resource %q: must be \"*\" or an ARN \"arn:aws:kms:<region>:<account>:key/<key id>\" or \"...:alias/<name>\" (region and account may be empty, as in %q)", r, KeyARNPrefix+"*")
	}
	region, acct := parts[3], parts[4]
	for i := 0; i < len(region); i++ {
		if c := region[i]; !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.' || c == '*' || c == '?') {
			return "", fmt.Errorf("resource %q: the region holds a character no region has", r)
		}
	}
	if acct != "" && strings.Trim(acct, "*") != "" && !glob(acct, account) {
		return "", fmt.Errorf("resource %q: account %q is not this server's (--aws-account-id %s); use it, or leave the account empty or \"*\"", r, acct, account)
	}
	return parts[5], nil
}

// match reports whether the pattern covers the requested resource.
func (p *resPattern) match(resource string) bool {
	if resource == NoKey {
		return p.every
	}
	switch p.kind {
	case patAny:
		return true
	case patExact:
		return resource == p.lit
	case patPrefix:
		return strings.HasPrefix(resource, p.lit)
	default:
		return glob(p.lit, resource)
	}
}

// glob matches s against p where '*' is any run of bytes (including none)
// and '?' is exactly one byte. Key ids and action names are ASCII, so
// bytes are characters. Iterative with single-star backtracking: linear in
// practice, O(len(p)*len(s)) worst case, no allocation.
func glob(p, s string) bool {
	px, sx := 0, 0
	starP, starS := -1, 0
	for sx < len(s) {
		if px < len(p) {
			switch c := p[px]; {
			case c == '*':
				starP, starS = px, sx
				px++
				continue
			case c == '?' || c == s[sx]:
				px++
				sx++
				continue
			}
		}
		if starP < 0 {
			return false
		}
		starS++
		px, sx = starP+1, starS
	}
	for px < len(p) && p[px] == '*' {
		px++
	}
	return px == len(p)
}

// statement is a compiled policy statement.
type statement struct {
	deny      bool
	actions   actionSet
	resources []resPattern
}

// rules are one user's merged statements for one action.
type rules struct {
	allowAny, denyAny bool // a statement with Resource "*"
	allow, deny       []resPattern
}

func (r *rules) add(deny bool, p resPattern) {
	switch {
	case p.kind == patAny && deny:
		r.denyAny = true
	case p.kind == patAny:
		r.allowAny = true
	case deny:
		r.deny = append(r.deny, p)
	default:
		r.allow = append(r.allow, p)
	}
}

// allowed evaluates IAM semantics: an explicit Deny wins, then any Allow,
// else the implicit deny.
func (r *rules) allowed(resource string) bool {
	if r.denyAny {
		return false
	}
	for i := range r.deny {
		if r.deny[i].match(resource) {
			return false
		}
	}
	if r.allowAny {
		return true
	}
	for i := range r.allow {
		if r.allow[i].match(resource) {
			return true
		}
	}
	return false
}

// permissions is a user's compiled policy set: nil means no statement
// mentions that action (deny).
type permissions [numActions]*rules

func (p *permissions) add(stmts []statement) {
	for _, st := range stmts {
		for i := 0; i < numActions; i++ {
			if st.actions&(1<<i) == 0 {
				continue
			}
			if p[i] == nil {
				p[i] = &rules{}
			}
			for _, r := range st.resources {
				p[i].add(st.deny, r)
			}
		}
	}
}

// builtins are the canned policies of docs/operations.md. They grant on
// every key (Resource "*"), need no definition, and a file may not redefine
// them (a redefinition would make "KMSKeyUser" mean different things on
// different servers).
var builtins = map[string][]statement{}

func init() {
	canned := map[string][]string{
		// kms:GenerateDataKey, kms:DeleteKey and kms:RotateKey bring their
		// AWS operations along (legacyActions).
		"KMSKeyUser": {"kms:Encrypt", "kms:Decrypt", "kms:ReEncryptFrom", "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:DescribeKey"},
		"KMSAuditor": {"kms:DescribeKey", "kms:ListKeys", "kms:ListAliases",
			"kms:ListResourceTags", "kms:GetKeyRotationStatus", "kms:ListKeyRotations"},
		"consoleAdmin": {"kms:*"},
		"KMSKeyAdministrator": {"kms:CreateKey", "kms:DescribeKey", "kms:ListKeys", "kms:EnableKey",
			"kms:DisableKey", "kms:RotateKey", "kms:DeleteKey", "kms:UpdateKeyDescription",
			"kms:TagResource", "kms:UntagResource",
			"kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:ListAliases",
			"kms:ListResourceTags", "kms:GetKeyRotationStatus", "kms:ListKeyRotations"},
	}
	for name, acts := range canned {
		var set actionSet
		for _, a := range acts {
			s, err := compileAction(a)
			if err != nil {
				panic("iam: built-in policy " + name + ": " + err.Error())
			}
			set |= s
		}
		builtins[name] = []statement{{actions: set, resources: []resPattern{{kind: patAny, every: true}}}}
	}
}

// builtinFold returns the built-in policy name equal to name ignoring case.
func builtinFold(name string) (string, bool) {
	for b := range builtins {
		if strings.EqualFold(b, name) {
			return b, true
		}
	}
	return "", false
}
