package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/keyward/keyward/internal/kms"
)

// Key operations of the AWS KMS door: CreateKey, DescribeKey, ListKeys,
// EnableKey, DisableKey, ScheduleKeyDeletion, CancelKeyDeletion,
// UpdateKeyDescription, TagResource, UntagResource, ListResourceTags.

// awsKeyMetadata is AWS's KeyMetadata for a symmetric key made in KMS.
type awsKeyMetadata struct {
	AWSAccountID          string   `json:"AWSAccountId"`
	Arn                   string   `json:"Arn"`
	CreationDate          awsTime  `json:"CreationDate"`
	CustomerMasterKeySpec string   `json:"CustomerMasterKeySpec"`
	DeletionDate          *awsTime `json:"DeletionDate,omitempty"`
	Description           string   `json:"Description"`
	Enabled               bool     `json:"Enabled"`
	EncryptionAlgorithms  []string `json:"EncryptionAlgorithms"`
	KeyID                 string   `json:"KeyId"`
	KeyManager            string   `json:"KeyManager"`
	KeySpec               string   `json:"KeySpec"`
	KeyState              string   `json:"KeyState"`
	KeyUsage              string   `json:"KeyUsage"`
	MultiRegion           bool     `json:"MultiRegion"`
	Origin                string   `json:"Origin"`
}

// symmetricDefault is the only key spec and encryption algorithm.
const symmetricDefault = "SYMMETRIC_DEFAULT"

var symmetricAlgorithms = []string{symmetricDefault}

func (c *call) awsKeyMetadata(m kms.Metadata) awsKeyMetadata {
	return awsKeyMetadata{
		AWSAccountID:          c.srv.account(),
		Arn:                   c.keyARN(m.ID),
		CreationDate:          awsTime(m.CreationDate),
		CustomerMasterKeySpec: symmetricDefault,
		DeletionDate:          optionalAWSTime(m.DeletionDate),
		Description:           m.Description,
		Enabled:               m.State == kms.StateEnabled,
		EncryptionAlgorithms:  symmetricAlgorithms,
		KeyID:                 m.ID,
		KeyManager:            "CUSTOMER",
		KeySpec:               symmetricDefault,
		KeyState:              string(m.State),
		KeyUsage:              m.Usage,
		Origin:                "AWS_KMS",
	}
}

func writeAWSKeyMetadata(c *call, m kms.Metadata) {
	writeAWS(c.w, http.StatusOK, struct {
		KeyMetadata awsKeyMetadata `json:"KeyMetadata"`
	}{c.awsKeyMetadata(m)})
}

// awsTag is AWS's {"TagKey", "TagValue"}.
type awsTag struct {
	TagKey   string `json:"TagKey"`
	TagValue string `json:"TagValue"`
}

// tagMap turns AWS's tag list into the service's map; a key given twice is
// refused rather than resolved silently.
func tagMap(tags []awsTag) (map[string]string, error) {
	if tags == nil {
		return nil, nil
	}
	m := make(map[string]string, len(tags))
	for _, t := range tags {
		if _, dup := m[t.TagKey]; dup {
			return nil, fmt.Errorf("%w: tag key %q is given twice", kms.ErrInvalidRequest, t.TagKey)
		}
		m[t.TagKey] = t.TagValue
	}
	return m, nil
}

type awsCreateKeyRequest struct {
	Description                    string   `json:"Description"`
	KeyUsage                       string   `json:"KeyUsage"`
	KeySpec                        string   `json:"KeySpec"`
	CustomerMasterKeySpec          string   `json:"CustomerMasterKeySpec"`
	Origin                         string   `json:"Origin"`
	Tags                           []awsTag `json:"Tags"`
	Policy                         string   `json:"Policy"`
	BypassPolicyLockoutSafetyCheck bool     `json:"BypassPolicyLockoutSafetyCheck"`
	CustomKeyStoreID               string   `json:"CustomKeyStoreId"`
	XksKeyID                       string   `json:"XksKeyId"`
	MultiRegion                    bool     `json:"MultiRegion"`
}

