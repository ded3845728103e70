package vault

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// startDevTLS runs `vault server -dev-tls` (generated CA and certificate)
// and returns its https address and the CA file. vaulttest has no TLS mode.
func startDevTLS(t *testing.T) (addr, caFile string) {
	t.Helper()
	dir := t.TempDir()
	port := 0
	for i := 0; i < 50 && port == 0; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		p := l.Addr().(*net.TCPAddr).Port
		l2, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p+1)) // Vault's cluster port
		l.Close()
		if err == nil {
			l2.Close()
			port = p
		}
	}
	log, err := os.Create(filepath.Join(dir, "vault.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(vaulttest.Binary(t), "server", "-dev", "-dev-tls", "-dev-tls-cert-dir="+dir,
		"-dev-root-token-id=root", "-dev-no-store-token", fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Env = append(os.Environ(), "HOME="+dir, "VAULT_LOG_LEVEL=warn")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait(); log.Close() })
	addr, caFile = fmt.Sprintf("https://127.0.0.1:%d", port), filepath.Join(dir, "vault-ca.pem")
	deadline := time.Now().Add(30 * time.Second)
	for {
		if pem, err := os.ReadFile(caFile); err == nil {
			pool := x509.NewCertPool()
			pool.AppendCertsFromPEM(pem)
			c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
			if resp, err := c.Get(addr + "/v1/sys/health"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == 200 {
					req, _ := http.NewRequest("POST", addr+"/v1/sys/mounts/transit", strings.NewReader(`{"type":"transit"}`))
					req.Header.Set("X-Vault-Token", "root")
					if resp, err := c.Do(req); err != nil || resp.StatusCode >= 300 {
						t.Fatalf("enabling transit: %v %v", resp, err)
					}
					return addr, caFile
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("vault -dev-tls did not come up")
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestTLS: ca_cert as a file path or as PEM content verifies Vault's
// certificate; without it the certificate is refused (unavailable, with a
// hint); skip_tls_verify connects anyway.
func TestTLS(t *testing.T) {
	t.Parallel()
	addr, caFile := startDevTLS(t)
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for name, mod := range map[string]func(*Config){
		"ca_cert file":    func(v *Config) { v.CACert = caFile },
		"ca_cert PEM":     func(v *Config) { v.CACert = string(pem) },
		"skip_tls_verify": func(v *Config) { v.SkipTLSVerify = true },
	} {
		cfg := testConfig(addr, "root", config.BackendVaultTransit, freshPrefix())
		mod(&cfg)
		b := openT(t, cfg, Options{})
		// One Transit mount for the three configurations: a key id each.
		if _, err := b.Create(ctx, testMeta(strings.NewReplacer(" ", "-", "_", "-").Replace(name))); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := b.Health(ctx); err != nil {
			t.Fatalf("%s: health: %v", name, err)
		}
	}
	cfg := testConfig(addr, "root", config.BackendVault, freshPrefix())
	if _, err := Open(ctx, cfg, Options{}); !errors.Is(err, kms.ErrUnavailable) || !strings.Contains(err.Error(), "ca_cert") {
		t.Fatalf("no CA: %v", err)
	}
	cfg.CACert = "-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----\n"
	if _, err := Open(ctx, cfg, Options{}); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("bad PEM: %v", err)
	}
}

// TestCACertFileProbe: ca_cert paths are read with a bound, and every way
// a path can fail gives one answer, so that a caller with kms:Configure
// cannot use ca_cert to learn which files exist on the server (found as an
// attack: the error named the file's OS error) or make the server read
// /dev/zero into memory.
func TestCACertFileProbe(t *testing.T) {
	dir := t.TempDir()
	notPEM := filepath.Join(dir, "hostname")
	os.WriteFile(notPEM, []byte("db-prod-7\n"), 0o644)
	unreadable := filepath.Join(dir, "shadow")
	os.WriteFile(unreadable, []byte("root:*:"), 0o000)
	big := filepath.Join(dir, "big.pem")
	os.WriteFile(big, make([]byte, maxCACert+10), 0o644)
	fifo := filepath.Join(dir, "fifo") // no writer: an ordinary open would block forever
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	var answers []string
	for _, path := range []string{notPEM, unreadable, big, filepath.Join(dir, "missing"), dir, "/dev/zero", fifo} {
		_, err := loadCA(path, slog.New(slog.DiscardHandler))
		if !errors.Is(err, kms.ErrInvalidRequest) {
			t.Fatalf("%s: err = %v, want ErrInvalidRequest", path, err)
		}
		if strings.Contains(err.Error(), path) || strings.Contains(err.Error(), "db-prod") {
			t.Errorf("%s: the error names the file or its content: %v", path, err)
		}
		answers = append(answers, err.Error())
	}
	for _, a := range answers[1:] {
		if a != answers[0] {
			t.Errorf("answers differ between failing paths:\n%s\n%s", answers[0], a)
		}
	}
}
