package vault

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// kvData reads the latest KV data of a record directly from Vault.
func kvData(t *testing.T, s *vaulttest.Server, prefix, id string) map[string]json.RawMessage {
	t.Helper()
	var out struct {
		Data struct {
			Data map[string]json.RawMessage `json:"data"`
		} `json:"data"`
	}
	mustDo(t, s, "GET", "/v1/secret/data/"+prefix+"/"+id, nil, &out)
	return out.Data.Data
}

// TestNoKeyMaterialInKV reads the KV records straight from Vault: both
// backends' records hold only a Transit ciphertext under the record key;
// opened, the vault-transit record holds metadata and version numbers but
// no material, and its Transit key cannot be exported.
func TestNoKeyMaterialInKV(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()

	t.Run("vault", func(t *testing.T) {
		prefix := freshPrefix()
		b := openT(t, testConfig(s.Addr, s.Token, config.BackendVault, prefix), Options{})
		if _, err := b.Create(ctx, testMeta("k")); err != nil {
			t.Fatal(err)
		}
		data := kvData(t, s, prefix, "k")
		if len(data) != 2 || data["format"] == nil || data["sealed"] == nil {
			t.Fatalf("unexpected KV fields: %v", keys(data))
		}
		var sealedB64 string
		json.Unmarshal(data["sealed"], &sealedB64)
		sealed, err := base64.StdEncoding.DecodeString(sealedB64)
		if err != nil || !bytes.HasPrefix(sealed, []byte("vault:v1:")) {
			t.Fatalf("sealed value is not a Transit ciphertext: %.20q %v", sealed, err)
		}
		var asJSON map[string]any
		if json.Unmarshal(sealed, &asJSON) == nil || bytes.Contains(sealed, []byte("material")) {
			t.Fatal("sealed value is readable JSON")
		}
		// The KEK itself is not exportable either.
		if st, _ := s.Do("GET", "/v1/transit/export/encryption-key/"+recordKEK, nil, s.Token); st < 400 {
			t.Fatalf("record KEK exported: %d", st)
		}
	})

	t.Run("vault-transit", func(t *testing.T) {
		prefix := freshPrefix()
		b := openT(t, testConfig(s.Addr, s.Token, config.BackendVaultTransit, prefix), Options{})
		if _, err := b.Create(ctx, testMeta("k")); err != nil {
			t.Fatal(err)
		}
		data := kvData(t, s, prefix, "k")
		if len(data) != 2 || data["format"] == nil || data["sealed"] == nil {
			t.Fatalf("unexpected KV fields: %v", keys(data))
		}
		var sealedB64 string
		json.Unmarshal(data["sealed"], &sealedB64)
		sealed, _ := base64.StdEncoding.DecodeString(sealedB64)
		var dec struct {
			Data struct {
				Plaintext []byte `json:"plaintext"`
			} `json:"data"`
		}
		mustDo(t, s, "POST", "/v1/transit/decrypt/"+recordKEK, map[string]any{"ciphertext": string(sealed), "associated_data": keyring.RecordAAD("k")}, &dec)
		var rec struct {
			Metadata map[string]json.RawMessage `json:"metadata"`
			Versions []map[string]json.RawMessage
			State    string `json:"material_state"`
		}
		if err := json.Unmarshal(dec.Data.Plaintext, &rec); err != nil || rec.State != transitOwned || len(rec.Versions) != 1 {
			t.Fatalf("opened record: %s %v", dec.Data.Plaintext, err)
		}
		if _, ok := rec.Versions[0]["material"]; ok {
			t.Fatalf("a vault-transit record holds material: %s", dec.Data.Plaintext)
		}
		for k := range rec.Metadata {
			switch k {
			case "id", "description", "state", "usage", "tags", "creation_date", "deletion_date", "version", "rotation_date", "rotation_enabled", "rotation_period_days":
			default:
				t.Errorf("unexpected metadata field %q", k)
			}
		}
		if st, body := s.Do("GET", "/v1/transit/export/encryption-key/k", nil, s.Token); st < 400 {
			t.Fatalf("transit key exported: %d %s", st, body)
		}
		var key struct {
			Data struct {
				Exportable bool   `json:"exportable"`
				Type       string `json:"type"`
			} `json:"data"`
		}
		mustDo(t, s, "GET", "/v1/transit/keys/k", nil, &key)
		if key.Data.Exportable || key.Data.Type != "aes256-gcm96" {
			t.Fatalf("transit key: %+v", key.Data)
		}
	})
}

