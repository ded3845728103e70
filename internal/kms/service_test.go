package kms_test

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/keyring/keyringtest"
	"github.com/keyward/keyward/internal/kms"
)

// countingReader yields 0x00, 0x01, 0x02, ... : a deterministic "random"
// source so golden vectors can be made and checked.
type countingReader struct {
	mu sync.Mutex
	n  byte
}

func (c *countingReader) Read(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i := range p {
		p[i] = c.n
		c.n++
	}
	return len(p), nil
}

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

type fixture struct {
	svc   *kms.Service
	store *keyringtest.MemStore
	clk   *clock
}

func newFixture(t testing.TB, o kms.Options) *fixture {
	t.Helper()
	clk := &clock{t: time.Date(2026, 1, 2, 3, 4, 5, 678901234, time.UTC)}
	store := keyringtest.NewMemStore()
	rnd := &countingReader{}
	kr := keyring.New(keyring.Options{Store: store, Sealer: keyringtest.NewGCMSealer(), Material: keyring.SealedMaterial{Rand: rnd}, Now: clk.Now, CacheEntries: 100, CacheTTL: time.Minute})
	if o.Now == nil {
		o.Now = clk.Now
	}
	if o.Rand == nil {
		o.Rand = rnd
	}
	return &fixture{svc: kms.NewService(kr, o), store: store, clk: clk}
}

var ctx = context.Background()

// The golden vector: key "golden-key" made with material 00 01 .. 1f, a
// 32-byte data key 20 21 .. 3f, nonce 40 .. 4b, and the context below.
// This blob must decrypt forever: changing the blob format or the context
// encoding breaks this test, and must not.
const (
	goldenBlobV1 = "010a676f6c64656e2d6b657900000001" + // version 1, id "golden-key", key version 1
		"404142434445464748494a4b" + // nonce
		"c2988c000219a124e5ed3d1db7493d7449f7606f830039144f7e74deab2ed3e4" + // AES-256-GCM ciphertext
		"b08da6f36f2bca0ff53fd4edccf62d77" // tag
	goldenDataKey = "202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f"
)

var goldenContext = map[string]string{"bucket": "analytics-data", "object": "2024/09/18/report.parquet"}

func TestGoldenBlobV1(t *testing.T) {
	f := newFixture(t, kms.Options{})
	if _, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "golden-key"}); err != nil {
		t.Fatal(err)
	}
	id, pt, blob, err := f.svc.GenerateDataKey(ctx, "golden-key", 32, goldenContext)
	if err != nil {
		t.Fatal(err)
	}
	if id != "golden-key" || hex.EncodeToString(pt) != goldenDataKey {
		t.Fatalf("id=%s pt=%x", id, pt)
	}
	if got := hex.EncodeToString(blob); got != goldenBlobV1 {
		t.Fatalf("blob changed:\n got %s\nwant %s", got, goldenBlobV1)
	}
	want, _ := hex.DecodeString(goldenBlobV1)
	_, out, err := f.svc.Decrypt(ctx, want, map[string]string{"object": "2024/09/18/report.parquet", "bucket": "analytics-data"}, "")
	if err != nil || hex.EncodeToString(out) != goldenDataKey {
		t.Fatalf("golden blob does not decrypt: %v", err)
	}
}

// TestBlobFormatIndependently decodes the golden blob with nothing but
// crypto/aes and the documented format (docs/blob-format.md).
func TestBlobFormatIndependently(t *testing.T) {
	blob, _ := hex.DecodeString(goldenBlobV1)
	material := make([]byte, 32)
	for i := range material {
		material[i] = byte(i)
	}
	if blob[0] != 1 {
		t.Fatal("format byte")
	}
	n := int(blob[1])
	header := blob[:2+n+4]
	if string(blob[2:2+n]) != "golden-key" || !bytes.Equal(blob[2+n:2+n+4], []byte{0, 0, 0, 1}) {
		t.Fatal("header fields")
	}
	// canonical context: count, then sorted (len k, k, len v, v)
	aad := append(append([]byte{}, header...), 2)
	for _, kv := range [][2]string{{"bucket", "analytics-data"}, {"object", "2024/09/18/report.parquet"}} {
		aad = append(aad, byte(len(kv[0])))
		aad = append(aad, kv[0]...)
		aad = append(aad, byte(len(kv[1])))
		aad = append(aad, kv[1]...)
	}
	block, _ := aes.NewCipher(material)
	gcm, _ := cipher.NewGCM(block)
	body := blob[2+n+4:]
	pt, err := gcm.Open(nil, body[:12], body[12:], aad)
	if err != nil || hex.EncodeToString(pt) != goldenDataKey {
		t.Fatalf("independent decode failed: %v", err)
	}
}

