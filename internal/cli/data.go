package cli

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"os"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/keyward/keyward/client"
)

const maxEncrypt = 4096

var (
	contextFlag = listOf("context", "KEY=VALUE", "encryption context entry (repeatable); decrypting needs exactly the same")
	inFlag      = strFlag("in", "FILE|-", "read the blob from FILE or stdin (base64, or raw bytes)")
	showFlag    = boolFlagDef("show-plaintext", "print the plaintext data key (base64)")
)

func dataCommands() []*command {
	return []*command{
		{noun: "datakey", verb: "generate", summary: "generate a data key wrapped under a master key",
			help: "Generate a fresh data key for envelope encryption. Without --show-plaintext only\nthe wrapped key (the blob to store next to the data) is returned: the plaintext key\nnever leaves the server. Encrypt locally with the plaintext key, store the blob,\nand get the key back later with `keyward datakey decrypt BLOB --show-plaintext`.",
			flags: []flagDef{
				strFlag("key", "ID", "master key (default: the configured default key)"),
				strFlag("spec", "AES_256|AES_128", "AES_256 (default) or AES_128"),
				strFlag("bytes", "N", "a key of N bytes (1-1024) instead of --spec"),
				contextFlag, showFlag,
			}, maxArgs: 0, run: runDataKeyGenerate},
		{noun: "datakey", verb: "decrypt", args: "[BLOB]", summary: "unwrap a data key (shown only with --show-plaintext)",
			help: "Unwrap a data key blob (base64, as an argument, with --in, or on stdin). The\nplaintext key is printed only with --show-plaintext; without it the command checks\nthat the blob unwraps and prints its key id and size.",
			flags: []flagDef{
				strFlag("key", "ID", "fail unless the blob belongs to this master key"),
				contextFlag, inFlag, showFlag,
			}, maxArgs: 1, run: runDataKeyDecrypt},
		{noun: "encrypt", summary: nounSummaries["encrypt"],
			help: "Encrypt at most 4096 bytes read from --in FILE or stdin, and print the blob\n(base64). For larger data, encrypt locally with a data key (`keyward datakey generate`).\n\n  echo -n secret | keyward encrypt --key app | keyward decrypt",
			flags: []flagDef{
				strFlag("key", "ID", "master key (default: the configured default key)"),
				contextFlag,
				strFlag("in", "FILE|-", "read the plaintext from FILE, or stdin (the default)"),
			}, maxArgs: 0, run: runEncrypt},
		{noun: "decrypt", args: "[BLOB]", summary: nounSummaries["decrypt"],
			help: "Decrypt a blob from `keyward encrypt` (base64, as an argument, with --in, or on\nstdin) and write the plaintext as is to stdout or --out FILE. On a terminal, a\nplaintext that is not text is printed as base64.",
			flags: []flagDef{
				strFlag("key", "ID", "fail unless the blob belongs to this master key"),
				contextFlag, inFlag,
				strFlag("out", "FILE|-", "write the plaintext to FILE (mode 0600) or stdout (the default)"),
				boolFlagDef("base64", "print the plaintext as base64"),
			}, maxArgs: 1, run: runDecrypt},
		{noun: "re-encrypt", args: "[BLOB] --to ID", summary: nounSummaries["re-encrypt"],
			help: "Re-wrap a blob (base64, as an argument, with --in, or on stdin) under --to KEY and\n--to-context, on the server: the plaintext never reaches this machine. Prints the\nnew blob (base64).",
			flags: []flagDef{
				strFlag("to", "ID", "destination master key"),
				strFlag("from-key", "ID", "fail unless the blob belongs to this master key"),
				listOf("from-context", "KEY=VALUE", "the blob's encryption context (repeatable)"),
				listOf("to-context", "KEY=VALUE", "the new blob's encryption context (repeatable)"),
				inFlag,
			}, maxArgs: 1, run: runReEncrypt},
	}
}

func (r *run) context(flag string) (map[string]string, error) {
	return keyValues("--"+flag, r.list(flag))
}

