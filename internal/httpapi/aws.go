package httpapi

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// The AWS KMS API (docs/aws-kms-api.md): a second front door over the
// same key service. Requests are POST / with X-Amz-Target:
// TrentService.<Operation> and a JSON body (application/x-amz-json-1.1),
// signed with SigV4. Each operation is a route like the admin routes (an
// IAM action, a body limit, a timeout), served by the same pipeline
// (Server.serve: two-phase SigV4, the unauthenticated-body budget, the
// deadline, the service, the audit line and the metrics); only the
// answers differ: AWS's field names, key ARNs, and AWS's error shape
// (errors.go, the AWS columns).
//
// Files: aws.go (the door, key references, markers, answers),
// aws_keys.go, aws_rotation.go, aws_aliases.go, aws_crypto.go.

// awsTargetPrefix starts every X-Amz-Target of the KMS API; it also
// starts the route pattern of each operation in metrics and audit lines.
const awsTargetPrefix = "TrentService."

// awsJSONContentType is the Content-Type of every answer of the door.
var awsJSONContentType = []string{"application/x-amz-json-1.1"}

// awsUnsupportedPattern is the one route (metrics, audit) of every target
// the door does not serve, whatever the request named: the label set stays
// bounded.
const awsUnsupportedPattern = awsTargetPrefix + "(unsupported)"

// awsRoutes are the operations of the door, by operation name.
func (s *Server) awsRoutes() map[string]*route {
	const crypto, admin = 10 * time.Second, 30 * time.Second
	aws := func(action string, keyScoped bool, timeout time.Duration, handle func(*call) error) *route {
		return &route{method: "POST", path: "/", aws: true, action: action, maxBody: MaxBody, timeout: timeout, service: true, keyScoped: keyScoped, handle: handle}
	}
	return map[string]*route{
		"CreateKey":            aws("kms:CreateKey", false, admin, s.awsCreateKey),
		"DescribeKey":          aws("kms:DescribeKey", true, admin, s.awsDescribeKey),
		"ListKeys":             aws("kms:ListKeys", false, admin, s.awsListKeys),
		"EnableKey":            aws("kms:EnableKey", true, admin, s.awsEnableKey),
		"DisableKey":           aws("kms:DisableKey", true, admin, s.awsDisableKey),
		"ScheduleKeyDeletion":  aws("kms:ScheduleKeyDeletion", true, admin, s.awsScheduleKeyDeletion),
		"CancelKeyDeletion":    aws("kms:CancelKeyDeletion", true, admin, s.awsCancelKeyDeletion),
		"UpdateKeyDescription": aws("kms:UpdateKeyDescription", true, admin, s.awsUpdateKeyDescription),
		"TagResource":          aws("kms:TagResource", true, admin, s.awsTagResource),
		"UntagResource":        aws("kms:UntagResource", true, admin, s.awsUntagResource),
		"ListResourceTags":     aws("kms:ListResourceTags", true, admin, s.awsListResourceTags),
		"CreateAlias":          aws("kms:CreateAlias", true, admin, s.awsCreateAlias),
		"UpdateAlias":          aws("kms:UpdateAlias", true, admin, s.awsUpdateAlias),
		"DeleteAlias":          aws("kms:DeleteAlias", true, admin, s.awsDeleteAlias),
		"ListAliases":          aws("kms:ListAliases", false, admin, s.awsListAliases),
		"EnableKeyRotation":    aws("kms:EnableKeyRotation", true, admin, s.awsEnableKeyRotation),
		"DisableKeyRotation":   aws("kms:DisableKeyRotation", true, admin, s.awsDisableKeyRotation),
		"GetKeyRotationStatus": aws("kms:GetKeyRotationStatus", true, admin, s.awsGetKeyRotationStatus),
		"RotateKeyOnDemand":    aws("kms:RotateKeyOnDemand", true, admin, s.awsRotateKeyOnDemand),
		"ListKeyRotations":     aws("kms:ListKeyRotations", true, admin, s.awsListKeyRotations),
		"Encrypt":              aws("kms:Encrypt", true, crypto, s.awsEncrypt),
		"Decrypt":              aws("kms:Decrypt", true, crypto, s.awsDecrypt),
		"ReEncrypt": {method: "POST", path: "/", aws: true, action: "kms:ReEncryptFrom", alsoActions: []string{"kms:ReEncryptTo"},
			maxBody: MaxBody, timeout: crypto, service: true, keyScoped: true, handle: s.awsReEncrypt},
		"GenerateDataKey":                 aws("kms:GenerateDataKey", true, crypto, s.awsGenerateDataKey),
		"GenerateDataKeyWithoutPlaintext": aws("kms:GenerateDataKeyWithoutPlaintext", true, crypto, s.awsGenerateDataKeyWithoutPlaintext),
		"GenerateRandom":                  aws("kms:GenerateRandom", false, crypto, s.awsGenerateRandom),
	}
}

