// Package kmstest is the engine conformance suite: the keyring over every
// backend (local, vault, vault-transit) must pass it against its real
// store and material. Each behaviour is a named test function, so that a
// failure names the behaviour ("TestConformance/vault-transit/Rotate"), as
// golang.org/x/net/nettest's TestConn does.
package kmstest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

// Open returns a fresh, empty engine, and reopen, which returns a new
// engine over the same storage (a restart).
type Open func(t *testing.T) (e kms.Engine, reopen func() kms.Engine)

// Run runs every behaviour of the suite as a subtest of t.
func Run(t *testing.T, open Open) {
	for _, b := range []struct {
		name string
		test func(*testing.T, Open)
	}{
		{"CreateDescribeExists", CreateDescribeExists},
		{"ListPaging", ListPaging},
		{"UpdateAndDestroy", UpdateAndDestroy},
		{"WrapUnwrap", WrapUnwrap},
		{"Rotate", Rotate},
		{"ConcurrentCreatesOneWinner", ConcurrentCreatesOneWinner},
		{"ClearCacheKeepsData", ClearCacheKeepsData},
		{"Aliases", Aliases},
		{"AliasPaging", AliasPaging},
	} {
		t.Run(b.name, func(t *testing.T) { b.test(t, open) })
	}
}

var created = time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)

func meta(id string) kms.Metadata {
	return kms.Metadata{ID: id, State: kms.StateEnabled, Usage: kms.UsageEncryptDecrypt, CreationDate: created, Description: "d-" + id, Tags: map[string]string{"t": id}}
}

// CreateDescribeExists: a created key is version 1, survives a reopen with
// its metadata, and a second create of its id is ErrExists.
func CreateDescribeExists(t *testing.T, open Open) {
	ctx := context.Background()
	e, reopen := open(t)
	m, err := e.Create(ctx, meta("k1"))
	if err != nil || m.Version != 1 || m.ID != "k1" {
		t.Fatalf("create: %+v %v", m, err)
	}
	if _, err := e.Create(ctx, meta("k1")); !errors.Is(err, kms.ErrExists) {
		t.Fatalf("second create: %v", err)
	}
	if _, err := e.Describe(ctx, "nope"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("describe missing: %v", err)
	}
	got, err := reopen().Describe(ctx, "k1")
	if err != nil || got.Description != "d-k1" || got.Tags["t"] != "k1" || !got.CreationDate.Equal(created) || got.State != kms.StateEnabled || got.Version != 1 {
		t.Fatalf("describe after reopen: %+v %v", got, err)
	}
}

// ListPaging: pages of a listing come in id order, each after the last.
func ListPaging(t *testing.T, open Open) {
	ctx := context.Background()
	e, _ := open(t)
	for i := 0; i < 7; i++ {
		if _, err := e.Create(ctx, meta(fmt.Sprintf("p%d", i))); err != nil {
			t.Fatal(err)
		}
	}
	var ids []string
	after := ""
	for {
		page, err := e.List(ctx, after, 3)
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range page.Keys {
			ids = append(ids, k.ID)
		}
		if !page.More {
			break
		}
		after = page.Last
	}
	if fmt.Sprint(ids) != "[p0 p1 p2 p3 p4 p5 p6]" {
		t.Fatalf("ids %v", ids)
	}
}

// UpdateAndDestroy: updates persist, an aborted update changes nothing, a
// destroy's precondition is honoured, and a destroyed key is gone.
func UpdateAndDestroy(t *testing.T, open Open) {
	ctx := context.Background()
	e, reopen := open(t)
	e.Create(ctx, meta("u"))
	m, err := e.Update(ctx, "u", func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil })
	if err != nil || m.State != kms.StateDisabled {
		t.Fatalf("update: %+v %v", m, err)
	}
	boom := errors.New("abort")
	if _, err := e.Update(ctx, "u", func(m *kms.Metadata) error { m.State = kms.StateEnabled; return boom }); !errors.Is(err, boom) {
		t.Fatalf("aborted update: %v", err)
	}
	if got, _ := reopen().Describe(ctx, "u"); got.State != kms.StateDisabled {
		t.Fatalf("state after reopen: %v", got.State)
	}
	if _, err := e.Update(ctx, "missing", func(*kms.Metadata) error { return nil }); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("update missing: %v", err)
	}
	if err := e.Destroy(ctx, "u", func(kms.Metadata) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("precondition ignored: %v", err)
	}
	if err := e.Destroy(ctx, "u", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Describe(ctx, "u"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("destroyed key described: %v", err)
	}
	if err := e.Destroy(ctx, "u", nil); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("second destroy: %v", err)
	}
}

