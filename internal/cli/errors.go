package cli

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"

	"github.com/keyward/keyward/client"
)

// cliError is an error found by the CLI itself, with its exit code.
type cliError struct {
	code int
	name string // the "code" of a JSON error
	msg  string
	hint string
}

func (e *cliError) Error() string { return e.msg }

// failure is an error ready to be reported.
type failure struct {
	exit      int
	code      string // machine-readable: NotFound, UsageError, ConnectionFailed...
	message   string // the human line, without "keyward: "
	detail    string // the server's message (JSON output)
	requestID string
	status    int
	hint      string
}

// report prints err on stderr (as JSON with --json) and returns its exit
// code.
func (r *run) report(err error) int {
	f := r.classify(err)
	if r.json {
		type body struct {
			Code      string `json:"code"`
			Message   string `json:"message"`
			RequestID string `json:"request_id,omitempty"`
			Status    int    `json:"status,omitempty"`
			Operation string `json:"operation,omitempty"`
			Hint      string `json:"hint,omitempty"`
			ExitCode  int    `json:"exit_code"`
		}
		msg := f.detail
		if msg == "" {
			msg = f.message
		}
		b, _ := json.Marshal(map[string]body{"error": {f.code, msg, f.requestID, f.status, r.what, f.hint, f.exit}})
		fmt.Fprintf(r.stderr, "%s\n", b)
		return f.exit
	}
	fmt.Fprintf(r.stderr, "keyward: %s\n", sanitize(f.message))
	if f.hint != "" {
		fmt.Fprintf(r.stderr, "hint: %s\n", f.hint)
	}
	return f.exit
}

func (r *run) operation() string {
	if r.what != "" {
		return r.what
	}
	if r.cmd != nil {
		return r.cmd.name()
	}
	return "keyward"
}

func (r *run) classify(err error) failure {
	var (
		ue   *usageError
		ce   *cliError
		ae   *client.APIError
		ure  *client.UnreadableKeysError
		op   *net.OpError
		dns  *net.DNSError
		rec  tls.RecordHeaderError
		cve  *tls.CertificateVerificationError
		uae  x509.UnknownAuthorityError
		hne  x509.HostnameError
		cie  x509.CertificateInvalidError
		help = "run `keyward --help` for usage"
	)
	if r.cmd != nil {
		help = fmt.Sprintf("run `keyward %s --help` for usage", r.cmd.name())
	}
	switch {
	case errors.As(err, &ue):
		return failure{exit: ExitUsage, code: "UsageError", message: ue.msg, hint: help}
	case errors.As(err, &ce):
		return failure{exit: ce.code, code: ce.name, message: ce.msg, hint: ce.hint}
	case errors.As(err, &ae):
		return failure{exit: exitForCode(ae.Code), code: ae.Code, detail: ae.Message, requestID: ae.RequestID,
			status:  ae.StatusCode,
			message: fmt.Sprintf("%s: %s (%s, HTTP %d%s)", r.operation(), ae.Message, ae.Code, ae.StatusCode, requestSuffix(ae.RequestID)),
			hint:    r.hintFor(ae)}
	case errors.As(err, &ure):
		return failure{exit: ExitError, code: "UnreadableKeys", message: fmt.Sprintf("%s: %s", r.operation(), strings.TrimPrefix(ure.Error(), "keyward: ")),
			hint: "the server's log says why those key records could not be read"}
	case errors.Is(err, context.DeadlineExceeded):
		return failure{exit: ExitUnavailable, code: "Timeout",
			message: fmt.Sprintf("%s: no answer from %s within %s", r.operation(), r.endpoint, r.timeout),
			hint:    "is the endpoint right? raise --timeout (or KEYWARD_TIMEOUT) for a slow server"}
	case errors.Is(err, context.Canceled):
		return failure{exit: ExitError, code: "Interrupted", message: r.operation() + ": interrupted"}
	case errors.As(err, &cve) || errors.As(err, &uae) || errors.As(err, &hne) || errors.As(err, &cie):
		return failure{exit: ExitUnavailable, code: "TLSError",
			message: fmt.Sprintf("%s: the certificate of %s is not trusted: %s", r.operation(), r.endpoint, innermost(err)),
			hint:    "give its CA with --ca-cert FILE (or KEYWARD_CA_CERT); --insecure skips the check (tests only)"}
	case errors.As(err, &rec) || strings.Contains(err.Error(), "server gave HTTP response to HTTPS client"):
		return failure{exit: ExitUnavailable, code: "TLSError",
			message: fmt.Sprintf("%s: %s does not speak TLS", r.operation(), r.endpoint),
			hint:    "use an http:// endpoint for a server without --tls-cert"}
	case errors.As(err, &dns):
		return failure{exit: ExitUnavailable, code: "ConnectionFailed",
			message: fmt.Sprintf("%s: cannot resolve %q: %v", r.operation(), dns.Name, dns.Err),
			hint:    "check the host name in --endpoint or KEYWARD_ENDPOINT"}
	case errors.As(err, &op):
		return failure{exit: ExitUnavailable, code: "ConnectionFailed",
			message: fmt.Sprintf("%s: cannot connect to %s: %v", r.operation(), r.endpoint, innermost(op)),
			hint:    "is the server running? set --endpoint or KEYWARD_ENDPOINT (or an alias) to where it listens"}
	}
	return failure{exit: ExitError, code: "Error", message: fmt.Sprintf("%s: %s", r.operation(), strings.TrimPrefix(err.Error(), "keyward: "))}
}

