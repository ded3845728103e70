package bench

import (
	"math/bits"
	"time"
)

// Histogram records latencies in log-linear buckets, like HdrHistogram: the
// values below 2^(subBits+1) ns have a bucket each, and every further power
// of two is split into 2^subBits equal buckets. With subBits = 7 a quantile
// is off by at most 1/256 of its value (the bucket midpoint is reported),
// whatever the range, in a fixed 59 KiB per histogram. Each worker owns one,
// so recording takes no lock; Merge combines them after a step.
//
// Min, max and sum are exact.
type Histogram struct {
	counts [numBuckets]uint64
	n      uint64
	sum    time.Duration
	min    time.Duration
	max    time.Duration
}

const (
	subBits    = 7
	subCount   = 1 << subBits            // buckets per power of two
	linearTop  = 2 * subCount            // values below this have an exact bucket
	numBuckets = linearTop + 57*subCount // up to 2^63 ns
)

// bucketOf returns the bucket index of v (ns, v >= 0).
func bucketOf(v uint64) int {
	if v < linearTop {
		return int(v)
	}
	shift := bits.Len64(v) - (subBits + 1) // v>>shift is in [subCount, 2*subCount)
	return linearTop + (shift-1)*subCount + int(v>>shift) - subCount
}

// bucketRange returns the smallest value of bucket i and its width.
func bucketRange(i int) (lo, width uint64) {
	if i < linearTop {
		return uint64(i), 1
	}
	shift := (i-linearTop)/subCount + 1
	mant := uint64((i-linearTop)%subCount + subCount)
	return mant << shift, 1 << shift
}

// Record adds one latency.
func (h *Histogram) Record(d time.Duration) {
	if d < 0 {
		d = 0
	}
	h.counts[bucketOf(uint64(d))]++
	if h.n == 0 || d < h.min {
		h.min = d
	}
	if d > h.max {
		h.max = d
	}
	h.n++
	h.sum += d
}

// Merge adds o's samples to h.
func (h *Histogram) Merge(o *Histogram) {
	if o.n == 0 {
		return
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count is the number of samples.
func (h *Histogram) Count() uint64 { return h.n }

// Max is the largest sample (exact).
func (h *Histogram) Max() time.Duration { return h.max }

// Min is the smallest sample (exact).
func (h *Histogram) Min() time.Duration { return h.min }

// Mean is the average sample (exact).
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return h.sum / time.Duration(h.n)
}

// Quantile returns the q-quantile (0 < q <= 1) by the nearest-rank method:
// the smallest recorded value such that at least q of the samples are at
// or below it, to within the bucket resolution and clamped to [Min, Max].
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(q*float64(h.n) + 0.999999999) // ceil, tolerant of float noise
	rank = min(max(rank, 1), h.n)
	var seen uint64
	for i, c := range h.counts {
		if seen += c; seen >= rank {
			lo, w := bucketRange(i)
			v := time.Duration(lo + (w-1)/2)
			return min(max(v, h.min), h.max)
		}
	}
	return h.max
}