func TestDecryptRejections(t *testing.T) {
	f := newFixture(t, kms.Options{})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k1"})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k2"})
	encCtx := map[string]string{"a": "1", "b": "2"}
	_, _, blob, err := f.svc.GenerateDataKey(ctx, "k1", 32, encCtx)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string]struct {
		blob    []byte
		ctx     map[string]string
		keyID   string
		wantErr error
	}{
		"no context":        {blob, nil, "", kms.ErrInvalidCiphertext},
		"wrong value":       {blob, map[string]string{"a": "1", "b": "3"}, "", kms.ErrInvalidCiphertext},
		"extra entry":       {blob, map[string]string{"a": "1", "b": "2", "c": ""}, "", kms.ErrInvalidCiphertext},
		"swapped k/v":       {blob, map[string]string{"1": "a", "2": "b"}, "", kms.ErrInvalidCiphertext},
		"concatenation":     {blob, map[string]string{"a": "1b", "": "2"}, "", kms.ErrInvalidCiphertext},
		"other key_id":      {blob, encCtx, "k2", kms.ErrInvalidCiphertext},
		"empty":             {nil, encCtx, "", kms.ErrInvalidCiphertext},
		"truncated":         {blob[:len(blob)-1], encCtx, "", kms.ErrInvalidCiphertext},
		"bad version":       {append([]byte{2}, blob[1:]...), encCtx, "", kms.ErrInvalidCiphertext},
		"renamed key":       {bytes.Replace(blob, []byte("k1"), []byte("k2"), 1), encCtx, "", kms.ErrInvalidCiphertext},
		"version 2":         {bytes.Replace(blob, []byte{0, 0, 0, 1}, []byte{0, 0, 0, 2}, 1), encCtx, "", kms.ErrInvalidCiphertext},
		"unknown key":       {bytes.Replace(blob, []byte("k1"), []byte("k9"), 1), encCtx, "", kms.ErrNotFound},
		"garbage id length": {append([]byte{1, 200}, blob[2:]...), encCtx, "", kms.ErrInvalidCiphertext},
	}
	for i := 6; i < len(blob); i += 7 {
		b := bytes.Clone(blob)
		b[i] ^= 0x01
		cases[fmt.Sprintf("bit flip at %d", i)] = struct {
			blob    []byte
			ctx     map[string]string
			keyID   string
			wantErr error
		}{b, encCtx, "", kms.ErrInvalidCiphertext}
	}
	for name, c := range cases {
		_, pt, err := f.svc.Decrypt(ctx, c.blob, c.ctx, c.keyID)
		if !errors.Is(err, c.wantErr) || pt != nil {
			t.Errorf("%s: err=%v, want %v", name, err, c.wantErr)
		}
	}
	// map order never matters
	for i := 0; i < 20; i++ {
		if _, _, err := f.svc.Decrypt(ctx, blob, map[string]string{"b": "2", "a": "1"}, "k1"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestStateRules(t *testing.T) {
	f := newFixture(t, kms.Options{DefaultKeyID: "k"})
	if _, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"}); err != nil {
		t.Fatal(err)
	}
	_, _, blob, err := f.svc.GenerateDataKey(ctx, "", 16, nil) // default key
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"}); !errors.Is(err, kms.ErrExists) {
		t.Fatalf("duplicate create: %v", err)
	}
	for _, w := range []int{6, 31, -1} {
		if _, err := f.svc.ScheduleDeletion(ctx, "k", w); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Fatalf("window %d: %v", w, err)
		}
	}
	m, err := f.svc.ScheduleDeletion(ctx, "k", 7)
	if err != nil || m.State != kms.StatePendingDeletion || !m.DeletionDate.Equal(f.clk.Now().UTC().Truncate(time.Microsecond).Add(7*24*time.Hour)) {
		t.Fatalf("schedule: %+v %v", m, err)
	}
	if _, err := f.svc.ScheduleDeletion(ctx, "k", 7); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("double schedule: %v", err)
	}
	if _, _, _, err := f.svc.GenerateDataKey(ctx, "k", 32, nil); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("generate on pending: %v", err)
	}
	if _, _, err := f.svc.Decrypt(ctx, blob, nil, ""); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("decrypt on pending: %v", err)
	}
	if _, _, err := f.svc.Encrypt(ctx, "k", []byte("x"), nil); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("encrypt on pending: %v", err)
	}
	m, err = f.svc.CancelDeletion(ctx, "k")
	if err != nil || m.State != kms.StateEnabled || !m.DeletionDate.IsZero() {
		t.Fatalf("cancel: %+v %v", m, err)
	}
	if _, err := f.svc.CancelDeletion(ctx, "k"); !errors.Is(err, kms.ErrInvalidKeyState) {
		t.Fatalf("cancel enabled: %v", err)
	}
	if _, pt, err := f.svc.Decrypt(ctx, blob, nil, ""); err != nil || len(pt) != 16 {
		t.Fatalf("decrypt after cancel: %v", err)
	}
	// immediate deletion gate
	if err := f.svc.DestroyNow(ctx, "k", "k"); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("gate closed: %v", err)
	}
}

