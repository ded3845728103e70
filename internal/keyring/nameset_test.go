package keyring

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// TestNameSetMatchesSortedSlice drives a nameSet and a sorted slice with
// the same random insertions and removals (enough to split and empty
// blocks) and compares every query.
func TestNameSetMatchesSortedSlice(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	var s nameSet
	var model []string
	name := func() string { return fmt.Sprintf("k%05d", r.IntN(3000)) }
	for step := 0; step < 20000; step++ {
		n := name()
		i, found := slices.BinarySearch(model, n)
		if r.IntN(3) == 0 {
			if got := s.Delete(n); got != found {
				t.Fatalf("step %d: Delete(%s) = %v, want %v", step, n, got, found)
			}
			if found {
				model = slices.Delete(model, i, i+1)
			}
		} else {
			if got := s.Insert(n); got == found {
				t.Fatalf("step %d: Insert(%s) = %v, want %v", step, n, got, !found)
			}
			if !found {
				model = slices.Insert(model, i, n)
			}
		}
		if s.Len() != len(model) {
			t.Fatalf("step %d: Len %d, want %d", step, s.Len(), len(model))
		}
		if step%500 == 0 {
			var all []string
			s.Ascend("", func(n string) bool { all = append(all, n); return true })
			if !slices.Equal(all, model) {
				t.Fatalf("step %d: Ascend differs from the model", step)
			}
			for _, after := range []string{"", name(), name() + "x", "zzz"} {
				got, more := page(&s, after, 7)
				j, _ := slices.BinarySearch(model, after)
				if j < len(model) && model[j] == after {
					j++
				}
				want := model[j:min(j+7, len(model))]
				if !slices.Equal(got, want) || more != (j+7 < len(model)) {
					t.Fatalf("step %d: page after %q = %v %v, want %v %v", step, after, got, more, want, j+7 < len(model))
				}
				if has := s.Has(after); has != slices.Contains(model, after) {
					t.Fatalf("step %d: Has(%q) = %v", step, after, has)
				}
			}
		}
	}
	if len(s.blocks) < 3 {
		t.Fatalf("the test never split a block (%d blocks)", len(s.blocks))
	}
}
