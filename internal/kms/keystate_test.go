package kms_test

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/kms"
)

func TestEnableDisable(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"})
	_, _, blob, _ := f.svc.GenerateDataKey(ctx, "k", 32, nil)
	m, err := f.svc.DisableKey(ctx, "k")
	if err != nil || m.State != kms.StateDisabled {
		t.Fatalf("disable: %+v %v", m, err)
	}
	if _, _, _, err := f.svc.GenerateDataKey(ctx, "k", 32, nil); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("generate on disabled: %v", err)
	}
	if _, _, err := f.svc.Decrypt(ctx, blob, nil, ""); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("decrypt on disabled: %v", err)
	}
	if _, _, err := f.svc.ReEncrypt(ctx, blob, nil, "", "k", nil); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("re-encrypt on disabled: %v", err)
	}
	if _, err := f.svc.RotateKey(ctx, "k"); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("rotate on disabled: %v", err)
	}
	if m, err := f.svc.EnableKey(ctx, "k"); err != nil || m.State != kms.StateEnabled {
		t.Fatalf("enable: %v", err)
	}
	if _, _, err := f.svc.Decrypt(ctx, blob, nil, ""); err != nil {
		t.Fatal(err)
	}
	f.svc.ScheduleDeletion(ctx, "k", 7)
	for name, op := range map[string]func() error{
		"enable":  func() error { _, err := f.svc.EnableKey(ctx, "k"); return err },
		"disable": func() error { _, err := f.svc.DisableKey(ctx, "k"); return err },
	} {
		if err := op(); !errors.Is(err, kms.ErrInvalidKeyState) {
			t.Errorf("%s on pending: %v", name, err)
		}
	}
}

// TestRotationKeepsOldBlobs makes blobs under versions 1, 2 and 3 and
// decrypts all of them; re-encrypt moves an old blob to the newest version
// and to another key.
func TestRotationKeepsOldBlobs(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "other"})
	var blobs, keys [][]byte
	for v := 1; v <= 3; v++ {
		_, pt, blob, err := f.svc.GenerateDataKey(ctx, "k", 32, map[string]string{"v": "x"})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := kms.ParseBlob(blob)
		if b.KeyVersion != uint32(v) {
			t.Fatalf("blob %d made under version %d", v, b.KeyVersion)
		}
		blobs, keys = append(blobs, blob), append(keys, pt)
		if v < 3 {
			f.clk.Add(time.Second)
			m, err := f.svc.RotateKey(ctx, "k")
			if err != nil || m.Version != uint32(v+1) || !m.RotationDate.Equal(f.clk.Now().UTC().Truncate(time.Microsecond)) {
				t.Fatalf("rotate: %+v %v", m, err)
			}
		}
	}
	f.svc.Engine().ClearCache()
	for i, blob := range blobs {
		_, pt, err := f.svc.Decrypt(ctx, blob, map[string]string{"v": "x"}, "")
		if err != nil || !bytes.Equal(pt, keys[i]) {
			t.Fatalf("blob under version %d: %v", i+1, err)
		}
	}
	id, moved, err := f.svc.ReEncrypt(ctx, blobs[0], map[string]string{"v": "x"}, "k", "k", map[string]string{"v": "y"})
	if b, _ := kms.ParseBlob(moved); err != nil || id != "k" || b.KeyVersion != 3 {
		t.Fatalf("re-encrypt to newest: %v", err)
	}
	if _, pt, err := f.svc.Decrypt(ctx, moved, map[string]string{"v": "y"}, ""); err != nil || !bytes.Equal(pt, keys[0]) {
		t.Fatalf("re-encrypted blob: %v", err)
	}
	_, moved, err = f.svc.ReEncrypt(ctx, blobs[0], map[string]string{"v": "x"}, "", "other", nil)
	if b, _ := kms.ParseBlob(moved); err != nil || b.KeyID != "other" {
		t.Fatalf("re-encrypt to other key: %v", err)
	}
	if _, _, err := f.svc.ReEncrypt(ctx, blobs[0], map[string]string{"v": "wrong"}, "", "other", nil); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Fatalf("re-encrypt with wrong source context: %v", err)
	}
	if _, _, err := f.svc.ReEncrypt(ctx, blobs[0], map[string]string{"v": "x"}, "other", "k", nil); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Fatalf("re-encrypt with wrong source key id: %v", err)
	}
}

func TestAutomaticRotation(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}, Day: time.Second})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "auto"})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "manual"})
	for _, p := range []int{89, 2561} {
		if _, err := f.svc.SetRotation(ctx, "auto", true, p); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Fatalf("period %d: %v", p, err)
		}
	}
	m, err := f.svc.SetRotation(ctx, "auto", true, 90)
	if err != nil || !m.RotationEnabled || f.svc.NextRotation(m).IsZero() {
		t.Fatalf("%+v %v", m, err)
	}
	f.clk.Add(89 * time.Second)
	if n, _ := f.svc.RotateDue(ctx); n != 0 {
		t.Fatal("rotated early")
	}
	f.clk.Add(time.Second)
	if n, err := f.svc.RotateDue(ctx); n != 1 || err != nil {
		t.Fatalf("due rotation: %d %v", n, err)
	}
	if n, _ := f.svc.RotateDue(ctx); n != 0 {
		t.Fatal("rotated twice for one period")
	}
	if m, _ := f.svc.DescribeKey(ctx, "auto"); m.Version != 2 {
		t.Fatalf("version %d", m.Version)
	}
	if m, _ := f.svc.DescribeKey(ctx, "manual"); m.Version != 1 {
		t.Fatal("key without rotation rotated")
	}
	if m, err := f.svc.SetRotation(ctx, "auto", false, 0); err != nil || m.RotationEnabled {
		t.Fatalf("disable rotation: %v", err)
	}
}

func TestDescriptionAndTags(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k", Tags: map[string]string{"a": "1"}})
	if m, err := f.svc.UpdateDescription(ctx, "k", "new"); err != nil || m.Description != "new" {
		t.Fatal(err)
	}
	m, err := f.svc.TagKey(ctx, "k", map[string]string{"b": "2", "a": "3"})
	if err != nil || m.Tags["a"] != "3" || m.Tags["b"] != "2" {
		t.Fatalf("%+v %v", m.Tags, err)
	}
	m, err = f.svc.UntagKey(ctx, "k", []string{"a", "zz"})
	if err != nil || len(m.Tags) != 1 || m.Tags["b"] != "2" {
		t.Fatalf("%+v %v", m.Tags, err)
	}
	f.svc.Engine().ClearCache()
	if m, _ := f.svc.DescribeKey(ctx, "k"); m.Description != "new" || m.Tags["b"] != "2" {
		t.Fatal("not persisted")
	}
	if _, err := f.svc.TagKey(ctx, "k", nil); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatal("empty tags accepted")
	}
	if _, err := f.svc.UpdateDescription(ctx, "missing", "x"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatal(err)
	}
}
