package client_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
	"github.com/keyward/keyward/internal/certs"
)

// TestAuthentication checks the signature against the real verifier:
// service and region variants, awkward paths and queries, wrong secrets,
// unknown access keys, and a user without the permission.
func TestAuthentication(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	iamFile := filepath.Join(dir, "iam.json")
	err := os.WriteFile(iamFile, []byte(`{"users": [{"access_key": "auditor", "secret_key": "auditor-secret-123", "policies": ["KMSAuditor"]}]}`), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "--iam-file", iamFile)
	ctx := context.Background()
	root := srv.client(t)
	must(root.Configure(ctx, client.ConfigureRequest{BackendType: new("local")}))(t)
	must(root.Start(ctx, client.StartRequest{}))(t)
	must(root.CreateKey(ctx, client.CreateKeyRequest{KeyID: "k1"}))(t)

	for _, opts := range [][]client.Option{
		{client.WithService("s3")},
		{client.WithService("kms"), client.WithRegion("eu-west-3")},
		{client.WithService("s3"), client.WithRegion("cn-north-1")},
		{client.WithUserAgent("")},
	} {
		c := srv.client(t, opts...)
		if _, err := c.DescribeKey(ctx, "k1"); err != nil {
			t.Fatalf("describe with %d option(s): %v", len(opts), err)
		}
		if _, err := c.ListKeys(ctx, client.ListKeysRequest{Marker: "a b~c/d%e+f=&g", Limit: 5, State: client.KeyEnabled}); err != nil {
			t.Fatalf("list with an awkward marker: %v", err)
		}
		// Awkward key ids reach the handler (a 4xx from the API, never a
		// signature error).
		for _, id := range []string{"a b", "a/b", "ü", "a%2Fb", "x+y"} {
			_, err := c.DescribeKey(ctx, id)
			var apiErr *client.APIError
			if !errors.As(err, &apiErr) || apiErr.StatusCode == 401 || apiErr.StatusCode >= 500 {
				t.Fatalf("describe %q: %v", id, err)
			}
		}
		if _, err := c.DescribeKeyLegacy(ctx, "k1 & more=stuff"); !errors.Is(err, client.ErrNotFound) && !errors.Is(err, client.ErrInvalidRequest) {
			t.Fatalf("legacy describe with an awkward query: %v", err)
		}
	}

	bad, err := client.New(srv.URL, srv.AccessKey, "wrong-secret", client.WithRetries(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	_, err = bad.Status(ctx)
	wantErr(t, "wrong secret", err, client.ErrSignatureDoesNotMatch, 401)
	unknown, _ := client.New(srv.URL, "nobody", "whatever-secret")
	_, err = unknown.Status(ctx)
	wantErr(t, "unknown access key", err, client.ErrInvalidAccessKeyID, 401)
	// Health needs no signature, whatever the credentials.
	if _, err := bad.Health(ctx); err != nil {
		t.Fatalf("health with a wrong secret: %v", err)
	}

	auditor, _ := client.New(srv.URL, "auditor", "auditor-secret-123")
	if _, err := auditor.ListKeys(ctx, client.ListKeysRequest{}); err != nil {
		t.Fatalf("auditor list: %v", err)
	}
	_, err = auditor.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "k1"})
	wantErr(t, "auditor generate", err, client.ErrAccessDenied, 403)
	_, err = auditor.Stop(ctx)
	wantErr(t, "auditor stop", err, client.ErrAccessDenied, 403)
}

// TestTLS checks the TLS options against the real server over HTTPS.
func TestTLS(t *testing.T) {
	t.Parallel()
	pki, err := certs.NewTestPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "--tls-cert", pki.CertFile, "--tls-key", pki.KeyFile)
	if srv.URL[:8] != "https://" {
		t.Fatalf("not HTTPS: %s", srv.URL)
	}
	caPEM, err := os.ReadFile(pki.CAFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	c := srv.client(t, client.WithCACert(caPEM))
	if st, err := c.Status(ctx); err != nil || st.Status != client.StateNotConfigured {
		t.Fatalf("status over TLS with the CA: %v %+v", err, st)
	}
	if _, err := srv.client(t, client.WithInsecureSkipVerify()).Status(ctx); err != nil {
		t.Fatalf("status with InsecureSkipVerify: %v", err)
	}
	if _, err := srv.client(t, client.WithTLSConfig(&tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13})).Status(ctx); err != nil {
		t.Fatalf("status with a TLS config: %v", err)
	}

	// Without the CA the certificate is refused, at once (a TLS failure is
	// not retried: it would fail again).
	// The backoff is long so that one retry alone would take far longer than
	// the bound below, whatever the machine's load.
	plain := srv.client(t, client.WithRetries(3, 10*time.Second))
	start := time.Now()
	_, err = plain.Status(ctx)
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) {
		t.Fatalf("status without the CA: want a certificate error, got %v", err)
	}
	if _, ok := errors.AsType[*client.APIError](err); ok {
		t.Fatal("a TLS failure is reported as an APIError")
	}
	if time.Since(start) > 2*time.Second { // one retry waits at least 2.5 s (5 s cap, half jittered)
		t.Fatalf("a certificate failure was retried (%s)", time.Since(start))
	}

	if _, err := client.New(srv.URL, "a", "b", client.WithCACert([]byte("not a pem"))); err == nil {
		t.Fatal("WithCACert accepted garbage")
	}
}