// blobInput reads a blob: the argument (base64), --in FILE or stdin
// (base64 text, or the raw bytes).
func (r *run) blobInput() ([]byte, error) {
	if len(r.p.args) == 1 {
		if r.has("in") {
			return nil, usagef("give the blob as an argument or with --in, not both")
		}
		b, ok := decodeBase64(r.p.args[0])
		if !ok {
			return nil, usagef("the blob argument is not base64")
		}
		return b, nil
	}
	src := r.str("in")
	var data []byte
	var err error
	if src == "" || src == "-" {
		data, err = r.readStdin("the blob")
	} else if data, err = os.ReadFile(src); err != nil {
		return nil, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--in: %v", err)}
	}
	if err != nil {
		return nil, err
	}
	if b, ok := decodeBase64(string(data)); ok {
		return b, nil
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, usagef("no blob: give it as an argument, with --in FILE, or on stdin")
	}
	return data, nil
}

func decodeBase64(s string) ([]byte, bool) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, false
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, true
		}
	}
	return nil, false
}

func b64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }

func dataKeyRequest(r *run) (client.GenerateDataKeyRequest, error) {
	ctx, err := r.context("context")
	if err != nil {
		return client.GenerateDataKeyRequest{}, err
	}
	req := client.GenerateDataKeyRequest{KeyID: r.str("key"), EncryptionContext: ctx}
	if s := r.str("spec"); s != "" {
		switch strings.ToUpper(strings.ReplaceAll(s, "-", "_")) {
		case client.KeySpecAES256, "AES256":
			req.KeySpec = client.KeySpecAES256
		case client.KeySpecAES128, "AES128":
			req.KeySpec = client.KeySpecAES128
		default:
			return req, usagef("--spec takes AES_256 or AES_128, not %q", s)
		}
	}
	n, ok, err := r.intFlag("bytes")
	if err != nil {
		return req, err
	}
	if ok {
		if req.KeySpec != "" {
			return req, usagef("give --spec or --bytes, not both")
		}
		if n < 1 || n > 1024 {
			return req, usagef("--bytes takes 1 to 1024, not %d", n)
		}
		req.NumberOfBytes = n
	}
	if req.KeyID != "" {
		r.keyID = req.KeyID
		r.setWhat("generate a data key under %q", req.KeyID)
	} else {
		r.setWhat("generate a data key under the default key")
	}
	return req, nil
}

func runDataKeyGenerate(r *run) error {
	req, err := dataKeyRequest(r)
	if err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	if !r.boolean("show-plaintext") {
		ct, err := c.GenerateDataKeyWithoutPlaintext(r.ctx, req)
		if err != nil {
			return err
		}
		if r.json {
			return r.printJSON(ct)
		}
		writeFields(r.stdout, []field{{"Key ID", ct.KeyID}, {"Ciphertext blob", b64(ct.CiphertextBlob)},
			{"Plaintext key", "(not requested: the server kept it; add --show-plaintext to get one)"}})
		return nil
	}
	dk, err := c.GenerateDataKey(r.ctx, req)
	if err != nil {
		return err
	}
	defer dk.Wipe()
	if r.json {
		return r.printJSON(struct {
			KeyID          string `json:"key_id"`
			PlaintextKey   []byte `json:"plaintext_key"`
			CiphertextBlob []byte `json:"ciphertext_blob"`
		}{dk.KeyID, dk.Plaintext, dk.CiphertextBlob})
	}
	writeFields(r.stdout, []field{{"Key ID", dk.KeyID}, {"Ciphertext blob", b64(dk.CiphertextBlob)}, {"Plaintext key", b64(dk.Plaintext)}})
	return nil
}

func (r *run) decryptRequest(what string) (client.DecryptRequest, error) {
	ctx, err := r.context("context")
	if err != nil {
		return client.DecryptRequest{}, err
	}
	blob, err := r.blobInput()
	if err != nil {
		return client.DecryptRequest{}, err
	}
	r.keyID = r.str("key")
	r.setWhat("%s", what)
	return client.DecryptRequest{CiphertextBlob: blob, EncryptionContext: ctx, KeyID: r.str("key")}, nil
}

