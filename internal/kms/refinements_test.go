package kms_test

import (
	"errors"
	"testing"

	"github.com/keyward/keyward/internal/kms"
)

// TestRefinedErrors: the finer error kinds the AWS door names apart are
// their parents for every other caller, with the same message.
func TestRefinedErrors(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "other"})
	_, _, blob, _ := f.svc.GenerateDataKey(ctx, "k", 32, nil)
	_, _, err := f.svc.Decrypt(ctx, blob, nil, "other")
	if !errors.Is(err, kms.ErrIncorrectKey) || !errors.Is(err, kms.ErrInvalidCiphertext) || err.Error() != `invalid ciphertext: the blob was not made under key_id "other"` {
		t.Errorf("decrypt under another key: %v", err)
	}
	f.svc.DisableKey(ctx, "k")
	_, _, err = f.svc.Decrypt(ctx, blob, nil, "")
	if !errors.Is(err, kms.ErrKeyDisabled) || !errors.Is(err, kms.ErrInvalidKeyState) || err.Error() != `invalid key state: key "k" is Disabled` {
		t.Errorf("decrypt on a disabled key: %v", err)
	}
	f.svc.ScheduleDeletion(ctx, "other", 7)
	_, _, _, err = f.svc.GenerateDataKey(ctx, "other", 32, nil)
	if errors.Is(err, kms.ErrKeyDisabled) || !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Errorf("generate on a pending key: %v", err)
	}
	for _, name := range []string{"app", "alias/aws/x", "alias/bad name"} {
		err := kms.ValidateAliasName(name)
		if !errors.Is(err, kms.ErrInvalidAliasName) || !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("alias name %q: %v", name, err)
		}
	}
	if errors.Is(kms.ErrInvalidRequest, kms.ErrInvalidAliasName) {
		t.Error("a parent must not be its refinement")
	}
}

// TestCancelDeletionTo: the admin API's cancel leaves the key Enabled, the
// AWS API's (CancelToDisabled) Disabled; neither applies to a key that is
// not pending.
func TestCancelDeletionTo(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	for _, id := range []string{"a", "b"} {
		f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: id})
		f.svc.ScheduleDeletion(ctx, id, 7)
	}
	if m, err := f.svc.CancelDeletion(ctx, "a"); err != nil || m.State != kms.StateEnabled || !m.DeletionDate.IsZero() {
		t.Errorf("cancel: %+v %v", m, err)
	}
	m, err := f.svc.CancelDeletion(ctx, "b", kms.CancelToDisabled)
	if err != nil || m.State != kms.StateDisabled || !m.DeletionDate.IsZero() {
		t.Errorf("cancel to disabled: %+v %v", m, err)
	}
	if d, _ := f.svc.DescribeKey(ctx, "b"); d.State != kms.StateDisabled {
		t.Errorf("stored state after cancel to disabled: %s", d.State)
	}
	if _, err := f.svc.CancelDeletion(ctx, "b", kms.CancelToDisabled); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Errorf("cancel of a key not pending: %v", err)
	}
}

func TestGenerateRandom(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	for _, n := range []int{0, -1, kms.MaxRandomBytes + 1} {
		if _, err := f.svc.GenerateRandom(n); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("GenerateRandom(%d): %v", n, err)
		}
	}
	for _, n := range []int{1, 32, kms.MaxRandomBytes} {
		b, err := f.svc.GenerateRandom(n)
		if err != nil || len(b) != n {
			t.Errorf("GenerateRandom(%d): %d bytes, %v", n, len(b), err)
		}
	}
}

// TestCreateKeyGenerateID: the AWS door's keys get a UUID even when they
// carry a "name" tag (which names the key on the admin API).
func TestCreateKeyGenerateID(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	m, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{Tags: map[string]string{"name": "not an id"}, GenerateID: true})
	if err != nil || len(m.ID) != 36 || m.Tags["name"] != "not an id" {
		t.Fatalf("create with GenerateID: %+v %v", m, err)
	}
	if m, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{Tags: map[string]string{"name": "named"}}); err != nil || m.ID != "named" {
		t.Fatalf("create by name tag: %+v %v", m, err)
	}
}

// TestRotationHistory: each rotation is recorded with its version and
// date; a record from before the list still shows its last rotation.
func TestRotationHistory(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"})
	m, _ := f.svc.DescribeKey(ctx, "k")
	if len(m.RotationHistory()) != 0 {
		t.Fatalf("new key: %+v", m.RotationHistory())
	}
	f.svc.RotateKey(ctx, "k")
	m, _ = f.svc.RotateKey(ctx, "k")
	h := m.RotationHistory()
	if len(h) != 2 || h[0].Version != 2 || h[1].Version != 3 || !h[1].Date.Equal(m.RotationDate) || h[0].Date.IsZero() {
		t.Fatalf("after two rotations: %+v", h)
	}
	d, _ := f.svc.DescribeKey(ctx, "k")
	if len(d.Rotations) != 2 {
		t.Fatalf("described: %+v", d.Rotations)
	}
	old := kms.Metadata{Version: 4, RotationDate: m.RotationDate, Rotations: h[:1:1]}
	if h := old.RotationHistory(); len(h) != 2 || h[1].Version != 4 || len(old.Rotations) != 1 {
		t.Fatalf("record that predates the list: %+v", h)
	}
}
