package vault

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/keyward/keyward/internal/config"
	"github.com/keyward/keyward/internal/kms"
	"github.com/keyward/keyward/internal/vaulttest"
)

// appKey is a Transit key another application made on the mount Keyward
// uses, with one ciphertext of its own.
type appKey struct {
	name, ciphertext string
}

func makeAppKey(t *testing.T, s *vaulttest.Server, name string) appKey {
	t.Helper()
	mustDo(t, s, "POST", "/v1/transit/keys/"+name, map[string]any{"type": "aes256-gcm96"}, nil)
	var out struct {
		Data struct {
			Ciphertext string `json:"ciphertext"`
		} `json:"data"`
	}
	mustDo(t, s, "POST", "/v1/transit/encrypt/"+name, map[string]any{"plaintext": base64.StdEncoding.EncodeToString([]byte("card 4111"))}, &out)
	return appKey{name, out.Data.Ciphertext}
}

// intact checks that the application's key is exactly as it made it: it
// still decrypts its ciphertext, has one version and deletion is still
// not allowed.
func (k appKey) intact(t *testing.T, s *vaulttest.Server) {
	t.Helper()
	var dec struct {
		Data struct {
			Plaintext string `json:"plaintext"`
		} `json:"data"`
	}
	mustDo(t, s, "POST", "/v1/transit/decrypt/"+k.name, map[string]any{"ciphertext": k.ciphertext}, &dec)
	if pt, _ := base64.StdEncoding.DecodeString(dec.Data.Plaintext); string(pt) != "card 4111" {
		t.Fatalf("the application's ciphertext no longer decrypts: %q", dec.Data.Plaintext)
	}
	var key struct {
		Data struct {
			LatestVersion   int  `json:"latest_version"`
			DeletionAllowed bool `json:"deletion_allowed"`
		} `json:"data"`
	}
	mustDo(t, s, "GET", "/v1/transit/keys/"+k.name, nil, &key)
	if key.Data.LatestVersion != 1 || key.Data.DeletionAllowed {
		t.Fatalf("the application's key was changed: %+v", key.Data)
	}
}

// TestForeignTransitKeyIsNeverTouched reproduces the data loss found in
// review: creating a key whose name was taken by another application's
// Transit key deleted that key as a "leftover" (after setting
// deletion_allowed), so every ciphertext the application had made became
// undecryptable. Now the creation is 409 Conflict and nothing in Vault
// changes, including when the other key appears between Keyward's check
// and its creation (Vault's "already existed" warning).
func TestForeignTransitKeyIsNeverTouched(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	prefix := freshPrefix()
	app := makeAppKey(t, s, "payments")

	b := openT(t, testConfig(s.Addr, s.Token, config.BackendVaultTransit, prefix), Options{})
	_, err := b.Create(ctx, testMeta("payments"))
	if !errors.Is(err, kms.ErrConflict) || !strings.Contains(err.Error(), "did not create") {
		t.Fatalf("create over a foreign Transit key: %v, want kms.ErrConflict", err)
	}
	app.intact(t, s)
	if status, _ := s.Do("GET", "/v1/secret/metadata/"+prefix+"/payments", nil, s.Token); status != http.StatusNotFound {
		t.Fatalf("the claim on the id was not removed: KV metadata answers %d", status)
	}
	if _, err := b.Describe(ctx, "payments"); !errors.Is(err, kms.ErrNotFound) {
		t.Fatalf("describe after the refused creation: %v", err)
	}

	// The race: the other application creates its key after Keyward looked
	// and before Keyward creates it. Vault's transit code answers such a
	// creation with the warning "key <name> already existed"; Vault
	// 1.14.1 loses that warning on the way (its backend.GetPolicy reports
	// every key as newly made), so the proxy restores it as the transit
	// code means it. Without the warning (1.14.1 as it is) this window of
	// a few milliseconds cannot be seen; docs/vault.md says so and
	// recommends a mount of Keyward's own.
	p := newProxy(t, s.Addr)
	var raced appKey
	p.setFail(func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut && r.Method != http.MethodPost || r.URL.Path != "/v1/transit/keys/orders" {
			return false
		}
		raced = makeAppKey(t, s, "orders")
		var body map[string]any
		json.NewDecoder(r.Body).Decode(&body)
		status, answer := s.Do(r.Method, r.URL.Path, body, r.Header.Get("X-Vault-Token"))
		var m map[string]any
		json.Unmarshal(answer, &m)
		m["warnings"] = []string{"key orders already existed"}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		json.NewEncoder(w).Encode(m)
		return true
	})
	b2 := openT(t, testConfig(p.URL, s.Token, config.BackendVaultTransit, prefix), Options{})
	if _, err := b2.Create(ctx, testMeta("orders")); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("create racing a foreign Transit key: %v, want kms.ErrConflict", err)
	}
	if raced.name == "" {
		t.Fatal("the race was not staged")
	}
	raced.intact(t, s)
	if status, _ := s.Do("GET", "/v1/secret/metadata/"+prefix+"/orders", nil, s.Token); status != http.StatusNotFound {
		t.Fatalf("the claim on the raced id was not removed: %d", status)
	}

	// Keyward's own keys still work, and their destruction deletes the
	// Transit key Keyward created.
	if _, err := b.Create(ctx, testMeta("mine")); err != nil {
		t.Fatal(err)
	}
	if err := b.Destroy(ctx, "mine", nil); err != nil {
		t.Fatal(err)
	}
	if status, _ := s.Do("GET", "/v1/transit/keys/mine", nil, s.Token); status != http.StatusNotFound {
		t.Fatalf("Keyward's own Transit key survived its destruction: %d", status)
	}
}

