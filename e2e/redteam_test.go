package e2e

// Attacks found by trying the server as an attacker would, after the
// issue 9 fixes. Each test reproduces one attack against the real binary
// (and a real Vault) and asserts that it is refused; they fail until the
// product is fixed.

import (
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/vaulttest"
)

// forgeLegacyTransitRecord writes, straight into Keyward's KV prefix, what
// Keyward 0.1 stored for a vault-transit key: the metadata in the clear,
// no sealed value. Anyone with write access to that KV path can do it (an
// application whose policy covers the KV mount), without any right on
// Transit and without any Keyward credential.
func forgeLegacyTransitRecord(t *testing.T, v *vaulttest.Server, prefix, id, state, deletionDate string) {
	t.Helper()
	meta := map[string]any{
		"id": id, "state": state, "usage": "ENCRYPT_DECRYPT",
		"creation_date": "2024-01-01T00:00:00Z", "version": 1,
	}
	if deletionDate != "" {
		meta["deletion_date"] = deletionDate
	}
	vaultOK(t, v, "POST", "/v1/secret/data/"+prefix+"/"+id, map[string]any{
		"data": map[string]any{"format": 1, "metadata": meta},
	}, v.Token)
}

// TestVaultTransitForgedRecordCannotAdoptForeignKey: a KV record in
// Keyward 0.1's unsealed format is accepted without the record key and
// marks the Transit key of that name as Keyward's own. So whoever can write
// Keyward's KV prefix makes Keyward rotate and delete a Transit key it did
// not create: another application's key (its ciphertexts no longer
// decrypt), or Keyward's own record key keyward-record-kek (every record on
// the mount, of both Vault backends, no longer opens). SECURITY.md:
// "Keyward changes or deletes only Vault objects its own (sealed) record
// proves it created".
func TestVaultTransitForgedRecordCannotAdoptForeignKey(t *testing.T) {
	t.Parallel()
	v := vaulttest.StartDev(t)
	vaultOK(t, v, "POST", "/v1/transit/keys/payments", map[string]any{"type": "aes256-gcm96"}, v.Token)
	enc := vaultOK(t, v, "POST", "/v1/transit/encrypt/payments", map[string]any{"plaintext": b64([]byte("card 4111"))}, v.Token)
	appCiphertext := str(obj(enc, "data"), "ciphertext")

	srv := startServer(t, serverOpts{Args: []string{"--allow-immediate-deletion"}})
	c := srv.client(t)
	prefix := vaultPrefix(t)
	configureVault(t, c, vaultConfig(v.Addr, "vault-transit", prefix, tokenAuth(v.Token)))
	startVaultKMS(t, c)
	// A key of Keyward's own, whose record the record key seals.
	st, _, raw := c.do("POST", "/kms/keys", map[string]any{"key_id": "own-1"})
	wantStatus(t, "create own-1", st, raw, 200)
	kekBefore := obj(vaultOK(t, v, "GET", "/v1/transit/keys/keyward-record-kek", nil, v.Token), "data")

	// Another application's key.
	forgeLegacyTransitRecord(t, v, prefix, "payments", "Enabled", "")
	st, _, raw = c.do("POST", "/kms/keys/rotate", map[string]any{"key_id": "payments"})
	if st == 200 {
		t.Errorf("rotate of a Transit key Keyward did not create (forged KV record): 200 %s", short(raw))
	}
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "payments", "force_immediate": true, "confirm_key_id": "payments"})
	if st == 200 {
		t.Errorf("immediate destruction of a Transit key Keyward did not create (forged KV record): 200 %s", short(raw))
	}
	st, dec, raw := vaultDo(t, v, "POST", "/v1/transit/decrypt/payments", map[string]any{"ciphertext": appCiphertext})
	if st != 200 || string(unb64(t, "plaintext", str(obj(dec, "data"), "plaintext"))) != "card 4111" {
		t.Errorf("the application's ciphertext no longer decrypts (its Transit key was deleted or changed): %d %s", st, short(raw))
	}

	// Keyward's own record key.
	forgeLegacyTransitRecord(t, v, prefix, "keyward-record-kek", "Enabled", "")
	st, _, raw = c.do("POST", "/kms/keys/rotate", map[string]any{"key_id": "keyward-record-kek"})
	if st == 200 {
		t.Errorf("rotate keyward-record-kek through the API (forged KV record): 200 %s", short(raw))
	}
	st, _, raw = c.do("DELETE", "/kms/keys/delete", map[string]any{"key_id": "keyward-record-kek", "force_immediate": true, "confirm_key_id": "keyward-record-kek"})
	if st == 200 {
		t.Errorf("destroy keyward-record-kek through the API (forged KV record): 200 %s", short(raw))
	}
	st, kek, raw := vaultDo(t, v, "GET", "/v1/transit/keys/keyward-record-kek", nil)
	if st != 200 {
		t.Fatalf("the record key keyward-record-kek is gone from Vault: %d %s", st, short(raw))
	}
	if got, want := obj(kek, "data")["latest_version"], kekBefore["latest_version"]; got != want {
		t.Errorf("the record key was rotated through the API: latest_version %v, was %v", got, want)
	}
	c.do("POST", "/kms/clear-cache", nil)
	st, _, raw = c.do("GET", "/kms/keys/own-1", nil)
	wantStatus(t, "describe own-1 after the attack", st, raw, 200)
}

