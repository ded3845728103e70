package kms_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

// A prefix listing returns exactly the ids with the prefix, in order,
// across pages, whatever sorts just before or after the prefix.
func TestListPrefix(t *testing.T) {
	f := newFixture(t, kms.Options{})
	ids := []string{"a", "a-", "a--", "a-0", "a-b", "a-b-c", "a-z", "a.", "a.b", "a0", "a_", "aa", "a,b", "b", "z-"}
	for _, id := range ids {
		if _, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: id}); err != nil && !strings.Contains(id, ",") {
			t.Fatal(err)
		}
	}
	list := func(in kms.ListInput) (got []string, pages int) {
		for {
			out, err := f.svc.ListKeys(ctx, in)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			for _, k := range out.Keys {
				got = append(got, k.ID)
			}
			if !out.Truncated {
				return got, pages
			}
			in.Marker = out.NextMarker
		}
	}
	for prefix, want := range map[string][]string{
		"a-":  {"a-", "a--", "a-0", "a-b", "a-b-c", "a-z"},
		"a-b": {"a-b", "a-b-c"},
		"a.":  {"a.", "a.b"},
		"a":   {"a", "a-", "a--", "a-0", "a-b", "a-b-c", "a-z", "a.", "a.b", "a0", "a_", "aa"},
		"z-":  {"z-"},
		"0":   nil,
		"zz":  nil,
		"":    {"a", "a-", "a--", "a-0", "a-b", "a-b-c", "a-z", "a.", "a.b", "a0", "a_", "aa", "b", "z-"},
	} {
		got, pages := list(kms.ListInput{Prefix: prefix, Limit: 2})
		if !slices.Equal(got, want) {
			t.Errorf("prefix %q: %v, want %v", prefix, got, want)
		}
		if len(want) > 2 && pages < 2 {
			t.Errorf("prefix %q: %d page(s)", prefix, pages)
		}
	}
	// Include leaves keys out; the pages still cover the rest.
	got, _ := list(kms.ListInput{Prefix: "a-", Limit: 2, Include: func(m kms.Metadata) bool { return m.ID != "a-0" && m.ID != "a-b" }})
	if !slices.Equal(got, []string{"a-", "a--", "a-b-c", "a-z"}) {
		t.Errorf("with Include: %v", got)
	}
}
