package bench

import (
	"context"
	"net/http"
	"strings"
)

// APIs are the front doors of a Keyward target: the admin API, the AWS
// KMS API (POST / with X-Amz-Target) and the KES API, over the same key
// service.
var APIs = []string{"admin", "aws", "kes"}

// awsTarget drives the AWS KMS API of the Keyward server of its admin
// target, on the same key, so that each of its steps runs right after the
// matching admin step (Run interleaves them): the two doors are then
// measured under the same conditions, back to back.
type awsTarget struct {
	admin *keywardTarget
	url   string // endpoint + "/"
}

func (a *awsTarget) name() string { return "kw-aws" }
func (a *awsTarget) close()       {}

// setup uses the admin target's key (made or checked by its setup).
func (a *awsTarget) setup(context.Context) error { return nil }

func (a *awsTarget) tmpl(op string, body []byte) *template {
	h := http.Header{}
	h.Set("Content-Type", "application/x-amz-json-1.1")
	h.Set("X-Amz-Target", "TrentService."+op)
	return &template{method: "POST", url: a.url, body: body, base: h, signer: a.admin.signer, now: a.admin.now}
}

// call sends one setup request to the AWS door and decodes its answer.
func (a *awsTarget) call(ctx context.Context, op string, body []byte, out any) error {
	t := a.tmpl(op, body)
	if err := t.build(); err != nil {
		return err
	}
	r, err := t.newRequest(ctx)
	if err != nil {
		return err
	}
	return doJSON(ctx, a.admin.client, r, out)
}

func (a *awsTarget) generateBody() []byte {
	return mustJSON(map[string]any{"KeyId": a.admin.keyID, "KeySpec": "AES_256", "EncryptionContext": benchContext})
}

func (a *awsTarget) plan(op string) Plan {
	p := Plan{Target: a.name(), Op: op}
	switch op {
	case "generate":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(a.tmpl("GenerateDataKey", a.generateBody()))
		}
	case "decrypt":
		p.NewRequester = func(ctx context.Context, _ int) (Requester, error) {
			var dk struct{ CiphertextBlob string }
			if err := a.call(ctx, "GenerateDataKey", a.generateBody(), &dk); err != nil {
				return nil, err
			}
			return prepared(a.tmpl("Decrypt", mustJSON(map[string]any{"CiphertextBlob": dk.CiphertextBlob, "EncryptionContext": benchContext})))
		}
	case "encrypt":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			body := mustJSON(map[string]any{"KeyId": a.admin.keyID, "Plaintext": randomB64(32), "EncryptionContext": benchContext})
			return prepared(a.tmpl("Encrypt", body))
		}
	case "describe":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(a.tmpl("DescribeKey", mustJSON(map[string]string{"KeyId": a.admin.keyID})))
		}
	case "list":
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(a.tmpl("ListKeys", []byte(`{"Limit":100}`)))
		}
	case "create":
		// CreateKey makes a new key id each time: the same request replays.
		p.NewRequester = func(context.Context, int) (Requester, error) {
			return prepared(a.tmpl("CreateKey", []byte(`{"Description":"keyward bench"}`)))
		}
	}
	return p
}

// awsURL is the AWS door of an endpoint.
func awsURL(endpoint string) string { return strings.TrimRight(endpoint, "/") + "/" }
