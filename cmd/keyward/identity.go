package main

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/kesid"
)

// identityUsage is keyward identity's help (docs/kes-api.md, "Identities").
const identityUsage = `usage:
  keyward identity new [--key FILE --cert FILE] [--force] [--json]
      Make a new KES API key and print it with its identity. With --key and
      --cert, also write the private key (0600) and a self-signed client
      certificate made from it, for clients that take files (MinIO's
      MINIO_KMS_KES_KEY_FILE and MINIO_KMS_KES_CERT_FILE).
  keyward identity of API-KEY | CERT-FILE | -
      Print the identity of an API key (kes:v1:...), of the first certificate
      in a PEM file, or of either read from standard input (-).

An identity is the hex SHA-256 of a certificate's public key: put it in the
IAM file's "identities" list with the policies the client may use.
`

// runIdentity is keyward identity.
func runIdentity(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stderr, identityUsage)
		if len(args) == 0 {
			return errors.New("identity: new or of?")
		}
		return nil
	}
	switch args[0] {
	case "new":
		return identityNew(args[1:], stdout, stderr)
	case "of":
		return identityOf(args[1:], stdin, stdout)
	}
	fmt.Fprint(stderr, identityUsage)
	return fmt.Errorf("identity: unknown command %q", args[0])
}

func identityNew(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("keyward identity new", flag.ContinueOnError)
	fs.SetOutput(stderr)
	keyFile := fs.String("key", "", "write the private key (PEM, PKCS #8) to this file, mode 0600")
	certFile := fs.String("cert", "", "write a self-signed client certificate (PEM) to this file")
	force := fs.Bool("force", false, "overwrite existing --key and --cert files")
	asJSON := fs.Bool("json", false, `print {"api_key": ..., "identity": ...}`)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("identity new: unexpected arguments %v", fs.Args())
	}
	if (*keyFile == "") != (*certFile == "") {
		return errors.New("identity new: --key and --cert go together")
	}
	key, err := kesid.GenerateAPIKey(rand.Reader)
	if err != nil {
		return err
	}
	defer key.Wipe()
	if *keyFile != "" {
		tmpl, err := key.CertificateTemplate(time.Now(), rand.Reader)
		if err != nil {
			return err
		}
		// Clients that take files have no reason to renew a certificate
		// pinned by its public key: valid for ten years.
		tmpl.NotAfter = tmpl.NotBefore.AddDate(10, 0, 0)
		keyPEM, certPEM, err := key.PEM(tmpl, rand.Reader)
		if err != nil {
			return err
		}
		defer clear(keyPEM)
		if err := writeNew(*keyFile, keyPEM, 0o600, *force); err != nil {
			return err
		}
		if err := writeNew(*certFile, certPEM, 0o644, *force); err != nil {
			return err
		}
	}
	if *asJSON {
		return json.NewEncoder(stdout).Encode(map[string]string{"api_key": key.String(), "identity": key.Identity()})
	}
	fmt.Fprintf(stdout, "API key:  %s\nIdentity: %s\n", key.String(), key.Identity())
	fmt.Fprintln(stderr, "The API key is a secret and is shown only now. The identity is not secret: add it to the IAM file's \"identities\" list.")
	return nil
}

// writeNew writes a file that must not exist yet (unless force).
func writeNew(path string, data []byte, mode os.FileMode, force bool) error {
	flags := os.O_WRONLY | os.O_CREATE | os.O_EXCL
	if force {
		flags = os.O_WRONLY | os.O_CREATE | os.O_TRUNC
	}
	f, err := os.OpenFile(path, flags, mode)
	if err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%s exists (use --force to overwrite it)", path)
		}
		return err
	}
	if err := f.Chmod(mode); err != nil { // an existing file keeps its mode otherwise
		f.Close()
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func identityOf(args []string, stdin io.Reader, stdout io.Writer) error {
	if len(args) != 1 {
		return errors.New("identity of: give one API key, certificate file, or - for standard input")
	}
	arg := args[0]
	var data []byte
	switch {
	case arg == "-":
		b, err := io.ReadAll(io.LimitReader(stdin, 1<<20))
		if err != nil {
			return err
		}
		data = b
	case strings.HasPrefix(arg, kesid.APIKeyPrefix):
		data = []byte(arg)
	default:
		b, err := os.ReadFile(arg)
		if err != nil {
			return err
		}
		data = b
	}
	defer clear(data)
	id, err := identityOfData(data)
	if err != nil {
		return fmt.Errorf("identity of: %w", err)
	}
	fmt.Fprintln(stdout, id)
	return nil
}

// identityOfData reads an API key or a PEM certificate.
func identityOfData(data []byte) (string, error) {
	text := bytes.TrimSpace(data)
	if bytes.Contains(text, []byte("-----BEGIN")) {
		return kesid.OfPEM(text)
	}
	key, err := kesid.ParseAPIKey(string(text))
	if err != nil {
		return "", fmt.Errorf("neither a PEM certificate nor an API key: %w", err)
	}
	defer key.Wipe()
	return key.Identity(), nil
}