// TestOnlyProvenObjectsAreDeleted: a KV object at a key's path that is not
// a readable Keyward record is never deleted (on either backend), a path
// whose current version someone deleted outside Keyward is not reused, and
// a record whose creation did not complete does not let Keyward use or
// delete a Transit key of that name.
func TestOnlyProvenObjectsAreDeleted(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	for _, typ := range []string{config.BackendVault, config.BackendVaultTransit} {
		t.Run(typ, func(t *testing.T) {
			prefix := freshPrefix()
			b := openT(t, testConfig(s.Addr, s.Token, typ, prefix), Options{})

			mustDo(t, s, "POST", "/v1/secret/data/"+prefix+"/foreign", map[string]any{"data": map[string]any{"hello": "world"}}, nil)
			if err := b.Destroy(ctx, "foreign", nil); !errors.Is(err, kms.ErrConflict) {
				t.Fatalf("destroy of a foreign KV object: %v, want kms.ErrConflict", err)
			}
			var got struct {
				Data struct {
					Data map[string]any `json:"data"`
				} `json:"data"`
			}
			mustDo(t, s, "GET", "/v1/secret/data/"+prefix+"/foreign", nil, &got)
			if got.Data.Data["hello"] != "world" {
				t.Fatalf("the foreign KV object changed: %v", got.Data.Data)
			}

			// Someone's secret at a key's path, deleted (not destroyed)
			// outside Keyward: its versions are not Keyward's to destroy.
			mustDo(t, s, "POST", "/v1/secret/data/"+prefix+"/deleted", map[string]any{"data": map[string]any{"note": "keep"}}, nil)
			mustDo(t, s, "DELETE", "/v1/secret/data/"+prefix+"/deleted", nil, nil)
			if _, err := b.Create(ctx, testMeta("deleted")); !errors.Is(err, kms.ErrExists) {
				t.Fatalf("create over a soft-deleted foreign secret: %v, want kms.ErrExists", err)
			}
			mustDo(t, s, "POST", "/v1/secret/undelete/"+prefix+"/deleted", map[string]any{"versions": []int{1}}, nil)
			mustDo(t, s, "GET", "/v1/secret/data/"+prefix+"/deleted", nil, &got)
			if got.Data.Data["note"] != "keep" {
				t.Fatalf("the deleted secret's version was destroyed: %v", got.Data.Data)
			}
		})
	}

	t.Run("incomplete creation", func(t *testing.T) {
		// Create's record is written, its Transit key made, and then Vault
		// refuses every KV write: the record cannot say "owned", and
		// removing it fails too. A record claims the id without proof.
		p := newProxy(t, s.Addr)
		prefix := freshPrefix()
		b := openT(t, testConfig(p.URL, s.Token, config.BackendVaultTransit, prefix), Options{})
		writes := 0
		p.setFail(func(w http.ResponseWriter, r *http.Request) bool {
			if r.Method != http.MethodGet && strings.HasPrefix(r.URL.Path, "/v1/secret/data/") {
				if writes++; writes > 1 {
					http.Error(w, `{"errors":["injected"]}`, http.StatusInternalServerError)
					return true
				}
			}
			return false
		})
		if _, err := b.Create(ctx, testMeta("half")); err == nil || !strings.Contains(err.Error(), "half-made") {
			t.Fatalf("create with KV failing after the claim: %v", err)
		}
		p.setFail(nil)
		b.ClearCache()
		if m, err := b.Describe(ctx, "half"); err != nil || m.ID != "half" {
			t.Fatalf("the half-made key: %+v %v", m, err)
		}
		if _, err := b.Wrap(ctx, "half", 1, []byte("dk"), nil); !errors.Is(err, kms.ErrConflict) {
			t.Fatalf("wrap under an unproven Transit key: %v", err)
		}
		if _, err := b.Rotate(ctx, "half", func(kms.Metadata) error { return nil }); !errors.Is(err, kms.ErrConflict) {
			t.Fatalf("rotate an unproven Transit key: %v", err)
		}
		if err := b.Destroy(ctx, "half", nil); err != nil {
			t.Fatalf("destroy the incomplete key: %v", err)
		}
		if status, _ := s.Do("GET", "/v1/transit/keys/half", nil, s.Token); status != http.StatusOK {
			t.Fatalf("destroying a key without proof deleted its Transit key: %d", status)
		}
	})
}

