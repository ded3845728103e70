package backup

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// listPage is how many names one store listing call returns.
const listPage = 1000

// Listing is what a backup will hold: every key id and alias name the
// engine had when the backup started, sorted.
type Listing struct {
	KeyIDs     []string
	AliasNames []string
	// Material is MaterialIncluded or MaterialMetadataOnly.
	Material string
}

// List lists every key id and alias name (without opening a record), so
// that a backup can fail with a clear error before it starts streaming.
func List(ctx context.Context, a kms.Archiver) (Listing, error) {
	l := Listing{Material: MaterialIncluded}
	if !a.MaterialExportable() {
		l.Material = MaterialMetadataOnly
	}
	var err error
	if l.KeyIDs, err = listAll(ctx, a.KeyIDs); err != nil {
		return Listing{}, err
	}
	if l.AliasNames, err = listAll(ctx, a.AliasNames); err != nil {
		return Listing{}, err
	}
	return l, nil
}

func listAll(ctx context.Context, list func(context.Context, string, int) ([]string, bool, error)) ([]string, error) {
	var all []string
	after := ""
	for {
		names, more, err := list(ctx, after, listPage)
		if err != nil {
			return nil, err
		}
		all = append(all, names...)
		if !more || len(names) == 0 {
			return all, nil
		}
		after = names[len(names)-1]
	}
}

// Source describes the server a backup is made on, for the manifest.
type Source struct {
	Backend       string
	ServerVersion string
	Now           func() time.Time
}

// Write writes the archive of everything in l to w (the plaintext side of
// an age stream) and returns its summary. Each key is read with one read
// of its record (kms.Archiver.ExportKey), so it is in the archive as one
// consistent unit; a key created after the listing is not in it at all,
// and a listed key destroyed meanwhile, or whose record cannot be read,
// has an absent entry saying so. Any other failure (the backend
// unreachable) stops the backup: the caller must then not finish the age
// stream, so that the archive is unmistakably incomplete.
func Write(ctx context.Context, a kms.Archiver, w io.Writer, l Listing, src Source) (Summary, error) {
	bw, err := NewWriter(w, Manifest{
		Created:       src.Now(),
		ServerVersion: src.ServerVersion,
		Backend:       src.Backend,
		Material:      l.Material,
		KeyIDs:        l.KeyIDs,
		AliasNames:    l.AliasNames,
	})
	if err != nil {
		return Summary{}, err
	}
	for _, id := range l.KeyIDs {
		if err := ctx.Err(); err != nil {
			return Summary{}, err
		}
		k, err := a.ExportKey(ctx, id)
		switch {
		case err == nil:
			if l.Material == MaterialMetadataOnly {
				k.Wipe()
				for i := range k.Versions {
					k.Versions[i].Material = nil
				}
			}
			err = bw.Key(&k)
			k.Wipe()
		case errors.Is(err, kms.ErrNotFound):
			err = bw.KeyAbsent(id, "destroyed while the backup ran")
		case errors.Is(err, kms.ErrCorrupt):
			err = bw.KeyAbsent(id, "its record cannot be read (damaged, foreign, or sealed under another key); see `keyward key list`")
		default:
			return Summary{}, fmt.Errorf("backing up key %q: %w", id, err)
		}
		if err != nil {
			return Summary{}, err
		}
	}
	for _, name := range l.AliasNames {
		al, err := a.ExportAlias(ctx, name)
		switch {
		case err == nil:
			err = bw.Alias(al)
		case errors.Is(err, kms.ErrNotFound):
			err = bw.AliasAbsent(name, "deleted while the backup ran")
		case errors.Is(err, kms.ErrCorrupt):
			err = bw.AliasAbsent(name, "its record cannot be read")
		default:
			return Summary{}, fmt.Errorf("backing up alias %q: %w", name, err)
		}
		if err != nil {
			return Summary{}, err
		}
	}
	return bw.Finish()
}
