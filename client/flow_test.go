package client_test

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/keyward/keyward/client"
)

// must returns v, failing the test on err: must(c.Status(ctx))(t).
func must[T any](v T, err error) func(t *testing.T) T {
	return func(t *testing.T) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// noErr fails the test on err.
func noErr(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// wantErr checks that err matches the sentinel and is an *APIError with
// the status.
func wantErr(t *testing.T, what string, err, sentinel error, status int) {
	t.Helper()
	if !errors.Is(err, sentinel) {
		t.Fatalf("%s: want %v, got %v", what, sentinel, err)
	}
	var apiErr *client.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("%s: %v is not an *APIError", what, err)
	}
	if apiErr.StatusCode != status || apiErr.RequestID == "" || apiErr.Message == "" {
		t.Fatalf("%s: want HTTP %d with a message and request id, got %+v", what, status, apiErr)
	}
}

// TestSeedFlow drives the whole seed flow through the client against the
// real server with real signatures.
func TestSeedFlow(t *testing.T) {
	t.Parallel()
	srv := startServer(t, "--allow-immediate-deletion")
	c := srv.client(t)
	ctx := context.Background()

	// Before configuration.
	noErr(t, c.Live(ctx))
	h := must(c.Health(ctx))(t)
	if h.Ready || h.Status != "unready" {
		t.Fatalf("health before start: %+v", h)
	}
	st := must(c.Status(ctx))(t)
	if st.Status != client.StateNotConfigured || st.ConfigSummary != nil {
		t.Fatalf("status before configure: %+v", st)
	}
	_, err := c.Config(ctx)
	wantErr(t, "config before configure", err, client.ErrServiceUnavailable, 503)
	_, err = c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "x"})
	wantErr(t, "generate before configure", err, client.ErrServiceUnavailable, 503)
	_, err = c.Start(ctx, client.StartRequest{})
	wantErr(t, "start before configure", err, client.ErrConflict, 409)

	// Configure a local backend and start.
	cfg := client.ConfigureRequest{
		BackendType:     new(client.BackendLocal),
		KeyDir:          new(filepath.Join(srv.DataDir, "keys")),
		MasterKey:       new(`a "quoted" passphrase \ with ünïcode`),
		DefaultKeyID:    new("default-key"),
		EnableCache:     new(true),
		CacheTTLSeconds: new(300),
		MaxCachedKeys:   new(100),
		FilePermissions: new(uint32(0o600)),
	}
	lr := must(c.Configure(ctx, cfg))(t)
	if !lr.Success || lr.Status != client.StateConfigured {
		t.Fatalf("configure: %+v", lr)
	}
	lr = must(c.Start(ctx, client.StartRequest{}))(t)
	if lr.Status != client.StateRunning {
		t.Fatalf("start: %+v", lr)
	}
	_, err = c.Start(ctx, client.StartRequest{})
	wantErr(t, "start twice", err, client.ErrConflict, 409)
	_, err = c.Configure(ctx, cfg)
	wantErr(t, "configure while running", err, client.ErrConflict, 409)
	st = must(c.ServiceStatus(ctx))(t)
	if st.Status != client.StateRunning || st.Healthy == nil || !*st.Healthy || st.BackendType != "local" {
		t.Fatalf("status: %+v", st)
	}
	if bs := st.ConfigSummary.BackendSummary; bs == nil || !bs.HasMasterKey || bs.KeyDir == "" || bs.FilePermissions != 0o600 {
		t.Fatalf("backend summary: %+v", st.ConfigSummary.BackendSummary)
	}
	if st.ConfigSummary.DefaultKeyID != "default-key" || st.ConfigSummary.CacheSummary == nil {
		t.Fatalf("config summary: %+v", st.ConfigSummary)
	}
	if h := must(c.Health(ctx))(t); !h.Ready {
		t.Fatalf("health while running: %+v", h)
	}

	// Keys.
	km := must(c.CreateKey(ctx, client.CreateKeyRequest{KeyID: "app-key", Description: "app data",
		KeyUsage: client.KeyUsageEncryptDecrypt, Tags: map[string]string{"team": "storage"}}))(t)
	if km.KeyID != "app-key" || km.KeyState != client.KeyEnabled || !km.Enabled || km.KeyVersion != 1 ||
		km.Description != "app data" || km.Tags["team"] != "storage" || km.CreationDate.IsZero() || km.DeletionDate != nil {
		t.Fatalf("create: %+v", km)
	}
	_, err = c.CreateKey(ctx, client.CreateKeyRequest{KeyID: "app-key"})
	wantErr(t, "create twice", err, client.ErrConflict, 409)
	want := []string{"app-key", "default-key"}
	for _, id := range []string{"k-00", "k-01", "k-02", "k-03", "k-04", "k-05"} {
		must(c.CreateKey(ctx, client.CreateKeyRequest{KeyID: id}))(t)
		want = append(want, id)
	}
	slices.Sort(want)
	page := must(c.ListKeys(ctx, client.ListKeysRequest{Limit: 3}))(t)
	if len(page.Keys) != 3 || !page.Truncated || page.NextMarker == "" {
		t.Fatalf("first page: %+v", page)
	}
	var got []string
	for k, err := range c.ListAllKeys(ctx, client.ListKeysRequest{Limit: 3}) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, k.KeyID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("ListAllKeys: got %v, want %v", got, want)
	}
	// Early break stops the iteration.
	n := 0
	for range c.ListAllKeys(ctx, client.ListKeysRequest{Limit: 2}) {
		if n++; n == 3 {
			break
		}
	}
	d := must(c.DescribeKey(ctx, "app-key"))(t)
	if d.KeyID != "app-key" || d.Description != "app data" {
		t.Fatalf("describe: %+v", d)
	}
	_, err = c.DescribeKey(ctx, "no-such-key")
	wantErr(t, "describe unknown", err, client.ErrNotFound, 404)
	_, err = c.DescribeKey(ctx, "")
	if !errors.Is(err, client.ErrInvalidRequest) {
		t.Fatalf("describe empty id: %v", err)
	}

	// Data keys with an encryption context.
	ec := map[string]string{"bucket": "photos", "object": "a b/c.jpg"}
	dk := must(c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "app-key", EncryptionContext: ec}))(t)
	if dk.KeyID != "app-key" || len(dk.Plaintext) != 32 || len(dk.CiphertextBlob) == 0 {
		t.Fatalf("generate: key %q, %d plaintext bytes", dk.KeyID, len(dk.Plaintext))
	}
	saved := bytes.Clone(dk.Plaintext)
	pt := must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec}))(t)
	if pt.KeyID != "app-key" || !bytes.Equal(pt.Plaintext, saved) {
		t.Fatal("decrypt does not return the data key")
	}
	plain := pt.Plaintext
	pt.Wipe()
	if pt.Plaintext != nil || !bytes.Equal(plain, make([]byte, 32)) {
		t.Fatal("Plaintext.Wipe did not zero the plaintext")
	}
	_, err = c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: map[string]string{"bucket": "other"}})
	wantErr(t, "decrypt with a wrong context", err, client.ErrInvalidCiphertext, 400)
	_, err = c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob})
	wantErr(t, "decrypt without the context", err, client.ErrInvalidCiphertext, 400)
	_, err = c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: []byte("garbage")})
	wantErr(t, "decrypt garbage", err, client.ErrInvalidCiphertext, 400)
	if strings.Contains(err.Error(), string(saved)) {
		t.Fatal("an error carries key material")
	}
	small := must(c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeySpec: client.KeySpecAES128}))(t)
	if small.KeyID != "default-key" || len(small.Plaintext) != 16 {
		t.Fatalf("AES_128 under the default key: %q, %d bytes", small.KeyID, len(small.Plaintext))
	}
	small.Wipe()
	if small.Plaintext != nil {
		t.Fatal("DataKey.Wipe kept the plaintext")
	}
	odd := must(c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "k-03", NumberOfBytes: 48}))(t)
	if len(odd.Plaintext) != 48 {
		t.Fatalf("number_of_bytes 48: got %d", len(odd.Plaintext))
	}
	wrapped := must(c.GenerateDataKeyWithoutPlaintext(ctx, client.GenerateDataKeyRequest{KeyID: "app-key", EncryptionContext: ec}))(t)
	if wrapped.KeyID != "app-key" || len(must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: wrapped.CiphertextBlob, EncryptionContext: ec}))(t).Plaintext) != 32 {
		t.Fatal("generate without plaintext")
	}

	// Deletion window: schedule, refuse twice, cancel.
	km = must(c.ScheduleKeyDeletion(ctx, "k-00", 7))(t)
	if km.KeyState != client.KeyPendingDeletion || km.DeletionDate == nil || km.DeletionDate.Before(time.Now().Add(6*24*time.Hour)) {
		t.Fatalf("schedule deletion: %+v", km)
	}
	_, err = c.ScheduleKeyDeletion(ctx, "k-00", 7)
	wantErr(t, "schedule twice", err, client.ErrInvalidKeyState, 409)
	_, err = c.ScheduleKeyDeletion(ctx, "k-01", 3)
	wantErr(t, "window of 3 days", err, client.ErrInvalidRequest, 400)
	_, err = c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "k-00"})
	wantErr(t, "generate under a pending key", err, client.ErrInvalidKeyState, 409)
	pending := must(c.ListKeys(ctx, client.ListKeysRequest{State: client.KeyPendingDeletion}))(t)
	if len(pending.Keys) != 1 || pending.Keys[0].KeyID != "k-00" {
		t.Fatalf("list pending: %+v", pending.Keys)
	}
	km = must(c.CancelKeyDeletion(ctx, "k-00"))(t)
	if km.KeyState != client.KeyEnabled || km.DeletionDate != nil {
		t.Fatalf("cancel deletion: %+v", km)
	}
	_, err = c.CancelKeyDeletion(ctx, "k-00")
	wantErr(t, "cancel twice", err, client.ErrInvalidKeyState, 409)

	// Disable and enable.
	km = must(c.DisableKey(ctx, "app-key"))(t)
	if km.KeyState != client.KeyDisabled || km.Enabled {
		t.Fatalf("disable: %+v", km)
	}
	_, err = c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "app-key"})
	wantErr(t, "generate under a disabled key", err, client.ErrInvalidKeyState, 409)
	_, err = c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec})
	wantErr(t, "decrypt under a disabled key", err, client.ErrInvalidKeyState, 409)
	if km = must(c.EnableKey(ctx, "app-key"))(t); km.KeyState != client.KeyEnabled {
		t.Fatalf("enable: %+v", km)
	}

	// Rotation: a new version, old blobs still decrypt.
	if km = must(c.RotateKey(ctx, "app-key"))(t); km.KeyVersion != 2 {
		t.Fatalf("rotate: version %d", km.KeyVersion)
	}
	if !bytes.Equal(must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec}))(t).Plaintext, saved) {
		t.Fatal("old blob after rotation")
	}
	km = must(c.SetKeyRotation(ctx, "app-key", true, 90))(t)
	if !km.RotationEnabled || km.RotationPeriodDays != 90 || km.NextRotationDate == nil {
		t.Fatalf("set rotation: %+v", km)
	}
	if km = must(c.SetKeyRotation(ctx, "app-key", false, 0))(t); km.RotationEnabled {
		t.Fatalf("rotation off: %+v", km)
	}
	_, err = c.SetKeyRotation(ctx, "app-key", true, 10)
	wantErr(t, "rotation period of 10 days", err, client.ErrInvalidRequest, 400)

	// Description and tags.
	if km = must(c.UpdateKeyDescription(ctx, "app-key", "photos"))(t); km.Description != "photos" {
		t.Fatalf("update description: %+v", km)
	}
	km = must(c.TagKey(ctx, "app-key", map[string]string{"env": "prod", "owner": "ops"}))(t)
	if km.Tags["env"] != "prod" || km.Tags["owner"] != "ops" || km.Tags["team"] != "storage" {
		t.Fatalf("tag: %+v", km.Tags)
	}
	km = must(c.UntagKey(ctx, "app-key", "env", "team"))(t)
	if _, ok := km.Tags["env"]; ok || km.Tags["owner"] != "ops" || len(km.Tags) != 1 {
		t.Fatalf("untag: %+v", km.Tags)
	}

	// Re-encrypt to another key and context.
	ec2 := map[string]string{"tenant": "42"}
	re := must(c.ReEncrypt(ctx, client.ReEncryptRequest{CiphertextBlob: dk.CiphertextBlob, SourceEncryptionContext: ec,
		DestinationKeyID: "k-01", DestinationEncryptionContext: ec2}))(t)
	if re.KeyID != "k-01" {
		t.Fatalf("re-encrypt: key %q", re.KeyID)
	}
	pt = must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: re.CiphertextBlob, EncryptionContext: ec2, KeyID: "k-01"}))(t)
	if pt.KeyID != "k-01" || !bytes.Equal(pt.Plaintext, saved) {
		t.Fatal("decrypt after re-encrypt")
	}
	_, err = c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: re.CiphertextBlob, EncryptionContext: ec2, KeyID: "app-key"})
	if err == nil {
		t.Fatal("decrypt with a key_id that is not the blob's key succeeded")
	}

	// Encrypt and decrypt a small secret.
	secret := []byte("db-password: s3cr\"et\x00\xff")
	ct := must(c.Encrypt(ctx, client.EncryptRequest{KeyID: "k-02", Plaintext: secret, EncryptionContext: ec2}))(t)
	if ct.KeyID != "k-02" || !bytes.Equal(secret, []byte("db-password: s3cr\"et\x00\xff")) {
		t.Fatal("encrypt changed the caller's plaintext or used the wrong key")
	}
	if !bytes.Equal(must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: ct.CiphertextBlob, EncryptionContext: ec2}))(t).Plaintext, secret) {
		t.Fatal("decrypt after encrypt")
	}
	_, err = c.Encrypt(ctx, client.EncryptRequest{KeyID: "k-02", Plaintext: make([]byte, 5000)})
	wantErr(t, "encrypt 5000 bytes", err, client.ErrInvalidRequest, 400)

	// Cache and configuration.
	noErr(t, c.ClearCache(ctx))
	view := must(c.Config(ctx))(t)
	if view.Backend != "local" || view.DefaultKeyID != "default-key" || !view.CacheEnabled || view.CacheTTLSeconds != 300 || view.CacheMaxKeys != 100 {
		t.Fatalf("config: %+v", view)
	}
	lr = must(c.Reconfigure(ctx, client.ConfigureRequest{CacheTTLSeconds: new(60)}))(t)
	if lr.Status != client.StateRunning {
		t.Fatalf("reconfigure: %+v", lr)
	}
	if view = must(c.Config(ctx))(t); view.CacheTTLSeconds != 60 || view.CacheMaxKeys != 100 {
		t.Fatalf("config after reconfigure: %+v", view)
	}
	_, err = c.Reconfigure(ctx, client.ConfigureRequest{MasterKey: new("another passphrase")})
	wantErr(t, "reconfigure the master key of a backend with keys", err, client.ErrConflict, 409)
	if lr = must(c.Start(ctx, client.StartRequest{Force: true}))(t); lr.Status != client.StateRunning {
		t.Fatalf("forced start: %+v", lr)
	}

	// Metrics.
	text := must(c.Metrics(ctx))(t)
	if !strings.Contains(text, "keyward_http_requests_total") {
		t.Fatalf("metrics: %.300s", text)
	}

	// Immediate destruction.
	noErr(t, c.DestroyKeyNow(ctx, "k-05"))
	_, err = c.DescribeKey(ctx, "k-05")
	wantErr(t, "describe a destroyed key", err, client.ErrNotFound, 404)

	// Stop: the data plane answers 503; start again and everything is back.
	if lr = must(c.Stop(ctx))(t); lr.Status != client.StateConfigured {
		t.Fatalf("stop: %+v", lr)
	}
	_, err = c.GenerateDataKey(ctx, client.GenerateDataKeyRequest{KeyID: "app-key"})
	wantErr(t, "generate while stopped", err, client.ErrServiceUnavailable, 503)
	_, err = c.ListKeys(ctx, client.ListKeysRequest{})
	wantErr(t, "list while stopped", err, client.ErrServiceUnavailable, 503)
	if h := must(c.Health(ctx))(t); h.Ready {
		t.Fatal("ready while stopped")
	}
	must(c.Start(ctx, client.StartRequest{}))(t)
	if !bytes.Equal(must(c.Decrypt(ctx, client.DecryptRequest{CiphertextBlob: dk.CiphertextBlob, EncryptionContext: ec}))(t).Plaintext, saved) {
		t.Fatal("decrypt after restart")
	}
}

