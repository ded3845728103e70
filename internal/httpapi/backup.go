package httpapi

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"runtime/debug"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/keyward/keyward/internal/audit"
	"github.com/keyward/keyward/internal/backup"
	"github.com/keyward/keyward/internal/jsonbody"
	"github.com/keyward/keyward/internal/kms"
)

// Backup and restore routes (docs/api.md, "Backup and restore";
// docs/backup.md).

// MaxArchiveBody bounds a restore's archive. A restore verifies the whole
// archive before it writes anything, so it holds the archive's keys in
// memory (about twice the archive's size at most); 256 MiB is some
// 400,000 keys.
const MaxArchiveBody = 256 << 20

// archiveTimeout bounds one backup or restore.
const archiveTimeout = time.Hour

// maxRestoreRequestPart bounds the JSON part of a restore request.
const maxRestoreRequestPart = 64 << 10

// Headers and trailers of a backup answer.
const (
	hdrFormat          = "X-Keyward-Archive-Format"
	hdrMaterial        = "X-Keyward-Archive-Material"
	hdrBackend         = "X-Keyward-Archive-Backend"
	hdrKeysListed      = "X-Keyward-Archive-Keys-Listed"
	hdrAliasesListed   = "X-Keyward-Archive-Aliases-Listed"
	trlComplete        = "X-Keyward-Archive-Complete"
	trlDigest          = "X-Keyward-Archive-Digest"
	trlKeys            = "X-Keyward-Archive-Keys"
	trlKeysAbsent      = "X-Keyward-Archive-Keys-Absent"
	trlAliases         = "X-Keyward-Archive-Aliases"
	trlAliasesAbsent   = "X-Keyward-Archive-Aliases-Absent"
	archiveContentType = "application/octet-stream"
)

func (s *Server) archiveRoutes() []*route {
	gate := &archiveGate{}
	return []*route{
		{method: "POST", path: "/kms/backup", action: "kms:Backup", maxBody: MaxBody, timeout: archiveTimeout, service: true,
			handle: func(c *call) error { return s.backup(c, gate) }},
		{method: "POST", path: "/kms/restore", action: "kms:Restore", maxBody: MaxArchiveBody, streamBody: true, timeout: archiveTimeout, service: true,
			handle: func(c *call) error { return s.restore(c, gate) }},
	}
}

// archiveGate lets one backup or restore run at a time on a server: each
// reads every key, and a restore holds an archive in memory.
type archiveGate struct{ busy atomic.Bool }

func (g *archiveGate) enter() error {
	if !g.busy.CompareAndSwap(false, true) {
		return fmt.Errorf("%w: a backup or restore is already running on this server; retry when it is done", kms.ErrConflict)
	}
	return nil
}

func (g *archiveGate) leave() { g.busy.Store(false) }

// backupRequest: {"recipients": ["age1..."]} (or "recipient") or
// {"passphrase": "...", "work_factor": 18}.
type backupRequest struct {
	Recipients []string `json:"recipients"`
	Recipient  string   `json:"recipient"`
	Passphrase string   `json:"passphrase"`
	WorkFactor int      `json:"work_factor"`
}

// backup streams the archive. Everything that can fail cleanly is checked
// before the answer starts (the request, the listing of every key and
// alias); a failure once the archive streams cuts the connection and
// leaves the age stream unfinished, so no client or age tool can mistake
// the partial archive for a whole one.
func (s *Server) backup(c *call, gate *archiveGate) error {
	var req backupRequest
	if err := jsonbody.Decode(c.body, &req); err != nil {
		return err
	}
	to := backup.EncryptTo{Recipients: req.Recipients, Passphrase: req.Passphrase, WorkFactor: req.WorkFactor}
	if req.Recipient != "" {
		to.Recipients = append(to.Recipients, req.Recipient)
	}
	if err := to.Validate(); err != nil {
		return err
	}
	arch, err := c.svc.Archiver()
	if err != nil {
		return err
	}
	if err := gate.enter(); err != nil {
		return err
	}
	defer gate.leave()
	listing, err := backup.List(c.ctx, arch)
	if err != nil {
		return err
	}
	backend := ""
	if _, cfg := s.opts.Manager.State(); cfg != nil {
		backend = cfg.BackendType
	}
	c.extendDeadlines()
	h := c.w.Header()
	h.Set("Content-Type", archiveContentType)
	h.Set("Content-Disposition", `attachment; filename="keyward-backup-`+time.Now().UTC().Format("20060102T150405Z")+`.age"`)
	h.Set(hdrFormat, strconv.Itoa(backup.FormatVersion))
	h.Set(hdrMaterial, listing.Material)
	h.Set(hdrBackend, backend)
	h.Set(hdrKeysListed, strconv.Itoa(len(listing.KeyIDs)))
	h.Set(hdrAliasesListed, strconv.Itoa(len(listing.AliasNames)))
	h.Set("Trailer", trlComplete+", "+trlDigest+", "+trlKeys+", "+trlKeysAbsent+", "+trlAliases+", "+trlAliasesAbsent)
	c.w.WriteHeader(http.StatusOK)
	sum, err := s.writeArchive(c, arch, to, listing, backend)
	if err != nil {
		s.opts.Log.Error("backup aborted: the archive is incomplete and the connection was cut", "request_id", c.reqID, "error", err.Error())
		c.code = "BackupAborted"
		panic(http.ErrAbortHandler)
	}
	h.Set(trlComplete, "true")
	h.Set(trlDigest, sum.Digest)
	h.Set(trlKeys, strconv.Itoa(sum.Keys))
	h.Set(trlKeysAbsent, strconv.Itoa(sum.KeysAbsent))
	h.Set(trlAliases, strconv.Itoa(sum.Aliases))
	h.Set(trlAliasesAbsent, strconv.Itoa(sum.AliasesAbsent))
	c.archive = &audit.ArchiveCounts{Keys: sum.Keys, KeysAbsent: sum.KeysAbsent, Aliases: sum.Aliases}
	return nil
}