// newAWSUnsupported is the route of every other target: authenticated like
// the others (an unsigned caller learns nothing about which operations
// exist), then UnsupportedOperationException.
func newAWSUnsupported() *route {
	return &route{method: "POST", path: "/", aws: true, maxBody: MaxBody, timeout: 10 * time.Second, keyScoped: true,
		handle: func(*call) error { return errUnsupportedOperation }}
}

// serveAWS picks the operation's route by X-Amz-Target and serves it.
func (s *Server) serveAWS(w http.ResponseWriter, r *http.Request) {
	rt := s.awsUnsupported
	if op, ok := strings.CutPrefix(r.Header.Get("X-Amz-Target"), awsTargetPrefix); ok {
		if known, ok := s.awsOps[op]; ok {
			rt = known
		}
	}
	s.serve(rt, w, r)
}

var (
	errUnsupportedOperation = errors.New("unsupported operation: Keyward serves the symmetric key, alias, rotation, data key and random operations of AWS KMS (see docs/aws-kms-api.md)")
	// errInvalidMarker is a paging marker this server did not hand out.
	errInvalidMarker = fmt.Errorf("%w: the marker is not one this server handed out (use NextMarker of the previous page)", kms.ErrInvalidRequest)
)

// unsupported reports an AWS feature Keyward does not implement.
func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{errUnsupportedOperation}, args...)...)
}

// awsDecode decodes an AWS request body strictly (an unknown member is a
// ValidationException naming it); an empty body is {}.
func awsDecode(body []byte, v any) error {
	if jsonbody.IsEmpty(body) {
		return nil
	}
	return jsonbody.Decode(body, v)
}

// awsCommon are members that many operations accept: grant tokens
// (accepted and ignored: Keyward has no grants, and a grant token can only
// add permissions) and DryRun (refused when set: a dry run that acted
// would be worse than an error).
type awsCommon struct {
	GrantTokens []string `json:"GrantTokens"`
	DryRun      bool     `json:"DryRun"`
}

func (a *awsCommon) check() error {
	if a.DryRun {
		return unsupported("DryRun is not supported")
	}
	return nil
}

// awsKeyRef turns an AWS KeyId (a key id, a key ARN, "alias/<name>" or an
// alias ARN) into the key id to authorize on. An ARN of another account
// names no key here (NotFoundException); the region is not checked:
// Keyward serves every region alike. Aliases resolve as on the admin API
// (call.resolveKey: a missing alias is 403 to callers without broad
// rights).
func (c *call) awsKeyRef(ref string) (string, error) {
	if ref == "" {
		return "", fmt.Errorf("%w: KeyId is required", kms.ErrInvalidRequest)
	}
	if strings.HasPrefix(ref, "arn:") {
		rest, err := c.srv.arnResource(ref)
		if err != nil {
			return "", err
		}
		if id, ok := strings.CutPrefix(rest, "key/"); ok {
			ref = id
		} else if strings.HasPrefix(rest, kms.AliasPrefix) {
			ref = rest
		} else {
			return "", fmt.Errorf("%w: %q is not a key or alias ARN", kms.ErrNotFound, ref)
		}
	}
	if kms.IsAlias(ref) {
		if err := kms.ValidateAliasName(ref); err != nil {
			return "", fmt.Errorf("%w: %q is not a valid alias name", kms.ErrNotFound, ref)
		}
		return c.resolveKey(ref)
	}
	if err := kms.ValidateKeyID(ref); err != nil {
		return "", fmt.Errorf("%w: invalid KeyId %q (a key id, key ARN, alias name or alias ARN)", kms.ErrNotFound, ref)
	}
	return ref, nil
}

// arnResource checks an ARN of this server ("arn:aws:kms:<region>:
// <account>:<resource>") and returns its resource part.
func (s *Server) arnResource(arn string) (string, error) {
	parts := strings.SplitN(arn, ":", 6)
	if len(parts) != 6 || parts[1] != "aws" || parts[2] != "kms" {
		return "", fmt.Errorf("%w: %q is not a KMS ARN", kms.ErrNotFound, arn)
	}
	if parts[4] != s.account() {
		return "", fmt.Errorf("%w: %q names account %q; this server is account %s", kms.ErrNotFound, arn, parts[4], s.account())
	}
	return parts[5], nil
}

