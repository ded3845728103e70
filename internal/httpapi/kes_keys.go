package httpapi

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// KESContextKey is the encryption context entry that carries a KES
// request's context bytes (docs/kes-api.md, "Context"): a KES context C is
// bound to the blob exactly as the admin API's encryption context
// {"kes:context": base64(C)} (standard base64 with padding); no context
// (or an empty one) is the empty encryption context. So a blob made
// through the KES API decrypts through the admin and AWS APIs given that
// context, and a blob made there with that context (or with none)
// decrypts through the KES API.
const KESContextKey = "kes:context"

// KESCreatedByTag is the tag a key created through the KES API carries:
// the identity that created it (KES's created_by).
const KESCreatedByTag = "kes:created-by"

// maxKESContext bounds a KES context so that its encryption context fits
// kms.MaxContextBytes.
const maxKESContext = (kms.MaxContextBytes - len(KESContextKey)) / 4 * 3

// kesEncryptionContext is the encryption context a KES context stands for.
func kesEncryptionContext(kesCtx []byte) (map[string]string, error) {
	if len(kesCtx) == 0 {
		return nil, nil
	}
	if len(kesCtx) > maxKESContext {
		return nil, fmt.Errorf("%w: context longer than %d bytes", kms.ErrInvalidRequest, maxKESContext)
	}
	return map[string]string{KESContextKey: base64.StdEncoding.EncodeToString(kesCtx)}, nil
}

// Request bodies, as kms-go/kes sends them ([]byte fields are standard
// base64, as encoding/json writes them).
var (
	kesGenerateSchema = jsonbody.NewSchema[kesGenerateRequest]()
	kesEncryptSchema  = jsonbody.NewSchema[kesEncryptRequest]()
	kesDecryptSchema  = jsonbody.NewSchema[kesDecryptRequest]()
)

type kesGenerateRequest struct {
	Context []byte `json:"context"`
}

type kesEncryptRequest struct {
	Plaintext []byte `json:"plaintext"`
	Context   []byte `json:"context"`
}

type kesDecryptRequest struct {
	Ciphertext []byte `json:"ciphertext"`
	Context    []byte `json:"context"`
}

// parseKESGenerate reads a generate body (empty: no context).
func parseKESGenerate(body []byte) (kesGenerateRequest, error) {
	var req kesGenerateRequest
	if len(body) == 0 {
		return req, nil
	}
	err := kesGenerateSchema.Decode(body, &req)
	return req, err
}

func parseKESEncrypt(body []byte) (kesEncryptRequest, error) {
	var req kesEncryptRequest
	if err := kesEncryptSchema.Decode(body, &req); err != nil {
		clear(req.Plaintext)
		return kesEncryptRequest{}, err
	}
	if len(req.Plaintext) == 0 {
		return req, errMissing("plaintext")
	}
	return req, nil
}

func parseKESDecrypt(body []byte) (kesDecryptRequest, error) {
	var req kesDecryptRequest
	if err := kesDecryptSchema.Decode(body, &req); err != nil {
		return kesDecryptRequest{}, err
	}
	if len(req.Ciphertext) == 0 {
		return req, errMissing("ciphertext")
	}
	return req, nil
}

