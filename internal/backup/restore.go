package backup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/keyward/keyward/internal/kms"
)

// Conflict rules of a restore: what to do with a key or alias of the
// archive whose id already exists with other content (or that cannot be
// restored at all). A key or alias that exists identically is never a
// conflict: it is reported as "exists" and left alone, which is what makes
// a restore idempotent.
const (
	OnConflictFail = "fail"
	OnConflictSkip = "skip"
)

// RestoreOptions of a restore.
type RestoreOptions struct {
	// DryRun plans and reports, and writes nothing.
	DryRun bool
	// OnConflict is OnConflictFail (the default) or OnConflictSkip.
	OnConflict string
}

// Statuses in a restore report.
const (
	StatusRestored     = "restored"      // written by this restore
	StatusWouldRestore = "would_restore" // dry run: would be written
	StatusExists       = "exists"        // already there, identical: nothing to do
	StatusConflict     = "conflict"      // dry run, or refused: exists with other content, or cannot be restored
	StatusSkipped      = "skipped"       // not written: a conflict under on_conflict=skip, or absent from the archive
	StatusFailed       = "failed"        // writing it failed
	StatusNotAttempted = "not_attempted" // not tried: the restore stopped at an earlier failure
)

// KeyResult is one key of a report.
type KeyResult struct {
	KeyID  string `json:"key_id"`
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
}

// AliasResult is one alias of a report.
type AliasResult struct {
	AliasName   string `json:"alias_name"`
	TargetKeyID string `json:"target_key_id,omitempty"`
	Status      string `json:"status"`
	Reason      string `json:"reason,omitempty"`
}

// Report is what a restore did (or, in a dry run, would do).
type Report struct {
	DryRun     bool
	OnConflict string
	// Complete is false when a write failed and the restore stopped.
	Complete bool
	Keys     []KeyResult
	Aliases  []AliasResult
}

// Count returns how many keys and aliases have each status.
func (r *Report) Count() (keys, aliases map[string]int) {
	keys, aliases = map[string]int{}, map[string]int{}
	for _, k := range r.Keys {
		keys[k.Status]++
	}
	for _, a := range r.Aliases {
		aliases[a.Status]++
	}
	return keys, aliases
}

// plan of one key.
type keyPlan struct {
	key    *kms.ExportedKey
	status string // restore, exists, conflict
	reason string
}

