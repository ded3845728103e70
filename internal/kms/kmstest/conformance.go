// Package kmstest is the backend conformance suite: every kms.Backend
// (local, vault, vault-transit) must pass it against its real store.
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

// Run runs the suite. newBackend returns a fresh, empty backend; reopen
// returns a new backend instance over the same storage (a restart).
func Run(t *testing.T, newBackend func(t *testing.T) (b kms.Backend, reopen func() kms.Backend)) {
	ctx := context.Background()
	created := time.Date(2026, 5, 6, 7, 8, 9, 123456000, time.UTC)
	meta := func(id string) kms.Metadata {
		return kms.Metadata{ID: id, State: kms.StateEnabled, Usage: kms.UsageEncryptDecrypt, CreationDate: created, Description: "d-" + id, Tags: map[string]string{"t": id}}
	}

	t.Run("CreateDescribeExists", func(t *testing.T) {
		b, reopen := newBackend(t)
		m, err := b.Create(ctx, meta("k1"))
		if err != nil || m.Version != 1 || m.ID != "k1" {
			t.Fatalf("create: %+v %v", m, err)
		}
		if _, err := b.Create(ctx, meta("k1")); !errors.Is(err, kms.ErrExists) {
			t.Fatalf("second create: %v", err)
		}
		if _, err := b.Describe(ctx, "nope"); !errors.Is(err, kms.ErrNotFound) {
			t.Fatalf("describe missing: %v", err)
		}
		got, err := reopen().Describe(ctx, "k1")
		if err != nil || got.Description != "d-k1" || got.Tags["t"] != "k1" || !got.CreationDate.Equal(created) || got.State != kms.StateEnabled || got.Version != 1 {
			t.Fatalf("describe after reopen: %+v %v", got, err)
		}
	})

	t.Run("ListPaging", func(t *testing.T) {
		b, _ := newBackend(t)
		for i := 0; i < 7; i++ {
			if _, err := b.Create(ctx, meta(fmt.Sprintf("p%d", i))); err != nil {
				t.Fatal(err)
			}
		}
		var ids []string
		after := ""
		for {
			page, err := b.List(ctx, after, 3)
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
	})

	t.Run("UpdateAndDestroy", func(t *testing.T) {
		b, reopen := newBackend(t)
		b.Create(ctx, meta("u"))
		m, err := b.Update(ctx, "u", func(m *kms.Metadata) error { m.State = kms.StateDisabled; return nil })
		if err != nil || m.State != kms.StateDisabled {
			t.Fatalf("update: %+v %v", m, err)
		}
		boom := errors.New("abort")
		if _, err := b.Update(ctx, "u", func(m *kms.Metadata) error { m.State = kms.StateEnabled; return boom }); !errors.Is(err, boom) {
			t.Fatalf("aborted update: %v", err)
		}
		if got, _ := reopen().Describe(ctx, "u"); got.State != kms.StateDisabled {
			t.Fatalf("state after reopen: %v", got.State)
		}
		if _, err := b.Update(ctx, "missing", func(*kms.Metadata) error { return nil }); !errors.Is(err, kms.ErrNotFound) {
			t.Fatalf("update missing: %v", err)
		}
		if err := b.Destroy(ctx, "u", func(kms.Metadata) error { return boom }); !errors.Is(err, boom) {
			t.Fatalf("precondition ignored: %v", err)
		}
		if err := b.Destroy(ctx, "u", nil); err != nil {
			t.Fatal(err)
		}
		if _, err := b.Describe(ctx, "u"); !errors.Is(err, kms.ErrNotFound) {
			t.Fatalf("destroyed key described: %v", err)
		}
		if err := b.Destroy(ctx, "u", nil); !errors.Is(err, kms.ErrNotFound) {
			t.Fatalf("second destroy: %v", err)
		}
	})

	t.Run("WrapUnwrap", func(t *testing.T) {
		b, reopen := newBackend(t)
		b.Create(ctx, meta("w"))
		b.Create(ctx, meta("w2"))
		pt := []byte("a data key of 32 bytes, really!!")
		aad := []byte("header+context")
		ct, err := b.Wrap(ctx, "w", 1, pt, aad)
		if err != nil || bytes.Contains(ct, pt) {
			t.Fatalf("wrap: %v", err)
		}
		ct2, _ := b.Wrap(ctx, "w", 1, pt, aad)
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
			if _, err := b.Unwrap(ctx, c.id, c.ver, c.ct, c.aad); !errors.Is(err, kms.ErrInvalidCiphertext) {
				t.Errorf("%s: %v", name, err)
			}
		}
		if _, err := b.Unwrap(ctx, "gone", 1, ct, aad); !errors.Is(err, kms.ErrNotFound) {
			t.Errorf("unknown key: %v", err)
		}
	})

	t.Run("ConcurrentCreatesOneWinner", func(t *testing.T) {
		b, _ := newBackend(t)
		const n = 16
		var wg sync.WaitGroup
		errs := make([]error, n)
		for i := 0; i < n; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				m := meta("race")
				m.Description = fmt.Sprint(i)
				_, errs[i] = b.Create(ctx, m)
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
		b.ClearCache()
		if got, _ := b.Describe(ctx, "race"); got.Description != winner {
			t.Fatalf("stored %q, winner %q", got.Description, winner)
		}
	})

	t.Run("ClearCacheKeepsData", func(t *testing.T) {
		b, _ := newBackend(t)
		b.Create(ctx, meta("c"))
		ct, _ := b.Wrap(ctx, "c", 1, []byte("0123456789abcdef"), nil)
		b.ClearCache()
		if _, err := b.Unwrap(ctx, "c", 1, ct, nil); err != nil {
			t.Fatal(err)
		}
		if err := b.Health(ctx); err != nil {
			t.Fatal(err)
		}
	})
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i] ^= 0x80
	return c
}
