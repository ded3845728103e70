package httpapi

import (
	"fmt"

	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Cryptographic operations of the AWS KMS door: GenerateDataKey,
// GenerateDataKeyWithoutPlaintext, Encrypt, Decrypt, ReEncrypt,
// GenerateRandom. CiphertextBlob is Keyward's blob (docs/blob-format.md)
// and EncryptionContext is bound exactly as on the admin API, so a blob
// made through either door opens through the other. The hot requests
// decode through jsonbody.Schema and the answers are written by hand into
// a buffer that is wiped (secretJSON), as on the admin routes.

var (
	awsGenerateSchema = jsonbody.NewSchema[awsGenerateDataKeyRequest]()
	awsEncryptSchema  = jsonbody.NewSchema[awsEncryptRequest]()
	awsDecryptSchema  = jsonbody.NewSchema[awsDecryptRequest]()
	awsReEncSchema    = jsonbody.NewSchema[awsReEncryptRequest]()
)

type awsGenerateDataKeyRequest struct {
	KeyID         string            `json:"KeyId"`
	KeySpec       string            `json:"KeySpec"`
	NumberOfBytes int               `json:"NumberOfBytes"`
	Context       map[string]string `json:"EncryptionContext"`
	GrantTokens   []string          `json:"GrantTokens"`
	DryRun        bool              `json:"DryRun"`
}

// parse decodes the body and resolves the data key size: AWS wants exactly
// one of KeySpec (AES_256, AES_128) and NumberOfBytes (1 to 1024).
func (req *awsGenerateDataKeyRequest) parse(body []byte) (int, error) {
	if err := awsGenerateSchema.Decode(body, req); err != nil {
		return 0, err
	}
	if req.DryRun {
		return 0, unsupported("DryRun is not supported")
	}
	switch {
	case req.KeySpec == "" && req.NumberOfBytes == 0:
		return 0, fmt.Errorf("%w: specify either KeySpec or NumberOfBytes", kms.ErrInvalidRequest)
	case req.KeySpec != "" && req.NumberOfBytes != 0:
		return 0, fmt.Errorf("%w: specify either KeySpec or NumberOfBytes, not both", kms.ErrInvalidRequest)
	case req.KeySpec != "" && req.KeySpec != kms.SpecAES256 && req.KeySpec != kms.SpecAES128:
		return 0, fmt.Errorf("%w: KeySpec must be AES_256 or AES_128", kms.ErrInvalidRequest)
	}
	return kms.DataKeySize(req.KeySpec, req.NumberOfBytes)
}

// awsDataKey is GenerateDataKey with or without the plaintext in the
// answer.
func (s *Server) awsDataKey(c *call, withPlaintext bool) error {
	var req awsGenerateDataKeyRequest
	size, err := req.parse(c.body)
	if err != nil {
		return err
	}
	keyID, err := c.awsKeyRef(req.KeyID)
	if err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	id, plaintext, blob, err := c.svc.GenerateDataKey(c.ctx, keyID, size, req.Context)
	if err != nil {
		return err
	}
	defer clear(plaintext)
	out := newSecretJSON(96 + len(id) + 2*len(blob) + 2*len(plaintext))
	out.Bytes("CiphertextBlob", blob)
	if withPlaintext {
		out.Bytes("Plaintext", plaintext)
	}
	out.ARN("KeyId", c, id)
	out.WriteAWS(c.w)
	return nil
}

func (s *Server) awsGenerateDataKey(c *call) error { return s.awsDataKey(c, true) }

func (s *Server) awsGenerateDataKeyWithoutPlaintext(c *call) error { return s.awsDataKey(c, false) }

// checkAlgorithm refuses every encryption algorithm but SYMMETRIC_DEFAULT
// (the others are for asymmetric keys).
func checkAlgorithm(member, alg string) error {
	if alg != "" && alg != symmetricDefault {
		return fmt.Errorf("%w: %s must be SYMMETRIC_DEFAULT (Keyward has symmetric keys only)", kms.ErrInvalidRequest, member)
	}
	return nil
}

type awsEncryptRequest struct {
	KeyID               string            `json:"KeyId"`
	Plaintext           []byte            `json:"Plaintext"`
	Context             map[string]string `json:"EncryptionContext"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	GrantTokens         []string          `json:"GrantTokens"`
	DryRun              bool              `json:"DryRun"`
}

func (s *Server) awsEncrypt(c *call) error {
	var req awsEncryptRequest
	err := awsEncryptSchema.Decode(c.body, &req)
	defer clear(req.Plaintext)
	if err != nil {
		return err
	}
	if err := (&awsCommon{DryRun: req.DryRun}).check(); err != nil {
		return err
	}
	if err := checkAlgorithm("EncryptionAlgorithm", req.EncryptionAlgorithm); err != nil {
		return err
	}
	keyID, err := c.awsKeyRef(req.KeyID)
	if err != nil {
		return err
	}
	if err := c.authorize(keyID); err != nil {
		return err
	}
	id, blob, err := c.svc.Encrypt(c.ctx, keyID, req.Plaintext, req.Context)
	if err != nil {
		return err
	}
	out := newSecretJSON(128 + len(id) + 2*len(blob))
	out.Bytes("CiphertextBlob", blob)
	out.String("EncryptionAlgorithm", symmetricDefault)
	out.ARN("KeyId", c, id)
	out.WriteAWS(c.w)
	return nil
}

type awsDecryptRequest struct {
	CiphertextBlob      []byte            `json:"CiphertextBlob"`
	Context             map[string]string `json:"EncryptionContext"`
	KeyID               string            `json:"KeyId"`
	EncryptionAlgorithm string            `json:"EncryptionAlgorithm"`
	GrantTokens         []string          `json:"GrantTokens"`
	DryRun              bool              `json:"DryRun"`
}

// awsDecrypt opens a blob; a KeyId, if given, must name the blob's key
// (IncorrectKeyException otherwise). Authorized on the blob's key.
func (s *Server) awsDecrypt(c *call) error {
	var req awsDecryptRequest
	if err := awsDecryptSchema.Decode(c.body, &req); err != nil {
		return err
	}
	if err := (&awsCommon{DryRun: req.DryRun}).check(); err != nil {
		return err
	}
	if err := checkAlgorithm("EncryptionAlgorithm", req.EncryptionAlgorithm); err != nil {
		return err
	}
	if len(req.CiphertextBlob) == 0 {
		return fmt.Errorf("%w: CiphertextBlob is required", kms.ErrInvalidRequest)
	}
	if err := c.authorize(blobKeyID(req.CiphertextBlob)); err != nil {
		return err
	}
	want := ""
	if req.KeyID != "" {
		var err error
		if want, err = c.awsKeyRef(req.KeyID); err != nil {
			return err
		}
	}
	id, plaintext, err := c.svc.Decrypt(c.ctx, req.CiphertextBlob, req.Context, want)
	if err != nil {
		return err
	}
	defer clear(plaintext)
	out := newSecretJSON(128 + len(id) + 2*len(plaintext))
	out.String("EncryptionAlgorithm", symmetricDefault)
	out.ARN("KeyId", c, id)
	out.Bytes("Plaintext", plaintext)
	out.WriteAWS(c.w)
	return nil
}

type awsReEncryptRequest struct {
	CiphertextBlob                 []byte            `json:"CiphertextBlob"`
	SourceEncryptionContext        map[string]string `json:"SourceEncryptionContext"`
	SourceKeyID                    string            `json:"SourceKeyId"`
	DestinationKeyID               string            `json:"DestinationKeyId"`
	DestinationEncryptionContext   map[string]string `json:"DestinationEncryptionContext"`
	SourceEncryptionAlgorithm      string            `json:"SourceEncryptionAlgorithm"`
	DestinationEncryptionAlgorithm string            `json:"DestinationEncryptionAlgorithm"`
	GrantTokens                    []string          `json:"GrantTokens"`
	DryRun                         bool              `json:"DryRun"`
}

// awsReEncrypt: kms:ReEncryptFrom on the blob's key, kms:ReEncryptTo on
// the destination, as on the admin route and in AWS.
func (s *Server) awsReEncrypt(c *call) error {
	var req awsReEncryptRequest
	if err := awsReEncSchema.Decode(c.body, &req); err != nil {
		return err
	}
	if err := (&awsCommon{DryRun: req.DryRun}).check(); err != nil {
		return err
	}
	if err := checkAlgorithm("SourceEncryptionAlgorithm", req.SourceEncryptionAlgorithm); err != nil {
		return err
	}
	if err := checkAlgorithm("DestinationEncryptionAlgorithm", req.DestinationEncryptionAlgorithm); err != nil {
		return err
	}
	if len(req.CiphertextBlob) == 0 {
		return fmt.Errorf("%w: CiphertextBlob is required", kms.ErrInvalidRequest)
	}
	if req.DestinationKeyID == "" {
		return fmt.Errorf("%w: DestinationKeyId is required", kms.ErrInvalidRequest)
	}
	dst, err := c.awsKeyRef(req.DestinationKeyID)
	if err != nil {
		return err
	}
	srcID := blobKeyID(req.CiphertextBlob)
	if err := c.authorizeAs("kms:ReEncryptFrom", srcID); err != nil {
		return err
	}
	if err := c.authorizeAs("kms:ReEncryptTo", dst); err != nil {
		return err
	}
	src := ""
	if req.SourceKeyID != "" {
		if src, err = c.awsKeyRef(req.SourceKeyID); err != nil {
			return err
		}
	}
	id, blob, err := c.svc.ReEncrypt(c.ctx, req.CiphertextBlob, req.SourceEncryptionContext, src, dst, req.DestinationEncryptionContext)
	if err != nil {
		return err
	}
	out := newSecretJSON(256 + len(id) + len(srcID) + 2*len(blob))
	out.Bytes("CiphertextBlob", blob)
	out.ARN("KeyId", c, id)
	out.ARN("SourceKeyId", c, srcID)
	out.String("SourceEncryptionAlgorithm", symmetricDefault)
	out.String("DestinationEncryptionAlgorithm", symmetricDefault)
	out.WriteAWS(c.w)
	return nil
}

// awsGenerateRandom: kms:GenerateRandom on "*" (it names no key).
func (s *Server) awsGenerateRandom(c *call) error {
	var req struct {
		NumberOfBytes    *int   `json:"NumberOfBytes"`
		CustomKeyStoreID string `json:"CustomKeyStoreId"`
	}
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	if req.CustomKeyStoreID != "" {
		return unsupported("custom key stores are not supported")
	}
	if req.NumberOfBytes == nil {
		return fmt.Errorf("%w: NumberOfBytes is required", kms.ErrInvalidRequest)
	}
	b, err := c.svc.GenerateRandom(*req.NumberOfBytes)
	if err != nil {
		return err
	}
	defer clear(b)
	out := newSecretJSON(16 + 2*len(b))
	out.Bytes("Plaintext", b)
	out.WriteAWS(c.w)
	return nil
}