func (s *Server) writeArchive(c *call, arch kms.Archiver, to backup.EncryptTo, l backup.Listing, backend string) (backup.Summary, error) {
	aw, err := backup.Encrypt(c.w, to)
	if err != nil {
		return backup.Summary{}, err
	}
	sum, err := backup.Write(c.ctx, arch, aw, l, backup.Source{Backend: backend, ServerVersion: serverVersion(), Now: time.Now})
	if err != nil {
		return backup.Summary{}, err // aw stays unfinished
	}
	if err := aw.Close(); err != nil {
		return backup.Summary{}, err
	}
	return sum, nil
}

// serverVersion is the module version the binary was built from.
func serverVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return "keyward " + bi.Main.Version
	}
	return "keyward"
}

// restoreRequest is the "request" part of a restore.
type restoreRequest struct {
	Identity     string `json:"identity"`
	Passphrase   string `json:"passphrase"`
	DryRun       bool   `json:"dry_run"`
	OnConflict   string `json:"on_conflict"`
	ExpectDigest string `json:"expect_digest"`
}

// restoreResponse is the report.
type restoreResponse struct {
	DryRun     bool                 `json:"dry_run"`
	OnConflict string               `json:"on_conflict"`
	Complete   bool                 `json:"complete"`
	Archive    archiveInfo          `json:"archive"`
	Summary    restoreSummary       `json:"summary"`
	Keys       []backup.KeyResult   `json:"keys"`
	Aliases    []backup.AliasResult `json:"aliases"`
}

type archiveInfo struct {
	FormatVersion int    `json:"format_version"`
	Created       string `json:"created"`
	ServerVersion string `json:"server_version"`
	SourceBackend string `json:"source_backend"`
	Material      string `json:"material"`
	Note          string `json:"note"`
	Keys          int    `json:"keys"`
	Aliases       int    `json:"aliases"`
	Digest        string `json:"digest"`
}

type restoreSummary struct {
	Keys    map[string]int `json:"keys"`
	Aliases map[string]int `json:"aliases"`
}

