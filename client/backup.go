package client

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
)

// Backup and restore (docs/backup.md). Both stream: a backup is copied to
// the caller's writer as it arrives, and a restore sends the archive from
// the caller's reader, so neither holds an archive in memory. They are
// never retried, and the client's per-attempt timeout does not apply to
// them: bound them with the context.

// BackupRequest says whom the archive is encrypted to: age X25519
// recipients ("age1..."), or a passphrase.
type BackupRequest struct {
	Recipients []string
	Passphrase string
	// WorkFactor is the scrypt work factor for a passphrase (15-18; 0:
	// the server's default, 18).
	WorkFactor int
}

// BackupResult describes a finished archive, from the answer's headers
// and trailers (the archive itself is encrypted: the client cannot read
// it).
type BackupResult struct {
	FormatVersion int
	// Material is "included", or "metadata-only" for a vault-transit
	// backend, whose keys Transit does not export.
	Material string
	// Backend is the source's backend type.
	Backend string
	// Keys and Aliases are what the archive holds; KeysAbsent and
	// AliasesAbsent were listed when the backup started and are not in it
	// (destroyed meanwhile, or unreadable).
	Keys, KeysAbsent       int
	Aliases, AliasesAbsent int
	// Digest identifies the archive's content (docs/backup.md, "Digest"):
	// keep it apart from the archive, and give it to a restore
	// (RestoreRequest.ExpectDigest) to prove that the archive restored is
	// this one.
	Digest string
	// Bytes is the size of the archive written.
	Bytes int64
}

// MetadataOnly reports whether the archive holds no key material.
func (r *BackupResult) MetadataOnly() bool { return r.Material == "metadata-only" }

// ErrIncompleteBackup is returned when the server stopped a backup after
// it began streaming: what was written is not a usable archive.
var ErrIncompleteBackup = errors.New("keyward: the backup did not complete; the archive written is incomplete and must not be kept")

// Backup makes an archive of every key and alias on the server and copies
// it to w as it arrives. When it returns an error, what was written to w is
// not a complete archive.
func (c *Client) Backup(ctx context.Context, req BackupRequest, w io.Writer) (*BackupResult, error) {
	body := struct {
		Recipients []string `json:"recipients,omitempty"`
		Passphrase string   `json:"passphrase,omitempty"`
		WorkFactor int      `json:"work_factor,omitempty"`
	}{req.Recipients, req.Passphrase, req.WorkFactor}
	data, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("keyward: encoding the backup request: %w", err)
	}
	defer clear(data) // may hold the passphrase
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.streamEndpoint()+admin("/kms/backup"), bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	hreq.Header.Set("Content-Type", "application/json")
	hreq.Header.Set("Accept", "application/octet-stream")
	resp, err := c.stream(hreq, data)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	res := &BackupResult{Material: resp.Header.Get("X-Keyward-Archive-Material"), Backend: resp.Header.Get("X-Keyward-Archive-Backend")}
	res.FormatVersion, _ = strconv.Atoi(resp.Header.Get("X-Keyward-Archive-Format"))
	n, err := io.Copy(w, resp.Body)
	res.Bytes = n
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrIncompleteBackup, err)
	}
	t := resp.Trailer
	if t.Get("X-Keyward-Archive-Complete") != "true" {
		return nil, ErrIncompleteBackup
	}
	res.Digest = t.Get("X-Keyward-Archive-Digest")
	res.Keys, _ = strconv.Atoi(t.Get("X-Keyward-Archive-Keys"))
	res.KeysAbsent, _ = strconv.Atoi(t.Get("X-Keyward-Archive-Keys-Absent"))
	res.Aliases, _ = strconv.Atoi(t.Get("X-Keyward-Archive-Aliases"))
	res.AliasesAbsent, _ = strconv.Atoi(t.Get("X-Keyward-Archive-Aliases-Absent"))
	return res, nil
}

// RestoreRequest is how an archive is opened and restored.
type RestoreRequest struct {
	// Identity is the text of an age identity file (AGE-SECRET-KEY-1...
	// lines), or Passphrase the archive's passphrase.
	Identity   string
	Passphrase string
	// DryRun reports what would be done and writes nothing.
	DryRun bool
	// OnConflict is "fail" (the default: any key or alias that exists
	// with other content, or cannot be restored, refuses the whole
	// restore before anything is written) or "skip".
	OnConflict string
	// ExpectDigest, when set, refuses an archive whose digest differs
	// (BackupResult.Digest).
	ExpectDigest string
}

// RestoreReport is the server's report of a restore.
type RestoreReport struct {
	DryRun     bool   `json:"dry_run"`
	OnConflict string `json:"on_conflict"`
	// Complete is false when writing a key or alias failed and the
	// restore stopped; running it again finishes it.
	Complete bool `json:"complete"`
	Archive  struct {
		FormatVersion int       `json:"format_version"`
		Created       time.Time `json:"created"`
		ServerVersion string    `json:"server_version"`
		SourceBackend string    `json:"source_backend"`
		Material      string    `json:"material"`
		Note          string    `json:"note"`
		Keys          int       `json:"keys"`
		Aliases       int       `json:"aliases"`
		Digest        string    `json:"digest"`
	} `json:"archive"`
	// Summary counts keys and aliases by status.
	Summary struct {
		Keys    map[string]int `json:"keys"`
		Aliases map[string]int `json:"aliases"`
	} `json:"summary"`
	Keys []struct {
		KeyID  string `json:"key_id"`
		Status string `json:"status"`
		Reason string `json:"reason,omitempty"`
	} `json:"keys"`
	Aliases []struct {
		AliasName   string `json:"alias_name"`
		TargetKeyID string `json:"target_key_id,omitempty"`
		Status      string `json:"status"`
		Reason      string `json:"reason,omitempty"`
	} `json:"aliases"`
}