// check refuses what Keyward does not do, naming it: asymmetric and HMAC
// keys, imported or external material, key policies, multi-Region keys.
func (req *awsCreateKeyRequest) check() error {
	for _, spec := range []string{req.KeySpec, req.CustomerMasterKeySpec} {
		if spec != "" && spec != symmetricDefault {
			return unsupported("key spec %q: only SYMMETRIC_DEFAULT keys are supported", spec)
		}
	}
	switch {
	case req.KeyUsage != "" && req.KeyUsage != kms.UsageEncryptDecrypt:
		return unsupported("key usage %q: only ENCRYPT_DECRYPT is supported", req.KeyUsage)
	case req.Origin != "" && req.Origin != "AWS_KMS":
		return unsupported("origin %q: only AWS_KMS (key material made by Keyward) is supported", req.Origin)
	case req.Policy != "":
		return unsupported("key policies are not supported: Keyward authorizes with the policies of its IAM file (--iam-file)")
	case req.CustomKeyStoreID != "" || req.XksKeyID != "":
		return unsupported("custom key stores are not supported")
	case req.MultiRegion:
		return unsupported("multi-Region keys are not supported")
	}
	return nil
}

func (s *Server) awsCreateKey(c *call) error {
	var req awsCreateKeyRequest
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	if err := req.check(); err != nil {
		return err
	}
	tags, err := tagMap(req.Tags)
	if err != nil {
		return err
	}
	m, err := c.svc.CreateKey(c.ctx, kms.CreateKeyInput{Description: req.Description, Usage: req.KeyUsage, Tags: tags, GenerateID: true})
	if err != nil {
		return err
	}
	c.keyID = m.ID
	writeAWSKeyMetadata(c, m)
	return nil
}

// awsKeyRequest is the body of the operations that name one key.
type awsKeyRequest struct {
	KeyID string `json:"KeyId"`
	awsCommon
}

// awsKey decodes body into req (which embeds or is an awsKeyRequest, and
// keyID points at its KeyId), resolves the key and authorizes the route's
// action on it.
func (c *call) awsKey(req any, keyID *string, common *awsCommon) (string, error) {
	if err := awsDecode(c.body, req); err != nil {
		return "", err
	}
	if common != nil {
		if err := common.check(); err != nil {
			return "", err
		}
	}
	id, err := c.awsKeyRef(*keyID)
	if err != nil {
		return "", err
	}
	return id, c.authorize(id)
}

func (s *Server) awsDescribeKey(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	m, err := c.svc.DescribeKey(c.ctx, id)
	if err != nil {
		return err
	}
	writeAWSKeyMetadata(c, m)
	return nil
}

type awsListRequest struct {
	Limit  *int   `json:"Limit"`
	Marker string `json:"Marker"`
}

// awsListKeys lists every key by id and ARN (AWS's ListKeys shows no
// metadata, so no key needs hiding); records that cannot be read are
// listed too: they are keys, and hiding them would hide a problem.
func (s *Server) awsListKeys(c *call) error {
	var req awsListRequest
	if err := awsDecode(c.body, &req); err != nil {
		return err
	}
	limit, err := awsLimit(req.Limit, kms.DefaultListLimit, kms.MaxListLimit)
	if err != nil {
		return err
	}
	after, err := decodeMarker(markerKeys, req.Marker, func(id string) bool { return kms.ValidateKeyID(id) == nil })
	if err != nil {
		return err
	}
	page, err := c.svc.ListKeys(c.ctx, kms.ListInput{Marker: after, Limit: limit})
	if err != nil {
		return err
	}
	ids := make([]string, 0, len(page.Keys)+len(page.Unreadable))
	for _, k := range page.Keys {
		ids = append(ids, k.ID)
	}
	ids = append(ids, page.Unreadable...)
	slices.Sort(ids)
	type entry struct {
		KeyID  string `json:"KeyId"`
		KeyArn string `json:"KeyArn"`
	}
	resp := struct {
		Keys       []entry `json:"Keys"`
		NextMarker string  `json:"NextMarker,omitempty"`
		Truncated  bool    `json:"Truncated"`
	}{Keys: make([]entry, 0, len(ids)), Truncated: page.Truncated}
	for _, id := range ids {
		resp.Keys = append(resp.Keys, entry{id, c.keyARN(id)})
	}
	if page.Truncated {
		resp.NextMarker = encodeMarker(markerKeys, page.NextMarker)
	}
	writeAWS(c.w, http.StatusOK, resp)
	return nil
}