// restore takes a multipart/form-data body: a "request" part (JSON: the
// identity or passphrase and the options) and then an "archive" part (the
// age file). The archive is decrypted and verified whole, and the body's
// signed hash checked, before anything is written.
func (s *Server) restore(c *call, gate *archiveGate) error {
	arch, err := c.svc.Archiver()
	if err != nil {
		return err
	}
	if err := gate.enter(); err != nil {
		return err
	}
	defer gate.leave()
	c.extendDeadlines()
	arc, req, err := readArchive(c)
	if err != nil {
		return c.bodyOr(err)
	}
	defer arc.Wipe()
	if err := c.stream.Verify(); err != nil {
		return err
	}
	if req.ExpectDigest != "" && req.ExpectDigest != arc.Digest {
		return fmt.Errorf("%w: %w: the archive's digest is %s, not the expected %s: it is not the archive that backup produced", kms.ErrInvalidRequest, backup.ErrArchive, arc.Digest, req.ExpectDigest)
	}
	opts := backup.RestoreOptions{DryRun: req.DryRun, OnConflict: req.OnConflict}
	rep, err := backup.Restore(c.ctx, arch, arc, opts)
	if err != nil {
		return err
	}
	keys, aliases := rep.Count()
	c.archive = &audit.ArchiveCounts{
		Keys: len(arc.Keys), Aliases: len(arc.Aliases), KeysAbsent: len(arc.Manifest.KeyIDs) - len(arc.Keys), DryRun: rep.DryRun,
		Restored: keys[backup.StatusRestored], Existing: keys[backup.StatusExists], Skipped: keys[backup.StatusSkipped], Failed: keys[backup.StatusFailed],
		AliasesRestored: aliases[backup.StatusRestored], AliasesExisting: aliases[backup.StatusExists], AliasesSkipped: aliases[backup.StatusSkipped],
	}
	m := &arc.Manifest
	resp := restoreResponse{
		DryRun: rep.DryRun, OnConflict: rep.OnConflict, Complete: rep.Complete,
		Archive: archiveInfo{
			FormatVersion: m.FormatVersion, Created: timestamp(m.Created), ServerVersion: m.ServerVersion,
			SourceBackend: m.Backend, Material: m.Material, Note: m.Note, Keys: m.KeyCount, Aliases: m.AliasCount, Digest: arc.Digest,
		},
		Summary: restoreSummary{Keys: keys, Aliases: aliases},
		Keys:    rep.Keys, Aliases: rep.Aliases,
	}
	if resp.Keys == nil {
		resp.Keys = []backup.KeyResult{}
	}
	if resp.Aliases == nil {
		resp.Aliases = []backup.AliasResult{}
	}
	writeJSON(c.w, http.StatusOK, resp)
	return nil
}

// readArchive reads the restore request and decrypts and verifies the
// whole archive (in memory). The body's hash is not checked yet.
func readArchive(c *call) (*backup.Archive, restoreRequest, error) {
	mr, err := c.multipartBody()
	if err != nil {
		return nil, restoreRequest{}, err
	}
	req, err := readRestoreRequest(mr)
	if err != nil {
		return nil, req, err
	}
	switch req.OnConflict {
	case "", backup.OnConflictFail, backup.OnConflictSkip:
	default:
		return nil, req, fmt.Errorf("%w: on_conflict must be %q or %q", kms.ErrInvalidRequest, backup.OnConflictSkip, backup.OnConflictFail)
	}
	secret := backup.DecryptWith{Identity: req.Identity, Passphrase: req.Passphrase}
	if err := secret.Validate(); err != nil {
		return nil, req, err
	}
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "archive" {
		return nil, req, fmt.Errorf("%w: the second part of a restore must be the archive (form field \"archive\")", kms.ErrInvalidRequest)
	}
	arc, err := backup.Open(part, secret)
	if err != nil {
		return nil, req, err
	}
	if _, err := mr.NextPart(); err != io.EOF {
		arc.Wipe()
		return nil, req, fmt.Errorf("%w: a restore body has two parts, request and archive; more follows the archive", kms.ErrInvalidRequest)
	}
	return arc, req, nil
}

// multipartBody checks the Content-Type and reads the streamed body as
// multipart/form-data.
func (c *call) multipartBody() (*multipart.Reader, error) {
	mt, params, err := mime.ParseMediaType(c.r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/form-data" || params["boundary"] == "" {
		return nil, fmt.Errorf("%w: a restore is multipart/form-data: a \"request\" part (JSON) and an \"archive\" part", kms.ErrInvalidRequest)
	}
	return multipart.NewReader(c.stream, params["boundary"]), nil
}

func readRestoreRequest(mr *multipart.Reader) (restoreRequest, error) {
	var req restoreRequest
	part, err := mr.NextPart()
	if err != nil || part.FormName() != "request" {
		return req, fmt.Errorf("%w: the first part of a restore must be the request (form field \"request\", JSON)", kms.ErrInvalidRequest)
	}
	data, err := io.ReadAll(io.LimitReader(part, maxRestoreRequestPart+1))
	defer clear(data)
	if err != nil {
		return req, fmt.Errorf("%w: the request part could not be read", kms.ErrInvalidRequest)
	}
	if len(data) > maxRestoreRequestPart {
		return req, fmt.Errorf("%w: the request part is larger than %d bytes", kms.ErrInvalidRequest, maxRestoreRequestPart)
	}
	if err := jsonbody.Decode(data, &req); err != nil {
		return req, err
	}
	return req, nil
}

// bodyOr returns err unless the body is too large or does not match its
// signed hash: an archive altered in transit is reported as what it is.
// The body is read to its end (bounded by the route's limit) for that.
func (c *call) bodyOr(err error) error {
	if c.stream.done {
		return err
	}
	if verr := c.stream.Verify(); verr != nil && !errors.Is(verr, errBadBody) {
		return verr
	}
	return err
}
