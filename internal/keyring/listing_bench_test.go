package keyring_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"testing"
	"time"

	"github.com/keyward/keyward/internal/keyring"
	"github.com/keyward/keyward/internal/keyring/keyringtest"
	"github.com/keyward/keyward/internal/kms"
)

// BenchmarkListPage is a page of 100 keys, unfiltered and filtered by a
// state one key in ten has, at random places in 1,000 and 100,000 keys
// (the in-process half of `keyward bench --keys N --ops list,list-disabled`):
// its cost must not grow with the number of keys.
func BenchmarkListPage(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		ctx := context.Background()
		store, sealer := keyringtest.NewMemStore(), keyringtest.NewGCMSealer()
		kr := keyring.New(keyring.Options{
			Store: store, Sealer: sealer, Material: keyring.SealedMaterial{Rand: rand.Reader},
			Now: time.Now, CacheEntries: 10, CacheTTL: time.Hour,
		})
		b.Cleanup(func() { kr.Close() })
		id := func(i int) string { return fmt.Sprintf("bench-set-%07d", i) }
		for i := range n {
			state := kms.StateEnabled
			if i%10 == 9 {
				state = kms.StateDisabled
			}
			if _, err := kr.Create(ctx, kms.Metadata{ID: id(i), State: state}); err != nil {
				b.Fatal(err)
			}
		}
		for _, tc := range []struct {
			name  string
			state kms.State
			span  int
		}{{"all", "", 100}, {"disabled", kms.StateDisabled, 1000}} {
			b.Run(fmt.Sprintf("keys=%d/%s", n, tc.name), func(b *testing.B) {
				r := mrand.New(mrand.NewPCG(1, 2))
				b.ReportAllocs()
				for b.Loop() {
					after := id(r.IntN(max(n-tc.span, 1)))
					var page kms.ListPage
					var err error
					if tc.state == "" {
						page, err = kr.List(ctx, after, 100)
					} else {
						page, err = kr.ListByState(ctx, after, 100, tc.state)
					}
					if err != nil || len(page.Keys) != 100 {
						b.Fatalf("%d keys, %v", len(page.Keys), err)
					}
				}
			})
		}
	}
}
