package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// recordFormat versions the KV data both backends write.
const recordFormat = 1

// kvRecord is the data of one KV v2 version under
// {kv_mount}/data/{key_path_prefix}/{key_id}: Sealed (base64 of the key's
// record, sealed by the record key), or Tombstone (a removal in progress;
// see kvStore.remove). Metadata is how Keyward 0.1's vault-transit backend
// stored a key (its metadata in the clear, no record); such records are
// still read (see kvRecords.Get) and sealed when they next change.
type kvRecord struct {
	Format    int           `json:"format"`
	Sealed    string        `json:"sealed,omitempty"`
	Metadata  *kms.Metadata `json:"metadata,omitempty"`
	Tombstone string        `json:"tombstone,omitempty"`
}

// kvStore keeps one KV v2 record per key id with check-and-set writes.
//
// Removal must have exactly one winner among nodes racing to destroy a key,
// and KV's own deletes are unconditional (both racers would "succeed").
// So a removal first writes a tombstone version with cas = the version it
// read (one racer wins, the others see the tombstone and get NotFound),
// then deletes the metadata (every version, for good). A tombstone reads
// as NotFound. One left behind by a crash is overwritten by a later Create
// once it is older than tombstoneGrace, and the dead versions below it are
// destroyed then.
type kvStore struct {
	c      *conn
	mount  string
	prefix string
	now    func() time.Time
	log    *slog.Logger
	// valid tells the names of the records kept (key ids, or alias store
	// names) from anything else under the prefix.
	valid func(string) bool
	// sealer seals tombstones, so that only a tombstone Keyward wrote lets
	// a later Create take the path over (and destroy its old versions).
	sealer keyring.Sealer
}

// tombstoneGrace: a younger tombstone is a removal still in progress on
// some node; Create reports the id as taken rather than race it.
const tombstoneGrace = time.Minute

func newKVStore(c *conn, mount, prefix string, sealer keyring.Sealer, now func() time.Time, log *slog.Logger) *kvStore {
	return &kvStore{c: c, mount: strings.Trim(mount, "/"), prefix: strings.Trim(prefix, "/"), sealer: sealer, now: now, log: log,
		valid: func(name string) bool { return kms.ValidateKeyID(name) == nil }}
}

// aliasesFolder is the folder of the alias records under the prefix. A
// key id cannot contain '/', so no key record is ever inside it (a key
// named "aliases" and the folder "aliases/" are different KV paths).
const aliasesFolder = "aliases"

// newAliasKVStore keeps alias records under {prefix}/aliases.
func newAliasKVStore(c *conn, mount, prefix string, sealer keyring.Sealer, now func() time.Time, log *slog.Logger) *kvStore {
	s := newKVStore(c, mount, strings.Trim(prefix, "/")+"/"+aliasesFolder, sealer, now, log)
	s.valid = keyring.ValidAliasStoreName
	return s
}

// path is {mount}/{kind}/{prefix}/{name}. Names are key ids, which cannot
// contain '/' or be "." or "..", so a name never leaves the prefix.
func (s *kvStore) path(kind, name string) (string, error) {
	if !s.valid(name) {
		return "", fmt.Errorf("%w: invalid record name %q", kms.ErrInvalidRequest, name)
	}
	return s.dir(kind) + "/" + name, nil
}

func (s *kvStore) dir(kind string) string {
	if s.prefix == "" {
		return s.mount + "/" + kind
	}
	return s.mount + "/" + kind + "/" + s.prefix
}

func casMismatch(err error) bool {
	return isStatus(err, http.StatusBadRequest, "check-and-set parameter did not match")
}

// get reads the latest version. Missing, soft-deleted, destroyed or
// tombstoned: kms.ErrNotFound. Present but not a record Keyward can read:
// kms.ErrCorrupt.
func (s *kvStore) get(ctx context.Context, name string) (kvRecord, uint64, error) {
	rec, ver, err := s.read(ctx, name)
	if err == nil && rec.Tombstone != "" {
		err = fmt.Errorf("%w: key %q", kms.ErrNotFound, name)
	}
	return rec, ver, err
}

// read is get without the tombstone rule. An unreadable record still
// comes with its version (so it can be destroyed).
func (s *kvStore) read(ctx context.Context, name string) (kvRecord, uint64, error) {
	p, err := s.path("data", name)
	if err != nil {
		return kvRecord{}, 0, fmt.Errorf("%w: key %q", kms.ErrNotFound, name)
	}
	var out struct {
		Data struct {
			Data     json.RawMessage `json:"data"`
			Metadata struct {
				Version uint64 `json:"version"`
			} `json:"metadata"`
		} `json:"data"`
	}
	err = s.c.call(ctx, http.MethodGet, p, nil, &out)
	if isStatus(err, http.StatusNotFound, "") {
		return kvRecord{}, 0, fmt.Errorf("%w: key %q", kms.ErrNotFound, name)
	}
	if err != nil {
		return kvRecord{}, 0, err
	}
	raw := out.Data.Data
	if len(raw) == 0 || string(raw) == "null" {
		return kvRecord{}, 0, fmt.Errorf("%w: key %q", kms.ErrNotFound, name)
	}
	var rec kvRecord
	if err := json.Unmarshal(raw, &rec); err != nil || rec.Format != recordFormat {
		return kvRecord{}, out.Data.Metadata.Version, fmt.Errorf("%w: key %q: the KV record is not a Keyward record (format %d)", kms.ErrCorrupt, name, rec.Format)
	}
	return rec, out.Data.Metadata.Version, nil
}

