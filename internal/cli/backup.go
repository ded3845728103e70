package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/keyward/keyward/client"
)

// archiveTimeout is the default --timeout of backup and restore: they read
// or write every key.
const archiveTimeout = time.Hour

func backupCommands() []*command {
	return []*command{
		{noun: "backup", summary: nounSummaries["backup"], timeout: archiveTimeout,
			help: "Write an archive of every key (every version's material, metadata, state, dates,\n" +
				"rotation schedule, tags) and every alias to --out FILE. The server encrypts it with\n" +
				"age to the recipient(s) or the passphrase given: the archive is useless without the\n" +
				"matching identity or passphrase, and key material never leaves the server in the\n" +
				"clear. A vault-transit backend gives a metadata-only archive (Transit does not\n" +
				"export keys). Keep the printed digest apart from the archive, and restore with\n" +
				"--expect-digest to prove the archive is this one.\n\n" +
				"  age-keygen -o backup-identity.txt     # prints the public key age1...\n" +
				"  keyward backup --to-recipient age1... --out keys.age",
			flags: []flagDef{
				listOf("to-recipient", "AGE_PUBLIC_KEY", "encrypt to this age X25519 public key (age1...; repeatable)"),
				strFlag("passphrase-file", "FILE", "encrypt with the passphrase in FILE (at least 12 characters) instead"),
				strFlag("work-factor", "N", "scrypt work factor for a passphrase, 15-18 (default 18: 256 MiB, about 1 s)"),
				strFlag("out", "FILE|-", "write the archive to FILE (created with mode 0600, never overwritten) or stdout"),
			}, maxArgs: 0, run: runBackup},
		{noun: "restore", summary: nounSummaries["restore"], timeout: archiveTimeout,
			help: "Restore an archive from `keyward backup` into the server's running backend,\n" +
				"whatever its type (this is also how keys move between backends; see docs/backup.md).\n" +
				"The whole archive is decrypted and verified before anything is written: a wrong\n" +
				"identity or passphrase, a damaged or truncated archive, or one from a newer Keyward\n" +
				"is refused. A key or alias that exists identically is left alone (a second restore\n" +
				"changes nothing); one that exists with other content is a conflict: by default the\n" +
				"restore is refused before anything is written (--on-conflict fail), or such keys\n" +
				"are skipped (--on-conflict skip). Nothing is ever overwritten. Prints a report per\n" +
				"key and alias.\n\n" +
				"  keyward restore --in keys.age --identity backup-identity.txt --dry-run",
			flags: []flagDef{
				strFlag("in", "FILE", "the archive"),
				strFlag("identity", "FILE", "age identity file that opens the archive (AGE-SECRET-KEY-1...)"),
				strFlag("passphrase-file", "FILE", "the archive's passphrase, in FILE"),
				boolFlagDef("dry-run", "report what would be restored, write nothing"),
				strFlag("on-conflict", "fail|skip", "a key or alias that exists with other content: refuse the restore (fail, the default) or skip it"),
				strFlag("expect-digest", "HEX", "refuse the archive unless its digest is this (printed by keyward backup)"),
			}, maxArgs: 0, run: runRestore},
	}
}

