package bench

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestBucketsCoverEveryValue(t *testing.T) {
	vals := []uint64{0, 1, 127, 128, 255, 256, 257, 511, 512, 1000, 1 << 20, 1<<20 + 12345, 1<<40 - 1, 1 << 62, 1<<63 - 1}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100000 {
		vals = append(vals, r.Uint64()>>r.IntN(64))
	}
	for _, v := range vals {
		if v >= 1<<63 {
			continue
		}
		i := bucketOf(v)
		if i < 0 || i >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, i)
		}
		lo, w := bucketRange(i)
		if v < lo || v-lo >= w {
			t.Fatalf("v=%d in bucket %d = [%d, %d+%d)", v, i, lo, lo, w)
		}
		if lo >= linearTop && float64(w)/float64(lo) > 1.0/subCount {
			t.Fatalf("bucket %d too wide: %d at %d", i, w, lo)
		}
		if i > 0 {
			plo, pw := bucketRange(i - 1)
			if plo+pw != lo {
				t.Fatalf("buckets %d and %d are not contiguous", i-1, i)
			}
		}
	}
}

// within reports whether got is within the histogram's resolution of want.
func within(got, want time.Duration) bool {
	diff := got - want
	if diff < 0 {
		diff = -diff
	}
	return diff <= want/256+1
}

func TestQuantilesOfAKnownDistribution(t *testing.T) {
	// 1..10000 µs, shuffled, split over four histograms merged afterwards.
	vals := rand.New(rand.NewPCG(3, 4)).Perm(10000)
	var parts [4]Histogram
	for i, v := range vals {
		parts[i%4].Record(time.Duration(v+1) * time.Microsecond)
	}
	var h Histogram
	for i := range parts {
		h.Merge(&parts[i])
	}
	if h.Count() != 10000 {
		t.Fatalf("count %d", h.Count())
	}
	for _, c := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 5000 * time.Microsecond}, {0.95, 9500 * time.Microsecond}, {0.99, 9900 * time.Microsecond}, {0.999, 9990 * time.Microsecond}, {1, 10000 * time.Microsecond}} {
		if got := h.Quantile(c.q); !within(got, c.want) {
			t.Errorf("q%.3f = %v, want %v", c.q, got, c.want)
		}
	}
	if h.Max() != 10*time.Millisecond || h.Min() != time.Microsecond {
		t.Errorf("min %v max %v", h.Min(), h.Max())
	}
	if h.Mean() != 5000500*time.Nanosecond {
		t.Errorf("mean %v", h.Mean())
	}
}

func TestQuantileEdgeCases(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram should report zeros")
	}
	h.Record(3 * time.Millisecond)
	for _, q := range []float64{0.01, 0.5, 1} {
		if got := h.Quantile(q); got != 3*time.Millisecond {
			t.Errorf("one sample: q%v = %v", q, got) // clamped to [min, max]
		}
	}
	// 99 fast, 1 slow: p99 is fast, p99.9 and max are slow.
	var g Histogram
	for range 99 {
		g.Record(time.Millisecond)
	}
	g.Record(time.Second)
	if got := g.Quantile(0.99); !within(got, time.Millisecond) {
		t.Errorf("p99 = %v, want 1ms", got)
	}
	if got := g.Quantile(0.999); got != time.Second {
		t.Errorf("p99.9 = %v, want 1s", got)
	}
	g.Record(-time.Second) // clock weirdness is clamped, not a panic
	if g.Min() != 0 {
		t.Errorf("min %v", g.Min())
	}
}