func TestSweeperAndImmediateDeletion(t *testing.T) {
	f := newFixture(t, kms.Options{Day: time.Second, AllowImmediateDeletion: true})
	for _, id := range []string{"a", "b", "c"} {
		f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: id})
	}
	_, _, blob, _ := f.svc.GenerateDataKey(ctx, "a", 32, nil)
	f.svc.ScheduleDeletion(ctx, "a", 7)
	f.svc.ScheduleDeletion(ctx, "b", 30)
	f.clk.Add(6 * time.Second)
	if n, err := f.svc.Sweep(ctx); n != 0 || err != nil {
		t.Fatalf("early sweep destroyed %d (%v)", n, err)
	}
	f.clk.Add(time.Second)
	if n, err := f.svc.Sweep(ctx); n != 1 || err != nil {
		t.Fatalf("sweep destroyed %d (%v)", n, err)
	}
	if _, err := f.svc.DescribeKey(ctx, "a"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("destroyed key still described: %v", err)
	}
	if _, _, err := f.svc.Decrypt(ctx, blob, nil, ""); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("blob of destroyed key: %v", err)
	}
	if err := f.svc.DestroyNow(ctx, "c", "b"); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Fatalf("confirm mismatch: %v", err)
	}
	if err := f.svc.DestroyNow(ctx, "c", "c"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.DescribeKey(ctx, "c"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatal("c survived")
	}
}

func TestListPaging(t *testing.T) {
	f := newFixture(t, kms.Options{})
	for i := 0; i < 25; i++ {
		f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: fmt.Sprintf("key-%02d", i)})
	}
	f.svc.ScheduleDeletion(ctx, "key-03", 7)
	f.svc.ScheduleDeletion(ctx, "key-17", 7)
	var seen []string
	marker := ""
	for pages := 0; ; pages++ {
		out, err := f.svc.ListKeys(ctx, kms.ListInput{Marker: marker, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, k := range out.Keys {
			seen = append(seen, k.ID)
		}
		if !out.Truncated {
			break
		}
		marker = out.NextMarker
	}
	if len(seen) != 25 || seen[0] != "key-00" || seen[24] != "key-24" {
		t.Fatalf("seen %v", seen)
	}
	out, _ := f.svc.ListKeys(ctx, kms.ListInput{Limit: 10, State: kms.StatePendingDeletion})
	if len(out.Keys) != 2 || out.Truncated || out.Keys[1].ID != "key-17" {
		t.Fatalf("filtered: %+v", out)
	}
	if out, _ := f.svc.ListKeys(ctx, kms.ListInput{Limit: 0}); len(out.Keys) != 0 || out.Truncated {
		t.Fatal("limit 0")
	}
	// a vanished marker still works: exclusive lower bound
	if out, _ := f.svc.ListKeys(ctx, kms.ListInput{Limit: 3, Marker: "key-05x"}); out.Keys[0].ID != "key-06" {
		t.Fatalf("marker: %+v", out.Keys)
	}
	// a damaged record is reported, not dropped
	raw := f.store.Raw("key-04")
	raw[len(raw)-1] ^= 1
	f.svc.Engine().ClearCache()
	out, _ = f.svc.ListKeys(ctx, kms.ListInput{Limit: 10})
	if len(out.Unreadable) != 1 || out.Unreadable[0] != "key-04" || len(out.Keys) != 10 || out.NextMarker != "key-10" {
		t.Fatalf("unreadable: %+v", out)
	}
}

func TestCreateKeyIDs(t *testing.T) {
	f := newFixture(t, kms.Options{})
	m, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{Tags: map[string]string{"name": "from-tag"}})
	if err != nil || m.ID != "from-tag" {
		t.Fatalf("%+v %v", m, err)
	}
	m, err = f.svc.CreateKey(ctx, kms.CreateKeyInput{Usage: "EncryptDecrypt"})
	if err != nil || len(m.ID) != 36 || m.ID[14] != '4' {
		t.Fatalf("uuid: %+v %v", m, err)
	}
	for _, bad := range []string{"..", "a/b", "a b", string(make([]byte, 129))} {
		if _, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: bad}); !errors.Is(err, kms.ErrInvalidRequest) {
			t.Errorf("id %q accepted: %v", bad, err)
		}
	}
	if _, err := f.svc.CreateKey(ctx, kms.CreateKeyInput{Usage: "SIGN_VERIFY"}); !errors.Is(err, kms.ErrInvalidRequest) {
		t.Error("SIGN_VERIFY accepted")
	}
}

func TestDataKeysAreFresh(t *testing.T) {
	f := newFixture(t, kms.Options{Rand: cryptoRand{}})
	f.svc.CreateKey(ctx, kms.CreateKeyInput{KeyID: "k"})
	seen := map[string]bool{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, pt, blob, err := f.svc.GenerateDataKey(ctx, "k", 32, nil)
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			seen[string(pt)], seen[string(blob)] = true, true
			mu.Unlock()
		}()
	}
	wg.Wait()
	if len(seen) != 128 {
		t.Fatalf("only %d distinct values of 128", len(seen))
	}
}
