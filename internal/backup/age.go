package backup

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"filippo.io/age"

	"github.com/keyward/keyward/internal/kms"
)

// The age layer. An archive is a standard age file, so that the age
// command line tool opens it with the same identity or passphrase.

// Scrypt work factors (log2 of scrypt's N) for passphrase archives.
// scrypt at work factor w needs 2^w * 1 KiB of memory: 18 (age's default)
// is 256 MiB and about a second, on the server that writes the archive
// and on the one that restores it. Above 18 a hostile archive could make
// a restore allocate gigabytes, so a restore refuses it, and a backup
// cannot ask for it; below 15 a passphrase is too cheap to guess.
const (
	DefaultWorkFactor = 18
	MinWorkFactor     = 15
	MaxWorkFactor     = 18
)

// EncryptTo says whom an archive is encrypted to: X25519 recipients
// ("age1..."), or a passphrase.
type EncryptTo struct {
	Recipients []string
	Passphrase string
	// WorkFactor for the passphrase; 0 means DefaultWorkFactor.
	WorkFactor int
}

// MaxRecipients bounds the recipients of one archive.
const MaxRecipients = 20

// recipients validates e and builds the age recipients. Errors wrap
// kms.ErrInvalidRequest and never quote the passphrase.
func (e EncryptTo) recipients() ([]age.Recipient, error) {
	switch {
	case len(e.Recipients) > 0 && e.Passphrase != "":
		return nil, fmt.Errorf("%w: give age recipients or a passphrase, not both", kms.ErrInvalidRequest)
	case len(e.Recipients) == 0 && e.Passphrase == "":
		return nil, fmt.Errorf("%w: an archive must be encrypted: give an age recipient (age1...) or a passphrase", kms.ErrInvalidRequest)
	case len(e.Recipients) > MaxRecipients:
		return nil, fmt.Errorf("%w: at most %d recipients", kms.ErrInvalidRequest, MaxRecipients)
	}
	if e.Passphrase != "" {
		wf := e.WorkFactor
		if wf == 0 {
			wf = DefaultWorkFactor
		}
		if wf < MinWorkFactor || wf > MaxWorkFactor {
			return nil, fmt.Errorf("%w: scrypt work factor must be between %d and %d", kms.ErrInvalidRequest, MinWorkFactor, MaxWorkFactor)
		}
		if len(e.Passphrase) < 12 {
			return nil, fmt.Errorf("%w: the passphrase must be at least 12 characters", kms.ErrInvalidRequest)
		}
		r, err := age.NewScryptRecipient(e.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("%w: the passphrase cannot be used", kms.ErrInvalidRequest)
		}
		r.SetWorkFactor(wf)
		return []age.Recipient{r}, nil
	}
	if e.WorkFactor != 0 {
		return nil, fmt.Errorf("%w: a work factor applies to a passphrase only", kms.ErrInvalidRequest)
	}
	out := make([]age.Recipient, 0, len(e.Recipients))
	for _, s := range e.Recipients {
		r, err := age.ParseX25519Recipient(strings.TrimSpace(s))
		if err != nil {
			return nil, fmt.Errorf("%w: recipient %q is not an age X25519 public key (age1...): %v", kms.ErrInvalidRequest, shorten(s), err)
		}
		out = append(out, r)
	}
	return out, nil
}

// Validate checks e without encrypting anything.
func (e EncryptTo) Validate() error {
	_, err := e.recipients()
	return err
}

// Encrypt starts an age stream to e's recipients on w: the age header is
// written at once, the plaintext written to the result is encrypted in
// chunks of 64 KiB, and Close writes the last chunk. A stream that is not
// closed is truncated, and no age reader accepts it.
func Encrypt(w io.Writer, e EncryptTo) (io.WriteCloser, error) {
	rs, err := e.recipients()
	if err != nil {
		return nil, err
	}
	return age.Encrypt(w, rs...)
}

// DecryptWith is the secret that opens an archive: the text of an age
// identity file (one or more AGE-SECRET-KEY-1... lines, # comments), or a
// passphrase.
type DecryptWith struct {
	Identity   string
	Passphrase string
}

func (d DecryptWith) identities() ([]age.Identity, error) {
	switch {
	case d.Identity != "" && d.Passphrase != "":
		return nil, fmt.Errorf("%w: give an age identity or a passphrase, not both", kms.ErrInvalidRequest)
	case d.Identity == "" && d.Passphrase == "":
		return nil, fmt.Errorf("%w: the archive's age identity or passphrase is required", kms.ErrInvalidRequest)
	case d.Passphrase != "":
		id, err := age.NewScryptIdentity(d.Passphrase)
		if err != nil {
			return nil, fmt.Errorf("%w: the passphrase cannot be used", kms.ErrInvalidRequest)
		}
		id.SetMaxWorkFactor(MaxWorkFactor)
		return []age.Identity{id}, nil
	}
	ids, err := age.ParseIdentities(strings.NewReader(d.Identity))
	if err != nil {
		// The parser's message may quote the line: never echo a secret.
		return nil, fmt.Errorf("%w: the identity is not an age identity file (lines of AGE-SECRET-KEY-1...)", kms.ErrInvalidRequest)
	}
	return ids, nil
}

// Validate checks d without decrypting anything.
func (d DecryptWith) Validate() error {
	_, err := d.identities()
	return err
}

// Open decrypts and verifies a whole archive (see Parse). Every refusal is
// a clear error wrapping ErrArchive and kms.ErrInvalidRequest: not an age
// file, the wrong identity or passphrase, damaged or truncated, from a
// newer format.
func Open(r io.Reader, d DecryptWith) (*Archive, error) {
	ids, err := d.identities()
	if err != nil {
		return nil, err
	}
	plain, err := age.Decrypt(r, ids...)
	if err != nil {
		return nil, ageError(err, d.Passphrase != "")
	}
	arc, err := Parse(&ageReader{r: plain})
	if err != nil {
		return nil, err
	}
	return arc, nil
}

// ageReader marks errors of the age payload (authentication, truncation)
// so that Parse's caller can tell them from format errors.
type ageReader struct{ r io.Reader }

func (a *ageReader) Read(p []byte) (int, error) {
	n, err := a.r.Read(p)
	if err != nil && err != io.EOF {
		err = refuse("damaged or truncated: the encrypted payload does not authenticate (%v); nothing was restored", err)
	}
	return n, err
}

// ageError explains why an archive's header did not open.
func ageError(err error, passphrase bool) error {
	var noMatch *age.NoIdentityMatchError
	msg := err.Error()
	switch {
	case errors.As(err, &noMatch) && passphrase:
		return refuse("the passphrase does not open this archive (wrong passphrase, or the archive is encrypted to an age recipient)")
	case errors.As(err, &noMatch):
		return refuse("no identity given opens this archive (wrong identity, or the archive is encrypted with a passphrase)")
	case strings.Contains(msg, "work factor"):
		return refuse("the archive's scrypt work factor is above %d, which a restore does not spend memory on", MaxWorkFactor)
	case strings.Contains(msg, "incorrect passphrase"), strings.Contains(msg, "incorrect identity"):
		return refuse("the passphrase does not open this archive (wrong passphrase)")
	case strings.Contains(msg, "scrypt"):
		return refuse("the passphrase does not open this archive: %s", msg)
	}
	return refuse("not a readable age archive, or its header is damaged: %s", msg)
}

func shorten(s string) string {
	if len(s) > 80 {
		return s[:80] + "..."
	}
	return s
}
