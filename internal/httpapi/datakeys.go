package httpapi

import (
	"time"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Data-key routes (docs/api.md, "Data keys and cryptographic operations"):
// the hot path.
func (s *Server) dataKeyRoutes() []*route {
	const t = 10 * time.Second
	return []*route{
		{method: "POST", path: "/kms/generate-data-key", action: "kms:GenerateDataKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.generateDataKey},
		{method: "POST", path: "/kms/generate-data-key-without-plaintext", action: "kms:GenerateDataKey", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.generateDataKeyWithoutPlaintext},
		{method: "POST", path: "/kms/re-encrypt", action: "kms:ReEncryptFrom", alsoActions: []string{"kms:ReEncryptTo"}, maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.reEncrypt},
		{method: "POST", path: "/kms/encrypt", action: "kms:Encrypt", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.encrypt},
		{method: "POST", path: "/kms/decrypt", action: "kms:Decrypt", maxBody: MaxBody, timeout: t, service: true, keyScoped: true, handle: s.decrypt},
	}
}

// Request bodies read Keyward's snake_case and AWS's PascalCase names.
// They decode through jsonbody.Schema: exactly what jsonbody.Decode gives,
// with a fast path for the usual shape of a body (see jsonbody/fast.go).
var (
	generateDataKeySchema = jsonbody.NewSchema[generateDataKeyRequest]()
	encryptSchema         = jsonbody.NewSchema[encryptRequest]()
	decryptSchema         = jsonbody.NewSchema[decryptRequest]()
	reEncryptSchema       = jsonbody.NewSchema[reEncryptRequest]()
)

type generateDataKeyRequest struct {
	KeyID            string            `json:"key_id"`
	KeyIDAWS         string            `json:"KeyId"`
	KeySpec          string            `json:"key_spec"`
	KeySpecAWS       string            `json:"KeySpec"`
	NumberOfBytes    int               `json:"number_of_bytes"`
	NumberOfBytesAWS int               `json:"NumberOfBytes"`
	Context          map[string]string `json:"encryption_context"`
	ContextAWS       map[string]string `json:"EncryptionContext"`
}

// parse decodes the body and resolves the data key size.
func (req *generateDataKeyRequest) parse(body []byte) (size int, err error) {
	if err := generateDataKeySchema.Decode(body, req); err != nil {
		return 0, err
	}
	n, err := eitherSpelling("number_of_bytes", req.NumberOfBytes, req.NumberOfBytesAWS)
	if err != nil {
		return 0, err
	}
	return kms.DataKeySize(first(req.KeySpec, req.KeySpecAWS), n)
}

func (s *Server) generateDataKey(c *call) error {
	var req generateDataKeyRequest
	size, err := req.parse(c.body)
	if err != nil {
		return err
	}
	keyID, err := c.resolveKey(c.keyOrDefault(first(req.KeyID, req.KeyIDAWS)))
	if err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	id, plaintext, blob, err := c.svc.GenerateDataKey(c.ctx, keyID, size, contextOf(req.Context, req.ContextAWS))
	if err != nil {
		return err
	}
	defer clear(plaintext)
	out := newSecretJSON(len(id) + 2*len(blob) + 2*len(plaintext))
	out.String("key_id", id)
	out.Bytes("plaintext_key", plaintext)
	out.Bytes("ciphertext_blob", blob)
	out.WriteAndWipe(c.w)
	return nil
}

func (s *Server) generateDataKeyWithoutPlaintext(c *call) error {
	var req generateDataKeyRequest
	size, err := req.parse(c.body)
	if err != nil {
		return err
	}
	keyID, err := c.resolveKey(c.keyOrDefault(first(req.KeyID, req.KeyIDAWS)))
	if err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	id, blob, err := c.svc.GenerateDataKeyWithoutPlaintext(c.ctx, keyID, size, contextOf(req.Context, req.ContextAWS))
	if err != nil {
		return err
	}
	writeBlob(c, id, blob)
	return nil
}

// writeBlob answers {"key_id", "ciphertext_blob"}.
func writeBlob(c *call, id string, blob []byte) {
	out := newSecretJSON(len(id) + 2*len(blob))
	out.String("key_id", id)
	out.Bytes("ciphertext_blob", blob)
	out.WriteAndWipe(c.w)
}

type encryptRequest struct {
	KeyID      string            `json:"key_id"`
	KeyIDAWS   string            `json:"KeyId"`
	Plaintext  []byte            `json:"plaintext"` // base64 (StdEncoding, as encoding/json)
	Context    map[string]string `json:"encryption_context"`
	ContextAWS map[string]string `json:"EncryptionContext"`
}

func (s *Server) encrypt(c *call) error {
	var req encryptRequest
	err := encryptSchema.Decode(c.body, &req)
	defer clear(req.Plaintext)
	if err != nil {
		return err
	}
	keyID, err := c.resolveKey(c.keyOrDefault(first(req.KeyID, req.KeyIDAWS)))
	if err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	id, blob, err := c.svc.Encrypt(c.ctx, keyID, req.Plaintext, contextOf(req.Context, req.ContextAWS))
	if err != nil {
		return err
	}
	writeBlob(c, id, blob)
	return nil
}

type decryptRequest struct {
	Blob       []byte            `json:"ciphertext_blob"`
	BlobAWS    []byte            `json:"CiphertextBlob"`
	KeyID      string            `json:"key_id"`
	KeyIDAWS   string            `json:"KeyId"`
	Context    map[string]string `json:"encryption_context"`
	ContextAWS map[string]string `json:"EncryptionContext"`
}

func (s *Server) decrypt(c *call) error {
	var req decryptRequest
	if err := decryptSchema.Decode(c.body, &req); err != nil {
		return err
	}
	blob, err := blobOf(req.Blob, req.BlobAWS)
	if err != nil {
		return err
	}
	if err := c.authorize(blobKeyID(blob)); err != nil {
		return err
	}
	want, err := c.resolveKey(first(req.KeyID, req.KeyIDAWS))
	if err != nil {
		return err
	}
	id, plaintext, err := c.svc.Decrypt(c.ctx, blob, contextOf(req.Context, req.ContextAWS), want)
	if err != nil {
		return err
	}
	defer clear(plaintext)
	out := newSecretJSON(len(id) + 2*len(plaintext))
	out.String("key_id", id)
	out.Bytes("plaintext", plaintext)
	out.WriteAndWipe(c.w)
	return nil
}

type reEncryptRequest struct {
	Blob         []byte            `json:"ciphertext_blob"`
	BlobAWS      []byte            `json:"CiphertextBlob"`
	SourceCtx    map[string]string `json:"source_encryption_context"`
	SourceCtxAWS map[string]string `json:"SourceEncryptionContext"`
	SourceKeyID  string            `json:"source_key_id"`
	SourceKeyAWS string            `json:"SourceKeyId"`
	DestKeyID    string            `json:"destination_key_id"`
	DestKeyIDAWS string            `json:"DestinationKeyId"`
	DestCtx      map[string]string `json:"destination_encryption_context"`
	DestCtxAWS   map[string]string `json:"DestinationEncryptionContext"`
}

// reEncrypt moves a blob to another key and/or context; the plaintext never
// leaves the server. It is authorized as AWS does: kms:ReEncryptFrom on the
// blob's key and kms:ReEncryptTo on the destination. ReEncryptFrom is as
// strong as Decrypt on the source key (the caller can move the blob to a
// key it controls and decrypt it there), which is why it is its own action
// and not implied by a right on the destination.
func (s *Server) reEncrypt(c *call) error {
	var req reEncryptRequest
	if err := reEncryptSchema.Decode(c.body, &req); err != nil {
		return err
	}
	blob, err := blobOf(req.Blob, req.BlobAWS)
	if err != nil {
		return err
	}
	// The destination is required (as in AWS; the default key is not
	// used for it): a request without one is malformed, whoever sends it.
	dstID := first(req.DestKeyID, req.DestKeyIDAWS)
	if dstID == "" {
		return errMissing("destination_key_id")
	}
	dst, err := c.resolveKey(dstID)
	if err != nil {
		return err
	}
	if err := c.authorizeAs("kms:ReEncryptFrom", blobKeyID(blob)); err != nil {
		return err
	}
	if err := c.authorizeAs("kms:ReEncryptTo", dst); err != nil {
		return err
	}
	src, err := c.resolveKey(first(req.SourceKeyID, req.SourceKeyAWS))
	if err != nil {
		return err
	}
	id, out, err := c.svc.ReEncrypt(c.ctx, blob, contextOf(req.SourceCtx, req.SourceCtxAWS), src, dst, contextOf(req.DestCtx, req.DestCtxAWS))
	if err != nil {
		return err
	}
	writeBlob(c, id, out)
	return nil
}

// keyOrDefault is the key a data-key request acts on: the named one, else
// the configured default key (authorization is checked on that key).
func (c *call) keyOrDefault(id string) string {
	if id == "" {
		return c.pending.DefaultKeyID()
	}
	return id
}

// blobKeyID is the key a blob names; a malformed blob authorizes on nothing
// here and is refused (400) by the service.
func blobKeyID(blob []byte) string {
	b, err := kms.ParseBlob(blob)
	if err != nil {
		return ""
	}
	return b.KeyID
}

// blobOf is the ciphertext_blob of a request (or AWS's CiphertextBlob).
func blobOf(seed, aws []byte) ([]byte, error) {
	if len(seed) > 0 {
		return seed, nil
	}
	if len(aws) > 0 {
		return aws, nil
	}
	return nil, errMissing("ciphertext_blob")
}

func contextOf(a, b map[string]string) map[string]string {
	if len(a) > 0 {
		return a
	}
	return b
}