// write stores rec as a new version if the current version is cas (0: the
// path must not exist). It returns the new version.
func (s *kvStore) write(ctx context.Context, name string, rec kvRecord, cas uint64) (uint64, error) {
	p, err := s.path("data", name)
	if err != nil {
		return 0, err
	}
	body := map[string]any{"options": map[string]uint64{"cas": cas}, "data": rec}
	var out struct {
		Data struct {
			Version uint64 `json:"version"`
		} `json:"data"`
	}
	if err := s.c.call(ctx, http.MethodPut, p, body, &out); err != nil {
		return 0, err
	}
	return out.Data.Version, nil
}

// create stores a new record: kms.ErrExists when a live record, a
// removal in progress, or anything Keyward cannot prove is its own holds
// the name. It returns the new version.
func (s *kvStore) create(ctx context.Context, name string, rec kvRecord) (uint64, error) {
	for attempt := 0; ; attempt++ {
		ver, err := s.write(ctx, name, rec, 0)
		if !casMismatch(err) {
			return ver, err
		}
		// Something is there: a live record, what a removal left behind,
		// or an object that is not Keyward's.
		current, free, err := s.leftover(ctx, name)
		if err != nil {
			return 0, err
		}
		if !free || attempt >= 3 {
			return 0, fmt.Errorf("%w: key %q", kms.ErrExists, name)
		}
		if current == 0 {
			continue // removed meanwhile: try cas=0 again
		}
		ver, err = s.write(ctx, name, rec, current)
		if casMismatch(err) {
			continue
		}
		if err != nil {
			return 0, err
		}
		// The versions below ours belonged to the key the tombstone
		// removed: destroy their data for good. Version-specific, so it
		// cannot hurt ours.
		if err := s.destroyVersions(ctx, name, current); err != nil {
			s.log.Warn("vault: could not destroy the old KV versions of a reused key id", "key_id", name, "error", err)
		}
		return ver, nil
	}
}

// leftover inspects an existing path. free is true only when its current
// version is a Keyward tombstone older than tombstoneGrace (a removal that
// did not finish). A current version that is deleted or destroyed, or that
// is not a Keyward record, is not free: Keyward cannot prove it wrote it,
// so it never overwrites it. current 0 means the path vanished.
func (s *kvStore) leftover(ctx context.Context, name string) (current uint64, free bool, err error) {
	rec, ver, err := s.read(ctx, name)
	switch {
	case errors.Is(err, kms.ErrNotFound):
		// Gone, or its current version deleted or destroyed: which one
		// the metadata tells.
		return s.deletedOrGone(ctx, name)
	case errors.Is(err, kms.ErrCorrupt):
		return ver, false, nil // a live (if unreadable) object: taken
	case err != nil:
		return 0, false, err
	case rec.Tombstone == "":
		return ver, false, nil
	}
	if !s.ownTombstone(ctx, name, rec) {
		return ver, false, nil // not provably Keyward's: never taken over
	}
	at, perr := time.Parse(time.RFC3339Nano, rec.Tombstone)
	return ver, perr != nil || s.now().Sub(at) > tombstoneGrace, nil
}

// tombstoneAAD binds a tombstone to its full KV path.
func (s *kvStore) tombstoneAAD(name string) []byte {
	return []byte("keyward/tombstone/v1\x00" + s.dir("data") + "/" + name)
}

// newTombstone is a tombstone for name, sealed (see sealer).
func (s *kvStore) newTombstone(ctx context.Context, name string) (kvRecord, error) {
	ts := s.now().UTC().Format(time.RFC3339Nano)
	sealed, err := s.sealer.Seal(ctx, []byte(ts), s.tombstoneAAD(name))
	if err != nil {
		return kvRecord{}, err
	}
	return kvRecord{Format: recordFormat, Tombstone: ts, Sealed: base64.StdEncoding.EncodeToString(sealed)}, nil
}

// ownTombstone reports whether a tombstone is one Keyward wrote: its seal
// opens to its time under this path. A tombstone of an older release (not
// sealed) or a forged one is not.
func (s *kvStore) ownTombstone(ctx context.Context, name string, rec kvRecord) bool {
	sealed, err := base64.StdEncoding.DecodeString(rec.Sealed)
	if err != nil || len(sealed) == 0 {
		return false
	}
	plain, err := s.sealer.Open(ctx, sealed, s.tombstoneAAD(name))
	return err == nil && string(plain) == rec.Tombstone
}