func keys(m map[string]json.RawMessage) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestWarmCacheCallCounts counts requests through a proxy: on a warm cache
// the vault backend wraps and unwraps without any Vault call, and the
// vault-transit backend makes exactly one Transit call per operation.
func TestWarmCacheCallCounts(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	p := newProxy(t, s.Addr)
	ctx := context.Background()
	pt, aad := []byte("0123456789abcdef0123456789abcdef"), []byte("ctx")

	kv := openT(t, testConfig(p.URL, s.Token, config.BackendVault, freshPrefix()), Options{})
	kv.Create(ctx, testMeta("k"))
	ct, err := kv.Wrap(ctx, "k", 1, pt, aad)
	if err != nil {
		t.Fatal(err)
	}
	p.take()
	for i := 0; i < 20; i++ {
		if _, err := kv.Wrap(ctx, "k", 1, pt, aad); err != nil {
			t.Fatal(err)
		}
		if got, err := kv.Unwrap(ctx, "k", 1, ct, aad); err != nil || !bytes.Equal(got, pt) {
			t.Fatal(err)
		}
		kv.Describe(ctx, "k")
	}
	if c := p.take(); len(c) != 0 {
		t.Fatalf("vault backend called Vault on a warm cache: %v", c)
	}

	tr := openT(t, testConfig(p.URL, s.Token, config.BackendVaultTransit, freshPrefix()), Options{})
	tr.Create(ctx, testMeta("k"))
	p.take()
	ct, err = tr.Wrap(ctx, "k", 1, pt, aad)
	if c := p.take(); err != nil || len(c) != 1 || c["PUT /v1/transit/encrypt/k"] != 1 {
		t.Fatalf("transit wrap calls: %v %v", c, err)
	}
	got, err := tr.Unwrap(ctx, "k", 1, ct, aad)
	if c := p.take(); err != nil || !bytes.Equal(got, pt) || len(c) != 1 || c["PUT /v1/transit/decrypt/k"] != 1 {
		t.Fatalf("transit unwrap calls: %v %v", c, err)
	}
}

// TestRotate: rotation makes version 2 current and version 1 blobs still
// unwrap; a failing precondition rotates nothing; two nodes rotating one
// due key concurrently make one rotation. For vault-transit, a rotation
// recorded in KV but not carried out in Transit (its node failed) is
// completed by the next Wrap.
func TestRotate(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	for _, typ := range []string{config.BackendVault, config.BackendVaultTransit} {
		t.Run(typ, func(t *testing.T) {
			cfg := testConfig(s.Addr, s.Token, typ, freshPrefix())
			b, b2 := openT(t, cfg, Options{}), openT(t, cfg, Options{})
			r, r2 := b, b2
			b.Create(ctx, testMeta("r"))
			ct1, _ := b.Wrap(ctx, "r", 1, []byte("secret"), nil)
			boom := errors.New("not due")
			if _, err := r.Rotate(ctx, "r", func(kms.Metadata) error { return boom }); !errors.Is(err, boom) {
				t.Fatalf("precondition: %v", err)
			}
			onlyV1 := func(m kms.Metadata) error {
				if m.Version != 1 {
					return boom
				}
				return nil
			}
			var wg sync.WaitGroup
			errs := make([]error, 2)
			for i, rot := range []kms.Engine{r, r2} {
				wg.Add(1)
				go func() { defer wg.Done(); _, errs[i] = rot.Rotate(ctx, "r", onlyV1) }()
			}
			wg.Wait()
			if (errs[0] == nil) == (errs[1] == nil) {
				t.Fatalf("two rotations of one due key: %v", errs)
			}
			m, err := b2.Describe(ctx, "r")
			if err != nil || m.Version != 2 || m.RotationDate.IsZero() {
				t.Fatalf("after rotation: %+v %v", m, err)
			}
			b.ClearCache()
			ct2, err := b.Wrap(ctx, "r", 2, []byte("secret"), nil)
			if err != nil {
				t.Fatalf("wrap v2: %v", err)
			}
			for v, ct := range map[uint32][]byte{1: ct1, 2: ct2} {
				if got, err := b.Unwrap(ctx, "r", v, ct, nil); err != nil || string(got) != "secret" {
					t.Fatalf("unwrap v%d: %v", v, err)
				}
			}
			if _, err := b.Unwrap(ctx, "r", 2, ct1, nil); !errors.Is(err, kms.ErrInvalidCiphertext) {
				t.Fatalf("v1 blob as v2: %v", err)
			}
			if typ != config.BackendVaultTransit {
				return
			}
			if !strings.HasPrefix(string(ct2), "vault:v2:") {
				t.Fatalf("transit v2 ciphertext: %.12s", ct2)
			}
			// Half a rotation: the record says version 3, Transit refuses to
			// rotate (the node fails after the record's write).
			p := newProxy(t, s.Addr)
			pcfg := cfg
			pcfg.Address = p.URL
			pb := openT(t, pcfg, Options{})
			p.setFail(func(w http.ResponseWriter, r *http.Request) bool {
				if strings.HasSuffix(r.URL.Path, "/keys/r/rotate") {
					http.Error(w, `{"errors":["injected"]}`, http.StatusServiceUnavailable)
					return true
				}
				return false
			})
			if _, err := pb.Rotate(ctx, "r", func(kms.Metadata) error { return nil }); !errors.Is(err, kms.ErrUnavailable) {
				t.Fatalf("rotate with Transit failing: %v", err)
			}
			b.ClearCache()
			if m, err := b.Describe(ctx, "r"); err != nil || m.Version != 3 {
				t.Fatalf("after half a rotation: %+v %v", m, err)
			}
			if ct3, err := b.Wrap(ctx, "r", 3, []byte("secret"), nil); err != nil || !strings.HasPrefix(string(ct3), "vault:v3:") {
				t.Fatalf("wrap after half a rotation: %v", err)
			}
		})
	}
}