// innermost is the last message of an error chain ("connection refused").
func innermost(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

func requestSuffix(id string) string {
	if id == "" {
		return ""
	}
	return ", request " + id
}

// exitForCode maps an API error code to the exit code.
func exitForCode(code string) int {
	switch code {
	case "NotFound":
		return ExitNotFound
	case "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "RequestTimeTooSkewed":
		return ExitAccess
	case "Conflict", "InvalidKeyState":
		return ExitConflict
	case "ServiceUnavailable":
		return ExitUnavailable
	}
	return ExitError
}

// hintFor says what to do next after an API error.
func (r *run) hintFor(e *client.APIError) string {
	name, noun := "", ""
	if r.cmd != nil {
		name, noun = r.cmd.name(), r.cmd.noun
	}
	id := r.keyID
	if id == "" {
		id = "ID"
	}
	if strings.HasPrefix(e.Message, "unexpected response") {
		return "the answer is not a Keyward error: is " + r.endpoint + " a Keyward server, with the right http:// or https://?"
	}
	switch e.Code {
	case "NotFound":
		if noun == "kms" || strings.Contains(e.Message, "route") {
			return "no such route: is " + r.endpoint + " a Keyward server?"
		}
		return "`keyward key list` shows the keys that exist"
	case "SignatureDoesNotMatch":
		return "the secret key is wrong: check --secret-key, KEYWARD_SECRET_KEY or the alias (`keyward alias list`)"
	case "InvalidAccessKeyId":
		return fmt.Sprintf("the server knows no access key %q: check --access-key, KEYWARD_ACCESS_KEY or the alias", r.access)
	case "AccessDenied":
		if e.StatusCode == 403 {
			return fmt.Sprintf("%q is not allowed to do this: an administrator can grant it in the server's IAM file", r.access)
		}
		return "the request was not accepted as signed: check the credentials"
	case "RequestTimeTooSkewed":
		return "this machine's clock is more than 15 minutes off the server's: synchronize it (NTP)"
	case "ServiceUnavailable":
		if name == "kms config" {
			return "the KMS is not configured yet: configure it with `keyward kms configure`"
		}
		return "the KMS service is not running or its backend is unreachable: see `keyward kms status`; start it with `keyward kms start`"
	case "Conflict":
		if strings.Contains(e.Message, "waits for secrets") {
			return "the server keeps these secrets off disk (--no-persist-secrets): give them with `keyward kms start --master-key -` (or --token -, --secret-id -); `keyward kms status` lists them"
		}
		switch name {
		case "kms configure":
			return "the service is running: use `keyward kms reconfigure`, or stop it first with `keyward kms stop`"
		case "kms start":
			return "see `keyward kms status`: it is already running, or not configured yet (`keyward kms configure`)"
		case "kms reconfigure":
			return "this change needs a fresh setup: the backend, key directory and master key of a configuration that holds keys are fixed"
		case "key create":
			return fmt.Sprintf("a key with this id exists: see `keyward key describe %s`, or choose another id", id)
		case "restore":
			return "`keyward restore --dry-run` reports every conflict; --on-conflict skip restores the rest"
		case "backup":
			return "wait for the backup or restore that runs to finish, then try again"
		}
		return "see `keyward kms status`"
	case "InvalidKeyState":
		return fmt.Sprintf("the key's state forbids this: see `keyward key describe %s`; `keyward key enable %s` or `keyward key cancel-deletion %s` makes it usable again", id, id, id)
	case "InvalidCiphertext":
		hint := "the blob is damaged, or its encryption context differs from the one it was made with (it must match exactly)"
		if r.cmd != nil && findFlag(r.cmd.flags, "context") != nil {
			hint = "the blob is damaged, or --context differs from the context it was encrypted with (it must match exactly)"
		}
		if r.has("key") || r.has("from-key") {
			hint += ", or it was not made under the key given"
		}
		return hint
	case "InvalidRequest":
		if strings.Contains(e.Message, "backup archive refused") {
			return "the archive was not used and nothing was written: check --identity or --passphrase-file, and that --in is the archive keyward backup wrote"
		}
		return fmt.Sprintf("run `keyward %s --help` for the arguments", name)
	case "RequestTooLarge":
		return "encrypt at most 4096 bytes; for more, encrypt locally with a data key (`keyward datakey generate`)"
	case "NotImplemented":
		return "the configured backend does not support this (see `keyward kms status`)"
	case "InternalError":
		if e.RequestID != "" {
			return "the server's log has the details under request id " + e.RequestID
		}
		return "the server's log has the details"
	}
	return ""
}