// deletedOrGone: the path reads as absent. If its metadata is gone too it
// is free (current 0: try again); if a deleted or destroyed version is
// current, someone deleted it outside Keyward, and it stays taken.
func (s *kvStore) deletedOrGone(ctx context.Context, name string) (uint64, bool, error) {
	p, err := s.path("metadata", name)
	if err != nil {
		return 0, false, err
	}
	var out struct {
		Data struct {
			CurrentVersion uint64 `json:"current_version"`
		} `json:"data"`
	}
	err = s.c.call(ctx, http.MethodGet, p, nil, &out)
	if isStatus(err, http.StatusNotFound, "") {
		return 0, true, nil
	}
	if err != nil {
		return 0, false, err
	}
	return out.Data.CurrentVersion, false, nil
}

// update replaces the record if the current version is still rev:
// kms.ErrConflict otherwise.
func (s *kvStore) update(ctx context.Context, name string, rec kvRecord, rev uint64) (uint64, error) {
	ver, err := s.write(ctx, name, rec, rev)
	if casMismatch(err) {
		return 0, fmt.Errorf("%w: key %q changed concurrently", kms.ErrConflict, name)
	}
	return ver, err
}

// remove destroys the record at version rev for good. The tombstone write
// decides the single winner: a loser gets kms.ErrNotFound when the record
// is gone, kms.ErrConflict when it changed otherwise. destroyMaterial (may
// be nil) runs once the tombstone is in place; if it fails, the record is
// restored and its error returned. When the purge then fails, the key is
// already destroyed if destroyMaterial destroyed its material (the
// tombstone stays and reads as "not found"); otherwise the record, which
// holds the material, is restored so the destruction can be retried and
// no sealed material is left behind in KV.
func (s *kvStore) remove(ctx context.Context, name string, rec kvRecord, rev uint64, destroyMaterial func() error) error {
	stone, err := s.newTombstone(ctx, name)
	if err != nil {
		return err
	}
	tomb, err := s.update(ctx, name, stone, rev)
	if errors.Is(err, kms.ErrConflict) {
		if _, _, gerr := s.get(ctx, name); errors.Is(gerr, kms.ErrNotFound) {
			return gerr
		}
	}
	if err != nil {
		return err
	}
	restore := func(cause error) error {
		if _, rerr := s.update(ctx, name, rec, tomb); rerr != nil {
			s.log.Error("vault: could not restore a key record after a failed destruction; it reads as not found", "key_id", name, "error", rerr)
		}
		return cause
	}
	if destroyMaterial != nil {
		if err := destroyMaterial(); err != nil {
			return restore(err)
		}
	}
	if err := s.purge(ctx, name); err != nil {
		if destroyMaterial != nil {
			s.log.Warn("vault: key destroyed, but its KV record could not be deleted; a tombstone stays", "key_id", name, "error", err)
			return nil
		}
		return restore(err)
	}
	return nil
}

// purge deletes the metadata and every version of a record.
func (s *kvStore) purge(ctx context.Context, name string) error {
	p, err := s.path("metadata", name)
	if err != nil {
		return err
	}
	return s.c.call(ctx, http.MethodDelete, p, nil, nil)
}

// destroyVersions permanently destroys versions 1..upto of a record.
func (s *kvStore) destroyVersions(ctx context.Context, name string, upto uint64) error {
	p, err := s.path("destroy", name)
	if err != nil {
		return err
	}
	versions := make([]uint64, 0, upto)
	for v := uint64(1); v <= upto; v++ {
		versions = append(versions, v)
	}
	return s.c.call(ctx, http.MethodPut, p, map[string]any{"versions": versions}, nil)
}

// list returns the names after `after` in byte order, at most limit, and
// whether more follow. KV v2 LIST is not paginated: the whole prefix is
// listed and paged here. Entries that are not key ids (sub-folders,
// foreign names) are ignored; tombstones are listed (readers skip them).
func (s *kvStore) list(ctx context.Context, after string, limit int) ([]string, bool, error) {
	var out struct {
		Data struct {
			Keys []string `json:"keys"`
		} `json:"data"`
	}
	err := s.c.call(ctx, "LIST", s.dir("metadata"), nil, &out)
	if isStatus(err, http.StatusNotFound, "") {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	names := out.Data.Keys[:0]
	for _, k := range out.Data.Keys {
		if k > after && s.valid(k) {
			names = append(names, k)
		}
	}
	sort.Strings(names)
	if limit < 0 {
		limit = 0
	}
	if len(names) > limit {
		return names[:limit], true, nil
	}
	return names, false, nil
}

// holdsKeys reports whether any live or unreadable record exists.
func (s *kvStore) holdsKeys(ctx context.Context) (bool, error) {
	after := ""
	for {
		names, more, err := s.list(ctx, after, 100)
		if err != nil {
			return false, err
		}
		for _, n := range names {
			_, _, err := s.get(ctx, n)
			if err == nil || errors.Is(err, kms.ErrCorrupt) {
				return true, nil
			}
			if !errors.Is(err, kms.ErrNotFound) {
				return false, err
			}
			after = n
		}
		if !more {
			return false, nil
		}
	}
}