// Restore restores a verified archive into a: it plans every key and alias
// first (compares each with what exists, checks each new one can be
// imported), and writes nothing when the plan has a conflict under
// on_conflict=fail (the error wraps kms.ErrConflict and names the first
// conflicts) or when DryRun is set. Then it imports the new keys, then the
// new aliases. A write that fails stops the restore; the report says what
// was written (run it again to finish: what exists is skipped).
func Restore(ctx context.Context, a kms.Archiver, arc *Archive, o RestoreOptions) (*Report, error) {
	switch o.OnConflict {
	case "":
		o.OnConflict = OnConflictFail
	case OnConflictFail, OnConflictSkip:
	default:
		return nil, fmt.Errorf("%w: on_conflict must be %q or %q", kms.ErrInvalidRequest, OnConflictSkip, OnConflictFail)
	}
	rep := &Report{DryRun: o.DryRun, OnConflict: o.OnConflict, Complete: true}

	// Plan the keys.
	plans := make([]keyPlan, len(arc.Keys))
	restorable := map[string]bool{} // ids that exist or will after the restore
	var conflicts []string
	for i := range arc.Keys {
		k := &arc.Keys[i]
		p := keyPlan{key: k}
		cmp, err := a.CompareKey(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("comparing key %q: %w", k.Metadata.ID, err)
		}
		switch {
		case cmp.Identical:
			p.status = StatusExists
			if !cmp.MaterialCompared {
				p.reason = "metadata and versions identical (the archive holds no material to compare)"
			}
		case cmp.Exists:
			p.status, p.reason = StatusConflict, "a key with this id exists and differs: "+strings.Join(cmp.Differences, ", ")
		default:
			if err := a.CheckImport(ctx, k); err != nil {
				if !errors.Is(err, kms.ErrConflict) && !errors.Is(err, kms.ErrNotImplemented) {
					return nil, fmt.Errorf("checking key %q: %w", k.Metadata.ID, err)
				}
				p.status, p.reason = StatusConflict, reasonOf(err)
			} else {
				p.status = "restore"
			}
		}
		if p.status == StatusConflict {
			conflicts = append(conflicts, fmt.Sprintf("key %q: %s", k.Metadata.ID, p.reason))
		} else {
			restorable[k.Metadata.ID] = true
		}
		plans[i] = p
	}

	// Plan the aliases: an alias goes with its key.
	type aliasPlan struct {
		alias          kms.Alias
		status, reason string
	}
	aplans := make([]aliasPlan, len(arc.Aliases))
	for i, al := range arc.Aliases {
		p := aliasPlan{alias: al}
		cur, err := a.ExportAlias(ctx, al.Name)
		switch {
		case err == nil && cur.KeyID == al.KeyID:
			p.status = StatusExists
		case err == nil:
			p.status, p.reason = StatusConflict, fmt.Sprintf("the alias exists and points at key %q", cur.KeyID)
		case errors.Is(err, kms.ErrNotFound):
			if restorable[al.KeyID] {
				p.status = "restore"
			} else {
				p.status, p.reason = StatusConflict, fmt.Sprintf("its key %q is not restored", al.KeyID)
			}
		case errors.Is(err, kms.ErrCorrupt):
			p.status, p.reason = StatusConflict, "an alias record of that name exists and cannot be read"
		default:
			return nil, fmt.Errorf("comparing alias %q: %w", al.Name, err)
		}
		if p.status == StatusConflict {
			conflicts = append(conflicts, fmt.Sprintf("alias %q: %s", al.Name, p.reason))
		}
		aplans[i] = p
	}

	if len(conflicts) > 0 && o.OnConflict == OnConflictFail && !o.DryRun {
		shown := conflicts[:min(3, len(conflicts))]
		more := ""
		if len(conflicts) > len(shown) {
			more = fmt.Sprintf(" (and %d more)", len(conflicts)-len(shown))
		}
		return nil, fmt.Errorf("%w: the restore was refused and nothing was written: %d key(s) or alias(es) conflict: %s%s; a dry run reports them all, and on_conflict=skip restores the rest",
			kms.ErrConflict, len(conflicts), strings.Join(shown, "; "), more)
	}

	// Apply.
	stopped := false
	for _, p := range plans {
		id := p.key.Metadata.ID
		res := KeyResult{KeyID: id, Status: p.status, Reason: p.reason}
		switch {
		case p.status == StatusConflict && !o.DryRun:
			res.Status = StatusSkipped
		case p.status != "restore":
		case o.DryRun:
			res.Status = StatusWouldRestore
		case stopped:
			res.Status = StatusNotAttempted
		default:
			err := a.ImportKey(ctx, p.key)
			switch {
			case err == nil:
				res.Status = StatusRestored
			case errors.Is(err, kms.ErrExists) && o.OnConflict == OnConflictSkip:
				res.Status, res.Reason = StatusSkipped, "created by someone else while the restore ran"
				restorable[id] = false
			default:
				res.Status, res.Reason = StatusFailed, reasonOf(err)
				rep.Complete, stopped = false, true
				restorable[id] = false
			}
		}
		rep.Keys = append(rep.Keys, res)
	}
	for _, ab := range arc.Absent {
		if ab.Kind == "key" {
			rep.Keys = append(rep.Keys, KeyResult{KeyID: ab.Name, Status: StatusSkipped, Reason: "not in the archive: " + ab.Reason})
		}
	}
	for _, p := range aplans {
		res := AliasResult{AliasName: p.alias.Name, TargetKeyID: p.alias.KeyID, Status: p.status, Reason: p.reason}
		switch {
		case p.status == StatusConflict && !o.DryRun:
			res.Status = StatusSkipped
		case p.status != "restore":
		case o.DryRun:
			res.Status = StatusWouldRestore
		case stopped || !restorable[p.alias.KeyID]:
			res.Status = StatusNotAttempted
		default:
			err := a.ImportAlias(ctx, p.alias)
			switch {
			case err == nil:
				res.Status = StatusRestored
			case errors.Is(err, kms.ErrExists) && o.OnConflict == OnConflictSkip:
				res.Status, res.Reason = StatusSkipped, "created by someone else while the restore ran"
			default:
				res.Status, res.Reason = StatusFailed, reasonOf(err)
				rep.Complete, stopped = false, true
			}
		}
		rep.Aliases = append(rep.Aliases, res)
	}
	for _, ab := range arc.Absent {
		if ab.Kind == "alias" {
			rep.Aliases = append(rep.Aliases, AliasResult{AliasName: ab.Name, Status: StatusSkipped, Reason: "not in the archive: " + ab.Reason})
		}
	}
	return rep, nil
}

// reasonOf is an error's text for a report: the domain errors' messages
// are written by Keyward and carry no secret; anything else is summarized
// (the server logs the details).
func reasonOf(err error) string {
	for _, e := range []error{kms.ErrConflict, kms.ErrExists, kms.ErrInvalidRequest, kms.ErrNotImplemented, kms.ErrUnavailable, kms.ErrNotFound, kms.ErrCorrupt} {
		if errors.Is(err, e) {
			return err.Error()
		}
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return "the restore ran out of time"
	}
	return "the backend failed: " + err.Error()
}