// TestLegacyRoutes covers the RustFS compatibility routes.
func TestLegacyRoutes(t *testing.T) {
	t.Parallel()
	srv := startServer(t)
	c := srv.client(t)
	ctx := context.Background()
	_, err := c.ManagementStatus(ctx)
	wantErr(t, "management status before configure", err, client.ErrServiceUnavailable, 503)
	must(c.Configure(ctx, client.ConfigureRequest{BackendType: new("local"), DefaultKeyID: new("dflt")}))(t)
	must(c.Start(ctx, client.StartRequest{}))(t)

	km := must(c.CreateKeyLegacy(ctx, client.CreateKeyRequest{KeyID: "legacy-1", Description: "one", Tags: map[string]string{"a": "b"}}))(t)
	if km.KeyID != "legacy-1" || km.KeyUsage != "EncryptDecrypt" || km.KeyState != client.KeyEnabled || km.Description != "one" || km.Origin == "" {
		t.Fatalf("create-key: %+v", km)
	}
	if km = must(c.KeyCreateLegacy(ctx, client.CreateKeyRequest{KeyID: "legacy-2"}))(t); km.KeyID != "legacy-2" {
		t.Fatalf("key/create: %+v", km)
	}
	if km = must(c.DescribeKeyLegacy(ctx, "legacy-1"))(t); km.KeyID != "legacy-1" || km.Tags["a"] != "b" {
		t.Fatalf("describe-key: %+v", km)
	}
	if km = must(c.KeyStatusLegacy(ctx, "legacy-2"))(t); km.KeyID != "legacy-2" {
		t.Fatalf("key/status: %+v", km)
	}
	_, err = c.DescribeKeyLegacy(ctx, "nope")
	wantErr(t, "describe-key unknown", err, client.ErrNotFound, 404)
	list := must(c.ListKeysLegacy(ctx, client.ListKeysRequest{Limit: 2}))(t)
	if len(list.Keys) != 2 || !list.Truncated || list.Keys[0].Status != "Active" || list.Keys[0].Algorithm == "" {
		t.Fatalf("list-keys: %+v", list)
	}
	rest := must(c.ListKeysLegacy(ctx, client.ListKeysRequest{Marker: list.NextMarker}))(t)
	if len(rest.Keys) != 1 || rest.Truncated {
		t.Fatalf("list-keys second page: %+v", rest)
	}
	ms := must(c.ManagementStatus(ctx))(t)
	if ms.BackendType != "local" || ms.BackendStatus != "healthy" || !ms.CacheEnabled || ms.DefaultKeyID != "dflt" {
		t.Fatalf("management status: %+v", ms)
	}
}
