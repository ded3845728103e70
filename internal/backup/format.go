// Package backup is Keyward's backup archive (docs/backup.md): its format,
// the streamed writing of every key and alias of a running engine into it,
// and the verified reading and restoring of it into any engine.
//
// An archive is an age file (age-encryption.org/v1, to X25519 recipients
// or a scrypt passphrase) whose plaintext is archive format 1: JSON lines.
//
//	{"type":"manifest", "format":"keyward-backup", "format_version":1, ...}
//	{"type":"key", "prev":"<hex>", "key":{...}, "versions":[...]}       one per listed key id
//	{"type":"key_absent", "prev":"<hex>", "id":"...", "reason":"..."}
//	{"type":"alias", "prev":"<hex>", "alias":{...}}                    one per listed alias
//	{"type":"alias_absent", "prev":"<hex>", "name":"...", "reason":"..."}
//	{"type":"end", "prev":"<hex>", "keys":N, "keys_absent":N, ...}
//
// The manifest lists every key id and alias name, sorted; then comes
// exactly one entry for each, in that order, and the end line, and nothing
// after it. Each line after the manifest carries in "prev" the hash chain
// over everything before it: c0 = SHA-256("keyward-backup/v1\n" ||
// manifest line), c(i) = SHA-256(c(i-1) || line i), lines without their
// newline. The chain value after the end line is the archive's digest.
package backup

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// Format identification.
const (
	FormatName    = "keyward-backup"
	FormatVersion = 1
)

// Material modes of an archive.
const (
	MaterialIncluded     = "included"
	MaterialMetadataOnly = "metadata-only"
)

// MaxLine bounds one line of the plaintext: a key entry with thousands of
// versions and the largest tags and description fits; a line without end
// cannot make a reader allocate without bound.
const MaxLine = 8 << 20

// chainSeed starts the hash chain.
const chainSeed = "keyward-backup/v1\n"

// ErrArchive is wrapped by every refusal of an archive's content, together
// with kms.ErrInvalidRequest.
var ErrArchive = errors.New("backup archive refused")

func refuse(format string, args ...any) error {
	return fmt.Errorf("%w: %w: %s", kms.ErrInvalidRequest, ErrArchive, fmt.Sprintf(format, args...))
}

// Manifest is the first line of an archive.
type Manifest struct {
	Type          string    `json:"type"`
	Format        string    `json:"format"`
	FormatVersion int       `json:"format_version"`
	Created       time.Time `json:"created"`
	ServerVersion string    `json:"server_version"`
	// Backend is the source's backend type (local, vault, vault-transit).
	Backend string `json:"backend"`
	// Material is MaterialIncluded or MaterialMetadataOnly.
	Material string `json:"material"`
	// Note says in words what Material means for a restore.
	Note       string   `json:"note"`
	KeyCount   int      `json:"key_count"`
	AliasCount int      `json:"alias_count"`
	KeyIDs     []string `json:"key_ids"`
	AliasNames []string `json:"alias_names"`
}

// Note texts.
const (
	noteIncluded     = "every key version's material is in this archive; keep it as safe as the keys themselves"
	noteMetadataOnly = "metadata only: the keys' material stays in Vault Transit, which does not export it; a restore recreates no key from this archive, it only confirms keys that exist"
)

// keyJSON is a key's metadata in an archive. It is the archive's own
// shape, not kms.Metadata's, so that the format changes only on purpose.
type keyJSON struct {
	ID                 string            `json:"id"`
	Description        string            `json:"description"`
	State              kms.State         `json:"state"`
	Usage              string            `json:"usage"`
	Tags               map[string]string `json:"tags"`
	CreationDate       time.Time         `json:"creation_date"`
	DeletionDate       *time.Time        `json:"deletion_date"`
	CurrentVersion     uint32            `json:"current_version"`
	RotationDate       *time.Time        `json:"rotation_date"`
	RotationEnabled    bool              `json:"rotation_enabled"`
	RotationPeriodDays int               `json:"rotation_period_days"`
}

type versionJSON struct {
	Version uint32    `json:"version"`
	Created time.Time `json:"created"`
	// Material is standard base64; absent in a metadata-only archive.
	Material []byte `json:"material,omitempty"`
}

type aliasJSON struct {
	Name    string    `json:"name"`
	KeyID   string    `json:"key_id"`
	Created time.Time `json:"created"`
	Updated time.Time `json:"updated"`
}