// TestUnreadableAndLeftovers covers records Keyward did not write or did
// not finish: a foreign KV record is listed as unreadable and is never
// destroyed (TestOnlyProvenObjectsAreDeleted has more); a tombstone left
// by an interrupted destruction blocks re-creation while young and is
// taken over (its old versions destroyed) once old, and the destroyed
// key's blobs do not decrypt under the new key. A Transit key the
// interruption left behind is not Keyward's to delete
// (TestLeftoverTransitKey).
func TestUnreadableAndLeftovers(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	for _, typ := range []string{config.BackendVault, config.BackendVaultTransit} {
		t.Run(typ, func(t *testing.T) {
			prefix := freshPrefix()
			clk := newClock()
			b := openT(t, testConfig(s.Addr, s.Token, typ, prefix), Options{Now: clk.Now, IndexRefresh: 20 * time.Millisecond})
			mustDo(t, s, "POST", "/v1/secret/data/"+prefix+"/foreign", map[string]any{"data": map[string]any{"hello": "world"}}, nil)
			b.Create(ctx, testMeta("good"))
			// Written behind Keyward's back: listed once the names are
			// read again (every IndexRefresh).
			var page kms.ListPage
			var err error
			for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(10 * time.Millisecond) {
				page, err = b.List(ctx, "", 10)
				if err != nil || len(page.Unreadable) > 0 || time.Now().After(deadline) {
					break
				}
			}
			if err != nil || len(page.Keys) != 1 || len(page.Unreadable) != 1 || page.Unreadable[0] != "foreign" || page.Last != "good" {
				t.Fatalf("list: %+v %v", page, err)
			}
			if _, err := b.Describe(ctx, "foreign"); !errors.Is(err, kms.ErrCorrupt) {
				t.Fatalf("describe foreign: %v", err)
			}
			if err := b.Destroy(ctx, "foreign", func(kms.Metadata) error { return nil }); !errors.Is(err, kms.ErrCorrupt) || !errors.Is(err, kms.ErrConflict) {
				t.Fatalf("conditional destroy of an unreadable record: %v", err)
			}
			if err := b.Destroy(ctx, "foreign", nil); !errors.Is(err, kms.ErrConflict) {
				t.Fatalf("destroy foreign: %v, want kms.ErrConflict", err)
			}

			// An interrupted destruction: tombstone written, nothing else.
			// A tombstone Keyward did not write is never taken over.
			b.Create(ctx, testMeta("t"))
			ct, _ := b.Wrap(ctx, "t", 1, []byte("old secret"), nil)
			mustDo(t, s, "POST", "/v1/secret/data/"+prefix+"/forged", map[string]any{
				"data": map[string]any{"format": 1, "tombstone": "2000-01-01T00:00:00Z"}}, nil)
			if _, err := b.Create(ctx, testMeta("forged")); !errors.Is(err, kms.ErrExists) {
				t.Fatalf("create over a tombstone Keyward did not write: %v", err)
			}
			interruptedDestroy(t, s, testConfig(s.Addr, s.Token, typ, prefix), Options{Now: clk.Now}, "t")
			var meta struct {
				Data struct {
					CurrentVersion int                                 `json:"current_version"`
					Versions       map[string]struct{ Destroyed bool } `json:"versions"`
				} `json:"data"`
			}
			mustDo(t, s, "GET", "/v1/secret/metadata/"+prefix+"/t", nil, &meta)
			tombVersion := meta.Data.CurrentVersion
			b.ClearCache()
			if _, err := b.Describe(ctx, "t"); !errors.Is(err, kms.ErrNotFound) {
				t.Fatalf("tombstoned key: %v", err)
			}
			if _, err := b.Create(ctx, testMeta("t")); !errors.Is(err, kms.ErrExists) {
				t.Fatalf("create over a young tombstone: %v", err)
			}
			clk.Advance(2 * tombstoneGrace)
			if typ == config.BackendVaultTransit {
				// The Transit key the interrupted destruction left is no
				// longer proven Keyward's: refused until an operator
				// removes it (TestLeftoverTransitKey).
				if _, err := b.Create(ctx, testMeta("t")); !errors.Is(err, kms.ErrConflict) {
					t.Fatalf("create over a leftover Transit key: %v", err)
				}
				mustDo(t, s, "POST", "/v1/transit/keys/t/config", map[string]any{"deletion_allowed": true}, nil)
				mustDo(t, s, "DELETE", "/v1/transit/keys/t", nil, nil)
			}
			if _, err := b.Create(ctx, testMeta("t")); err != nil {
				t.Fatalf("create over an old tombstone: %v", err)
			}
			mustDo(t, s, "GET", "/v1/secret/metadata/"+prefix+"/t", nil, &meta)
			if typ == config.BackendVaultTransit {
				// The refused creation removed the whole path, old versions
				// included: the key starts over at version 1.
				tombVersion = 0
			}
			for v, info := range meta.Data.Versions {
				n, _ := strconv.Atoi(v)
				if old := n <= tombVersion; info.Destroyed != old {
					t.Errorf("version %s (tombstone at %d): destroyed %v", v, tombVersion, info.Destroyed)
				}
			}
			if _, err := b.Unwrap(ctx, "t", 1, ct, nil); !errors.Is(err, kms.ErrInvalidCiphertext) {
				t.Fatalf("old blob under the re-created key: %v", err)
			}
		})
	}
}