// account is the AWS account id the door answers for.
func (s *Server) account() string {
	if s.opts.AWSAccountID == "" {
		return DefaultAWSAccountID
	}
	return s.opts.AWSAccountID
}

// DefaultAWSAccountID is the account of a server whose options name none.
const DefaultAWSAccountID = "000000000000"

// region is the region the request was signed for: the ARNs of the answer
// name it, as AWS's do.
func (c *call) region() string { return c.auth.Region() }

// appendKeyARN appends the ARN of a key. Region (a credential scope
// region: A-Z a-z 0-9 - _ .), account (digits) and key id ([A-Za-z0-9._-])
// need no JSON escaping.
func appendKeyARN(b []byte, region, account, id string) []byte {
	b = append(b, "arn:aws:kms:"...)
	b = append(b, region...)
	b = append(b, ':')
	b = append(b, account...)
	b = append(b, ":key/"...)
	return append(b, id...)
}

// keyARN is the ARN of a key, in the request's region.
func (c *call) keyARN(id string) string {
	return string(appendKeyARN(make([]byte, 0, 32+len(id)), c.region(), c.srv.account(), id))
}

// aliasARN is the ARN of an alias ("alias/<name>").
func (c *call) aliasARN(name string) string {
	return "arn:aws:kms:" + c.region() + ":" + c.srv.account() + ":" + name
}

// ARN adds a key's ARN as a string field (secretJSON, for the hot
// answers: no string is built).
func (j *secretJSON) ARN(k string, c *call, id string) {
	j.key(k)
	j.buf = append(j.buf, '"')
	j.buf = appendKeyARN(j.buf, c.region(), c.srv.account(), id)
	j.buf = append(j.buf, '"')
}

// WriteAWS sends the object as an AWS answer and overwrites the buffer.
func (j *secretJSON) WriteAWS(w http.ResponseWriter) {
	j.buf = append(j.buf, '}')
	w.Header()["Content-Type"] = awsJSONContentType
	setContentLength(w, len(j.buf))
	w.WriteHeader(http.StatusOK)
	w.Write(j.buf)
	j.recycle()
}

// writeAWS answers v as JSON.
func writeAWS(w http.ResponseWriter, status int, v any) {
	writeJSONAs(w, status, v, awsJSONContentType)
}

// awsOK answers {} (operations whose AWS answer has no members).
func awsOK(c *call) error {
	c.w.Header()["Content-Type"] = awsJSONContentType
	c.w.Header().Set("Content-Length", "2")
	c.w.WriteHeader(http.StatusOK)
	c.w.Write([]byte("{}"))
	return nil
}

// awsTime is a timestamp as the AWS JSON protocol writes it: seconds since
// the epoch, a number with milliseconds.
type awsTime time.Time

func (t awsTime) MarshalJSON() ([]byte, error) {
	ms := time.Time(t).UnixMilli()
	return fmt.Appendf(nil, "%d.%03d", ms/1000, ms%1000), nil
}

func optionalAWSTime(t time.Time) *awsTime {
	if t.IsZero() {
		return nil
	}
	a := awsTime(t)
	return &a
}

// Paging markers are opaque to clients, as AWS's are: the kind of listing
// and the last name of the page, base64url. A marker that does not decode,
// belongs to another listing or names something that cannot exist is
// InvalidMarkerException, not a silent first page.
const (
	markerKeys      = 'k'
	markerAliases   = 'a'
	markerTags      = 't'
	markerRotations = 'r'
)

func encodeMarker(kind byte, last string) string {
	return base64.RawURLEncoding.EncodeToString(append([]byte{kind}, last...))
}

func decodeMarker(kind byte, marker string, valid func(string) bool) (string, error) {
	if marker == "" {
		return "", nil
	}
	b, err := base64.RawURLEncoding.DecodeString(marker)
	if err != nil || len(b) < 2 || b[0] != kind || !valid(string(b[1:])) {
		return "", errInvalidMarker
	}
	return string(b[1:]), nil
}

// awsLimit reads a Limit member: absent is def, otherwise 1..max.
func awsLimit(limit *int, def, max int) (int, error) {
	if limit == nil {
		return def, nil
	}
	if *limit < 1 || *limit > max {
		return 0, fmt.Errorf("%w: Limit must be between 1 and %d", kms.ErrInvalidRequest, max)
	}
	return *limit, nil
}
