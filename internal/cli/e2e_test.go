package cli

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeSelfSigned writes a self-signed certificate for 127.0.0.1 and its
// key into dir.
func writeSelfSigned(t *testing.T, dir string) (certFile, keyFile string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "keyward test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

// TestTLS: an untrusted certificate is exit code 6 with a hint; --ca-cert,
// --insecure and an alias with a CA work; a wrong scheme is explained.
func TestTLS(t *testing.T) {
	dir := t.TempDir()
	certFile, keyFile := writeSelfSigned(t, dir)
	s, err := startServer(keywardBinary(t), filepath.Join(dir, "data"), "--tls-cert", certFile, "--tls-key", keyFile)
	if err != nil {
		t.Fatal(err)
	}
	defer s.stop()
	if !strings.HasPrefix(s.URL, "https://") {
		t.Fatalf("server URL %s is not https", s.URL)
	}
	env := []string{"HOME=" + dir, "KEYWARD_ENDPOINT=" + s.URL, "KEYWARD_ACCESS_KEY=" + s.AccessKey, "KEYWARD_SECRET_KEY=" + s.SecretKey}

	res := runCLI(t, env, "", "kms", "status")
	if res.code != ExitUnavailable || !strings.Contains(res.stderr, "not trusted") || !strings.Contains(res.stderr, "hint: give its CA with --ca-cert") {
		t.Errorf("untrusted certificate: exit %d\n%s", res.code, res.stderr)
	}
	if res := runCLI(t, env, "", "kms", "status", "--ca-cert", certFile); res.code != 0 || !strings.Contains(res.stdout, "NotConfigured") {
		t.Errorf("--ca-cert: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := runCLI(t, append(env, "KEYWARD_CA_CERT="+certFile), "", "kms", "status"); res.code != 0 {
		t.Errorf("KEYWARD_CA_CERT: exit %d\n%s", res.code, res.stderr)
	}
	if res := runCLI(t, env, "", "kms", "status", "--insecure"); res.code != 0 {
		t.Errorf("--insecure: exit %d\n%s", res.code, res.stderr)
	}
	if res := runCLI(t, env, "", "alias", "set", "tls", "--endpoint", s.URL, "--access-key", s.AccessKey,
		"--secret-key", s.SecretKey, "--ca-cert", certFile); res.code != 0 {
		t.Fatalf("alias set: exit %d\n%s", res.code, res.stderr)
	}
	if res := runCLI(t, env[:1], "", "kms", "status", "--alias", "tls"); res.code != 0 {
		t.Errorf("alias with a CA: exit %d\n%s", res.code, res.stderr)
	}
	if res := runCLI(t, env, "", "alias", "list"); !strings.Contains(res.stdout, "CA "+certFile) {
		t.Errorf("alias list does not show the CA:\n%s", res.stdout)
	}
	plain := "http://" + strings.TrimPrefix(s.URL, "https://")
	res = runCLI(t, env, "", "kms", "status", "--endpoint", plain)
	if res.code == 0 || !strings.Contains(res.stderr, "https://") {
		t.Errorf("http:// to an HTTPS server: exit %d\n%s", res.code, res.stderr)
	}

	// https:// to a plain HTTP server.
	s2, err := startServer(keywardBinary(t), filepath.Join(dir, "data2"))
	if err != nil {
		t.Fatal(err)
	}
	defer s2.stop()
	res = runCLI(t, env, "", "kms", "status", "--endpoint", "https://"+strings.TrimPrefix(s2.URL, "http://"))
	if res.code != ExitUnavailable || !strings.Contains(res.stderr, "does not speak TLS") {
		t.Errorf("https:// to an HTTP server: exit %d\n%s", res.code, res.stderr)
	}
}

// TestTimeout: a server that accepts and never answers is exit code 6
// after --timeout.
func TestTimeout(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	env := []string{"HOME=" + t.TempDir(), "KEYWARD_ENDPOINT=http://" + ln.Addr().String(), "KEYWARD_ACCESS_KEY=a", "KEYWARD_SECRET_KEY=b"}
	start := time.Now()
	res := runCLI(t, env, "", "kms", "status", "--timeout", "500ms")
	if res.code != ExitUnavailable || !strings.Contains(res.stderr, "no answer") || !strings.Contains(res.stderr, "--timeout") {
		t.Errorf("exit %d\n%s", res.code, res.stderr)
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Errorf("took %v", d)
	}
	res = runCLI(t, append(env, "KEYWARD_TIMEOUT=300ms"), "", "key", "list", "--json")
	if res.code != ExitUnavailable || !strings.Contains(res.stderr, `"code":"Timeout"`) {
		t.Errorf("KEYWARD_TIMEOUT: exit %d\n%s", res.code, res.stderr)
	}
}
