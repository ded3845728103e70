package e2e

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	smithy "github.com/aws/smithy-go"
)

// Helpers of the AWS KMS API tests (aws_*_test.go): an AWS SDK for Go v2
// KMS client pointed at a server, and checks of the SDK's typed errors.

// awsRegion is the region the tests sign for (any region is served).
const awsRegion = "eu-west-1"

// kmsClient is the AWS SDK for Go v2 KMS client of a user of srv, with
// retries off (every error reaches the test as the server sent it).
func kmsClient(srv *server, accessKey, secretKey, region string) *kms.Client {
	return kms.New(kms.Options{
		Region:       region,
		BaseEndpoint: aws.String(srv.URL),
		Credentials: aws.CredentialsProviderFunc(func(context.Context) (aws.Credentials, error) {
			return aws.Credentials{AccessKeyID: accessKey, SecretAccessKey: secretKey, Source: "e2e"}, nil
		}),
		Retryer: aws.NopRetryer{},
	})
}

// ctx bounds every SDK call of a test.
func awsCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// wantTyped checks that err is the SDK's typed exception T (errors.As) and
// carries AWS's error code for it.
func wantTyped[T interface {
	error
	ErrorCode() string
}](t *testing.T, what string, err error) {
	t.Helper()
	var typed T
	if !errors.As(err, &typed) {
		t.Errorf("%s: want %T; got %T %v", what, typed, err, err)
		return
	}
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != typed.ErrorCode() || api.ErrorMessage() == "" {
		t.Errorf("%s: API error %v", what, err)
	}
}

// wantCode checks AWS's error code for exceptions the KMS SDK has no type
// for (they are common to every AWS service: ValidationException,
// AccessDeniedException, UnrecognizedClientException, ...).
func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	var api smithy.APIError
	if !errors.As(err, &api) || api.ErrorCode() != code || api.ErrorMessage() == "" {
		t.Errorf("%s: want %s; got %T %v", what, code, err, err)
	}
}

// must fails the test on an SDK error.
func must[T any](t *testing.T, what string) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return v
	}
}
