package cli

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/keyward/keyward/client"
)

// printJSON writes v as indented JSON on stdout.
func (r *run) printJSON(v any) error {
	enc := json.NewEncoder(r.stdout)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(v)
}

// printf writes a human line on stdout.
func (r *run) printf(format string, args ...any) { fmt.Fprintf(r.stdout, format, args...) }

// sanitize makes a server-provided string safe for a terminal and a table
// cell: control characters (tabs, newlines, escapes) and invalid UTF-8
// are escaped Go-style.
func sanitize(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) && strings.ToValidUTF8(s, "") == s {
		return s
	}
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
}

// trimWriter buffers aligned output and writes it without trailing blanks.
type trimWriter struct {
	w   io.Writer
	buf bytes.Buffer
}

func (t *trimWriter) Write(p []byte) (int, error) { return t.buf.Write(p) }

func (t *trimWriter) flush() {
	for line := range strings.Lines(t.buf.String()) {
		io.WriteString(t.w, strings.TrimRight(line, " \n")+"\n")
	}
}

// newTabWriter aligns columns, three spaces apart; flush it with done.
func newTabWriter(w io.Writer) (*tabwriter.Writer, func()) {
	t := &trimWriter{w: w}
	tw := tabwriter.NewWriter(t, 0, 8, 3, ' ', 0)
	return tw, func() { tw.Flush(); t.flush() }
}

// writeTable writes rows under header as aligned columns.
func writeTable(w io.Writer, header []string, rows [][]string) {
	tw, done := newTabWriter(w)
	line := func(cells []string) {
		for i, c := range cells {
			if i > 0 {
				io.WriteString(tw, "\t")
			}
			io.WriteString(tw, sanitize(c))
		}
		io.WriteString(tw, "\n")
	}
	line(header)
	for _, row := range rows {
		line(row)
	}
	done()
}

// field is one line of a vertical table.
type field struct{ label, value string }

// writeFields writes label/value pairs as two aligned columns.
func writeFields(w io.Writer, fields []field) {
	tw, done := newTabWriter(w)
	for _, f := range fields {
		fmt.Fprintf(tw, "%s\t%s\n", f.label, sanitize(f.value))
	}
	done()
}

// fmtTime formats a timestamp for humans: RFC 3339, UTC, seconds.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

func fmtTags(tags map[string]string) string {
	if len(tags) == 0 {
		return "-"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(tags)) {
		parts = append(parts, k+"="+tags[k])
	}
	return strings.Join(parts, ", ")
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// keyFields is the vertical table of a key's metadata.
func keyFields(m *client.KeyMetadata) []field {
	fs := []field{
		{"Key ID", m.KeyID},
		{"State", string(m.KeyState)},
		{"Description", orDash(m.Description)},
		{"Usage", orDash(m.KeyUsage)},
		{"Created", fmtTime(m.CreationDate)},
		{"Version", strconv.FormatUint(uint64(m.KeyVersion), 10)},
	}
	if m.RotationDate != nil {
		fs = append(fs, field{"Last rotated", fmtTime(*m.RotationDate)})
	}
	rot := "off"
	if m.RotationEnabled {
		rot = "on"
		if m.RotationPeriodDays > 0 {
			rot = fmt.Sprintf("every %d days", m.RotationPeriodDays)
		}
		if m.NextRotationDate != nil {
			rot += ", next " + fmtTime(*m.NextRotationDate)
		}
	}
	fs = append(fs, field{"Auto rotation", rot})
	if m.DeletionDate != nil {
		fs = append(fs, field{"Deletion date", fmtTime(*m.DeletionDate)})
	}
	fs = append(fs, field{"Tags", fmtTags(m.Tags)})
	if len(m.Aliases) > 0 {
		fs = append(fs, field{"Aliases", sanitize(strings.Join(m.Aliases, ", "))})
	}
	return fs
}

// printKey prints a key's metadata: a vertical table, or JSON.
func (r *run) printKey(m *client.KeyMetadata) error {
	if r.json {
		return r.printJSON(m)
	}
	writeFields(r.stdout, keyFields(m))
	return nil
}