// maxRestoreReport bounds a restore's answer (one line per key).
const maxRestoreReport = 256 << 20

// Restore sends the archive read from archive (its size bytes) and
// restores it. The archive is read twice: once to hash the request body,
// whose hash is signed and declared (the server authenticates the request
// before it reads the body), and once to send it; archive must therefore
// be seekable.
func (c *Client) Restore(ctx context.Context, archive io.ReadSeeker, req RestoreRequest) (*RestoreReport, error) {
	size, err := archive.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("keyward: restore: %w", err)
	}
	head, tail, contentType, err := restoreFraming(req)
	if err != nil {
		return nil, err
	}
	defer clear(head) // holds the identity or passphrase
	// First pass: the body's hash.
	h := sha256.New()
	h.Write(head)
	if _, err := archive.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("keyward: restore: %w", err)
	}
	if n, err := io.Copy(h, archive); err != nil || n != size {
		return nil, fmt.Errorf("keyward: restore: reading the archive: %v", err)
	}
	h.Write(tail)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	if _, err := archive.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("keyward: restore: %w", err)
	}
	body := io.MultiReader(bytes.NewReader(head), io.LimitReader(archive, size), bytes.NewReader(tail))
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, c.streamEndpoint()+admin("/kms/restore"), io.NopCloser(body))
	if err != nil {
		return nil, err
	}
	hreq.ContentLength = int64(len(head)) + size + int64(len(tail))
	hreq.Header.Set("Content-Type", contentType)
	hreq.Header.Set("Accept", "application/json")
	resp, err := c.streamHashed(hreq, &sum)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	data, err := readBody(resp.Body, resp.ContentLength, maxRestoreReport)
	if err != nil {
		return nil, err
	}
	var rep RestoreReport
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, fmt.Errorf("keyward: restore: decoding the report: %w", err)
	}
	return &rep, nil
}

// restoreFraming builds the multipart/form-data body around the archive:
// the "request" part, the header of the "archive" part, and the closing
// boundary.
func restoreFraming(req RestoreRequest) (head, tail []byte, contentType string, err error) {
	var rnd [16]byte
	if _, err := rand.Read(rnd[:]); err != nil {
		return nil, nil, "", err
	}
	boundary := "keyward-restore-" + hex.EncodeToString(rnd[:])
	part := struct {
		Identity     string `json:"identity,omitempty"`
		Passphrase   string `json:"passphrase,omitempty"`
		DryRun       bool   `json:"dry_run"`
		OnConflict   string `json:"on_conflict,omitempty"`
		ExpectDigest string `json:"expect_digest,omitempty"`
	}{req.Identity, req.Passphrase, req.DryRun, req.OnConflict, req.ExpectDigest}
	js, err := json.Marshal(part)
	if err != nil {
		return nil, nil, "", fmt.Errorf("keyward: encoding the restore request: %w", err)
	}
	defer clear(js)
	var b bytes.Buffer
	b.WriteString("--" + boundary + "\r\n")
	b.WriteString("Content-Disposition: form-data; name=\"request\"\r\nContent-Type: application/json\r\n\r\n")
	b.Write(js)
	b.WriteString("\r\n--" + boundary + "\r\n")
	b.WriteString("Content-Disposition: form-data; name=\"archive\"; filename=\"archive.age\"\r\nContent-Type: application/octet-stream\r\n\r\n")
	return b.Bytes(), []byte("\r\n--" + boundary + "--\r\n"), "multipart/form-data; boundary=" + boundary, nil
}

// stream sends a request whose body the caller holds (signed over it) and
// returns the response with its body unread; a non-2xx answer is an
// *APIError.
func (c *Client) stream(req *http.Request, body []byte) (*http.Response, error) {
	sum := sha256.Sum256(body)
	return c.streamHashed(req, &sum)
}

// streamEndpoint is the server a streamed call (backup, restore) goes to:
// the one in use. Streamed calls are sent once and never move to another
// endpoint by themselves (a backup half written to the caller's file, or a
// restore body half read, cannot be replayed transparently); the next
// ordinary call moves on if that server is down.
func (c *Client) streamEndpoint() string { return c.endpoints[c.endpointInUse()] }

// streamHashed signs req with sum as its payload hash, sends it once and
// returns the response with its body unread.
func (c *Client) streamHashed(req *http.Request, sum *[sha256.Size]byte) (*http.Response, error) {
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	c.signer.SignHashed(req, sum, c.now())
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("keyward: %s %s: %w", req.Method, req.URL.Path, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer resp.Body.Close()
		data, _ := readBody(resp.Body, resp.ContentLength, maxResponseBody)
		return nil, newAPIError(resp.StatusCode, resp.Header, data)
	}
	return resp, nil
}