// entry is every line after the manifest, as read.
type entry struct {
	Type     string        `json:"type"`
	Prev     string        `json:"prev"`
	Key      *keyJSON      `json:"key"`
	Versions []versionJSON `json:"versions"`
	Alias    *aliasJSON    `json:"alias"`
	ID       string        `json:"id"`
	Name     string        `json:"name"`
	Reason   string        `json:"reason"`
	// end line
	Keys          *int `json:"keys"`
	KeysAbsent    *int `json:"keys_absent"`
	Aliases       *int `json:"aliases"`
	AliasesAbsent *int `json:"aliases_absent"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func toKeyJSON(m *kms.Metadata) keyJSON {
	return keyJSON{
		ID: m.ID, Description: m.Description, State: m.State, Usage: m.Usage, Tags: m.Tags,
		CreationDate: m.CreationDate.UTC(), DeletionDate: optTime(m.DeletionDate),
		CurrentVersion: m.Version, RotationDate: optTime(m.RotationDate),
		RotationEnabled: m.RotationEnabled, RotationPeriodDays: m.RotationPeriodDays,
	}
}

func (k *keyJSON) metadata() kms.Metadata {
	m := kms.Metadata{
		ID: k.ID, Description: k.Description, State: k.State, Usage: k.Usage, Tags: k.Tags,
		CreationDate: k.CreationDate, Version: k.CurrentVersion,
		RotationEnabled: k.RotationEnabled, RotationPeriodDays: k.RotationPeriodDays,
	}
	if len(m.Tags) == 0 {
		m.Tags = nil
	}
	if k.DeletionDate != nil {
		m.DeletionDate = *k.DeletionDate
	}
	if k.RotationDate != nil {
		m.RotationDate = *k.RotationDate
	}
	return m
}

// chain is the running hash chain.
type chain [sha256.Size]byte

func newChain(manifestLine []byte) chain {
	h := sha256.New()
	h.Write([]byte(chainSeed))
	h.Write(manifestLine)
	var c chain
	h.Sum(c[:0])
	return c
}

func (c *chain) next(line []byte) {
	h := sha256.New()
	h.Write(c[:])
	h.Write(line)
	h.Sum(c[:0])
}

func (c *chain) hex() string { return hex.EncodeToString(c[:]) }

// Summary is what a finished archive holds.
type Summary struct {
	Keys, KeysAbsent       int
	Aliases, AliasesAbsent int
	// Digest is the hash chain's final value (docs/backup.md, "Digest").
	Digest string
}

// Writer writes archive format 1 to an (encrypting) stream. Lines are
// built in a buffer of its own that is wiped after each write, so that no
// copy of key material stays behind in memory it does not control.
type Writer struct {
	w        io.Writer
	m        Manifest
	c        chain
	buf      []byte
	keys     int // entries written so far
	aliases  int
	sum      Summary
	finished bool
}

// NewWriter writes the manifest. m.KeyIDs and m.AliasNames must be sorted
// and free of duplicates; the counts, format and note are set here.
func NewWriter(w io.Writer, m Manifest) (*Writer, error) {
	m.Type, m.Format, m.FormatVersion = "manifest", FormatName, FormatVersion
	m.KeyCount, m.AliasCount = len(m.KeyIDs), len(m.AliasNames)
	m.Created = m.Created.UTC()
	switch m.Material {
	case MaterialIncluded:
		m.Note = noteIncluded
	case MaterialMetadataOnly:
		m.Note = noteMetadataOnly
	default:
		return nil, fmt.Errorf("backup: unknown material mode %q", m.Material)
	}
	if m.KeyIDs == nil {
		m.KeyIDs = []string{}
	}
	if m.AliasNames == nil {
		m.AliasNames = []string{}
	}
	line, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("backup: encoding the manifest: %w", err)
	}
	bw := &Writer{w: w, m: m, c: newChain(line)}
	if _, err := w.Write(append(line, '\n')); err != nil {
		return nil, err
	}
	return bw, nil
}

// emit finishes the line in bw.buf (which starts with `{"type":...,"prev":...`),
// writes it, advances the chain and wipes the buffer.
func (bw *Writer) emit() error {
	line := bw.buf
	bw.c.next(line)
	_, err := bw.w.Write(append(line, '\n'))
	clear(bw.buf[:cap(bw.buf)])
	bw.buf = bw.buf[:0]
	return err
}

func (bw *Writer) start(typ string) {
	bw.buf = append(bw.buf[:0], `{"type":`...)
	bw.buf = strconv.AppendQuote(bw.buf, typ)
	bw.buf = append(bw.buf, `,"prev":"`...)
	bw.buf = append(bw.buf, bw.c.hex()...)
	bw.buf = append(bw.buf, '"')
}

// appendJSON appends a field whose value carries no secret.
func (bw *Writer) appendJSON(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("backup: encoding %s: %w", name, err)
	}
	bw.buf = append(bw.buf, ',', '"')
	bw.buf = append(bw.buf, name...)
	bw.buf = append(bw.buf, '"', ':')
	bw.buf = append(bw.buf, b...)
	return nil
}

func (bw *Writer) nextKey(id string) error {
	if bw.keys >= len(bw.m.KeyIDs) || bw.m.KeyIDs[bw.keys] != id {
		return fmt.Errorf("backup: key %q is not the next key of the manifest", id)
	}
	bw.keys++
	return nil
}

func (bw *Writer) nextAlias(name string) error {
	if bw.keys != len(bw.m.KeyIDs) || bw.aliases >= len(bw.m.AliasNames) || bw.m.AliasNames[bw.aliases] != name {
		return fmt.Errorf("backup: alias %q is not the next entry of the manifest", name)
	}
	bw.aliases++
	return nil
}

// Key writes a key entry; its material is base64-encoded straight into
// the writer's buffer.
func (bw *Writer) Key(k *kms.ExportedKey) error {
	if err := bw.nextKey(k.Metadata.ID); err != nil {
		return err
	}
	withMaterial := bw.m.Material == MaterialIncluded
	if withMaterial != k.HasMaterial() {
		return fmt.Errorf("backup: key %q: its material does not match the archive's mode %q", k.Metadata.ID, bw.m.Material)
	}
	bw.start("key")
	if err := bw.appendJSON("key", toKeyJSON(&k.Metadata)); err != nil {
		return err
	}
	bw.buf = append(bw.buf, `,"versions":[`...)
	for i, v := range k.Versions {
		if i > 0 {
			bw.buf = append(bw.buf, ',')
		}
		bw.buf = append(bw.buf, `{"version":`...)
		bw.buf = strconv.AppendUint(bw.buf, uint64(v.Version), 10)
		bw.buf = append(bw.buf, `,"created":"`...)
		bw.buf = v.Created.UTC().AppendFormat(bw.buf, time.RFC3339Nano)
		bw.buf = append(bw.buf, '"')
		if withMaterial {
			bw.buf = append(bw.buf, `,"material":"`...)
			bw.buf = base64.StdEncoding.AppendEncode(bw.buf, v.Material)
			bw.buf = append(bw.buf, '"')
		}
		bw.buf = append(bw.buf, '}')
	}
	bw.buf = append(bw.buf, `]}`...)
	bw.sum.Keys++
	return bw.emit()
}

// KeyAbsent records that a listed key is not in the archive (destroyed
// while the backup ran, or its record cannot be read).
func (bw *Writer) KeyAbsent(id, reason string) error {
	if err := bw.nextKey(id); err != nil {
		return err
	}
	bw.start("key_absent")
	if err := bw.appendJSON("id", id); err != nil {
		return err
	}
	if err := bw.appendJSON("reason", reason); err != nil {
		return err
	}
	bw.buf = append(bw.buf, '}')
	bw.sum.KeysAbsent++
	return bw.emit()
}

// Alias writes an alias entry.
func (bw *Writer) Alias(a kms.Alias) error {
	if err := bw.nextAlias(a.Name); err != nil {
		return err
	}
	bw.start("alias")
	if err := bw.appendJSON("alias", aliasJSON{Name: a.Name, KeyID: a.KeyID, Created: a.Created.UTC(), Updated: a.Updated.UTC()}); err != nil {
		return err
	}
	bw.buf = append(bw.buf, '}')
	bw.sum.Aliases++
	return bw.emit()
}

// AliasAbsent records that a listed alias is not in the archive.
func (bw *Writer) AliasAbsent(name, reason string) error {
	if err := bw.nextAlias(name); err != nil {
		return err
	}
	bw.start("alias_absent")
	if err := bw.appendJSON("name", name); err != nil {
		return err
	}
	if err := bw.appendJSON("reason", reason); err != nil {
		return err
	}
	bw.buf = append(bw.buf, '}')
	bw.sum.AliasesAbsent++
	return bw.emit()
}

// Finish writes the end line, once every listed key and alias has its
// entry, and returns the summary. It does not close the stream.
func (bw *Writer) Finish() (Summary, error) {
	if bw.finished {
		return Summary{}, errors.New("backup: archive already finished")
	}
	if bw.keys != len(bw.m.KeyIDs) || bw.aliases != len(bw.m.AliasNames) {
		return Summary{}, fmt.Errorf("backup: %d of %d keys and %d of %d aliases written", bw.keys, len(bw.m.KeyIDs), bw.aliases, len(bw.m.AliasNames))
	}
	bw.start("end")
	for _, f := range []struct {
		name string
		n    int
	}{{"keys", bw.sum.Keys}, {"keys_absent", bw.sum.KeysAbsent}, {"aliases", bw.sum.Aliases}, {"aliases_absent", bw.sum.AliasesAbsent}} {
		bw.buf = append(bw.buf, ',', '"')
		bw.buf = append(bw.buf, f.name...)
		bw.buf = append(bw.buf, '"', ':')
		bw.buf = strconv.AppendInt(bw.buf, int64(f.n), 10)
	}
	bw.buf = append(bw.buf, '}')
	if err := bw.emit(); err != nil {
		return Summary{}, err
	}
	bw.finished = true
	bw.sum.Digest = bw.c.hex()
	return bw.sum, nil
}

// Absent is a listed key or alias that the archive does not hold.
type Absent struct {
	Kind   string // "key" or "alias"
	Name   string
	Reason string
}

// Archive is a verified archive, read whole into memory.
type Archive struct {
	Manifest Manifest
	// Keys are the keys it holds, in id order. Wipe wipes their material.
	Keys    []kms.ExportedKey
	Aliases []kms.Alias
	Absent  []Absent
	// Digest is the hash chain's final value, hex.
	Digest string
}

// Wipe overwrites every key's material.
func (a *Archive) Wipe() {
	for i := range a.Keys {
		a.Keys[i].Wipe()
	}
}

// Parse reads and verifies the plaintext of an archive (after age
// decryption): the manifest, one entry per listed key and alias in order,
// the hash chain, the end line and its counts, nothing after it, and every
// key against the rules of the key service. Anything wrong is an error
// wrapping ErrArchive and kms.ErrInvalidRequest, and nothing of the
// archive is returned. Material is held in memory only, wiped by
// Archive.Wipe (and on any error).
func Parse(r io.Reader) (*Archive, error) {
	lr := &lineReader{r: r}
	defer lr.wipe()
	arc, err := parse(lr)
	if err != nil {
		if arc != nil {
			arc.Wipe()
		}
		return nil, err
	}
	return arc, nil
}

func parse(lr *lineReader) (*Archive, error) {
	line, err := lr.next()
	if err != nil {
		return nil, lineError(err, "the manifest")
	}
	arc := &Archive{}
	if err := parseManifest(line, &arc.Manifest); err != nil {
		return nil, err
	}
	p := &entryParser{arc: arc, m: &arc.Manifest}
	c := newChain(line)
	// An entry is decoded only once the next line's "prev" has proven it
	// is the entry the chain covers: pending holds it until then (in a
	// buffer of its own, wiped).
	var pending []byte
	defer func() { clear(pending) }()
	n := 0
	for {
		line, err := lr.next()
		if err == io.EOF && pending != nil {
			if err := p.entry(pending, n, true); err != nil {
				return arc, err
			}
			arc.Digest = c.hex()
			return arc, nil
		}
		if err != nil {
			return arc, lineError(err, "the end line")
		}
		n++
		var head struct {
			Prev string `json:"prev"`
		}
		if err := json.Unmarshal(line, &head); err != nil {
			return arc, refuse("entry %d is not JSON (damaged): %v", n, err)
		}
		if head.Prev != c.hex() {
			return arc, refuse("entry %d does not follow the one before it (hash chain broken: an entry is missing, reordered or altered)", max(n-1, 1))
		}
		if pending != nil {
			if err := p.entry(pending, n-1, false); err != nil {
				return arc, err
			}
		}
		clear(pending)
		pending = append(pending[:0], line...)
		c.next(line)
	}
}

// entryParser checks entries against the manifest, in order.
type entryParser struct {
	arc           *Archive
	m             *Manifest
	keys, aliases int
}

// entry decodes and checks entry number n (1-based after the manifest);
// last says whether it is the archive's last line.
func (p *entryParser) entry(line []byte, n int, last bool) error {
	arc, m := p.arc, p.m
	var e entry
	// json.Unmarshal decodes in place (a json.Decoder would keep a copy of
	// the line, material included, in a buffer nobody wipes).
	if err := json.Unmarshal(line, &e); err != nil {
		return refuse("entry %d does not decode: %v", n, err)
	}
	if last && e.Type != "end" {
		return refuse("truncated: it ends before the end line")
	}
	switch e.Type {
	case "key", "key_absent":
		if p.keys >= len(m.KeyIDs) || p.aliases > 0 {
			return refuse("more key entries than the manifest lists")
		}
		want := m.KeyIDs[p.keys]
		p.keys++
		if e.Type == "key_absent" {
			if e.ID != want {
				return refuse("key entry %d is %q, the manifest lists %q", p.keys, e.ID, want)
			}
			arc.Absent = append(arc.Absent, Absent{Kind: "key", Name: e.ID, Reason: e.Reason})
			return nil
		}
		k, err := e.exportedKey(m.Material == MaterialIncluded)
		if err != nil {
			return err
		}
		arc.Keys = append(arc.Keys, k)
		if k.Metadata.ID != want {
			return refuse("key entry %d is %q, the manifest lists %q", p.keys, k.Metadata.ID, want)
		}
	case "alias", "alias_absent":
		if p.keys != len(m.KeyIDs) || p.aliases >= len(m.AliasNames) {
			return refuse("an alias entry where the manifest lists none")
		}
		want := m.AliasNames[p.aliases]
		p.aliases++
		if e.Type == "alias_absent" {
			if e.Name != want {
				return refuse("alias entry %d is %q, the manifest lists %q", p.aliases, e.Name, want)
			}
			arc.Absent = append(arc.Absent, Absent{Kind: "alias", Name: e.Name, Reason: e.Reason})
			return nil
		}
		if e.Alias == nil || e.Alias.Name != want {
			return refuse("alias entry %d is not the alias %q the manifest lists", p.aliases, want)
		}
		a := kms.Alias{Name: e.Alias.Name, KeyID: e.Alias.KeyID, Created: e.Alias.Created, Updated: e.Alias.Updated}
		if err := kms.ValidateAliasName(a.Name); err != nil {
			return refuse("alias %q: %v", a.Name, err)
		}
		if err := kms.ValidateKeyID(a.KeyID); err != nil {
			return refuse("alias %q: %v", a.Name, err)
		}
		arc.Aliases = append(arc.Aliases, a)
	case "end":
		if !last {
			return refuse("data after the end line")
		}
		if p.keys != len(m.KeyIDs) || p.aliases != len(m.AliasNames) {
			return refuse("the archive ends after %d of %d keys and %d of %d aliases", p.keys, len(m.KeyIDs), p.aliases, len(m.AliasNames))
		}
		if e.Keys == nil || e.KeysAbsent == nil || e.Aliases == nil || e.AliasesAbsent == nil ||
			*e.Keys != len(arc.Keys) || *e.KeysAbsent != p.keys-len(arc.Keys) || *e.Aliases != len(arc.Aliases) || *e.AliasesAbsent != p.aliases-len(arc.Aliases) {
			return refuse("the end line's counts do not match the entries")
		}
	default:
		return refuse("entry %d has unknown type %q", n, e.Type)
	}
	return nil
}

func parseManifest(line []byte, m *Manifest) error {
	// The version first, leniently: a newer format must be reported as
	// such, not as whatever its first difference breaks.
	var head struct {
		Type          string `json:"type"`
		Format        string `json:"format"`
		FormatVersion int    `json:"format_version"`
	}
	if err := json.Unmarshal(line, &head); err != nil || head.Type != "manifest" || head.Format != FormatName {
		return refuse("not a Keyward backup archive (no manifest)")
	}
	if head.FormatVersion > FormatVersion {
		return refuse("archive format version %d is newer than this Keyward reads (%d): restore it with a newer Keyward", head.FormatVersion, FormatVersion)
	}
	if head.FormatVersion != FormatVersion {
		return refuse("unknown archive format version %d", head.FormatVersion)
	}
	if err := decodeStrict(line, m); err != nil {
		return refuse("the manifest does not decode: %v", err)
	}
	if m.Material != MaterialIncluded && m.Material != MaterialMetadataOnly {
		return refuse("unknown material mode %q", m.Material)
	}
	if m.KeyCount != len(m.KeyIDs) || m.AliasCount != len(m.AliasNames) {
		return refuse("the manifest's counts do not match its lists")
	}
	for i, id := range m.KeyIDs {
		if err := kms.ValidateKeyID(id); err != nil {
			return refuse("manifest: %v", err)
		}
		if i > 0 && m.KeyIDs[i-1] >= id {
			return refuse("manifest: key ids not in strictly ascending order")
		}
	}
	for i, name := range m.AliasNames {
		if err := kms.ValidateAliasName(name); err != nil {
			return refuse("manifest: %v", err)
		}
		if i > 0 && m.AliasNames[i-1] >= name {
			return refuse("manifest: alias names not in strictly ascending order")
		}
	}
	return nil
}

// exportedKey turns a key entry into a key, checked against the key
// service's rules. The versions' material slices pass to the key.
func (e *entry) exportedKey(withMaterial bool) (kms.ExportedKey, error) {
	if e.Key == nil {
		return kms.ExportedKey{}, refuse("a key entry without its key")
	}
	k := kms.ExportedKey{Metadata: e.Key.metadata(), Versions: make([]kms.ExportedVersion, len(e.Versions))}
	for i, v := range e.Versions {
		k.Versions[i] = kms.ExportedVersion{Version: v.Version, Created: v.Created, Material: v.Material}
	}
	if withMaterial != k.HasMaterial() {
		k.Wipe()
		return kms.ExportedKey{}, refuse("key %q: its material does not match the archive's mode", k.Metadata.ID)
	}
	if err := kms.ValidateExported(&k); err != nil {
		k.Wipe()
		return kms.ExportedKey{}, refuse("%v", err)
	}
	return k, nil
}

func decodeStrict(line []byte, v any) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	if dec.More() {
		return errors.New("trailing data")
	}
	return nil
}

