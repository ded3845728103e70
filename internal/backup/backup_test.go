package backup_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keyward/keyward/internal/backend/local"
	"github.com/keyward/keyward/internal/backup"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
)

// store is a keyring over a real local key directory, and the service
// over it.
type store struct {
	kr  *keyring.Keyring
	svc *kms.Service
}

func openStore(t testing.TB) *store {
	t.Helper()
	dir := t.TempDir()
	keys, err := local.OpenFileStore(filepath.Join(dir, "keys"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	aliases, err := local.OpenAliasStore(filepath.Join(dir, "keys"), 0o600)
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := local.NewRootKeySealer(filepath.Join(dir, local.DefaultRootKeyFile), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	kr := keyring.New(keyring.Options{Store: keys, Aliases: aliases, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader}, Now: time.Now})
	t.Cleanup(func() { kr.Close() })
	return &store{kr: kr, svc: kms.NewService(kr, kms.Options{Now: time.Now, Rand: rand.Reader})}
}

type blob struct {
	keyID string
	blob  []byte
	plain []byte
	ctx   map[string]string
}

// populate makes keys in every state, rotated ones, tags, a rotation
// schedule and aliases, and a blob under every version of every key.
func populate(t testing.TB, s *store, n int) []blob {
	t.Helper()
	ctx := context.Background()
	var blobs []blob
	gen := func(id string) {
		ec := map[string]string{"key": id, "n": fmt.Sprint(len(blobs))}
		_, plain, b, err := s.svc.GenerateDataKey(ctx, id, 32, ec)
		if err != nil {
			t.Fatal(err)
		}
		blobs = append(blobs, blob{id, b, plain, ec})
	}
	for i := range n {
		id := fmt.Sprintf("key-%03d", i)
		in := kms.CreateKeyInput{KeyID: id, Description: "key " + id}
		if i%3 == 0 {
			in.Tags = map[string]string{"team": fmt.Sprint(i % 5), "env": "test"}
		}
		if _, err := s.svc.CreateKey(ctx, in); err != nil {
			t.Fatal(err)
		}
		gen(id)
		for r := 0; r < i%4; r++ {
			if _, err := s.svc.RotateKey(ctx, id); err != nil {
				t.Fatal(err)
			}
			gen(id)
		}
		if i%7 == 0 {
			if _, err := s.svc.SetRotation(ctx, id, true, 90); err != nil {
				t.Fatal(err)
			}
		}
		if i%5 == 0 {
			if _, err := s.svc.CreateAlias(ctx, fmt.Sprintf("alias/app/%d", i), id); err != nil {
				t.Fatal(err)
			}
		}
		switch i % 6 {
		case 1:
			if _, err := s.svc.DisableKey(ctx, id); err != nil {
				t.Fatal(err)
			}
		case 2:
			if _, err := s.svc.ScheduleDeletion(ctx, id, 7+i%20); err != nil {
				t.Fatal(err)
			}
		}
	}
	return blobs
}

func archiver(t testing.TB, s *store) kms.Archiver {
	a, err := s.svc.Archiver()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// writeArchive backs s up to an age archive for to.
func writeArchive(t testing.TB, s *store, to backup.EncryptTo) ([]byte, backup.Summary) {
	t.Helper()
	ctx := context.Background()
	l, err := backup.List(ctx, archiver(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	w, err := backup.Encrypt(&buf, to)
	if err != nil {
		t.Fatal(err)
	}
	sum, err := backup.Write(ctx, archiver(t, s), w, l, backup.Source{Backend: "local", Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes(), sum
}

// plainArchive is an archive's plaintext (no age layer), for format tests.
func plainArchive(t testing.TB, s *store) []byte {
	t.Helper()
	ctx := context.Background()
	l, err := backup.List(ctx, archiver(t, s))
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if _, err := backup.Write(ctx, archiver(t, s), &buf, l, backup.Source{Backend: "local", Now: time.Now}); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func newIdentity(t testing.TB) *age.X25519Identity {
	id, err := age.GenerateX25519Identity()
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openStore(t)
	blobs := populate(t, src, 30)
	id := newIdentity(t)
	data, sum := writeArchive(t, src, backup.EncryptTo{Recipients: []string{id.Recipient().String()}})
	if sum.Keys != 30 || sum.Aliases != 6 || sum.KeysAbsent != 0 {
		t.Fatalf("summary: %+v", sum)
	}
	for _, b := range blobs[:5] {
		if bytes.Contains(data, b.plain) {
			t.Fatal("a data key in the clear in the archive")
		}
	}
	arc, err := backup.Open(bytes.NewReader(data), backup.DecryptWith{Identity: id.String()})
	if err != nil {
		t.Fatal(err)
	}
	defer arc.Wipe()
	if arc.Digest != sum.Digest || len(arc.Keys) != 30 || len(arc.Aliases) != 6 {
		t.Fatalf("archive: digest %s (want %s), %d keys, %d aliases", arc.Digest, sum.Digest, len(arc.Keys), len(arc.Aliases))
	}

	dst := openStore(t)
	dstA := archiver(t, dst)
	dry, err := backup.Restore(ctx, dstA, arc, backup.RestoreOptions{DryRun: true})
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := dry.Count(); keys[backup.StatusWouldRestore] != 30 {
		t.Fatalf("dry run: %v", keys)
	}
	if ids, _, _ := dstA.KeyIDs(ctx, "", 10); len(ids) != 0 {
		t.Fatalf("the dry run wrote keys: %v", ids)
	}
	rep, err := backup.Restore(ctx, dstA, arc, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	keys, aliases := rep.Count()
	if keys[backup.StatusRestored] != 30 || aliases[backup.StatusRestored] != 6 || !rep.Complete {
		t.Fatalf("restore: keys %v aliases %v", keys, aliases)
	}
	// Restored keys are listed (the listing reads the key index, which an
	// import must keep current like a create), with their states.
	for _, state := range []kms.State{"", kms.StateEnabled, kms.StateDisabled, kms.StatePendingDeletion} {
		want, err := src.svc.ListKeys(ctx, kms.ListInput{Limit: 100, State: state})
		if err != nil {
			t.Fatal(err)
		}
		got, err := dst.svc.ListKeys(ctx, kms.ListInput{Limit: 100, State: state})
		if err != nil || len(got.Keys) != len(want.Keys) || len(want.Keys) == 0 {
			t.Fatalf("listing %q after the restore: %d keys, want %d (%v)", state, len(got.Keys), len(want.Keys), err)
		}
	}
	for _, b := range blobs {
		parsed, err := kms.ParseBlob(b.blob)
		if err != nil {
			t.Fatal(err)
		}
		aad, _ := kms.BlobAssociatedData(parsed.Header(), b.ctx)
		plain, err := dst.kr.Unwrap(ctx, parsed.KeyID, parsed.KeyVersion, parsed.Ciphertext, aad)
		if err != nil || !bytes.Equal(plain, b.plain) {
			t.Fatalf("blob of %s v%d after the restore: %v", b.keyID, parsed.KeyVersion, err)
		}
	}
	for i := range 30 {
		id := fmt.Sprintf("key-%03d", i)
		a, _ := src.svc.DescribeKey(ctx, id)
		b, err := dst.svc.DescribeKey(ctx, id)
		if err != nil || len(kms.CompareMetadata(&a, &b)) != 0 || fmt.Sprint(a.Aliases) != fmt.Sprint(b.Aliases) {
			t.Fatalf("%s: source %+v, restored %+v (%v)", id, a, b, err)
		}
	}
	again, err := backup.Restore(ctx, dstA, arc, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if keys, aliases := again.Count(); keys[backup.StatusExists] != 30 || aliases[backup.StatusExists] != 6 {
		t.Fatalf("second restore: keys %v aliases %v", keys, aliases)
	}

	// A key changed since: a conflict, refused before anything is written
	// under "fail", skipped under "skip".
	if _, err := dst.svc.TagKey(ctx, "key-004", map[string]string{"changed": "yes"}); err != nil {
		t.Fatal(err)
	}
	if err := dst.kr.Destroy(ctx, "key-005", nil); err != nil {
		t.Fatal(err)
	}
	_, err = backup.Restore(ctx, dstA, arc, backup.RestoreOptions{})
	if !errors.Is(err, kms.ErrConflict) || !strings.Contains(err.Error(), "key-004") {
		t.Fatalf("restore over a changed key: %v", err)
	}
	if _, err := dst.svc.DescribeKey(ctx, "key-005"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("a refused restore wrote key-005: %v", err)
	}
	skip, err := backup.Restore(ctx, dstA, arc, backup.RestoreOptions{OnConflict: backup.OnConflictSkip})
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := skip.Count(); keys[backup.StatusSkipped] != 1 || keys[backup.StatusRestored] != 1 {
		t.Fatalf("restore with skip: %v", keys)
	}
}

func TestPassphrase(t *testing.T) {
	t.Parallel()
	src := openStore(t)
	populate(t, src, 3)
	data, _ := writeArchive(t, src, backup.EncryptTo{Passphrase: "correct horse battery", WorkFactor: 15})
	if _, err := backup.Open(bytes.NewReader(data), backup.DecryptWith{Passphrase: "correct horse battery"}); err != nil {
		t.Fatal(err)
	}
	for name, d := range map[string]backup.DecryptWith{
		"wrong passphrase": {Passphrase: "incorrect horse battery"},
		"an identity":      {Identity: newIdentity(t).String()},
	} {
		if _, err := backup.Open(bytes.NewReader(data), d); !errors.Is(err, backup.ErrArchive) || !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for _, to := range []backup.EncryptTo{
		{Passphrase: "short"},
		{Passphrase: "long enough passphrase", WorkFactor: 22},
		{Passphrase: "long enough passphrase", WorkFactor: 10},
		{Recipients: []string{"age1notakey"}},
		{Recipients: []string{newIdentity(t).Recipient().String()}, Passphrase: "long enough passphrase"},
		{},
	} {
		if err := to.Validate(); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("%+v accepted: %v", to, err)
		}
	}
}

// TestRefusals: every damage to an archive is refused with ErrArchive.
func TestRefusals(t *testing.T) {
	t.Parallel()
	src := openStore(t)
	populate(t, src, 6)
	plain := plainArchive(t, src)
	if _, err := backup.Parse(bytes.NewReader(plain)); err != nil {
		t.Fatalf("the intact archive: %v", err)
	}
	lines := strings.SplitAfter(string(plain), "\n")
	lines = lines[:len(lines)-1] // the empty string after the last newline
	join := func(ls ...string) []byte { return []byte(strings.Join(ls, "")) }
	without := func(i int) []byte {
		return join(append(append([]string{}, lines[:i]...), lines[i+1:]...)...)
	}
	swapped := append([]string{}, lines...)
	swapped[1], swapped[2] = swapped[2], swapped[1]
	dup := append(append([]string{}, lines[:2]...), lines[1:]...)
	flip := []byte(strings.Join(lines, ""))
	v := bytes.Index(flip, []byte(`"versions":[`))
	i := v + bytes.Index(flip[v:], []byte(`"material":"`)) + 14
	flip[i] ^= 0x01
	future := strings.Replace(string(plain), `"format_version":1`, `"format_version":2`, 1)
	cases := map[string]struct {
		data []byte
		want string
	}{
		"entry removed":      {without(3), "hash chain"},
		"entries reordered":  {join(swapped...), "hash chain"},
		"entry duplicated":   {join(dup...), "hash chain"},
		"byte flipped":       {flip, "hash chain"},
		"end removed":        {without(len(lines) - 1), "truncated"},
		"cut in a line":      {plain[:len(plain)/2], "truncated"},
		"data after the end": {append(bytes.Clone(plain), []byte("{}\n")...), "hash chain"},
		"future version":     {[]byte(future), "newer than this Keyward"},
		"not an archive":     {[]byte("hello\n"), "not a Keyward backup"},
		"empty":              {nil, "truncated"},
	}
	for name, c := range cases {
		_, err := backup.Parse(bytes.NewReader(c.data))
		if !errors.Is(err, backup.ErrArchive) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v (want %q)", name, err, c.want)
		}
	}

	// Through age: damage, truncation and the wrong identity.
	id := newIdentity(t)
	data, _ := writeArchive(t, src, backup.EncryptTo{Recipients: []string{id.Recipient().String()}})
	flipped := bytes.Clone(data)
	flipped[len(flipped)-40] ^= 0x80
	for name, d := range map[string][]byte{
		"flipped":   flipped,
		"truncated": data[:len(data)-20],
		"header":    data[:40],
	} {
		if _, err := backup.Open(bytes.NewReader(d), backup.DecryptWith{Identity: id.String()}); !errors.Is(err, backup.ErrArchive) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := backup.Open(bytes.NewReader(data), backup.DecryptWith{Identity: newIdentity(t).String()}); !errors.Is(err, backup.ErrArchive) || !strings.Contains(err.Error(), "no identity") {
		t.Errorf("wrong identity: %v", err)
	}
	if _, err := backup.Open(bytes.NewReader(data), backup.DecryptWith{Identity: "not an identity"}); !errors.Is(err, kms.ErrInvalidRequest) || strings.Contains(err.Error(), "not an identity") {
		t.Errorf("bad identity text: %v", err)
	}
}

// TestAbsent: a key destroyed after the listing has an absent entry, and a
// restore reports it.
func TestAbsent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	src := openStore(t)
	populate(t, src, 4)
	a := archiver(t, src)
	l, err := backup.List(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := src.kr.Destroy(ctx, "key-002", nil); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	sum, err := backup.Write(ctx, a, &buf, l, backup.Source{Backend: "local", Now: time.Now})
	if err != nil || sum.Keys != 3 || sum.KeysAbsent != 1 {
		t.Fatalf("%+v %v", sum, err)
	}
	arc, err := backup.Parse(&buf)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := backup.Restore(ctx, archiver(t, openStore(t)), arc, backup.RestoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if keys, _ := rep.Count(); keys[backup.StatusRestored] != 3 || keys[backup.StatusSkipped] != 1 {
		t.Fatalf("restore of an archive with an absent key: %v", keys)
	}
}