// vaultDo is a raw Vault call with the root token that does not fail the
// test on an error status.
func vaultDo(t *testing.T, v *vaulttest.Server, method, path string, body any) (int, map[string]any, []byte) {
	t.Helper()
	st, raw := v.Do(method, path, body, v.Token)
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return st, m, raw
}

// TestCACertFIFODoesNotWedgeLifecycle: ca_cert may name any path on the
// server, and it is opened before it is checked to be a regular file. A
// named pipe with no writer blocks that open() forever, inside the
// lifecycle manager: the start (or reconfigure) never answers, and every
// later configure, start and stop waits behind it until the process is
// restarted. Any local user can make such a pipe; a caller with
// kms:Configure only has to name it.
func TestCACertFIFODoesNotWedgeLifecycle(t *testing.T) {
	t.Parallel()
	fifo := filepath.Join(t.TempDir(), "ca.pem")
	if err := syscall.Mkfifo(fifo, 0o644); err != nil {
		t.Fatalf("mkfifo: %v", err)
	}
	// Unblock whatever still waits on the pipe when the test ends, so the
	// server can shut down (O_RDWR on a FIFO does not block on Linux).
	t.Cleanup(func() {
		if f, err := os.OpenFile(fifo, os.O_RDWR, 0); err == nil {
			time.Sleep(100 * time.Millisecond)
			f.Close()
		}
	})
	srv := startServer(t, serverOpts{})
	c := srv.client(t)
	c.hc.Timeout = 10 * time.Second
	cfg := vaultConfig("http://127.0.0.1:1", "vault", "e2e/fifo", tokenAuth("s.not-a-real-token"))
	cfg["ca_cert"] = fifo
	st, _, raw := c.do("POST", "/kms/configure", cfg)
	wantStatus(t, "configure with ca_cert naming a FIFO", st, raw, 200)

	// The start must answer (400: ca_cert is not a readable PEM file)
	// instead of blocking in open().
	r, err := c.send("POST", adminPrefix+"/kms/start", nil)
	if err != nil {
		t.Errorf("start with ca_cert naming a FIFO did not answer: %v", err)
	} else {
		wantError(t, "start with ca_cert naming a FIFO", r.Status, r.Raw, 400, "InvalidRequest")
	}
	// And the lifecycle is not wedged behind it.
	r, err = c.send("POST", adminPrefix+"/kms/configure", map[string]any{"backend_type": "local", "key_dir": filepath.Join(t.TempDir(), "keys"), "master_key": "redteam-passphrase-1"})
	if err != nil {
		t.Fatalf("a configure after the FIFO start did not answer (lifecycle wedged): %v", err)
	}
	wantStatus(t, "configure after the FIFO start", r.Status, r.Raw, 200)
}

// TestIdleConnectionsDoNotStarveClients: --max-connections counts idle
// keep-alive connections until IdleTimeout (120 s). One unauthenticated
// client that opens --max-connections connections, sends one
// GET /health/live on each and then keeps them open, denies the whole
// server (every admin and data-key route, /health included) to everyone
// else for two minutes, and can start again at once: measured with the
// default 1024, 1030 such sockets from one process made a legitimate
// /health/live wait past 8 s (and the same with header lines that never
// end, for ReadHeaderTimeout's 10 s at a time). Here with a cap of 8.
//
// Note: TestMaxConnections asserts the opposite for idle connections (a
// fourth client waits while the first three idle); the fix decides which
// of the two holds (for example: when the cap is reached, close the
// oldest idle keep-alive connection instead of leaving new clients in the
// backlog, and cap connections per source address).
func TestIdleConnectionsDoNotStarveClients(t *testing.T) {
	t.Parallel()
	const limit = 8
	srv := startServer(t, serverOpts{Args: []string{"--dev", "--max-connections", "8"}})
	for i := 0; i < limit; i++ {
		rc := dialRaw(t, srv)
		rc.write("GET /health/live HTTP/1.1\r\nHost: keyward\r\n\r\n")
		if st, _, _ := rc.answer(); st != 200 {
			t.Fatalf("idle connection %d: /health/live %d", i, st)
		}
	}
	c := srv.client(t)
	c.hc.Timeout = 10 * time.Second
	r, err := c.send("GET", "/health/live", nil, withoutSignature())
	if err != nil {
		t.Fatalf("with %d idle keep-alive connections open, a new client is not served: %v", limit, err)
	}
	wantStatus(t, "/health/live beside idle connections", r.Status, r.Raw, 200)

	// Sockets opened and left silent (no request byte) hold no slot
	// either: without this they would keep every client out until the
	// 10 s header timeout, and could be opened again at once.
	for i := 0; i < limit; i++ {
		dialRaw(t, srv)
	}
	c2 := srv.client(t) // a new client: a new connection
	c2.hc.Timeout = 5 * time.Second
	r, err = c2.send("GET", "/health/live", nil, withoutSignature())
	if err != nil {
		t.Fatalf("with %d silent connections open, a new client is not served: %v", limit, err)
	}
	wantStatus(t, "/health/live beside silent connections", r.Status, r.Raw, 200)
}