// TestLeftoverTransitKey: a destruction interrupted after its tombstone
// (Transit key not deleted) leaves a Transit key that nothing proves
// Keyward's any more (the record that proved it is gone). Re-creating the
// id is refused and the leftover stays, until an operator deletes it; the
// key made then is fresh, so the destroyed key's blobs do not decrypt.
func TestLeftoverTransitKey(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	prefix := freshPrefix()
	clk := newClock()
	b := openT(t, testConfig(s.Addr, s.Token, config.BackendVaultTransit, prefix), Options{Now: clk.Now})
	if _, err := b.Create(ctx, testMeta("t")); err != nil {
		t.Fatal(err)
	}
	ct, _ := b.Wrap(ctx, "t", 1, []byte("old secret"), nil)
	interruptedDestroy(t, s, testConfig(s.Addr, s.Token, config.BackendVaultTransit, prefix), Options{Now: clk.Now}, "t")
	b.ClearCache()
	clk.Advance(2 * tombstoneGrace)
	if _, err := b.Create(ctx, testMeta("t")); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("create over a leftover Transit key: %v, want kms.ErrConflict", err)
	}
	if status, _ := s.Do("GET", "/v1/transit/keys/t", nil, s.Token); status != http.StatusOK {
		t.Fatalf("the leftover was deleted: %d", status)
	}
	mustDo(t, s, "POST", "/v1/transit/keys/t/config", map[string]any{"deletion_allowed": true}, nil)
	mustDo(t, s, "DELETE", "/v1/transit/keys/t", nil, nil)
	if _, err := b.Create(ctx, testMeta("t")); err != nil {
		t.Fatalf("create after the operator removed the leftover: %v", err)
	}
	if _, err := b.Unwrap(ctx, "t", 1, ct, nil); !errors.Is(err, kms.ErrInvalidCiphertext) {
		t.Fatalf("old blob under the re-created key: %v", err)
	}
}

// TestReservedRecordKEKName: the Transit key that seals the vault
// backend's records cannot become an API key.
func TestReservedRecordKEKName(t *testing.T) {
	if !kms.ReservedKeyID(recordKEK) {
		t.Fatalf("%s is not reserved", recordKEK)
	}
}

// TestMigrate01: a prefix of Keyward 0.1's vault-transit backend (metadata
// in the clear, Transit keys 0.1 created) is sealed on the first open of
// this release, and its keys keep working; afterwards an unsealed record
// (which anyone who can write the prefix could plant) is never trusted:
// it reads as unreadable, and its Transit key is neither used nor deleted.
func TestMigrate01(t *testing.T) {
	t.Parallel()
	s := vaulttest.StartDev(t)
	ctx := context.Background()
	prefix := freshPrefix()
	plain := func(id string, version uint32) {
		meta := testMeta(id)
		meta.Version = version
		mustDo(t, s, "POST", "/v1/secret/data/"+prefix+"/"+id, map[string]any{"data": kvRecord{Format: recordFormat, Metadata: &meta}}, nil)
	}
	// What 0.1 left: key "old" at version 2 (rotated once), with a blob.
	old := makeAppKey(t, s, "old")
	mustDo(t, s, "POST", "/v1/transit/keys/old/rotate", nil, nil)
	plain("old", 2)

	b := openT(t, testConfig(s.Addr, s.Token, config.BackendVaultTransit, prefix), Options{})
	if m, err := b.Describe(ctx, "old"); err != nil || m.Version != 2 {
		t.Fatalf("the 0.1 key after the upgrade: %+v %v", m, err)
	}
	if got, err := b.Unwrap(ctx, "old", 1, []byte(old.ciphertext), nil); err != nil || string(got) != "card 4111" {
		t.Fatalf("a 0.1 blob (version 1) after the upgrade: %q %v", got, err)
	}
	if _, err := b.Rotate(ctx, "old", func(kms.Metadata) error { return nil }); err != nil {
		t.Fatalf("rotate the 0.1 key: %v", err)
	}
	var rec struct {
		Data struct {
			Data map[string]any `json:"data"`
		} `json:"data"`
	}
	mustDo(t, s, "GET", "/v1/secret/data/"+prefix+"/old", nil, &rec)
	if rec.Data.Data["sealed"] == nil || rec.Data.Data["metadata"] != nil {
		t.Fatalf("the 0.1 record was not sealed: %v", rec.Data.Data)
	}

	// Planted after the upgrade, over another application's Transit key.
	app := makeAppKey(t, s, "planted")
	plain("planted", 1)
	b2 := openT(t, testConfig(s.Addr, s.Token, config.BackendVaultTransit, prefix), Options{})
	if _, err := b2.Describe(ctx, "planted"); !errors.Is(err, kms.ErrCorrupt) {
		t.Fatalf("a planted unsealed record: %v, want kms.ErrCorrupt", err)
	}
	if err := b2.Destroy(ctx, "planted", nil); !errors.Is(err, kms.ErrConflict) {
		t.Fatalf("destroy the planted record: %v", err)
	}
	app.intact(t, s)
}