func runBackup(r *run) error {
	r.setWhat("backup")
	req := client.BackupRequest{Recipients: r.list("to-recipient")}
	if f := r.str("passphrase-file"); f != "" {
		pass, err := secretFile("passphrase-file", f)
		if err != nil {
			return err
		}
		req.Passphrase = pass
	}
	switch {
	case len(req.Recipients) == 0 && req.Passphrase == "":
		return usagef("give --to-recipient AGE_PUBLIC_KEY or --passphrase-file FILE: an archive is always encrypted")
	case len(req.Recipients) > 0 && req.Passphrase != "":
		return usagef("give --to-recipient or --passphrase-file, not both")
	}
	if n, ok, err := r.intFlag("work-factor"); err != nil {
		return err
	} else if ok {
		if req.Passphrase == "" {
			return usagef("--work-factor applies to --passphrase-file only")
		}
		req.WorkFactor = n
	}
	out := r.str("out")
	if out == "" {
		return usagef("give --out FILE (or --out - for stdout)")
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	report := r.stdout
	var res *client.BackupResult
	if out == "-" {
		report = r.stderr // stdout carries the archive
		res, err = c.Backup(r.ctx, req, r.stdout)
	} else {
		res, err = backupToFile(r, c, req, out)
	}
	if err != nil {
		return err
	}
	if r.json {
		return printJSONTo(report, backupJSON(res, out))
	}
	fields := []field{
		{"archive", out},
		{"format", "keyward-backup " + strconv.Itoa(res.FormatVersion)},
		{"backend", res.Backend},
		{"material", materialText(res.Material)},
		{"keys", strconv.Itoa(res.Keys)},
		{"aliases", strconv.Itoa(res.Aliases)},
	}
	if res.KeysAbsent+res.AliasesAbsent > 0 {
		fields = append(fields, field{"not in the archive", fmt.Sprintf("%d keys, %d aliases (destroyed or unreadable while the backup ran)", res.KeysAbsent, res.AliasesAbsent)})
	}
	fields = append(fields, field{"size", fmt.Sprintf("%d bytes", res.Bytes)}, field{"digest", res.Digest})
	writeFields(report, fields)
	if res.MetadataOnly() {
		fmt.Fprintln(report, "METADATA ONLY: this backend keeps its keys in Vault Transit, which does not export them; the archive records the keys' metadata and aliases but cannot recreate a key")
	}
	fmt.Fprintln(report, "keep the digest apart from the archive; `keyward restore --expect-digest` checks it")
	return nil
}

func materialText(m string) string {
	if m == "metadata-only" {
		return "metadata only (no key material: vault-transit keys stay in Transit)"
	}
	return m + " (every version of every key, encrypted)"
}

func backupJSON(res *client.BackupResult, out string) any {
	return struct {
		Archive       string `json:"archive"`
		FormatVersion int    `json:"format_version"`
		Backend       string `json:"backend"`
		Material      string `json:"material"`
		MetadataOnly  bool   `json:"metadata_only"`
		Keys          int    `json:"keys"`
		KeysAbsent    int    `json:"keys_absent"`
		Aliases       int    `json:"aliases"`
		AliasesAbsent int    `json:"aliases_absent"`
		Bytes         int64  `json:"bytes"`
		Digest        string `json:"digest"`
	}{out, res.FormatVersion, res.Backend, res.Material, res.MetadataOnly(), res.Keys, res.KeysAbsent, res.Aliases, res.AliasesAbsent, res.Bytes, res.Digest}
}

// backupToFile writes the archive to a temp file beside out and links it
// to out only once the backup is complete: out never holds a partial
// archive, and an existing file is never replaced.
func backupToFile(r *run, c *client.Client, req client.BackupRequest, out string) (*client.BackupResult, error) {
	if _, err := os.Lstat(out); err == nil {
		return nil, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--out: %s exists; an archive is never overwritten", out),
			hint: "choose a new file name"}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--out: %v", err)}
	}
	tmp, err := os.CreateTemp(filepath.Dir(out), ".keyward-backup-*.partial")
	if err != nil {
		return nil, &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--out: %v", err)}
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	if err := tmp.Chmod(0o600); err != nil {
		return nil, err
	}
	res, err := c.Backup(r.ctx, req, tmp)
	if err != nil {
		return nil, err
	}
	if err := tmp.Sync(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	if err := tmp.Close(); err != nil {
		return nil, fmt.Errorf("writing %s: %w", out, err)
	}
	if err := os.Link(tmp.Name(), out); err != nil {
		return nil, &cliError{code: ExitError, name: "Error", msg: fmt.Sprintf("--out: %v (the archive was not kept)", err)}
	}
	return res, nil
}

func runRestore(r *run) error {
	r.setWhat("restore")
	in := r.str("in")
	if in == "" {
		return usagef("give --in FILE, the archive to restore")
	}
	var req client.RestoreRequest
	switch idf, pf := r.str("identity"), r.str("passphrase-file"); {
	case idf != "" && pf != "":
		return usagef("give --identity or --passphrase-file, not both")
	case idf != "":
		data, err := os.ReadFile(idf)
		if err != nil {
			return &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--identity: %v", err)}
		}
		req.Identity = string(data)
		clear(data)
	case pf != "":
		pass, err := secretFile("passphrase-file", pf)
		if err != nil {
			return err
		}
		req.Passphrase = pass
	default:
		return usagef("give --identity FILE or --passphrase-file FILE: the archive cannot be opened without its secret")
	}
	req.DryRun = r.boolean("dry-run")
	req.OnConflict = r.str("on-conflict")
	if req.OnConflict != "" && req.OnConflict != "fail" && req.OnConflict != "skip" {
		return usagef("--on-conflict takes fail or skip, not %q", req.OnConflict)
	}
	req.ExpectDigest = strings.ToLower(strings.TrimSpace(r.str("expect-digest")))
	f, err := os.Open(in)
	if err != nil {
		return &cliError{code: ExitUsage, name: "UsageError", msg: fmt.Sprintf("--in: %v", err)}
	}
	defer f.Close()
	if st, err := f.Stat(); err != nil || !st.Mode().IsRegular() {
		return usagef("--in must name a regular file (the archive is read twice: to sign its hash, then to send it)")
	}
	c, err := r.client()
	if err != nil {
		return err
	}
	rep, err := c.Restore(r.ctx, f, req)
	if err != nil {
		return err
	}
	conflicts := rep.Summary.Keys["conflict"] + rep.Summary.Aliases["conflict"]
	if r.json {
		if err := r.printJSON(rep); err != nil {
			return err
		}
	} else {
		printRestoreReport(r.stdout, rep)
	}
	switch {
	case !rep.Complete:
		return &cliError{code: ExitError, name: "RestoreIncomplete", msg: "the restore stopped at a failure; what was restored stays", hint: "fix the cause (the report says it) and run the same restore again: what exists is skipped"}
	case conflicts > 0:
		return &cliError{code: ExitConflict, name: "Conflict", msg: fmt.Sprintf("%d conflict(s): the restore would be refused with --on-conflict fail", conflicts), hint: "resolve them, or restore with --on-conflict skip"}
	}
	return nil
}

// printRestoreReport writes the archive, the counts and a line per key and
// alias.
func printRestoreReport(w io.Writer, rep *client.RestoreReport) {
	a := rep.Archive
	title := "restore"
	if rep.DryRun {
		title = "restore (dry run: nothing was written)"
	}
	fmt.Fprintln(w, title)
	writeFields(w, []field{
		{"archive", fmt.Sprintf("keyward-backup %d, made %s on a %s backend", a.FormatVersion, fmtTime(a.Created), a.SourceBackend)},
		{"material", materialText(a.Material)},
		{"digest", a.Digest},
		{"keys", fmtCounts(a.Keys, rep.Summary.Keys)},
		{"aliases", fmtCounts(a.Aliases, rep.Summary.Aliases)},
	})
	if a.Material == "metadata-only" {
		fmt.Fprintln(w, "METADATA ONLY: this archive holds no key material; it recreates no key")
	}
	rows := make([][]string, 0, len(rep.Keys))
	for _, k := range rep.Keys {
		rows = append(rows, []string{k.KeyID, k.Status, orDash(k.Reason)})
	}
	if len(rows) > 0 {
		fmt.Fprintln(w)
		writeTable(w, []string{"KEY", "STATUS", "REASON"}, rows)
	}
	rows = rows[:0]
	for _, al := range rep.Aliases {
		rows = append(rows, []string{al.AliasName, orDash(al.TargetKeyID), al.Status, orDash(al.Reason)})
	}
	if len(rows) > 0 {
		fmt.Fprintln(w)
		writeTable(w, []string{"ALIAS", "KEY", "STATUS", "REASON"}, rows)
	}
}

// fmtCounts is "200 in the archive: 198 restored, 2 exists".
func fmtCounts(total int, byStatus map[string]int) string {
	statuses := make([]string, 0, len(byStatus))
	for s := range byStatus {
		statuses = append(statuses, s)
	}
	slices.Sort(statuses)
	parts := make([]string, 0, len(statuses))
	for _, s := range statuses {
		parts = append(parts, fmt.Sprintf("%d %s", byStatus[s], s))
	}
	if len(parts) == 0 {
		return fmt.Sprintf("%d in the archive", total)
	}
	return fmt.Sprintf("%d in the archive: %s", total, strings.Join(parts, ", "))
}

// printJSONTo writes v as indented JSON on w.
func printJSONTo(w io.Writer, v any) error {
	saved := &run{stdout: w}
	return saved.printJSON(v)
}