// TestDeleteAt: kvRecords.Delete deletes exactly the revision it is given, so a
// change made by another node since the keyring's check wins.
func TestDeleteAt(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	prefix := freshPrefix()
	b := openT(t, testConfig(s.Addr, s.Token, config.BackendVault, prefix), Options{})
	store := kvRecords{kv: newKVStore(connOf(b), "secret", prefix, &transitSealer{c: connOf(b), mount: "transit"}, time.Now, slog.New(slog.DiscardHandler))}
	b.Create(ctx, testMeta("k"))
	e, err := store.Get(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	b.Update(ctx, "k", func(m *kms.Metadata) error { m.Description = "changed elsewhere"; return nil })
	if err := store.Delete(ctx, "k", e.Revision, nil); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("delete at a stale revision: %v", err)
	}
	e, _ = store.Get(ctx, "k")
	boom := errors.New("material stays")
	if err := store.Delete(ctx, "k", e.Revision, func() error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("delete with a failing material destruction: %v", err)
	}
	if _, err := b.Describe(ctx, "k"); err != nil {
		t.Fatalf("record after a failed deletion: %v", err)
	}
	e, _ = store.Get(ctx, "k")
	if err := store.Delete(ctx, "k", e.Revision, nil); err != nil {
		t.Fatal(err)
	}
	if err := store.Delete(ctx, "k", e.Revision, nil); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
}