func (s *Server) awsEnableKey(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	if _, err := c.svc.EnableKey(c.ctx, id); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsDisableKey(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	if _, err := c.svc.DisableKey(c.ctx, id); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsScheduleKeyDeletion(c *call) error {
	var req struct {
		awsKeyRequest
		PendingWindowInDays *int `json:"PendingWindowInDays"`
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	window := kms.DefaultPendingWindowDays
	if req.PendingWindowInDays != nil {
		window = *req.PendingWindowInDays
		if window < kms.MinPendingWindowDays || window > kms.MaxPendingWindowDays {
			return fmt.Errorf("%w: PendingWindowInDays must be between %d and %d", kms.ErrInvalidRequest, kms.MinPendingWindowDays, kms.MaxPendingWindowDays)
		}
	}
	m, err := c.svc.ScheduleDeletion(c.ctx, id, window)
	if err != nil {
		return err
	}
	writeAWS(c.w, http.StatusOK, struct {
		KeyID               string  `json:"KeyId"`
		DeletionDate        awsTime `json:"DeletionDate"`
		KeyState            string  `json:"KeyState"`
		PendingWindowInDays int     `json:"PendingWindowInDays"`
	}{c.keyARN(m.ID), awsTime(m.DeletionDate), string(m.State), window})
	return nil
}

// awsCancelKeyDeletion leaves the key Disabled, as AWS does (the admin
// route leaves it Enabled; docs/aws-kms-api.md).
func (s *Server) awsCancelKeyDeletion(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	m, err := c.svc.CancelDeletion(c.ctx, id, kms.CancelToDisabled)
	if err != nil {
		return err
	}
	writeAWS(c.w, http.StatusOK, struct {
		KeyID string `json:"KeyId"`
	}{c.keyARN(m.ID)})
	return nil
}

func (s *Server) awsUpdateKeyDescription(c *call) error {
	var req struct {
		awsKeyRequest
		Description *string `json:"Description"`
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	if req.Description == nil {
		return fmt.Errorf("%w: Description is required", kms.ErrInvalidRequest)
	}
	if _, err := c.svc.UpdateDescription(c.ctx, id, *req.Description); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsTagResource(c *call) error {
	var req struct {
		awsKeyRequest
		Tags []awsTag `json:"Tags"`
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	tags, err := tagMap(req.Tags)
	if err != nil {
		return err
	}
	if _, err := c.svc.TagKey(c.ctx, id, tags); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsUntagResource(c *call) error {
	var req struct {
		awsKeyRequest
		TagKeys []string `json:"TagKeys"`
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	if _, err := c.svc.UntagKey(c.ctx, id, req.TagKeys); err != nil {
		return err
	}
	return awsOK(c)
}

// maxTagsPage is AWS's largest ListResourceTags page (and its default).
const maxTagsPage = 50

func (s *Server) awsListResourceTags(c *call) error {
	var req struct {
		awsKeyRequest
		awsListRequest
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	limit, err := awsLimit(req.Limit, maxTagsPage, maxTagsPage)
	if err != nil {
		return err
	}
	after, err := decodeMarker(markerTags, req.Marker, func(k string) bool { return k != "" })
	if err != nil {
		return err
	}
	m, err := c.svc.DescribeKey(c.ctx, id)
	if err != nil {
		return err
	}
	keys := make([]string, 0, len(m.Tags))
	for k := range m.Tags {
		if strings.Compare(k, after) > 0 {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	resp := struct {
		Tags       []awsTag `json:"Tags"`
		NextMarker string   `json:"NextMarker,omitempty"`
		Truncated  bool     `json:"Truncated"`
	}{Tags: make([]awsTag, 0, min(len(keys), limit))}
	for i, k := range keys {
		if i == limit {
			resp.Truncated, resp.NextMarker = true, encodeMarker(markerTags, keys[i-1])
			break
		}
		resp.Tags = append(resp.Tags, awsTag{k, m.Tags[k]})
	}
	writeAWS(c.w, http.StatusOK, resp)
	return nil
}