// WrapUnwrap: a wrap opens after a reopen, never repeats, and every
// mismatch (aad, key, version, tampering, truncation) is
// ErrInvalidCiphertext.
func WrapUnwrap(t *testing.T, open Open) {
	ctx := context.Background()
	e, reopen := open(t)
	e.Create(ctx, meta("w"))
	e.Create(ctx, meta("w2"))
	pt := []byte("a data key of 32 bytes, really!!")
	aad := []byte("header+context")
	ct, err := e.Wrap(ctx, "w", 1, pt, aad)
	if err != nil || bytes.Contains(ct, pt) {
		t.Fatalf("wrap: %v", err)
	}
	ct2, _ := e.Wrap(ctx, "w", 1, pt, aad)
	if bytes.Equal(ct, ct2) {
		t.Fatal("two wraps of one plaintext are identical (nonce reuse?)")
	}
	got, err := reopen().Unwrap(ctx, "w", 1, ct, aad)
	if err != nil || !bytes.Equal(got, pt) {
		t.Fatalf("unwrap after reopen: %v", err)
	}
	for name, c := range map[string]struct {
		id  string
		ver uint32
		ct  []byte
		aad []byte
	}{
		"wrong aad":     {"w", 1, ct, []byte("other")},
		"other key":     {"w2", 1, ct, aad},
		"tampered":      {"w", 1, flip(ct, len(ct)/2), aad},
		"tampered tail": {"w", 1, flip(ct, len(ct)-1), aad},
		"truncated":     {"w", 1, ct[:len(ct)-1], aad},
		"empty":         {"w", 1, nil, aad},
		"no version":    {"w", 9, ct, aad},
	} {
		if _, err := e.Unwrap(ctx, c.id, c.ver, c.ct, c.aad); !errors.Is(err, kms.ErrInvalidCiphertext) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := e.Unwrap(ctx, "gone", 1, ct, aad); !errors.Is(err, kms.ErrNotFound) {
		t.Errorf("unknown key: %v", err)
	}
}

// Rotate: a rotation makes version 2 current and keeps version 1 usable,
// across a reopen; a precondition aborts it; a missing key is ErrNotFound.
func Rotate(t *testing.T, open Open) {
	ctx := context.Background()
	e, reopen := open(t)
	e.Create(ctx, meta("r"))
	ct1, err := e.Wrap(ctx, "r", 1, []byte("under version 1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("not due")
	if _, err := e.Rotate(ctx, "r", func(kms.Metadata) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("rotate with a failing precondition: %v", err)
	}
	m, err := e.Rotate(ctx, "r", func(m kms.Metadata) error {
		if m.Version != 1 {
			return fmt.Errorf("precondition saw version %d", m.Version)
		}
		return nil
	})
	if err != nil || m.Version != 2 || m.RotationDate.IsZero() {
		t.Fatalf("rotate: %+v %v", m, err)
	}
	ct2, err := e.Wrap(ctx, "r", 2, []byte("under version 2"), nil)
	if err != nil {
		t.Fatal(err)
	}
	r := reopen()
	if got, _ := r.Describe(ctx, "r"); got.Version != 2 {
		t.Fatalf("version after reopen: %d", got.Version)
	}
	for _, c := range []struct {
		ver  uint32
		ct   []byte
		want string
	}{{1, ct1, "under version 1"}, {2, ct2, "under version 2"}} {
		if got, err := r.Unwrap(ctx, "r", c.ver, c.ct, nil); err != nil || string(got) != c.want {
			t.Errorf("version %d after rotation: %q %v", c.ver, got, err)
		}
	}
	if _, err := e.Rotate(ctx, "missing", func(kms.Metadata) error { return nil }); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("rotate a missing key: %v", err)
	}
}

// ConcurrentCreatesOneWinner: of 16 concurrent creates of one id exactly
// one succeeds, and its record is the one stored.
func ConcurrentCreatesOneWinner(t *testing.T, open Open) {
	ctx := context.Background()
	e, _ := open(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			m := meta("race")
			m.Description = fmt.Sprint(i)
			_, errs[i] = e.Create(ctx, m)
		}(i)
	}
	wg.Wait()
	winners, winner := 0, ""
	for i, err := range errs {
		switch {
		case err == nil:
			winners++
			winner = fmt.Sprint(i)
		case !errors.Is(err, kms.ErrExists):
			t.Errorf("loser %d: %v", i, err)
		}
	}
	if winners != 1 {
		t.Fatalf("%d winners", winners)
	}
	e.ClearCache()
	if got, _ := e.Describe(ctx, "race"); got.Description != winner {
		t.Fatalf("stored %q, winner %q", got.Description, winner)
	}
}

// ClearCacheKeepsData: clearing the cache loses nothing, and the backend
// is healthy.
func ClearCacheKeepsData(t *testing.T, open Open) {
	ctx := context.Background()
	e, _ := open(t)
	e.Create(ctx, meta("c"))
	ct, _ := e.Wrap(ctx, "c", 1, []byte("0123456789abcdef"), nil)
	e.ClearCache()
	if _, err := e.Unwrap(ctx, "c", 1, ct, nil); err != nil {
		t.Fatal(err)
	}
	if err := e.Health(ctx); err != nil {
		t.Fatal(err)
	}
}

// Aliases: an alias names one key, survives a reopen, is listed on its
// key, moves to another key, and goes with its key; a taken name, a
// missing key and a refused key state leave nothing behind.
func Aliases(t *testing.T, open Open) {
	ctx := context.Background()
	e, reopen := open(t)
	e.Create(ctx, meta("a1"))
	e.Create(ctx, meta("a2"))
	now := created.Add(time.Hour)
	al := kms.Alias{Name: "alias/team/app", KeyID: "a1", Created: now, Updated: now}
	any := func(kms.Metadata) error { return nil }
	if err := e.CreateAlias(ctx, al, any); err != nil {
		t.Fatal(err)
	}
	if err := e.CreateAlias(ctx, kms.Alias{Name: "alias/team/app", KeyID: "a2", Created: now, Updated: now}, any); !errors.Is(err, kms.ErrExists) {
		t.Fatalf("second create of a name: %v", err)
	}
	if err := e.CreateAlias(ctx, kms.Alias{Name: "alias/none", KeyID: "missing", Created: now, Updated: now}, any); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("alias of a missing key: %v", err)
	}
	refused := errors.New("state refused")
	if err := e.CreateAlias(ctx, kms.Alias{Name: "alias/refused", KeyID: "a2", Created: now, Updated: now}, func(kms.Metadata) error { return refused }); !errors.Is(err, refused) {
		t.Fatalf("alias refused by the check: %v", err)
	}
	for _, name := range []string{"alias/none", "alias/refused"} {
		if _, err := e.ResolveAlias(ctx, name); !errors.Is(err, kms.ErrNotFound) {
			t.Fatalf("%s left behind: %v", name, err)
		}
	}
	r := reopen()
	got, err := r.ResolveAlias(ctx, "alias/team/app")
	if err != nil || got.KeyID != "a1" || !got.Created.Equal(now) {
		t.Fatalf("resolve after reopen: %+v %v", got, err)
	}
	if m, _ := r.Describe(ctx, "a1"); fmt.Sprint(m.Aliases) != "[alias/team/app]" {
		t.Fatalf("a1's aliases: %v", m.Aliases)
	}
	later := now.Add(time.Hour)
	moved, old, err := e.UpdateAlias(ctx, "alias/team/app", "a2", later, any)
	if err != nil || old != "a1" || moved.KeyID != "a2" || !moved.Updated.Equal(later) || !moved.Created.Equal(now) {
		t.Fatalf("update: %+v %q %v", moved, old, err)
	}
	if _, _, err := e.UpdateAlias(ctx, "alias/nope", "a2", later, any); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("update of a missing alias: %v", err)
	}
	r = reopen()
	if got, _ := r.ResolveAlias(ctx, "alias/team/app"); got.KeyID != "a2" {
		t.Fatalf("resolve after update: %+v", got)
	}
	m1, _ := r.Describe(ctx, "a1")
	m2, _ := r.Describe(ctx, "a2")
	if len(m1.Aliases) != 0 || fmt.Sprint(m2.Aliases) != "[alias/team/app]" {
		t.Fatalf("aliases after the move: a1 %v, a2 %v", m1.Aliases, m2.Aliases)
	}
	e.CreateAlias(ctx, kms.Alias{Name: "alias/second", KeyID: "a2", Created: now, Updated: now}, any)
	if deleted, err := e.DeleteAlias(ctx, "alias/second"); err != nil || deleted.KeyID != "a2" {
		t.Fatalf("delete: %+v %v", deleted, err)
	}
	if _, err := e.DeleteAlias(ctx, "alias/second"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if err := e.Destroy(ctx, "a2", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := reopen().ResolveAlias(ctx, "alias/team/app"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("alias of a destroyed key: %v", err)
	}
}

// AliasPaging: aliases are listed in name order, page after page.
func AliasPaging(t *testing.T, open Open) {
	ctx := context.Background()
	e, _ := open(t)
	e.Create(ctx, meta("k"))
	names := []string{"alias/a", "alias/a-b", "alias/a/b", "alias/a_b", "alias/b", "alias/z/y/x"}
	for _, n := range names {
		if err := e.CreateAlias(ctx, kms.Alias{Name: n, KeyID: "k", Created: created, Updated: created}, func(kms.Metadata) error { return nil }); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	after := ""
	for {
		page, err := e.ListAliases(ctx, after, 4)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range page.Aliases {
			got = append(got, a.Name)
		}
		if !page.More {
			break
		}
		after = page.Last
	}
	if fmt.Sprint(got) != fmt.Sprint(names) {
		t.Fatalf("listed %v, want %v", got, names)
	}
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x80
	return c
}