// kesCreateKey makes an ordinary Keyward key named by the path, tagged with
// the identity that created it. KES answers 200 with no body.
func (s *Server) kesCreateKey(c *kesCall) error {
	name := c.r.PathValue("name")
	if err := c.authorize(name); err != nil {
		return err
	}
	_, err := c.svc.CreateKey(c.ctx, kms.CreateKeyInput{
		KeyID:       name,
		Description: "created through the KES API",
		Tags:        map[string]string{KESCreatedByTag: c.identity},
	})
	if err != nil {
		return err
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// kesImportKey: Keyward makes its own key material. Authorized as create,
// so that a caller without the right learns nothing, then 501.
func (s *Server) kesImportKey(c *kesCall) error {
	if err := c.authorize(c.r.PathValue("name")); err != nil {
		return err
	}
	return fmt.Errorf("%w: importing key material is not supported: Keyward makes its own keys (see docs/kes-api.md)", errKESNotServed)
}

// kesDescribeKeyResponse is KES's key description.
type kesDescribeKeyResponse struct {
	Name      string    `json:"name"`
	Algorithm string    `json:"algorithm"`
	CreatedAt time.Time `json:"created_at"`
	CreatedBy string    `json:"created_by,omitempty"`
}

func (s *Server) kesDescribeKey(c *kesCall) error {
	name := c.r.PathValue("name")
	if err := c.authorize(name); err != nil {
		return err
	}
	m, err := c.svc.DescribeKey(c.ctx, name)
	if err != nil {
		return err
	}
	if m.State == kms.StatePendingDeletion {
		return fmt.Errorf("%w: key %q is pending deletion", kms.ErrNotFound, name)
	}
	writeJSON(c.w, http.StatusOK, kesDescribeKeyResponse{
		Name: m.ID,
		// Every Keyward key is an AES-256-GCM key (vault-transit's are
		// Transit aes256-gcm96 keys).
		Algorithm: "AES256",
		CreatedAt: m.CreationDate,
		CreatedBy: m.Tags[KESCreatedByTag],
	})
	return nil
}

// kesDeleteKey schedules the key's deletion with the default window: the
// key stops working through every API at once, and an operator can still
// cancel the deletion through the admin API (KES would destroy it).
func (s *Server) kesDeleteKey(c *kesCall) error {
	name := c.r.PathValue("name")
	if err := c.authorize(name); err != nil {
		return err
	}
	if _, err := c.svc.ScheduleDeletion(c.ctx, name, 0); err != nil {
		return c.kesKeyError(name, err)
	}
	c.w.WriteHeader(http.StatusOK)
	return nil
}

// kesGenerateKey returns a fresh 256-bit data key and its blob.
func (s *Server) kesGenerateKey(c *kesCall) error {
	name := c.r.PathValue("name")
	if err := c.authorize(name); err != nil {
		return err
	}
	req, err := parseKESGenerate(c.body)
	if err != nil {
		return err
	}
	encCtx, err := kesEncryptionContext(req.Context)
	if err != nil {
		return err
	}
	_, plaintext, blob, err := c.svc.GenerateDataKey(c.ctx, name, 32, encCtx)
	if err != nil {
		return c.kesKeyError(name, err)
	}
	defer clear(plaintext)
	out := newSecretJSON(2*len(plaintext) + 2*len(blob))
	out.Bytes("plaintext", plaintext)
	out.Bytes("ciphertext", blob)
	out.WriteAndWipe(c.w)
	return nil
}

func (s *Server) kesEncrypt(c *kesCall) error {
	name := c.r.PathValue("name")
	if err := c.authorize(name); err != nil {
		return err
	}
	req, err := parseKESEncrypt(c.body)
	defer clear(req.Plaintext)
	if err != nil {
		return err
	}
	encCtx, err := kesEncryptionContext(req.Context)
	if err != nil {
		return err
	}
	_, blob, err := c.svc.Encrypt(c.ctx, name, req.Plaintext, encCtx)
	if err != nil {
		return c.kesKeyError(name, err)
	}
	out := newSecretJSON(2 * len(blob))
	out.Bytes("ciphertext", blob)
	out.WriteAndWipe(c.w)
	return nil
}

// kesDecrypt opens a blob of the named key. A blob of another key fails
// like a tampered one (KES: the ciphertext is not authentic for this key).
func (s *Server) kesDecrypt(c *kesCall) error {
	name := c.r.PathValue("name")
	if err := c.authorize(name); err != nil {
		return err
	}
	req, err := parseKESDecrypt(c.body)
	if err != nil {
		return err
	}
	encCtx, err := kesEncryptionContext(req.Context)
	if err != nil {
		return err
	}
	_, plaintext, err := c.svc.Decrypt(c.ctx, req.Ciphertext, encCtx, name)
	if err != nil {
		return c.kesKeyError(name, err)
	}
	defer clear(plaintext)
	out := newSecretJSON(2 * len(plaintext))
	out.Bytes("plaintext", plaintext)
	out.WriteAndWipe(c.w)
	return nil
}

// kesListResponse is one page of names.
type kesListResponse struct {
	Names      []string `json:"names"`
	ContinueAt string   `json:"continue_at,omitempty"`
}

// kesListScans bounds the service listings one KES page may take to find
// a name to show, so that a listing where the caller may see few keys
// cannot make one request read an unbounded number of records.
const kesListScans = 10

// kesListKeys lists the names that start with the path's prefix ("*" or a
// trailing '*' is ignored, as KES's patterns), of keys the identity may
// kms:ListKeys, leaving out keys pending deletion. A full page carries
// continue_at: the client passes it back in place of the prefix (as
// kes.ListIter does), and it resumes the same listing. It is
// "<prefix>:<last name>" (':' is in no key name, so it cannot be taken
// for a prefix).
func (s *Server) kesListKeys(c *kesCall) error {
	prefix, after, err := parseKESListing(c.r.PathValue("prefix"))
	if err != nil {
		return err
	}
	c.svc = c.pending // authorized per listed key below
	names := []string{}
	if kesPrefixMatchesNothing(prefix) {
		writeJSON(c.w, http.StatusOK, kesListResponse{Names: names})
		return nil
	}
	in := kms.ListInput{
		Prefix: prefix, Marker: after, Limit: s.kes.PageSize,
		Include: func(m kms.Metadata) bool {
			return m.State != kms.StatePendingDeletion && s.kes.Identities.IdentityAllowedOnKey(c.identity, "kms:ListKeys", m.ID)
		},
	}
	resp := kesListResponse{Names: names}
	for range kesListScans {
		out, err := c.svc.ListKeys(c.ctx, in)
		if err != nil {
			return err
		}
		for _, k := range out.Keys {
			resp.Names = append(resp.Names, k.ID)
		}
		resp.ContinueAt = ""
		if out.Truncated {
			resp.ContinueAt = prefix + ":" + out.NextMarker
			in.Marker = out.NextMarker
		}
		if len(resp.Names) > 0 || !out.Truncated {
			break
		}
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

// parseKESListing reads a listing's path value: a prefix (with an optional
// trailing '*'), or a continue_at token "<prefix>:<last name>".
func parseKESListing(v string) (prefix, after string, err error) {
	prefix, after, token := strings.Cut(v, ":")
	if !token {
		return strings.TrimSuffix(prefix, "*"), "", nil
	}
	if kms.ValidateKeyID(after) != nil || !strings.HasPrefix(after, prefix) || kesPrefixMatchesNothing(prefix) {
		return "", "", fmt.Errorf("%w: malformed listing continuation %q (pass continue_at back as it was received)", kms.ErrInvalidRequest, v)
	}
	return prefix, after, nil
}

// kesPrefixMatchesNothing reports whether no key id can start with prefix
// (a byte outside the key id alphabet, or too long): such a listing is
// empty.
func kesPrefixMatchesNothing(prefix string) bool {
	if len(prefix) > kms.MaxKeyIDLength {
		return true
	}
	for i := 0; i < len(prefix); i++ {
		c := prefix[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return true
		}
	}
	return false
}
