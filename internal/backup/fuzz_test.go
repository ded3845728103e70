package backup_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"regexp"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/backup"
	"github.com/keyward/keyward/internal/kms"
)

// FuzzParse feeds arbitrary plaintext to the archive parser (what follows
// age decryption: an archive is attacker-supplied bytes until verified).
// It must never panic, refuse with ErrArchive (or a read error), and what
// it accepts must satisfy the key service's rules and the manifest.
func FuzzParse(f *testing.F) {
	src := openStore(f)
	populate(f, src, 3)
	plain := plainArchive(f, src)
	f.Add(plain)
	lines := strings.SplitAfter(string(plain), "\n")
	f.Add([]byte(lines[0]))
	f.Add([]byte(lines[0] + lines[len(lines)-2]))
	f.Add([]byte(strings.Replace(string(plain), `"format_version":1`, `"format_version":2`, 1)))
	f.Add([]byte(`{"type":"manifest","format":"keyward-backup","format_version":1,"material":"included","key_ids":[],"alias_names":[]}` + "\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		// Most mutations break the hash chain, which the parser checks
		// first. Half of the inputs get their chain recomputed, so that
		// the fuzzer also reaches the entries' parsing and checks.
		if len(data) > 0 && data[0]&1 == 1 {
			data = rechain(data)
		}
		arc, err := backup.Parse(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, backup.ErrArchive) {
				t.Fatalf("refusal without ErrArchive: %v", err)
			}
			return
		}
		defer arc.Wipe()
		if len(arc.Keys)+countAbsent(arc, "key") != len(arc.Manifest.KeyIDs) || len(arc.Aliases)+countAbsent(arc, "alias") != len(arc.Manifest.AliasNames) {
			t.Fatalf("accepted an archive whose entries do not match its manifest")
		}
		for i := range arc.Keys {
			if err := kms.ValidateExported(&arc.Keys[i]); err != nil {
				t.Fatalf("accepted an invalid key: %v", err)
			}
		}
		if len(arc.Digest) != 64 {
			t.Fatalf("digest %q", arc.Digest)
		}
	})
}

var prevField = regexp.MustCompile(`"prev":"[0-9a-f]{64}"`)

// rechain rewrites every line's "prev" field with the hash chain the
// parser expects (format.go).
func rechain(data []byte) []byte {
	lines := bytes.SplitAfter(data, []byte("\n"))
	if len(lines) < 2 {
		return data
	}
	h := sha256.Sum256(append([]byte("keyward-backup/v1\n"), bytes.TrimSuffix(lines[0], []byte("\n"))...))
	out := bytes.Clone(lines[0])
	for _, l := range lines[1:] {
		body := bytes.TrimSuffix(l, []byte("\n"))
		body = prevField.ReplaceAll(body, []byte(`"prev":"`+hex.EncodeToString(h[:])+`"`))
		h = sha256.Sum256(append(h[:], body...))
		out = append(out, body...)
		if bytes.HasSuffix(l, []byte("\n")) {
			out = append(out, '\n')
		}
	}
	return out
}

func countAbsent(a *backup.Archive, kind string) int {
	n := 0
	for _, ab := range a.Absent {
		if ab.Kind == kind {
			n++
		}
	}
	return n
}
