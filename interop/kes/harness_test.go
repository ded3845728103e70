package kesinterop

import (
	"bufio"
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/kms-go/kes"
)

// keywardBin is the keyward binary, built from this repository by TestMain.
var keywardBin string

func TestMain(m *testing.M) { os.Exit(runMain(m)) }

func runMain(m *testing.M) int {
	dir, err := os.MkdirTemp("", "keyward-interop-kes-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	keywardBin = filepath.Join(dir, "keyward")
	build := exec.Command("go", "build", "-o", keywardBin, "./cmd/keyward")
	build.Dir = filepath.Join("..", "..") // the product module
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building keyward:", err)
		return 1
	}
	return m.Run()
}

// required reports whether a missing component fails the tests
// (KEYWARD_REQUIRE_INTEGRATION=1, as scripts/test.sh and CI set) rather
// than skipping them.
func required() bool { return os.Getenv("KEYWARD_REQUIRE_INTEGRATION") == "1" }

// pki is a throwaway CA and a server certificate for 127.0.0.1.
type pki struct {
	caFile, certFile, keyFile string
	pool                      *x509.CertPool
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	dir := t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "interop CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "keyward"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	p := &pki{caFile: filepath.Join(dir, "ca.pem"), certFile: filepath.Join(dir, "cert.pem"), keyFile: filepath.Join(dir, "key.pem"), pool: x509.NewCertPool()}
	p.pool.AddCert(ca)
	writePEM(t, p.caFile, "CERTIFICATE", caDER)
	writePEM(t, p.certFile, "CERTIFICATE", der)
	writePEM(t, p.keyFile, "EC PRIVATE KEY", keyDER)
	return p
}

func writePEM(t *testing.T, path, typ string, der []byte) {
	t.Helper()
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// keyward is a running server.
type keyward struct {
	url    string
	pki    *pki
	env    []string // the admin CLI's connection settings
	stderr *syncBuffer
}

// startKeyward starts the binary over TLS with args and waits for its
// ready line.
func startKeyward(t *testing.T, p *pki, args ...string) *keyward {
	t.Helper()
	dir := t.TempDir()
	secret := "interop-root-secret"
	k := &keyward{pki: p, stderr: &syncBuffer{}}
	cmd := exec.Command(keywardBin, append([]string{"server", "--address", "127.0.0.1:0", "--data-dir", filepath.Join(dir, "data"),
		"--tls-cert", p.certFile, "--tls-key", p.keyFile}, args...)...)
	cmd.Env = append(os.Environ(), "KEYWARD_ROOT_USER=interop-root", "KEYWARD_ROOT_PASSWORD="+secret)
	cmd.Stderr = k.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("keyward log:\n%s", k.stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for k.url == "" {
		sc := bufio.NewScanner(strings.NewReader(k.stderr.String()))
		for sc.Scan() {
			var line struct{ Msg, Address string }
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "keyward ready" {
				k.url = "https://" + line.Address
			}
		}
		select {
		case <-done:
			t.Fatalf("keyward exited:\n%s", k.stderr.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("keyward not ready:\n%s", k.stderr.String())
		}
	}
	k.env = append(os.Environ(), "KEYWARD_ENDPOINT="+k.url, "KEYWARD_ACCESS_KEY=interop-root",
		"KEYWARD_SECRET_KEY="+secret, "KEYWARD_CA_CERT="+p.caFile)
	return k
}

// cli runs an admin CLI command (with --json) as root and decodes its
// output; it fails the test unless the command exits 0.
func (k *keyward) cli(t *testing.T, args ...string) map[string]any {
	t.Helper()
	out, code, stderr := k.cliRaw(args...)
	if code != 0 {
		t.Fatalf("keyward %s: exit %d: %s", strings.Join(args, " "), code, stderr)
	}
	var m map[string]any
	if len(bytes.TrimSpace(out)) > 0 {
		if err := json.Unmarshal(out, &m); err != nil {
			t.Fatalf("keyward %s: %v: %s", strings.Join(args, " "), err, out)
		}
	}
	return m
}

func (k *keyward) cliRaw(args ...string) (stdout []byte, code int, stderr string) {
	cmd := exec.Command(keywardBin, append(args, "--json")...)
	cmd.Env = k.env
	var errBuf bytes.Buffer
	cmd.Stderr = &errBuf
	out, err := cmd.Output()
	if ee, ok := err.(*exec.ExitError); ok {
		return out, ee.ExitCode(), errBuf.String()
	} else if err != nil {
		return out, -1, err.Error()
	}
	return out, 0, errBuf.String()
}

// client is a KES client of the server authenticating with cert.
func (k *keyward) client(cert tls.Certificate) *kes.Client {
	return kes.NewClientWithConfig(k.url, &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}, RootCAs: k.pki.pool})
}

// apiKeyClient is a KES client with an API key (the client makes itself a
// certificate from it, as MinIO does with MINIO_KMS_KES_API_KEY).
func (k *keyward) apiKeyClient(t *testing.T, key kes.APIKey) *kes.Client {
	t.Helper()
	cert, err := kes.GenerateCertificate(key)
	if err != nil {
		t.Fatal(err)
	}
	return k.client(cert)
}

// startVault starts a Vault dev server (KEYWARD_VAULT_BIN, built by
// scripts/vault.sh) with Transit at transit/ and KV v2 at secret/, and
// returns its address and root token.
func startVault(t *testing.T) (addr, token string) {
	t.Helper()
	bin := os.Getenv("KEYWARD_VAULT_BIN")
	if bin == "" {
		if p, err := filepath.Abs(filepath.Join("..", "..", ".vault", "bin", "vault")); err == nil {
			bin = p
		}
	}
	if _, err := os.Stat(bin); err != nil {
		if required() {
			t.Fatalf("the Vault test server is required (KEYWARD_REQUIRE_INTEGRATION=1) but %q is missing: run scripts/vault.sh build or set KEYWARD_VAULT_BIN", bin)
		}
		t.Skipf("skipped: no Vault test server at %q (scripts/vault.sh build); scripts/test.sh fails instead", bin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	dir := t.TempDir()
	token = "interop-root"
	addr = fmt.Sprintf("http://127.0.0.1:%d", port)
	var log syncBuffer
	cmd := exec.Command(bin, "server", "-dev", "-dev-root-token-id="+token, fmt.Sprintf("-dev-listen-address=127.0.0.1:%d", port), "-dev-no-store-token")
	cmd.Env = append(os.Environ(), "VAULT_LOG_LEVEL=warn", "HOME="+dir)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("vault log:\n%s", log.String())
		}
	})
	hc := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := hc.Get(addr + "/v1/sys/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("vault not healthy: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	req, _ := http.NewRequest("POST", addr+"/v1/sys/mounts/transit", strings.NewReader(`{"type":"transit"}`))
	req.Header.Set("X-Vault-Token", token)
	resp, err := hc.Do(req)
	if err != nil || resp.StatusCode >= 300 {
		t.Fatalf("enabling transit: %v %v", err, resp)
	}
	resp.Body.Close()
	return addr, token
}

// runKeyward runs the binary and returns its standard output.
func runKeyward(args ...string) (string, error) {
	out, err := exec.Command(keywardBin, args...).Output()
	return string(out), err
}