func runDataKeyDecrypt(r *run) error {
	req, err := r.decryptRequest("decrypt the data key")
	if err != nil {
		return err
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	pt, err := c.Decrypt(r.ctx, req)
	if err != nil {
		return err
	}
	defer pt.Wipe()
	show := r.boolean("show-plaintext")
	if r.json {
		if show {
			return r.printJSON(struct {
				KeyID     string `json:"key_id"`
				Plaintext []byte `json:"plaintext"`
			}{pt.KeyID, pt.Plaintext})
		}
		return r.printJSON(struct {
			KeyID          string `json:"key_id"`
			PlaintextBytes int    `json:"plaintext_bytes"`
		}{pt.KeyID, len(pt.Plaintext)})
	}
	shown := fmt.Sprintf("(hidden, %d bytes; add --show-plaintext)", len(pt.Plaintext))
	if show {
		shown = b64(pt.Plaintext)
	}
	writeFields(r.stdout, []field{{"Key ID", pt.KeyID}, {"Plaintext key", shown}})
	return nil
}

func runEncrypt(r *run) error {
	ctx, err := r.context("context")
	if err != nil {
		return err
	}
	var data []byte
	if src := r.str("in"); src == "" || src == "-" {
		data, err = r.readStdin("the plaintext")
	} else if data, err = os.ReadFile(src); err != nil {
		err = &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--in: %v", err)}
	}
	if err != nil {
		return err
	}
	defer clear(data)
	switch {
	case len(data) == 0:
		return usagef("nothing to encrypt: the input is empty")
	case len(data) > maxEncrypt:
		return &cliError{code: ExitUsage, name: "RequestTooLarge",
			msg:  fmt.Sprintf("encrypt takes at most %d bytes, the input has %d", maxEncrypt, len(data)),
			hint: "for more, encrypt locally with a data key (`keyward datakey generate --help`)"}
	}
	r.keyID = r.str("key")
	if r.keyID != "" {
		r.setWhat("encrypt under %q", r.keyID)
	} else {
		r.setWhat("encrypt under the default key")
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	ct, err := c.Encrypt(r.ctx, client.EncryptRequest{KeyID: r.keyID, Plaintext: data, EncryptionContext: ctx})
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(ct)
	}
	r.printf("%s\n", b64(ct.CiphertextBlob))
	return nil
}

func runDecrypt(r *run) error {
	req, err := r.decryptRequest("decrypt")
	if err != nil {
		return err
	}
	out := r.str("out")
	if out != "" && out != "-" && r.json {
		return usagef("--out writes raw bytes: it does not go with --json")
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	pt, err := c.Decrypt(r.ctx, req)
	if err != nil {
		return err
	}
	defer pt.Wipe()
	if r.json {
		return r.printJSON(struct {
			KeyID     string `json:"key_id"`
			Plaintext []byte `json:"plaintext"`
		}{pt.KeyID, pt.Plaintext})
	}
	if out != "" && out != "-" {
		f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
		if err != nil {
			return err
		}
		if _, err := f.Write(pt.Plaintext); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	}
	if r.boolean("base64") || isTerminal(r.stdout) && !printable(pt.Plaintext) {
		if !r.boolean("base64") {
			fmt.Fprintln(r.stderr, "the plaintext is binary: printed as base64 (use --out FILE for the raw bytes)")
		}
		r.printf("%s\n", b64(pt.Plaintext))
		return nil
	}
	_, err = r.stdout.Write(pt.Plaintext)
	return err
}

func runReEncrypt(r *run) error {
	if !r.has("to") {
		return usagef("--to ID (the destination key) is required")
	}
	from, err := r.context("from-context")
	if err != nil {
		return err
	}
	to, err := r.context("to-context")
	if err != nil {
		return err
	}
	blob, err := r.blobInput()
	if err != nil {
		return err
	}
	r.keyID = r.str("to")
	r.setWhat("re-encrypt under %q", r.keyID)
	c, err := r.client()
	if err != nil {
		return err
	}
	ct, err := c.ReEncrypt(r.ctx, client.ReEncryptRequest{CiphertextBlob: blob, SourceEncryptionContext: from,
		SourceKeyID: r.str("from-key"), DestinationKeyID: r.keyID, DestinationEncryptionContext: to})
	if err != nil {
		return err
	}
	if r.json {
		return r.printJSON(ct)
	}
	r.printf("%s\n", b64(ct.CiphertextBlob))
	return nil
}

// isTerminal reports a writer that is a character device.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// printable reports UTF-8 text without control characters other than
// whitespace.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range string(b) {
		if unicode.IsControl(c) && !unicode.IsSpace(c) {
			return false
		}
	}
	return true
}
