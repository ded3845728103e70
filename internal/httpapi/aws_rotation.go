package httpapi

import (
	"net/http"
	"slices"

	"github.com/keyward/keyward/internal/kms"
)

// Rotation operations of the AWS KMS door: EnableKeyRotation,
// DisableKeyRotation, GetKeyRotationStatus, RotateKeyOnDemand,
// ListKeyRotations.

func (s *Server) awsEnableKeyRotation(c *call) error {
	var req struct {
		awsKeyRequest
		RotationPeriodInDays int `json:"RotationPeriodInDays"`
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	// 0 (absent) is the default period; the service checks the range.
	if _, err := c.svc.SetRotation(c.ctx, id, true, req.RotationPeriodInDays); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsDisableKeyRotation(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	if _, err := c.svc.SetRotation(c.ctx, id, false, 0); err != nil {
		return err
	}
	return awsOK(c)
}

func (s *Server) awsGetKeyRotationStatus(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	m, err := c.svc.DescribeKey(c.ctx, id)
	if err != nil {
		return err
	}
	resp := struct {
		KeyID                string   `json:"KeyId"`
		KeyRotationEnabled   bool     `json:"KeyRotationEnabled"`
		RotationPeriodInDays int      `json:"RotationPeriodInDays,omitempty"`
		NextRotationDate     *awsTime `json:"NextRotationDate,omitempty"`
	}{KeyID: c.keyARN(m.ID), KeyRotationEnabled: m.RotationEnabled}
	if m.RotationEnabled {
		resp.RotationPeriodInDays = m.RotationPeriodDays
		resp.NextRotationDate = optionalAWSTime(c.svc.NextRotation(m))
	}
	writeAWS(c.w, http.StatusOK, resp)
	return nil
}

func (s *Server) awsRotateKeyOnDemand(c *call) error {
	var req awsKeyRequest
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	m, err := c.svc.RotateKey(c.ctx, id)
	if err != nil {
		return err
	}
	writeAWS(c.w, http.StatusOK, struct {
		KeyID string `json:"KeyId"`
	}{c.keyARN(m.ID)})
	return nil
}

// awsListKeyRotations lists the key's rotations, oldest first. Keyward
// does not record whether a rotation was on demand or automatic, so
// RotationType is left out (docs/aws-kms-api.md).
func (s *Server) awsListKeyRotations(c *call) error {
	var req struct {
		awsKeyRequest
		awsListRequest
	}
	id, err := c.awsKey(&req, &req.KeyID, &req.awsCommon)
	if err != nil {
		return err
	}
	limit, err := awsLimit(req.Limit, kms.DefaultListLimit, kms.MaxListLimit)
	if err != nil {
		return err
	}
	var after uint32
	if _, err := decodeMarker(markerRotations, req.Marker, func(v string) bool {
		if len(v) != 4 {
			return false
		}
		after = uint32(v[0])<<24 | uint32(v[1])<<16 | uint32(v[2])<<8 | uint32(v[3])
		return after >= 2
	}); err != nil {
		return err
	}
	m, err := c.svc.DescribeKey(c.ctx, id)
	if err != nil {
		return err
	}
	type rotation struct {
		KeyID        string  `json:"KeyId"`
		RotationDate awsTime `json:"RotationDate"`
	}
	history := m.RotationHistory()
	start, _ := slices.BinarySearchFunc(history, after+1, func(r kms.Rotation, v uint32) int { return int(int64(r.Version) - int64(v)) })
	history = history[start:]
	resp := struct {
		Rotations  []rotation `json:"Rotations"`
		NextMarker string     `json:"NextMarker,omitempty"`
		Truncated  bool       `json:"Truncated"`
	}{Rotations: make([]rotation, 0, min(len(history), limit))}
	arn := c.keyARN(m.ID)
	for i, r := range history {
		if i == limit {
			v := history[i-1].Version
			resp.Truncated = true
			resp.NextMarker = encodeMarker(markerRotations, string([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}))
			break
		}
		resp.Rotations = append(resp.Rotations, rotation{arn, awsTime(r.Date)})
	}
	writeAWS(c.w, http.StatusOK, resp)
	return nil
}
