package client_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keyward/keyward/client"
)

// TestSecretsAtRest: a master key the server reads from its secrets dir,
// and a sealed server (--no-persist-secrets) unsealed with Start after a
// restart, through the public client.
func TestSecretsAtRest(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	secrets := t.TempDir()
	mkFile := filepath.Join(secrets, "master-key")
	if err := os.WriteFile(mkFile, []byte("client-file-passphrase\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := startServer(t, "--secrets-dir", secrets)
	c := srv.client(t)
	_, err := c.Configure(ctx, client.ConfigureRequest{BackendType: new("local"), MasterKeyFile: new("/etc/hostname")})
	wantErr(t, "a master key file outside the secrets dir", err, client.ErrInvalidRequest, 400)
	must(c.Configure(ctx, client.ConfigureRequest{BackendType: new("local"), MasterKeyFile: &mkFile}))(t)
	st := must(c.Status(ctx))(t)
	if b := st.ConfigSummary.BackendSummary; b.MasterKeyFile != mkFile || !b.HasMasterKey {
		t.Fatalf("status: %+v", b)
	}
	must(c.Start(ctx, client.StartRequest{}))(t)

	// Sealed mode.
	dataDir := filepath.Join(t.TempDir(), "sealed")
	sealed := startServer(t, "--data-dir", dataDir, "--no-persist-secrets")
	c = sealed.client(t)
	pass, wrong := "client-sealed-passphrase", "not-the-passphrase"
	must(c.Configure(ctx, client.ConfigureRequest{BackendType: new("local"), MasterKey: &pass, DefaultKeyID: new("dk")}))(t)
	_, err = c.Start(ctx, client.StartRequest{MasterKey: &pass})
	wantErr(t, "a start body with a secret the server does not wait for", err, client.ErrInvalidRequest, 400)
	must(c.Start(ctx, client.StartRequest{}))(t)
	dk := must(c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{}))(t)
	sealed.Stop()

	again := startServer(t, "--data-dir", dataDir, "--no-persist-secrets")
	c = again.client(t)
	st = must(c.Status(ctx))(t)
	if st.Status != client.StateConfigured || !slices.Equal(st.SecretsRequired, []string{"master_key"}) {
		t.Fatalf("after a restart: %+v", st)
	}
	_, err = c.Start(ctx, client.StartRequest{})
	wantErr(t, "start without the secret", err, client.ErrConflict, 409)
	_, err = c.Start(ctx, client.StartRequest{MasterKey: &wrong})
	wantErr(t, "start with a wrong master key", err, client.ErrInvalidRequest, 400)
	if lr := must(c.Start(ctx, client.StartRequest{MasterKey: &pass}))(t); lr.Status != client.StateRunning {
		t.Fatalf("start with the master key: %+v", lr)
	}
	if p := must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob}))(t).Plaintext; !bytes.Equal(p, dk.Plaintext) {
		t.Fatal("decrypt after the unseal: another plaintext")
	}
}