func lineError(err error, what string) error {
	switch {
	case errors.Is(err, errLineTooLong):
		return refuse("%s: a line longer than %d bytes", what, MaxLine)
	case err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, errNoNewline):
		return refuse("truncated: it ends before %s", what)
	}
	return err
}

var (
	errLineTooLong = errors.New("line too long")
	errNoNewline   = errors.New("last line without newline")
)

// lineReader reads newline-terminated lines into a buffer of its own,
// wiped when done (lines hold key material in base64).
type lineReader struct {
	r          io.Reader
	buf        []byte
	start, end int
	eof        bool
	err        error
}

// next returns the next line without its newline, valid until the next
// call; io.EOF at the clean end.
func (l *lineReader) next() ([]byte, error) {
	for {
		if i := bytes.IndexByte(l.buf[l.start:l.end], '\n'); i >= 0 {
			line := l.buf[l.start : l.start+i]
			l.start += i + 1
			return line, nil
		}
		if l.eof {
			switch {
			case l.err != nil:
				return nil, l.err
			case l.start != l.end:
				return nil, errNoNewline
			}
			return nil, io.EOF
		}
		if l.end-l.start > MaxLine {
			return nil, errLineTooLong
		}
		if l.start > 0 { // move the partial line to the front
			n := copy(l.buf, l.buf[l.start:l.end])
			clear(l.buf[n:l.end])
			l.start, l.end = 0, n
		}
		if l.end == len(l.buf) {
			grown := make([]byte, max(64<<10, 2*len(l.buf)))
			copy(grown, l.buf[:l.end])
			clear(l.buf)
			l.buf = grown
		}
		n, err := l.r.Read(l.buf[l.end:])
		l.end += n
		if err == io.EOF {
			l.eof = true
		} else if err != nil {
			l.eof, l.err = true, err
		}
	}
}

func (l *lineReader) wipe() { clear(l.buf) }
